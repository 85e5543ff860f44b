import Tariff
import TariffSettlement

extension TariffService {
    // MARK: Live subscriptions (service.md, "Live subscriptions and the period clock")

    /// `POST /v1/subscriptions` `{"consumer","plan"}`: 201 with the new subscription (its first fee
    /// charged), or 200 with the consumer's existing subscription to that plan; `replaced` names the
    /// subscription to another plan of the agent that it replaced. A consumer key subscribes itself.
    func subscribe(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        let body = try await body(request, allowed: ["consumer", "plan"])
        guard let consumer = try consumer(named: try body.id("consumer"), for: principal, required: true) else {
            throw APIError.invalid("'consumer' is required")
        }
        let plan = try body.requiredID("plan")
        let settlement = settlement
        let receipt = try await settlement.subscribe(consumer: consumer, plan: plan)
        return .json(receipt.created ? 201 : 200, Self.subscriptionJSON(receipt.subscription, at: clock.now(), replaced: receipt.replaced?.id))
    }

    /// `DELETE /v1/subscriptions/{id}`: cancels at the end of the current period. Another
    /// consumer's subscription answers exactly as a nonexistent one.
    func cancelSubscription(_ id: String, _ principal: Principal) async throws -> ServiceResponse {
        let notFound = APIError.notFound("no subscription '\(BodyObject.printable(id))' is known")
        guard (try? validatedID(id, "subscription id")) != nil else { throw notFound }
        let settlement = settlement
        guard let found = try await settlement.backend.subscription(id: id) else { throw notFound }
        if principal.role == .consumer, !found.consumer.bytesEqual(principal.consumer ?? "") { throw notFound }
        let canceled = try await settlement.cancel(subscription: id)
        return .json(200, Self.subscriptionJSON(canceled, at: clock.now(), replaced: nil))
    }

    /// `GET /v1/subscriptions[?consumer=ID]`: a consumer key sees only its own.
    func subscriptions(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        try Self.onlyQuery(request, ["consumer"])
        let consumer = try consumer(named: request.queryValue("consumer"), for: principal)
        let records = try await settlement.backend.subscriptions(consumer: consumer)
        let now = clock.now()
        return .json(200, .object([("subscriptions", .array(records.map { Self.subscriptionJSON($0, at: now, replaced: nil) }))]))
    }

    static func subscriptionJSON(_ record: SubscriptionRecord, at now: Timestamp, replaced: String?) -> JSON {
        guard case .object(var fields) = record.json(at: now) else { return record.json(at: now) }
        fields.append(("replaced", replaced.map { .string($0) } ?? .null))
        return .object(fields)
    }

    // MARK: The period clock

    /// How often `tariff serve` runs the period clock: a fee is charged at most this late.
    public static let clockSweepSeconds = 5

    /// Runs the period clock now (fees due, periods due to close): the server's sweep, and the test
    /// clock's move. Several servers on one ledger may run it at once: each period is charged once.
    @discardableResult
    public func runPeriodClock() async throws -> ClockRun {
        try await settlement.runClock()
    }

    /// The sweep `tariff serve` runs every `seconds` until the task is cancelled; a failed run is
    /// logged (never a key or an id) and the next one tries again.
    public func sweepPeriodClock(everySeconds seconds: Int) async {
        while !Task.isCancelled {
            do {
                let run = try await runPeriodClock()
                // Fees and closes take from `available`: the auto top-ups that became due.
                await sweepAutoTopUps()
                if run.fees > 0 || !run.closes.isEmpty {
                    configuration.logger.info("period clock", metadata: ["fees": .stringConvertible(run.fees), "closed": .stringConvertible(run.closes.count)])
                }
            } catch {
                configuration.logger.warning("period clock failed; retried at the next sweep",
                                             metadata: ["error": .string((error as? SettlementError)?.code.rawValue ?? "storage")])
            }
            try? await Task.sleep(for: .seconds(seconds))
        }
    }

    /// The plan and period a reserve prices with: a subscription or enterprise plan only within the
    /// consumer's active subscription to it (the version in effect at the period's start unless one
    /// is pinned); with an agent alone, the consumer's active subscription to a plan of that agent,
    /// else the agent's default plan (usage.md, plans.md).
    func reservePlan(id: String?, version: Int64?, agent: String?, consumer: String, at now: Timestamp,
                     in catalog: CompiledCatalog) async throws -> (PlanHandle, BillingPeriod) {
        let settlement = settlement
        var planID = id
        if planID == nil, let agent, version == nil,
           let active = try await settlement.activeSubscription(consumer: consumer, agent: agent, at: now) {
            planID = active.plan
        }
        if let planID, let first = catalog.versions(of: planID).first, catalog.plan(first).period != nil {
            guard let start = try await settlement.subscriptionPeriodStart(consumer: consumer, plan: planID, containing: now) else {
                throw APIError(422, "no_plan", "plan '\(BodyObject.printable(planID))' is a \(catalog.plan(first).model) plan and consumer '\(BodyObject.printable(consumer))' has no active subscription to it")
            }
            if let agent, catalog.plan(first).agent != agent {
                throw APIError.invalid("plan '\(planID)' prices agent '\(catalog.plan(first).agent)', not '\(BodyObject.printable(agent))'")
            }
            let handle: PlanHandle?
            if let version { handle = catalog.plan(id: planID, version: Int(version)) } else { handle = catalog.plan(id: planID, at: start) }
            guard let handle else { throw APIError(404, "unknown_plan", "plan '\(BodyObject.printable(planID))' has no such version") }
            // An enterprise period whose usage reached its spend cap refuses every run (plans.md
            // "spend cap"): said before the run, not after it.
            let state = try await settlement.backend.periodState(PeriodKey(consumer: consumer, plan: planID, start: start))
            if state.usageCharges.micros > 0,
               catalog.price(handle, ExecutionInput(meters: MeterReadings(), failed: false, endedAt: now), state: state).refusal == .spendCap {
                throw APIError(422, "spend_cap", "consumer '\(BodyObject.printable(consumer))' reached the spend cap of plan '\(BodyObject.printable(planID))' for the period starting \(start.rfc3339)")
            }
            return (handle, .starting(start))
        }
        return (try plan(id: planID, version: version, agent: agent, at: now, in: catalog), .unbounded)
    }
}
