import Tariff

extension SettlementError.Code {
    /// The catalog has no plan with this id.
    public static let unknownPlan = SettlementError.Code(rawValue: "unknown_plan")
}

/// What one run of the period clock did (`Settlement.runClock`).
public struct ClockRun: Sendable, Hashable {
    /// Period fees charged by this run (a fee another run charged first counts too: its key answered).
    public var fees = 0
    /// Periods closed by this run (end lines charged at end + `late_usage_grace`).
    public var closes: [PeriodCloseRecord] = []
    public init() {}
}

extension Settlement {
    // MARK: Subscriptions (service.md, "Live subscriptions and the period clock")

    /// Subscribes a consumer to a `subscription` or `enterprise` plan at `at` (default now), with
    /// usage.md's rules: the consumer's subscription to the same plan is answered unchanged
    /// (`created == false`); one to another plan of the same agent is replaced (it ends at `at`).
    /// The new subscription's first fee (and the replaced one's fees still due) are charged at once.
    /// - throws: `unknown_plan`, `invalid_input` (a `per_call` plan, no version effective at `at`),
    ///   `wrong_currency`, `invalid_key`.
    @discardableResult
    public func subscribe(consumer: String, plan planID: String, at instant: Timestamp? = nil, id: String? = nil) async throws -> SubscribeReceipt {
        try Self.validate(consumer, "consumer id")
        guard let catalog else { throw SettlementError(.invalidInput, "subscriptions need a catalog; this ledger was opened without one") }
        guard let first = catalog.versions(of: planID).first else {
            throw SettlementError(.unknownPlan, "no plan '\(SafeText.escaping(planID))' in the catalog")
        }
        let definition = catalog.plan(first)
        try checkCurrency(definition.currency, "plan \(definition.id)")
        guard let unit = definition.period else {
            throw SettlementError(.invalidInput, "plan '\(planID)' is per_call: it is priced per execution and cannot be subscribed to")
        }
        let at = instant ?? clock.now()
        guard catalog.plan(id: planID, at: at) != nil else {
            throw SettlementError(.invalidInput, "no version of plan '\(planID)' is effective at \(at.rfc3339)")
        }
        let subscriptionID = id ?? Self.newSubscriptionID()
        try Self.validate(subscriptionID, "subscription id")
        let receipt = try await backend.subscribe(SubscribeCommand(id: subscriptionID, consumer: consumer, plan: planID, agent: definition.agent,
                                                                   unit: unit, at: at, now: clock.now()))
        // The first fee is charged at the subscribe (usage.md); the replaced one's due fees first.
        var answer = receipt
        if let replaced = receipt.replaced, try await chargeDueFees(replaced, through: at) > 0 {
            answer.replaced = try await backend.subscription(id: replaced.id) ?? replaced
        }
        if receipt.created, try await chargeDueFees(receipt.subscription, through: at) > 0 {
            answer.subscription = try await backend.subscription(id: receipt.subscription.id) ?? receipt.subscription
        }
        return answer
    }

    /// Cancels the consumer's active subscription to `plan` at the end of the period containing
    /// `at` (default now). A second cancel changes nothing.
    /// - throws: `not_found` (no active subscription to that plan), `invalid_key`.
    @discardableResult
    public func cancel(consumer: String, plan planID: String, at instant: Timestamp? = nil) async throws -> SubscriptionRecord {
        try Self.validate(consumer, "consumer id")
        let at = instant ?? clock.now()
        guard let active = try await backend.subscriptions(consumer: consumer)
            .last(where: { $0.plan.bytesEqual(planID) && $0.isActive(at: at) }) else {
            throw SettlementError(.notFound, "consumer '\(consumer)' has no active subscription to '\(SafeText.escaping(planID))'")
        }
        return try await backend.cancelSubscription(id: active.id, at: at)
    }

    /// Cancels a subscription by id at the end of the period containing `at` (default now).
    /// - throws: `not_found`, `invalid_key`.
    @discardableResult
    public func cancel(subscription id: String, at instant: Timestamp? = nil) async throws -> SubscriptionRecord {
        try Self.validate(id, "subscription id")
        return try await backend.cancelSubscription(id: id, at: instant ?? clock.now())
    }

    /// The consumer's active subscription to a plan of `agent` at `instant`, if any.
    public func activeSubscription(consumer: String, agent: String, at instant: Timestamp) async throws -> SubscriptionRecord? {
        try await backend.subscriptions(consumer: consumer).last { $0.agent.bytesEqual(agent) && $0.isActive(at: instant) }
    }

    /// The period of the consumer's subscription to `plan` that contains `instant` (its start), if a
    /// subscription of the consumer to that plan covers it: what a settle prices into.
    public func subscriptionPeriodStart(consumer: String, plan planID: String, containing instant: Timestamp) async throws -> Timestamp? {
        for record in try await backend.subscriptions(consumer: consumer).reversed() where record.plan.bytesEqual(planID) {
            guard let index = record.periodIndex(containing: instant), let start = record.periodStart(index), record.has(periodStarting: start) else {
                continue
            }
            if let endsAt = record.endsAt, !(instant < endsAt) { continue }
            return start
        }
        return nil
    }

    // MARK: The period clock

    /// Runs the period clock at `at` (default now): every subscription's fees due by then, each
    /// charged once by its `period-start:` key (the period registered with its actual end), then
    /// every period due to close (`closeDuePeriods`: end + `late_usage_grace`). Several runs at once,
    /// on one server or many sharing a ledger, charge each period once.
    /// - throws: `invalid_input` (no catalog, or a period's plan version left the catalog), `storage`.
    @discardableResult
    public func runClock(at instant: Timestamp? = nil) async throws -> ClockRun {
        guard catalog != nil else { throw SettlementError(.invalidInput, "the period clock needs a catalog; this ledger was opened without one") }
        let now = instant ?? clock.now()
        var run = ClockRun()
        for record in try await backend.dueSubscriptions(at: now) {
            run.fees += try await chargeDueFees(record, through: now)
        }
        run.closes = try await closeDuePeriods(at: now)
        return run
    }

    /// The most periods one subscription is charged in one run (a clock moved years ahead on a
    /// weekly plan catches up over several runs rather than in one long one).
    public static let maximumPeriodsPerRun = 64

    /// Charges the fees of `record`'s periods starting at or before `now`, then records the progress.
    /// - returns: how many fees were charged.
    func chargeDueFees(_ record: SubscriptionRecord, through now: Timestamp) async throws -> Int {
        guard let catalog else { return 0 }
        var index = record.chargedPeriods
        while index - record.chargedPeriods < Self.maximumPeriodsPerRun, let start = record.periodStart(index), start <= now,
              record.has(periodStarting: start), let end = record.periodEnd(index) {
            // The version in effect at the period's start prices the whole period (plans.md).
            guard let handle = catalog.plan(id: record.plan, at: start) else { break }
            try await chargePeriodStart(consumer: record.consumer, plan: handle, periodStart: start, periodEnd: end)
            index += 1
        }
        guard index > record.chargedPeriods else { return 0 }
        _ = try await backend.advanceSubscription(id: record.id, chargedPeriods: index)
        return index - record.chargedPeriods
    }

    /// `sub_` and 24 random hex digits (96 bits).
    static func newSubscriptionID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt32
        let hex = String(high, radix: 16), tail = String(low, radix: 16)
        return "sub_" + String(repeating: "0", count: 16 - hex.count) + hex + String(repeating: "0", count: 8 - tail.count) + tail
    }
}
