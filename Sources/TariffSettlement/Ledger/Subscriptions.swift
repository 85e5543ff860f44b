import Tariff

/// A consumer's subscription to a `subscription` or `enterprise` plan, kept in the ledger (service.md,
/// "Live subscriptions and the period clock"; usage.md's rules).
///
/// Its periods are anchored at `start` (plans.md: months clamped to the month's end, never drifting).
/// A subscription ends in one of two ways, both recorded in `endsAt`:
/// - **canceled**: at the end of the period that contains the cancel (no later fee);
/// - **replaced** by a subscription to another plan of the same agent: at the replacement instant,
///   its current period cut short there (an enterprise period's end lines are then computed over the
///   shortened period against the full commitment).
///
/// The period clock (`Settlement.runClock`) charges each period's fee once, by its
/// `period-start:` key, and moves `chargedPeriods` forward; the close of each period is the ledger's
/// period close (registered with the period's actual end when its fee is charged).
public struct SubscriptionRecord: Sendable, Hashable {
    public enum Ending: String, Sendable, Hashable {
        case canceled, replaced
    }

    /// `sub_` and 24 hex digits (random: a subscribe is idempotent by consumer and plan, not by id).
    public var id: String
    public var consumer: String
    public var plan: String
    /// The plan's agent: a consumer has at most one active subscription per agent.
    public var agent: String
    public var unit: PeriodUnit
    /// The first period's start, the anchor of every period.
    public var start: Timestamp
    /// When it ends (nil: until canceled or replaced).
    public var endsAt: Timestamp?
    public var ending: Ending?
    /// Periods `0 ..< chargedPeriods` had their fee charged by the clock.
    public var chargedPeriods: Int
    /// The start of the next period whose fee is due (nil: none is left).
    public var nextPeriodStart: Timestamp?
    public var createdAt: Timestamp

    public init(id: String, consumer: String, plan: String, agent: String, unit: PeriodUnit, start: Timestamp, endsAt: Timestamp? = nil,
                ending: Ending? = nil, chargedPeriods: Int = 0, nextPeriodStart: Timestamp?, createdAt: Timestamp) {
        self.id = id
        self.consumer = consumer
        self.plan = plan
        self.agent = agent
        self.unit = unit
        self.start = start
        self.endsAt = endsAt
        self.ending = ending
        self.chargedPeriods = chargedPeriods
        self.nextPeriodStart = nextPeriodStart
        self.createdAt = createdAt
    }

    /// Period `index`'s start (nil past the supported time range).
    public func periodStart(_ index: Int) -> Timestamp? {
        guard index >= 0 else { return nil }
        return Timestamp.periodStart(anchor: start, unit: unit, index: index)
    }

    /// Whether the period starting at `periodStart` is one of the subscription's: every period before
    /// its end; a replacement exactly at a period start keeps that period (its fee was due first, as
    /// `simulate` processes a boundary before the events at its instant), cut to no length.
    public func has(periodStarting periodStart: Timestamp) -> Bool {
        guard periodStart >= start else { return false }
        guard let endsAt else { return true }
        return periodStart < endsAt || (ending == .replaced && periodStart == endsAt)
    }

    /// Period `index`'s actual end: its scheduled end, or the replacement instant.
    public func periodEnd(_ index: Int) -> Timestamp? {
        guard let scheduled = periodStart(index + 1) else { return nil }
        guard let endsAt else { return scheduled }
        return min(scheduled, endsAt)
    }

    /// Active at `instant`: started, not yet ended.
    public func isActive(at instant: Timestamp) -> Bool {
        start <= instant && (endsAt.map { instant < $0 } ?? true)
    }

    /// The index of the period that contains `instant` (`start(k) <= instant < start(k + 1)`), nil before
    /// the start or past the supported range. Periods are at least 7, 28 or 365 days and at most 7, 31
    /// or 366: the search starts from a lower bound and takes a few steps.
    public func periodIndex(containing instant: Timestamp) -> Int? {
        guard instant >= start else { return nil }
        let elapsed = Int128(instant.nanosecondsSinceEpoch) - Int128(start.nanosecondsSinceEpoch)
        let day = Int128(86_400_000_000_000)
        let longest: Int128
        switch unit {
        case .week: longest = 7 * day
        case .month: longest = 31 * day
        case .year: longest = 366 * day
        }
        var index = Int(elapsed / longest)
        // At most 31 steps for months (a 28-day month is 3 days shorter than 31), 2 for years.
        for _ in 0..<64 {
            guard let next = periodStart(index + 1) else { return nil }
            if instant < next { return index }
            index += 1
        }
        return nil
    }

    /// `nextPeriodStart` from `chargedPeriods` and the end.
    public mutating func scheduleNext() {
        if let next = periodStart(chargedPeriods), has(periodStarting: next) { nextPeriodStart = next } else { nextPeriodStart = nil }
    }
}

/// Starts a subscription (usage.md): `at` is its first period's start.
public struct SubscribeCommand: Sendable, Hashable {
    /// The new subscription's id (used only when one is created).
    public var id: String
    public var consumer: String
    public var plan: String
    public var agent: String
    public var unit: PeriodUnit
    public var at: Timestamp
    public var now: Timestamp
    public init(id: String, consumer: String, plan: String, agent: String, unit: PeriodUnit, at: Timestamp, now: Timestamp) {
        self.id = id
        self.consumer = consumer
        self.plan = plan
        self.agent = agent
        self.unit = unit
        self.at = at
        self.now = now
    }
}

/// What a subscribe did.
public struct SubscribeReceipt: Sendable, Hashable {
    /// The new subscription, or the existing one to the same plan.
    public var subscription: SubscriptionRecord
    /// false: the consumer already had it (answered unchanged, 200).
    public var created: Bool
    /// The subscription to another plan of the same agent that this one replaced, as it is now.
    public var replaced: SubscriptionRecord?
    public init(subscription: SubscriptionRecord, created: Bool, replaced: SubscriptionRecord?) {
        self.subscription = subscription
        self.created = created
        self.replaced = replaced
    }
}

extension SettlementError.Code {
    /// No such subscription (or none active to that plan).
    public static let notFound = SettlementError.Code(rawValue: "not_found")
}

/// The subscription rules as pure functions over a consumer's rows, so that every backend applies
/// the same decisions: `LedgerSteps` over a transactional store, PostgreSQL inside its transaction.
public enum SubscriptionRules {
    /// What a subscribe decided.
    public struct Subscribe: Sendable, Hashable {
        public var receipt: SubscribeReceipt
        /// The replaced subscription's period registered open with this key ends at `command.at`
        /// (if it is registered, still open and ends later).
        public var shortenedPeriod: String?
    }

    /// Decides a subscribe from the consumer's subscriptions (any state).
    /// - throws: `invalid_input` (a subscription of the agent starts after `at`).
    public static func subscribe(_ command: SubscribeCommand, existing: [SubscriptionRecord]) throws -> Subscribe {
        let mine = existing.filter { $0.agent.bytesEqual(command.agent) }
        if let later = mine.first(where: { $0.start > command.at }) {
            throw SettlementError(.invalidInput, "consumer '\(command.consumer)' has a subscription to '\(later.plan)' starting at \(later.start.rfc3339), after \(command.at.rfc3339)")
        }
        var replaced: SubscriptionRecord?
        var shortened: String?
        if let active = mine.first(where: { $0.isActive(at: command.at) }) {
            if active.plan.bytesEqual(command.plan) {
                return Subscribe(receipt: SubscribeReceipt(subscription: active, created: false, replaced: nil), shortenedPeriod: nil)
            }
            var old = active
            old.endsAt = command.at
            old.ending = .replaced
            old.scheduleNext()
            // Its current period, if its fee was charged (registered open), now ends here.
            if let index = old.periodIndex(containing: command.at), let start = old.periodStart(index) {
                shortened = PeriodKey(consumer: old.consumer, plan: old.plan, start: start).rawValue
            }
            replaced = old
        }
        var record = SubscriptionRecord(id: command.id, consumer: command.consumer, plan: command.plan, agent: command.agent, unit: command.unit,
                                        start: command.at, nextPeriodStart: command.at, createdAt: command.now)
        record.scheduleNext()
        return Subscribe(receipt: SubscribeReceipt(subscription: record, created: true, replaced: replaced), shortenedPeriod: shortened)
    }

    /// The subscription canceled at `at` (the end of the period containing it), or nil when nothing
    /// changes (canceled already, or ended).
    /// - throws: `out_of_range`.
    public static func cancel(_ found: SubscriptionRecord, at: Timestamp) throws -> SubscriptionRecord? {
        var record = found
        if record.endsAt.map({ $0 <= at }) == true || record.ending == .canceled { return nil }
        guard let index = record.periodIndex(containing: max(at, record.start)), let end = record.periodStart(index + 1) else {
            throw SettlementError(.outOfRange, "the period containing \(at.rfc3339) ends beyond the supported time range")
        }
        // A replacement that ends it earlier stays.
        if let endsAt = record.endsAt, endsAt <= end { return nil }
        record.endsAt = end
        record.ending = .canceled
        record.scheduleNext()
        return record
    }

    /// The subscription with periods `0 ..< periods` charged, or nil when it already records as
    /// much (progress never moves back: concurrent sweeps record it in any order).
    public static func advance(_ found: SubscriptionRecord, chargedPeriods periods: Int) -> SubscriptionRecord? {
        guard periods > found.chargedPeriods else { return nil }
        var record = found
        record.chargedPeriods = periods
        record.scheduleNext()
        return record
    }
}

extension LedgerSteps {
    /// Starts a subscription, answers the consumer's existing one to the same plan, or replaces its
    /// subscription to another plan of the same agent (`SubscriptionRules.subscribe`): that one
    /// ends at `at`, and its registered open period is cut short there, so that it closes at `at`
    /// plus the grace.
    /// - throws: `idempotency_conflict` (the id is taken), `invalid_input`.
    public static func subscribe<Store: LedgerStore>(_ command: SubscribeCommand, in store: inout Store) throws -> SubscribeReceipt {
        let decided = try SubscriptionRules.subscribe(command, existing: try store.subscriptions(consumer: command.consumer))
        guard decided.receipt.created else { return decided.receipt }
        guard try store.subscription(command.id) == nil else {
            throw SettlementError(.idempotencyConflict, "subscription id '\(command.id)' is taken")
        }
        if let old = decided.receipt.replaced { try store.saveSubscription(old, isNew: false) }
        if let key = decided.shortenedPeriod, var period = try store.periodClose(key), !period.isClosed, command.at < period.end {
            period.end = command.at
            try store.savePeriodClose(period, isNew: false)
        }
        try store.saveSubscription(decided.receipt.subscription, isNew: true)
        return decided.receipt
    }

    /// Cancels a subscription at the end of the period that contains `at` (usage.md). A second
    /// cancel, or a cancel of a subscription that already ended, changes nothing.
    /// - throws: `not_found`, `out_of_range`.
    public static func cancelSubscription<Store: LedgerStore>(id: String, at: Timestamp, in store: inout Store) throws -> SubscriptionRecord {
        guard let record = try store.subscription(id) else { throw SettlementError(.notFound, "no subscription '\(id)'") }
        guard let canceled = try SubscriptionRules.cancel(record, at: at) else { return record }
        try store.saveSubscription(canceled, isNew: false)
        return canceled
    }

    /// Records that the clock charged periods `0 ..< periods` (never moves back).
    /// - throws: `not_found`.
    public static func advanceSubscription<Store: LedgerStore>(id: String, chargedPeriods periods: Int, in store: inout Store) throws -> SubscriptionRecord {
        guard let record = try store.subscription(id) else { throw SettlementError(.notFound, "no subscription '\(id)'") }
        guard let advanced = SubscriptionRules.advance(record, chargedPeriods: periods) else { return record }
        try store.saveSubscription(advanced, isNew: false)
        return advanced
    }
}

extension SubscriptionRecord {
    /// The order of listings: consumer (bytes), then start, then id (bytes).
    public static func listed(_ a: SubscriptionRecord, _ b: SubscriptionRecord) -> Bool {
        if !a.consumer.bytesEqual(b.consumer) { return a.consumer.bytesPrecede(b.consumer) }
        if a.start != b.start { return a.start < b.start }
        return a.id.bytesPrecede(b.id)
    }
}

extension SubscriptionRecord {
    /// `active`, `canceled` (still running until `ends_at`) or `ended` at `now`.
    public func status(at now: Timestamp) -> String {
        if let endsAt, endsAt <= now { return "ended" }
        return ending == .canceled ? "canceled" : "active"
    }

    /// The JSON of `tariff ledger subscriptions` and of the service's `/v1/subscriptions`.
    public func json(at now: Timestamp) -> JSON {
        .object([("id", .string(id)), ("consumer", .string(consumer)), ("plan", .string(plan)), ("agent", .string(agent)),
                 ("period", .string(unit.rawValue)), ("start", .string(start.rfc3339)), ("status", .string(status(at: now))),
                 ("ends_at", endsAt.map { .string($0.rfc3339) } ?? .null), ("ending", ending.map { .string($0.rawValue) } ?? .null),
                 ("periods_charged", .integer(Int64(chargedPeriods))), ("next_fee_at", nextPeriodStart.map { .string($0.rfc3339) } ?? .null)])
    }
}
