import TariffCore

/// A named metering profile: compute units per unit of each meter, and the rounding precision.
public struct MeteringProfile: Sendable, Hashable {
    public struct Weighting: Sendable, Hashable {
        public var meter: MeterIndex
        public var weight: MeterWeight
        public var location: SourceLocation
        public init(meter: MeterIndex, weight: MeterWeight, location: SourceLocation) {
            self.meter = meter
            self.weight = weight
            self.location = location
        }
    }
    public var name: String
    public var weights: [Weighting]
    /// An execution's compute units are rounded up to a multiple of this (default 0.001).
    public var precision: ComputeUnits
    public var location: SourceLocation

    public init(name: String, weights: [Weighting], precision: ComputeUnits, location: SourceLocation) {
        self.name = name
        self.weights = weights
        self.precision = precision
        self.location = location
    }

    /// Whether the profile weighs a meter (a reading of another meter adds nothing and is warned about).
    public func weighs(_ meter: MeterIndex) -> Bool { weights.contains { $0.meter == meter } }
}

/// A split with its name (nil for a plan's inline split) and where it was declared.
public struct SplitDefinition: Sendable, Hashable {
    public var name: String?
    public var rule: SplitRule
    public var location: SourceLocation
    public init(name: String?, rule: SplitRule, location: SourceLocation) {
        self.name = name
        self.rule = rule
        self.location = location
    }
}

/// The payout calendar of `rules/payouts.yaml` (settlement.md, "Payouts").
public struct PayoutCalendar: Sendable, Hashable {
    public var weekStarts: Weekday
    /// An IANA zone name (`UTC`, `Europe/Paris`).
    public var timezone: String
    public var payOn: Weekday
    /// Below this the week's amount carries to the next week.
    public var minimum: Money
    public var location: SourceLocation?

    public init(weekStarts: Weekday = .monday, timezone: String = "UTC", payOn: Weekday = .wednesday, minimum: Money = .zero, location: SourceLocation? = nil) {
        self.weekStarts = weekStarts
        self.timezone = timezone
        self.payOn = payOn
        self.minimum = minimum
        self.location = location
    }
}

/// One `tests:` entry of a plan: an execution in a given period state and what it must cost.
public struct PlanTestCase: Sendable {
    public struct Expectation: Sendable {
        public var computeUnits: Located<ComputeUnits>?
        public var charge: Located<Money>?
        public var split: Located<SplitShares>?
        /// `refused: spend_cap`, or `refused: none` to assert the execution is priced.
        public var refused: Located<String?>?
        public init() {}
    }
    public var name: String
    public var location: SourceLocation
    public var periodUsage: ComputeUnits
    public var periodSpend: Money
    public var periodExecutions: Int64
    /// Readings by meter index.
    public var meters: [(meter: MeterIndex, value: MeterValue)]
    public var failed: Bool
    public var at: Timestamp?
    public var expect: Expectation

    public init(name: String, location: SourceLocation, periodUsage: ComputeUnits, periodSpend: Money, periodExecutions: Int64,
                meters: [(meter: MeterIndex, value: MeterValue)], failed: Bool, at: Timestamp?, expect: Expectation) {
        self.name = name
        self.location = location
        self.periodUsage = periodUsage
        self.periodSpend = periodSpend
        self.periodExecutions = periodExecutions
        self.meters = meters
        self.failed = failed
        self.at = at
        self.expect = expect
    }
}

/// Where the phases of a plan's execution pipeline start: pricing (the model's own steps) from 0,
/// then the plan's `rules:`, then the guardrails (`max_cost_per_execution`, then `spend_cap`), so
/// "never charged more than this" holds whatever the rules add (plans.md, "Rule plugins").
public struct PipelinePhases: Sendable, Hashable {
    /// The index of the first rule step (== `guardrailsStart` when the plan has no rules).
    public var rulesStart: Int
    /// The index of the first guardrail step (== the step count when there is none).
    public var guardrailsStart: Int
    public init(rulesStart: Int, guardrailsStart: Int) {
        self.rulesStart = rulesStart
        self.guardrailsStart = guardrailsStart
    }

    /// The phases of a pipeline written as model steps, then rule steps, then guardrails, read off
    /// the operations: guardrails are the trailing `isGuardrail` steps; everything before is
    /// pricing (a plan built by hand has no rule phase unless it says so).
    public init(inferredFrom nodes: [RuleNode]) {
        var start = nodes.count
        while start > 0 && nodes[start - 1].operation.isGuardrail { start -= 1 }
        self.init(rulesStart: start, guardrailsStart: start)
    }

    public enum Phase: String, Sendable { case pricing, rules, guardrails }

    /// The phase of step `index`.
    public func phase(of index: Int) -> Phase {
        index >= guardrailsStart ? .guardrails : (index >= rulesStart ? .rules : .pricing)
    }
}

/// One compiled plan version: everything the engine needs, with the positions explain shows.
public struct PlanDefinition: Sendable {
    public var id: String
    public var version: Int
    /// nil: effective from the beginning of time.
    public var effective: Timestamp?
    public var agent: String
    public var creator: String
    public var currency: Currency
    public var metering: MeteringProfile
    public var split: SplitDefinition
    /// Resolved by the default-plan rule: the agent's only per-execution plan, or the one marked `default: true`.
    public var isDefault: Bool
    public var model: String
    public var period: PeriodUnit?
    public var billFailed: Bool
    public var executionNodes: [RuleNode]
    /// Where rules and guardrails start in `executionNodes`.
    public var phases: PipelinePhases
    public var periodNodes: [RuleNode]
    public var reserve: PlanMoney?
    public var quoteIsExact: Bool
    public var attributes: [(key: String, value: String)]
    public var tests: [PlanTestCase]
    public var file: String
    /// Positions of the header keys, for diagnostics and graphs.
    public var location: SourceLocation
    public var modelLocation: SourceLocation

    public init(id: String, version: Int, effective: Timestamp?, agent: String, creator: String, currency: Currency,
                metering: MeteringProfile, split: SplitDefinition, isDefault: Bool, model: String, period: PeriodUnit?,
                billFailed: Bool, executionNodes: [RuleNode], periodNodes: [RuleNode], reserve: PlanMoney?, quoteIsExact: Bool,
                attributes: [(key: String, value: String)], tests: [PlanTestCase], file: String, location: SourceLocation, modelLocation: SourceLocation,
                phases: PipelinePhases? = nil) {
        self.id = id
        self.version = version
        self.effective = effective
        self.agent = agent
        self.creator = creator
        self.currency = currency
        self.metering = metering
        self.split = split
        self.isDefault = isDefault
        self.model = model
        self.period = period
        self.billFailed = billFailed
        self.executionNodes = executionNodes
        self.phases = phases ?? PipelinePhases(inferredFrom: executionNodes)
        self.periodNodes = periodNodes
        self.reserve = reserve
        self.quoteIsExact = quoteIsExact
        self.attributes = attributes
        self.tests = tests
        self.file = file
        self.location = location
        self.modelLocation = modelLocation
    }

    public func attribute(_ key: String) -> String? { attributes.first { $0.key == key }?.value }
}

/// The compiler's output: a checked catalog, ready for the engine.
public struct CatalogDefinition: Sendable {
    /// Every plan version, sorted by id then version.
    public var plans: [PlanDefinition]
    /// The catalog's meters in index order.
    public var meterNames: [String]
    public var meterings: [MeteringProfile]
    public var splits: [SplitDefinition]
    public var payouts: PayoutCalendar
    /// `reservation:` of rules/ (default 1.00): the hold for a plan that names no estimate.
    public var defaultReservation: PlanMoney
    /// `late_usage_grace:` of rules/ (default 1h): a period closes at its end plus this (settlement.md).
    public var lateUsageGraceNanoseconds: Int64 = CatalogDefinition.defaultLateUsageGraceNanoseconds
    public static let defaultLateUsageGraceNanoseconds: Int64 = 3_600 * 1_000_000_000
    /// `low_balance:` of rules/ (default 10.00): below this `available`, a consumer gets a
    /// `balance.low` event (service.md, "Events out"); a consumer's own setting overrides it.
    public var lowBalance: PlanMoney = CatalogDefinition.defaultLowBalance
    public static let defaultLowBalance = PlanMoney(picos: 10_000_000_000_000)

    public init(plans: [PlanDefinition], meterNames: [String], meterings: [MeteringProfile], splits: [SplitDefinition],
                payouts: PayoutCalendar, defaultReservation: PlanMoney) {
        self.plans = plans
        self.meterNames = meterNames
        self.meterings = meterings
        self.splits = splits
        self.payouts = payouts
        self.defaultReservation = defaultReservation
    }

    public var currencies: [Currency] {
        var seen: [Currency] = []
        for plan in plans where !seen.contains(plan.currency) { seen.append(plan.currency) }
        return seen.sorted { $0.code < $1.code }
    }
}
