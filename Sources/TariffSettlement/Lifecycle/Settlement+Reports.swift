import Tariff

/// How `usage` groups its rows.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case agent, consumer, plan, day
}

/// One row of a usage report: priced executions (failed ones included: they were metered), their
/// compute units, and every collected line of the group (execution charges, fees, period-end lines).
public struct UsageRow: Sendable, Hashable {
    /// The agent, consumer, plan id or UTC day (`2026-11-02`).
    public var key: String
    public var computeUnits: ComputeUnits
    public var cost: Money
    public var executions: Int64
    public init(key: String, computeUnits: ComputeUnits, cost: Money, executions: Int64) {
        self.key = key
        self.computeUnits = computeUnits
        self.cost = cost
        self.executions = executions
    }
}

/// A creator's payout for one week, as computed from the ledger's lines, and how far it went.
public struct PayoutLine: Sendable, Hashable {
    public enum Status: String, Sendable {
        /// Nothing to pay this week (below the minimum, or no earnings): all of it carries.
        case carried
        /// To be paid: not recorded yet.
        case due
        /// Recorded in the ledger, not yet confirmed by the payment rail.
        case recorded
        /// Recorded and confirmed by the rail.
        case paid
    }
    public var key: String
    public var creator: String
    public var weekStart: CivilDate
    public var payDate: CivilDate
    public var earnings: Money
    public var amount: Money
    public var carried: Money
    public var status: Status
}

extension Settlement {
    // MARK: Usage

    /// The longest usage period: ten years (3,650 days, 87,600 hours).
    public static let maximumUsagePeriodHours: Int64 = 3_650 * 24

    /// Reads `30d`, `7d`, `24h` (whole days or hours, at most 3650 days); nil for anything else.
    /// The count is compared with the bound before it is multiplied: `400000000000000000d` is
    /// refused, never an overflow (it trapped).
    public static func usagePeriod(_ text: String) -> Duration? {
        guard let unit = text.last, unit == "d" || unit == "h", text.first?.isNumber == true,
              let count = Int64(text.dropLast()), count > 0 else { return nil }
        let hoursPerUnit: Int64 = unit == "d" ? 24 : 1
        guard count <= maximumUsagePeriodHours / hoursPerUnit else { return nil }
        return .seconds(count * hoursPerUnit * 3_600)
    }

    /// Usage over the last `period` (up to now, inclusive), grouped, optionally of one consumer.
    /// The seed's `usage({ period: '30d', groupBy: 'agent' })`.
    /// - throws: `out_of_range` if a sum leaves the 64-bit range.
    public func usage(period: Duration = .seconds(30 * 86_400), groupBy: UsageGrouping = .agent, consumer: String? = nil) async throws -> [UsageRow] {
        if let consumer { try Self.validate(consumer, "consumer id") }
        let now = clock.now()
        let from = now.adding(nanoseconds: -period.nanoseconds) ?? Timestamp(nanosecondsSinceEpoch: Int64.min)
        let to = now.adding(nanoseconds: 1) ?? now
        let records = try await backend.chargeRecords(ChargeQuery(consumer: consumer, from: from, to: to))
        var sums: [ByteKey: (units: Int128, cost: MoneySum, executions: Int64)] = [:]
        for record in records {
            let key: String
            switch groupBy {
            case .agent: key = record.agent
            case .consumer: key = record.consumer
            case .plan: key = record.plan
            case .day: key = record.datedAt.civilDate.description
            }
            var sum = sums[ByteKey(key)] ?? (0, MoneySum(), 0)
            sum.cost.add(record.charged)
            if record.kind == .execution {
                sum.units += Int128(record.computeUnits.millis)
                sum.executions += 1
            }
            sums[ByteKey(key)] = sum
        }
        return try sums.keys.sorted().map { byteKey in
            let key = byteKey.string
            guard let sum = sums[byteKey] else { throw SettlementError(.storage, "a usage group vanished") }
            guard let units = Int64(exactly: sum.units), let cost = sum.cost.money else {
                throw SettlementError(.outOfRange, "the usage of \(SafeText.escaping(key)) exceeds the 64-bit range (cost \(sum.cost))")
            }
            return UsageRow(key: key, computeUnits: ComputeUnits(millis: units), cost: cost, executions: sum.executions)
        }
    }

    // MARK: Payouts

    /// The payout calendar of the catalog's `rules/payouts.yaml` (defaults without a catalog).
    func payoutSchedule() throws -> PayoutSchedule {
        let calendar = catalog?.definition.payouts ?? PayoutCalendar()
        guard let schedule = PayoutSchedule(calendar) else {
            throw SettlementError(.invalidInput, "the payout time zone '\(calendar.timezone)' is not known to this system")
        }
        return schedule
    }

    /// The payout key of a creator and week: `payout:CREATOR:2026-11-02`.
    public static func payoutKey(creator: String, weekStart: CivilDate) -> String { "payout:\(creator):\(weekStart)" }

    /// Each creator's payout for the week starting on `weekStart` (settlement.md): the creator
    /// shares of every line dated in the week, what carried in from the weeks before, the amount
    /// paid on the pay date (floored to cents, at least the minimum) and what carries out.
    /// - throws: `invalid_input` when `weekStart` is not a first day of a payout week.
    public func payouts(week weekStart: CivilDate) async throws -> [PayoutLine] {
        let schedule = try payoutSchedule()
        guard let week = schedule.week(startingOn: weekStart) else {
            throw SettlementError(.invalidInput, "\(weekStart) is a \(weekStart.weekday.fullName); payout weeks start on \(schedule.calendar.weekStarts.fullName)")
        }
        var accumulator = PayoutAccumulator(schedule: schedule)
        for record in try await backend.chargeRecords(ChargeQuery(to: week.end)) {
            accumulator.add(creator: record.creator, at: record.datedAt, share: record.split.creator)
        }
        var recorded: [ByteKey: PayoutRecord] = [:]
        for payout in try await backend.payouts(weekStart: weekStart) { recorded[ByteKey(payout.creator)] = payout }
        let rows: [PayoutRow]
        do throws(AmountOverflow) { rows = try accumulator.rows() } catch { throw SettlementError(.outOfRange, error.description) }
        return try rows.filter { $0.week.start == week.start }.map { row in
            var line = PayoutLine(key: Self.payoutKey(creator: row.creator, weekStart: weekStart), creator: row.creator, weekStart: weekStart,
                                  payDate: row.week.payDate, earnings: row.earnings, amount: row.amount, carried: row.carried,
                                  status: row.amount.micros > 0 ? .due : .carried)
            if let payout = recorded[ByteKey(row.creator)] {
                // What was recorded is what was paid, even if a late line changed the week since.
                guard let carried = (MoneySum(line.carried) + MoneySum(line.amount) - MoneySum(payout.amount)).money else {
                    throw SettlementError(.outOfRange, "what \(row.creator) carries out of the week of \(weekStart) is beyond the largest amount")
                }
                line.carried = carried
                line.amount = payout.amount
                line.status = payout.reference == nil ? .recorded : .paid
            }
            return line
        }
    }

    /// Records each due payout of the week in the ledger (`payout:CREATOR:WEEK`, `earnings ->
    /// paid_out`), then sends it through the rail and marks it paid. Rerunning it, or running it
    /// again after it stopped half way, pays every creator once: recorded payouts are not recorded
    /// again, confirmed ones are not sent again, and a payout recorded but not confirmed is sent again
    /// under the same idempotency key (the rail pays it once).
    /// - throws: `invalid_input` before the week has ended; what the rail throws.
    public func executePayouts(week weekStart: CivilDate, rail: some PaymentRail) async throws -> [PayoutLine] {
        let schedule = try payoutSchedule()
        guard let week = schedule.week(startingOn: weekStart) else {
            throw SettlementError(.invalidInput, "\(weekStart) is not the first day of a payout week")
        }
        let now = clock.now()
        guard now >= week.end else {
            throw SettlementError(.invalidInput, "the week of \(weekStart) ends at \(week.end): its payouts cannot be executed before")
        }
        for line in try await payouts(week: weekStart) where line.amount.micros > 0 && line.status != .paid {
            try Self.validate(line.key, "payout key")
            if line.status == .due {
                _ = try await backend.recordPayout(PayoutCommand(key: line.key, fingerprint: "amount=\(line.amount.micros)", creator: line.creator,
                                                                 weekStart: weekStart, payDate: line.payDate, amount: line.amount, now: now))
            }
            let reference = try await rail.send(PayoutTransfer(idempotencyKey: line.key, destination: line.creator, amount: line.amount,
                                                               currency: currency, transferGroup: weekStart.description))
            try await backend.markPayoutSent(key: line.key, reference: reference)
        }
        return try await payouts(week: weekStart)
    }

    // MARK: Verify

    /// Checks the six invariants of settlement.md over every row of the ledger.
    public func verify() async throws -> VerificationReport {
        LedgerVerifier.verify(try await backend.snapshot(), schedule: try payoutSchedule())
    }

    // MARK: The seed's per-consumer API

    /// The billing calls of one consumer (`ag.billing.balance()`, `purchase`, `usage`).
    public func billing(for consumer: String) -> ConsumerBilling { ConsumerBilling(settlement: self, consumer: consumer) }
}

/// The seed's per-consumer billing calls over a `Settlement`.
public struct ConsumerBilling: Sendable {
    public let settlement: Settlement
    public let consumer: String

    public func balance() async throws -> Balance { try await settlement.balance(consumer: consumer) }

    public func purchase(amount: Money, idempotencyKey: String) async throws -> PurchaseReceipt {
        try await settlement.purchase(consumer: consumer, amount: amount, idempotencyKey: idempotencyKey)
    }

    /// `usage(period: "30d", groupBy: .agent)`.
    /// - throws: `invalid_input` for a period other than `Nd` or `Nh`.
    public func usage(period: String = "30d", groupBy: UsageGrouping = .agent) async throws -> [UsageRow] {
        guard let duration = Settlement.usagePeriod(period) else {
            throw SettlementError(.invalidInput, "a usage period is written like 30d, 7d or 24h (at most 3650d), not '\(SafeText.escaping(period))'")
        }
        return try await settlement.usage(period: duration, groupBy: groupBy, consumer: consumer)
    }
}
