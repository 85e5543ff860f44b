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
        /// The rail refused the transfer (`failure` says why): its amount went back to earnings.
        case failed
        /// The creator is held (a transfer was reversed): nothing is paid until an admin releases it.
        case held
    }
    public var key: String
    public var creator: String
    public var weekStart: CivilDate
    public var payDate: CivilDate
    public var earnings: Money
    public var amount: Money
    /// What stays owed after the week's payout (negative: a debt netted against later payouts).
    public var carried: Money
    public var status: Status
    /// The rail's reason when `failed`.
    public var failure: String? = nil
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

    /// The ledger currency's smallest unit in micro-units (cents: 10,000; whole yen: 1,000,000):
    /// payouts are floored to it before anything is recorded.
    public var payoutUnitMicros: Int64 {
        Int64(PowerOfTen.int128(Money.fractionalDigits - min(currency.minorUnitDigits, Money.fractionalDigits)))
    }

    /// The longest failure reason kept with a failed payout (a rail's message), in characters.
    static let maximumFailureLength = 500

    /// Each creator's payout for the week starting on `weekStart`, from the ledger (settlement.md,
    /// "Money that reconciles"). A creator already recorded for the week shows that record
    /// (`recorded`, `paid` or `failed`); any other creator with earnings dated before the week's
    /// end is `due` `floor_to_minor_unit(earnings dated before the week's end - everything paid out
    /// so far, net of what went back)` when that is at least the minimum and above zero, else
    /// `carried`. A creator is listed when it has lines in the week, a record for it, or an amount
    /// due. `earnings` are the creator's shares of the lines dated in the week; `carried` is what
    /// stays owed after the week's payout (negative: a debt netted against later payouts).
    /// - throws: `invalid_input` when `weekStart` is not a first day of a payout week.
    public func payouts(week weekStart: CivilDate) async throws -> [PayoutLine] {
        let schedule = try payoutSchedule()
        guard let week = schedule.week(startingOn: weekStart) else {
            throw SettlementError(.invalidInput, "\(weekStart) is a \(weekStart.weekday.fullName); payout weeks start on \(schedule.calendar.weekStarts.fullName)")
        }
        var earnedByEnd: [ByteKey: Int128] = [:], earnedInWeek: [ByteKey: Int128] = [:]
        for record in try await backend.chargeRecords(ChargeQuery(to: week.end)) {
            let creator = ByteKey(record.creator)
            earnedByEnd[creator, default: 0] += Int128(record.split.creator.micros)
            if record.datedAt >= week.start { earnedInWeek[creator, default: 0] += Int128(record.split.creator.micros) }
        }
        var paidAll: [ByteKey: Int128] = [:], paidThroughWeek: [ByteKey: Int128] = [:], recorded: [ByteKey: PayoutRecord] = [:]
        for payout in try await backend.payoutRecords() {
            let creator = ByteKey(payout.creator)
            paidAll[creator, default: 0] += Int128(payout.netAmount.micros)
            if payout.weekStart <= weekStart { paidThroughWeek[creator, default: 0] += Int128(payout.netAmount.micros) }
            if payout.weekStart == weekStart { recorded[creator] = payout }
        }
        func money(_ micros: Int128, _ what: String, _ creator: String) throws -> Money {
            guard let value = Int64(exactly: micros) else {
                throw SettlementError(.outOfRange, "\(what) of \(SafeText.escaping(creator)) for the week of \(weekStart) is beyond the largest amount")
            }
            return Money(micros: value)
        }
        let held = Set(try await backend.creatorHolds().map { ByteKey($0.creator) })
        var lines: [PayoutLine] = []
        for creator in Set(earnedByEnd.keys).union(recorded.keys).sorted() {
            let name = creator.string, earned = earnedByEnd[creator] ?? 0
            var line = PayoutLine(key: Self.payoutKey(creator: name, weekStart: weekStart), creator: name, weekStart: weekStart, payDate: week.payDate,
                                  earnings: try money(earnedInWeek[creator] ?? 0, "the week's earnings", name), amount: .zero, carried: .zero, status: .carried)
            if let payout = recorded[creator] {
                line.amount = payout.amount
                line.carried = try money(earned - (paidThroughWeek[creator] ?? 0), "what stays owed", name)
                line.status = switch payout.status {
                case .recorded: .recorded
                case .paid: .paid
                case .failed: .failed
                }
                line.failure = payout.failure
            } else {
                let owed = earned - (paidAll[creator] ?? 0)
                let amount = try LedgerSteps.payableAmount(owed: owed, minimum: schedule.calendar.minimum, unitMicros: payoutUnitMicros) ?? .zero
                guard earnedInWeek[creator] != nil || amount.micros > 0 else { continue }
                line.amount = amount
                line.carried = try money(owed - Int128(amount.micros), "what stays owed", name)
                line.status = amount.micros > 0 ? .due : .carried
                if held.contains(creator) {
                    // Held: nothing is due; all of it stays owed.
                    line.amount = .zero
                    line.carried = try money(owed, "what stays owed", name)
                    line.status = .held
                }
            }
            lines.append(line)
        }
        return lines
    }

    /// Runs the week's payouts: for every creator with earnings dated before the week's end (or
    /// already recorded for the week), records the payout computed from the ledger
    /// (`payout:CREATOR:WEEK`, `earnings -> paid_out`), then sends it through the rail and marks it
    /// paid. Per creator: a transfer the rail refuses makes that payout `failed` with the rail's
    /// reason and gives its amount back to earnings (`paid_out -> earnings`), owed again and paid by
    /// a later week's run; the others go on. A payout recorded by an earlier run but never
    /// confirmed is first looked up on the rail (`findSent`) and adopted if it was made, else sent
    /// again under its key. A failure whose outcome is unknown (the rail unreachable) stops the run
    /// with that payout still recorded: running again is safe and pays every creator once.
    /// - throws: `not_due` before the week's pay date (nothing recorded, nothing sent); `invalid_input`
    ///   for a date that does not start a payout week; what the rail throws for an unknown outcome.
    public func executePayouts(week weekStart: CivilDate, rail: some PaymentRail) async throws -> [PayoutLine] {
        let schedule = try payoutSchedule()
        guard let week = schedule.week(startingOn: weekStart) else {
            throw SettlementError(.invalidInput, "\(weekStart) is not the first day of a payout week")
        }
        // settlement.md: "Week W's payout run may be executed from W's pay date on" (local midnight
        // of the pay date in the payout time zone, which is never before the week's end).
        let now = clock.now(), payableFrom = max(schedule.payDateStart(of: week), week.end)
        guard now >= payableFrom else {
            throw SettlementError(.notDue, "the payouts of the week of \(weekStart) are due on \(week.payDate) (from \(payableFrom)), not before")
        }
        var creators = Set<ByteKey>()
        for record in try await backend.chargeRecords(ChargeQuery(to: week.end)) { creators.insert(ByteKey(record.creator)) }
        for payout in try await backend.payouts(weekStart: weekStart) { creators.insert(ByteKey(payout.creator)) }
        // A creator whose transfer was reversed is skipped until released (a clawback is not paid straight back).
        creators.subtract(try await backend.creatorHolds().map { ByteKey($0.creator) })
        for creator in creators.sorted() {
            let name = creator.string
            let key = Self.payoutKey(creator: name, weekStart: weekStart)
            try Self.validate(key, "payout key")
            let step = try await backend.recordPayout(PayoutCommand(key: key, creator: name, weekStart: weekStart, payDate: week.payDate, weekEnd: week.end,
                                                                    minimum: schedule.calendar.minimum, unitMicros: payoutUnitMicros, now: clock.now()))
            guard let record = step.record, record.status == .recorded else { continue }
            let transfer = PayoutTransfer(idempotencyKey: key, destination: name, amount: record.amount, currency: currency,
                                          transferGroup: weekStart.description)
            // Recorded by an earlier run that never heard the rail's answer: adopt what was made.
            var reference = step.created ? nil : try await rail.findSent(transfer)
            if reference == nil {
                do {
                    reference = try await rail.send(transfer)
                } catch {
                    guard let reason = rail.refusalReason(error) else { throw error }
                    _ = try await backend.failPayout(key: key, reason: String(reason.prefix(Self.maximumFailureLength)), now: clock.now())
                    continue
                }
            }
            if let reference { try await backend.markPayoutSent(key: key, reference: reference) }
        }
        return try await payouts(week: weekStart)
    }

    /// A transfer reversed after it was made (Stripe's `transfer.reversed`): `reversedTotal` (the
    /// transfer's cumulative `amount_reversed`) goes back to the creator's earnings by a
    /// compensating entry, once however often the event arrives, and the creator is held: later
    /// runs skip it until `releaseCreator`.
    /// - throws: `invalid_input` (no such payout), `invalid_key`, `invalid_amount`.
    @discardableResult
    public func reversePayout(key: String, reversedTotal: Money, transfer: String) async throws -> PayoutRecord {
        try Self.validate(key, "payout key")
        try Self.validate(transfer, "transfer id")
        guard reversedTotal.micros >= 0 else { throw SettlementError(.invalidAmount, "a reversed amount cannot be negative: \(reversedTotal)") }
        return try await backend.reversePayout(key: key, reversedTotal: reversedTotal, transfer: transfer, now: clock.now())
    }

    /// Lets later payout runs pay a held creator again (`tariff ledger payouts release --creator ID`).
    /// - returns: whether the creator was held.
    @discardableResult
    public func releaseCreator(_ creator: String) async throws -> Bool {
        try Self.validate(creator, "creator id")
        return try await backend.releaseCreator(creator)
    }

    /// The creators whose payouts are held, and why.
    public func creatorHolds() async throws -> [CreatorHold] { try await backend.creatorHolds() }

    // MARK: Verify

    /// Checks the invariants of settlement.md over every row of the ledger.
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
