import Tariff

/// What `tariff simulate` reports (cli.md): counts, totals, rows per consumer, agent, plan and
/// payout, the rejected lines and the warnings. Amounts are exact ledger `Money`.
public struct SimulationReport: Sendable {
    public struct Totals: Sendable, Equatable {
        public var charged = Money.zero
        public var purchased = Money.zero
        public var creator = Money.zero
        public var platform = Money.zero
        public var processing = Money.zero
    }
    public struct ConsumerRow: Sendable, Equatable {
        public var consumer: String
        public var charged = Money.zero
        public var computeUnits = ComputeUnits.zero
        public var executions = 0
        public var refused = 0
        public init(consumer: String, charged: Money = .zero, computeUnits: ComputeUnits = .zero, executions: Int = 0, refused: Int = 0) {
            self.consumer = consumer
            self.charged = charged
            self.computeUnits = computeUnits
            self.executions = executions
            self.refused = refused
        }
    }
    public struct AgentRow: Sendable, Equatable {
        public var agent: String
        public var creator: String
        public var charged = Money.zero
        public var computeUnits = ComputeUnits.zero
        public var executions = 0
    }
    public struct PlanRow: Sendable, Equatable {
        public var plan: String
        public var version: Int
        public var charged = Money.zero
        public var fees = Money.zero
        public var usage = Money.zero
        public var shortfall = Money.zero
        public var slaCredits = Money.zero
        public init(plan: String, version: Int, charged: Money = .zero, fees: Money = .zero, usage: Money = .zero,
                    shortfall: Money = .zero, slaCredits: Money = .zero) {
            self.plan = plan
            self.version = version
            self.charged = charged
            self.fees = fees
            self.usage = usage
            self.shortfall = shortfall
            self.slaCredits = slaCredits
        }
    }
    public struct DayRow: Sendable, Equatable {
        public var day: CivilDate
        public var charged = Money.zero
        public var creator = Money.zero
        public var platform = Money.zero
        public var processing = Money.zero
    }

    public var currency: Currency?
    public var from: Timestamp?
    public var to: Timestamp?
    public var linesRead = 0
    /// The first `maximumListed` rejected lines met (sorted by line); `rejectedTotal` counts them all.
    public var rejected: [Rejection] = []
    /// The first `maximumListed` warnings met (sorted by line); `warningsTotal` counts them all.
    public var warnings: [TraceWarning] = []
    public var rejectedTotal = 0
    public var warningsTotal = 0
    /// How many rejected lines (and warnings) a report lists: 100,000, some 10 MiB. A 38 KB .gz of
    /// 20 million bad lines held 4.8 GB to list them all; past the bound they are counted
    /// (`rejected_total`, `warnings_total`), so memory does not follow the input.
    public static let maximumListed = 100_000
    public var priced = 0
    public var refused = 0
    public var duplicates = 0
    public var totals = Totals()
    public var consumers: [ConsumerRow] = []
    public var agents: [AgentRow] = []
    public var plans: [PlanRow] = []
    public var payouts: [PayoutRow] = []
    public var days: [DayRow] = []

    public init() {}
}

extension SimulationReport {
    /// The JSON of cli.md, fields in its order (amounts as decimal strings).
    public var json: JSON {
        .object([
            ("currency", .optional(currency?.code)),
            ("from", .optional(from?.description)), ("to", .optional(to?.description)),
            ("lines_read", .integer(Int64(linesRead))),
            ("rejected", .array(rejected.map { .object([("line", .integer(Int64($0.line))), ("reason", .string($0.reason))]) })),
            ("warnings", .array(warnings.map { .object([("line", .integer(Int64($0.line))), ("message", .string($0.message))]) })),
            ("rejected_total", .integer(Int64(max(rejectedTotal, rejected.count)))), ("warnings_total", .integer(Int64(max(warningsTotal, warnings.count)))),
            ("executions", .object([("priced", .integer(Int64(priced))), ("refused", .integer(Int64(refused))), ("duplicate", .integer(Int64(duplicates)))])),
            ("totals", .object([
                ("charged", .string(totals.charged.description)), ("purchased", .string(totals.purchased.description)),
                ("creator", .string(totals.creator.description)), ("platform", .string(totals.platform.description)),
                ("processing", .string(totals.processing.description)),
            ])),
            ("consumers", .array(consumers.map { row in
                .object([("consumer", .string(row.consumer)), ("charged", .string(row.charged.description)),
                         ("compute_units", .string(row.computeUnits.description)), ("executions", .integer(Int64(row.executions))),
                         ("refused", .integer(Int64(row.refused)))])
            })),
            ("agents", .array(agents.map { row in
                .object([("agent", .string(row.agent)), ("creator", .string(row.creator)), ("charged", .string(row.charged.description)),
                         ("compute_units", .string(row.computeUnits.description)), ("executions", .integer(Int64(row.executions)))])
            })),
            ("plans", .array(plans.map { row in
                .object([("plan", .string(row.plan)), ("version", .integer(Int64(row.version))), ("charged", .string(row.charged.description)),
                         ("fees", .string(row.fees.description)), ("usage", .string(row.usage.description)),
                         ("shortfall", .string(row.shortfall.description)), ("sla_credits", .string(row.slaCredits.description))])
            })),
            ("payouts", .array(payouts.map { row in
                .object([("creator", .string(row.creator)), ("week_start", .string(row.week.weekStart.description)),
                         ("pay_date", .string(row.week.payDate.description)), ("earnings", .string(row.earnings.description)),
                         ("amount", .string(row.amount.description)), ("carried", .string(row.carried.description))])
            })),
            ("days", .array(days.map { row in
                .object([("day", .string(row.day.description)), ("charged", .string(row.charged.description)),
                         ("creator", .string(row.creator.description)), ("platform", .string(row.platform.description)),
                         ("processing", .string(row.processing.description))])
            })),
        ])
    }
}
