import Tariff
import TariffSettlement

extension TariffService {
    // MARK: The execution lifecycle (keyed by the execution id: the ledger's own idempotency)

    static let defaultTTLSeconds: Int64 = 900

    func executionID(_ text: String) throws -> String {
        _ = try validatedID(text, "execution id")
        return text
    }

    /// Readings by meter name as the catalog's indices. A reading the plan's metering does not
    /// weigh (a name no metering knows, or one this plan's does not) adds nothing and is said in
    /// `warnings`, exactly as quote and simulate treat it (plans.md, "Rule plugins": every place that
    /// prices one execution treats a meter reading the same way).
    func readings(_ named: [(name: String, value: MeterValue)], in catalog: CompiledCatalog,
                  plan: PlanDefinition?) -> (readings: MeterReadings, warnings: [String]) {
        var readings = MeterReadings()
        var warnings: [String] = []
        for (name, value) in named {
            guard let meter = catalog.meter(named: name), plan?.metering.weighs(meter) ?? true else {
                let metering = plan.map { " by metering '\($0.metering.name)' of plan '\($0.id)'" } ?? " by the catalog"
                warnings.append("meter '\(BodyObject.printable(name))' is not weighed\(metering); it adds nothing")
                continue
            }
            readings[meter] = value
        }
        return (readings, warnings)
    }

    /// The plan a hold was placed for, when the current catalog still has it.
    func plan(of hold: HoldRecord, in catalog: CompiledCatalog) -> PlanDefinition? {
        catalog.plan(id: hold.plan, version: hold.version).map { catalog.plan($0) }
    }

    func reserve(_ request: ServiceRequest) async throws -> ServiceResponse {
        let body = try await body(request, allowed: ["execution", "consumer", "plan", "version", "agent", "ttl_seconds"])
        let execution = try body.requiredID("execution")
        let consumer = try body.requiredID("consumer")
        let ttl = try body.integer("ttl_seconds", in: 1...86_400) ?? Self.defaultTTLSeconds
        let settlement = settlement
        guard let catalog = settlement.catalog else { throw APIError(503, "storage", "no catalog") }
        let before = clock.now()
        let (handle, period) = try await reservePlan(id: try body.string("plan"), version: try body.integer("version", in: 1...1_000_000),
                                                     agent: try body.string("agent"), consumer: consumer, at: before, in: catalog)
        let definition = catalog.plan(handle)
        let hold = try await settlement.reserve(ReservationRequest(execution: execution, consumer: consumer, plan: handle, period: period,
                                                                   ttl: .seconds(ttl)), announcingRefusal: true)
        // A hold placed before this request started is the first answer, returned again.
        let replayed = hold.expiresAt.adding(nanoseconds: -ttl * 1_000_000_000).map { $0 < before } ?? false
        return .json(201, .object([("execution", .string(hold.execution)), ("consumer", .string(hold.consumer)), ("plan", .string(definition.id)),
                                   ("version", .integer(Int64(definition.version))), ("held", .string(hold.amount.description)),
                                   ("expires_at", .string(hold.expiresAt.rfc3339))]),
                     headers: replayed ? [("Idempotent-Replayed", "true")] : [])
    }

    func meter(_ request: ServiceRequest, execution id: String) async throws -> ServiceResponse {
        let execution = try executionID(id)
        let body = try await body(request, allowed: ["at", "meters"])
        let settlement = settlement
        guard let catalog = settlement.catalog else { throw APIError(503, "storage", "no catalog") }
        let at = try body.timestamp("at") ?? clock.now()
        let named = try body.meters("meters")
        // The hold's plan from the settlement's directory of holds (no read for a hold this server
        // placed); an unknown execution is refused by `meter` itself below.
        let (readings, warnings) = readings(named, in: catalog, plan: try? await settlement.plan(ofHold: execution))
        let receipt = try await settlement.meter(execution: execution, sample: MeterSample(at: at, meters: readings))
        // A sample that extended the hold took from `available`.
        if let hold = try? await settlement.backend.hold(execution: execution) { await checkAutoTopUp(hold.consumer) }
        return .json(200, .object([("held", .string(receipt.held.description)), ("cost", .string(receipt.running.description)),
                                   ("exhausted", .bool(receipt.exhausted)), ("warnings", .array(warnings.map { .string($0) }))]))
    }

    func settle(_ request: ServiceRequest, execution id: String) async throws -> ServiceResponse {
        let execution = try executionID(id)
        let body = try await body(request, allowed: ["ended_at", "status", "meters"])
        let settlement = settlement
        guard let catalog = settlement.catalog else { throw APIError(503, "storage", "no catalog") }
        guard let endedAt = try body.timestamp("ended_at") else { throw APIError.invalid("'ended_at' is required") }
        let status = try body.string("status") ?? "succeeded"
        guard status == "succeeded" || status == "failed" else { throw APIError.invalid("'status' is succeeded or failed") }
        let named = try body.meters("meters")
        guard let hold = try await settlement.backend.hold(execution: execution) else {
            throw APIError(404, "unknown_reservation", "no hold was placed for execution '\(execution)'")
        }
        let (readings, warnings) = readings(named, in: catalog, plan: plan(of: hold, in: catalog))
        let replayed = hold.state == .settled
        // A subscription's run prices into the period that contains its end (plans.md), which may be
        // a later one than the period it was reserved in.
        var period: BillingPeriod?
        var state = PeriodState.empty
        if let reserved = hold.periodStart {
            let start = try await settlement.subscriptionPeriodStart(consumer: hold.consumer, plan: hold.plan, containing: endedAt) ?? reserved
            if start != reserved { period = .starting(start) }
            // The lines are priced against the period's state before this run (the amounts charged
            // are the ledger's, priced inside its step; a concurrent run of the same period may
            // make these lines differ from them).
            if !replayed { state = try await settlement.backend.periodState(PeriodKey(consumer: hold.consumer, plan: hold.plan, start: start)) }
        }
        let receipt = try await settlement.settle(SettlementRequest(execution: execution, meters: readings, failed: status == "failed", endedAt: endedAt,
                                                                    period: period))
        if !replayed { await checkAutoTopUp(hold.consumer) }
        // The lines of the price: a per-call plan keeps no period state, so pricing again from the
        // empty state gives the lines the ledger charged, the same on a replay.
        var lines: JSON = .array([])
        if receipt.refusal == nil, let handle = catalog.plan(id: hold.plan, version: hold.version) {
            let priced = catalog.price(handle, ExecutionInput(meters: readings, failed: status == "failed", endedAt: endedAt), state: state)
            lines = Self.linesJSON(priced.lines, plan: catalog.plan(handle))
        }
        return .json(200, .object([("execution", .string(receipt.execution)), ("charged", .string(receipt.charged.description)),
                                   ("uncollected", .string(receipt.uncollected.description)), ("released", .string(receipt.released.description)),
                                   ("compute_units", .string(receipt.computeUnits.description)), ("split", Self.splitJSON(receipt.split)),
                                   ("lines", lines), ("refused", .optional(receipt.refusal?.rawValue)),
                                   ("warnings", .array(warnings.map { .string($0) }))]),
                     headers: replayed ? [("Idempotent-Replayed", "true")] : [])
    }

    func release(_ request: ServiceRequest, execution id: String) async throws -> ServiceResponse {
        let execution = try executionID(id)
        _ = try await body(request, allowed: [])
        let settlement = settlement
        let before = try await settlement.backend.hold(execution: execution)
        let receipt = try await settlement.release(execution: execution)
        return .json(200, .object([("execution", .string(receipt.execution)), ("consumer", .string(receipt.consumer)),
                                   ("released", .string(receipt.released.description))]),
                     headers: before?.state == .released ? [("Idempotent-Replayed", "true")] : [])
    }

    func execution(_ id: String, _ principal: Principal) async throws -> ServiceResponse {
        let execution = try executionID(id)
        let notFound = APIError.notFound("no execution '\(BodyObject.printable(execution))' is known")
        guard let hold = try await settlement.backend.hold(execution: execution) else { throw notFound }
        if principal.role == .consumer, hold.consumer != principal.consumer { throw notFound }
        let now = clock.now()
        let state: String
        switch hold.state {
        case .active: state = hold.isLive(at: now) ? "held" : "expired"
        case .settled: state = "settled"
        case .released: state = "released"
        case .expired: state = "expired"
        case .refused: state = "refused"
        }
        var fields: [(String, JSON)] = [
            ("execution", .string(hold.execution)), ("consumer", .string(hold.consumer)), ("plan", .string(hold.plan)),
            ("version", .integer(Int64(hold.version))), ("state", .string(state)),
            ("held", .string(state == "held" ? hold.amount.description : Money.zero.description)),
            ("estimate", .string(hold.estimate.description)), ("expires_at", .string(hold.expiresAt.rfc3339)),
        ]
        if let outcome = hold.outcome {
            fields += [("charged", .string(outcome.charged.description)), ("uncollected", .string(outcome.uncollected.description)),
                       ("released", .string(outcome.released.description)), ("compute_units", .string(outcome.computeUnits.description)),
                       ("refused", .optional(outcome.refusal?.rawValue))]
        }
        return .json(200, .object(fields))
    }

    // MARK: Payouts

    func week(_ text: String) throws -> CivilDate {
        guard text.utf8.count == 10, let instant = Timestamp(date: text) else { throw APIError.invalid("a week is written YYYY-MM-DD (its first day)") }
        return instant.civilDate
    }

    static func payoutsJSON(_ lines: [PayoutLine], week: CivilDate, executed: Bool, currency: Currency) -> JSON {
        .object([("week_start", .string(week.description)), ("executed", .bool(executed)), ("currency", .string(currency.code)),
                 ("payouts", .array(lines.map { line in
            .object([("creator", .string(line.creator)), ("week_start", .string(line.weekStart.description)), ("pay_date", .string(line.payDate.description)),
                     ("earnings", .string(line.earnings.description)), ("amount", .string(line.amount.description)),
                     ("carried", .string(line.carried.description)), ("status", .string(line.status.rawValue)), ("key", .string(line.key)),
                         ("failure", .optional(line.failure))])
        }))])
    }

    func payouts(_ request: ServiceRequest) async throws -> ServiceResponse {
        try Self.onlyQuery(request, ["week"])
        guard let text = request.queryValue("week") else { throw APIError.invalid("'week' is required (YYYY-MM-DD, the week's first day)") }
        let week = try week(text)
        let settlement = settlement
        let lines = try await settlement.payouts(week: week)
        return .json(200, Self.payoutsJSON(lines, week: week, executed: false, currency: settlement.currency))
    }

    func executePayouts(_ request: ServiceRequest, week text: String) async throws -> ServiceResponse {
        let week = try week(text)
        _ = try await body(request, allowed: [])
        let settlement = settlement
        // The library refuses a run before the week's pay date (`not_due`, 409), in the payout time zone.
        let paid = try await configuration.rail.executePayouts(week: week, on: settlement)
        return .json(200, Self.payoutsJSON(paid, week: week, executed: true, currency: settlement.currency))
    }
}
