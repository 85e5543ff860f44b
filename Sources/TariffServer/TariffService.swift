import Foundation
import Logging
import Synchronization
import Tariff
import TariffSettlement
import TariffStripe

/// One HTTP request as the service sees it (the HTTP layer fills it in).
struct ServiceRequest: Sendable {
    var method: String
    var path: String
    var query: [(String, String)]
    /// Header values by lowercased name (the first value of each).
    var headers: [String: String]
    var remoteIsLoopback: Bool
    /// Reads the body (at most `TariffService.maximumBodyBytes`).
    var readBody: @Sendable () async throws -> [UInt8]
    /// Whether the connection is HTTPS (the scheme of the URLs the service answers, such as a portal link's).
    var isTLS: Bool = false

    func header(_ name: String) -> String? { headers[name] }
    func queryValue(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
}

/// One answer.
struct ServiceResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: String
    var contentType: String

    static func json(_ status: Int, _ value: JSON, headers: [(String, String)] = []) -> ServiceResponse {
        ServiceResponse(status: status, headers: headers, body: value.rendered, contentType: "application/json")
    }

    static func problem(_ error: APIError) -> ServiceResponse {
        ServiceResponse(status: error.status, headers: error.headers, body: error.body, contentType: "application/problem+json")
    }
}

/// The billing layer over HTTP, without the HTTP: routes, keys and roles, bodies, the library
/// calls and their answers. Handlers stay thin: they read the request, call `Settlement` (or the
/// catalog, the payouts), and render what it returns.
public final class TariffService: Sendable {
    /// Bodies past this are refused with 413.
    public static let maximumBodyBytes = 1 << 20

    let configuration: ServiceConfiguration
    let routes: [Route]
    let authenticator: Authenticator
    let catalogs: CatalogStore
    let clock: any SettlementClock
    let manualClock: ManualClock?
    /// The lifecycle over the catalog in force; replaced when a reload compiled.
    private let current: Mutex<Settlement>
    /// Reloads are numbered when they start; a compile swaps in only if no later one already did.
    private let reloads = Mutex<(started: Int, applied: Int)>((0, 0))
    let metrics: ServiceMetrics
    let webhook: StripeWebhook?
    /// The portal's link tokens, signed under the secret kept beside the ledger.
    let portal: PortalTokens
    /// Which consumers have an auto top-up setting (re-read at most every second), so a settle of
    /// a consumer without one costs no read (TariffService+AutoTopUp.swift).
    let autoTopUpConsumers = AutoTopUpConsumers()
    /// Idempotency keys of purchases being answered by this process right now.

    /// Compiles the catalog (errors stop the start) and opens the keys.
    /// - throws: `ServiceStartError` with the diagnostics when the catalog does not compile.
    public init(configuration: ServiceConfiguration) throws {
        self.configuration = configuration
        let compilation = CatalogLoader.compile(plansDirectory: configuration.plansDirectory, rulesDirectory: configuration.rulesDirectory,
                                                plugins: configuration.plugins)
        guard let catalog = compilation.catalog else { throw ServiceStartError(diagnostics: compilation.diagnostics) }
        catalogs = CatalogStore(catalog)
        if let start = configuration.testClockStart {
            let manual = ManualClock(start)
            manualClock = manual
            clock = manual
        } else {
            manualClock = nil
            clock = SystemClock()
        }
        routes = Route.routes(testClock: configuration.testClockStart != nil)
        authenticator = Authenticator(store: configuration.store, extraAdminKey: configuration.adminKey,
                                      cacheMilliseconds: configuration.keyCacheMilliseconds)
        current = Mutex(Settlement(backend: configuration.backend, catalog: catalog, clock: clock))
        metrics = ServiceMetrics()
        webhook = try configuration.webhookSecret.map { try StripeWebhook(endpointSecret: $0, toleranceSeconds: 300) }
        // SQLite and PostgreSQL keep the portal's secret and links in the ledger's database; a
        // `memory:` ledger keeps them for the process's life.
        portal = PortalTokens(store: (configuration.store as? any PortalStore) ?? (configuration.backend as? any PortalStore) ?? InMemoryPortalStore())
    }

    var settlement: Settlement { current.withLock { $0 } }

    // MARK: Catalog reload

    /// Recompiles the catalog (SIGHUP, `POST /v1/catalog/reload`): the old one keeps pricing until
    /// the new one compiled cleanly, and a compile that finishes after a newer one was applied is
    /// dropped (the newest successful compile wins).
    public func reloadCatalog() -> CatalogCompilation {
        let ticket = reloads.withLock { state -> Int in
            state.started += 1
            return state.started
        }
        let compilation = CatalogLoader.compile(plansDirectory: configuration.plansDirectory, rulesDirectory: configuration.rulesDirectory,
                                                plugins: configuration.plugins)
        guard let catalog = compilation.catalog else {
            metrics.catalogReload(succeeded: false)
            return compilation
        }
        reloads.withLock { state in
            guard ticket > state.applied else { return }
            state.applied = ticket
            catalogs.reload { compilation }
            current.withLock { $0 = Settlement(backend: configuration.backend, catalog: catalog, clock: clock) }
        }
        // The new catalog's `low_balance` goes to the ledger, where every writer's steps read it.
        Task { [self] in try? await applyLowBalanceDefault() }
        metrics.catalogReload(succeeded: true)
        return compilation
    }

    // MARK: Requests

    /// Answers one request; never throws (every failure is a problem+json answer, never a 500).
    func handle(_ request: ServiceRequest) async -> (response: ServiceResponse, route: String) {
        let matches = Route.match(path: request.path, in: routes)
        guard !matches.isEmpty else { return (.problem(.notFound("no such endpoint")), "unmatched") }
        guard let (route, parameters) = matches.first(where: { $0.route.method == request.method }) else {
            let allowed = matches.map(\.route.method).joined(separator: ", ")
            return (.problem(APIError(405, "method_not_allowed", "this endpoint takes \(allowed)", headers: [("Allow", allowed)])), matches[0].route.template)
        }
        do {
            var principal: Principal?
            if case .roles(let roles) = route.access {
                let found = try await authenticator.principal(authorization: request.header("authorization"))
                guard roles.contains(Route.RoleName(rawValue: found.role.rawValue)!) else { throw APIError.forbidden }
                principal = found
            }
            let response = try await dispatch(route, parameters: parameters, principal: principal, request: request)
            countLedgerStep(route, outcome: "ok")
            return (response, route.template)
        } catch let error as APIError {
            countLedgerStep(route, outcome: error.code)
            return (.problem(error), route.template)
        } catch let error as SettlementError {
            let problem = APIError(error)
            countLedgerStep(route, outcome: problem.code)
            return (.problem(problem), route.template)
        } catch {
            // Anything else is the storage or the network failing under us: retryable, never a 500.
            configuration.logger.error("request failed", metadata: ["route": .string(route.template), "error": .string(String(describing: type(of: error)))])
            return (.problem(APIError(503, "storage", "the service could not complete the request; try again", headers: [("Retry-After", "1")])), route.template)
        }
    }

    /// The routes that write to the ledger: their steps and refusals are counted by outcome.
    static let ledgerRoutes: Set<String> = ["/v1/purchases", "/v1/executions", "/v1/executions/{id}/meter", "/v1/executions/{id}/settle",
                                            "/v1/executions/{id}/release", "/v1/payouts/{week}/execute", "/v1/refunds", "/v1/webhooks/stripe",
                                            "/v1/subscriptions"]

    func countLedgerStep(_ route: Route, outcome: String) {
        if route.method == "POST", Self.ledgerRoutes.contains(route.template) { metrics.ledgerStep(route: route.template, outcome: outcome) }
    }

    /// Reads a JSON body: `application/json` only (415 otherwise), at most 1 MiB (413 past it).
    func body(_ request: ServiceRequest, allowed: Set<String>) async throws -> BodyObject {
        let bytes = try await request.readBody()
        if let type = request.header("content-type") {
            let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard media == "application/json" else {
                throw APIError(415, "unsupported_media_type", "send the body as Content-Type: application/json")
            }
        } else if !bytes.isEmpty {
            throw APIError(415, "unsupported_media_type", "send the body as Content-Type: application/json")
        }
        return try BodyObject(bytes: bytes, allowed: allowed)
    }

    private func dispatch(_ route: Route, parameters: [String: String], principal: Principal?, request: ServiceRequest) async throws -> ServiceResponse {
        switch (route.method, route.template) {
        case ("GET", "/v1/balance"): return try await balance(request, principal!)
        case ("POST", "/v1/purchases"): return try await purchase(request, principal!)
        case ("PUT", "/v1/consumers/{id}"): return try await putConsumer(request, id: parameters["id"]!)
        case ("PUT", "/v1/consumers/{id}/auto-top-up"): return try await putAutoTopUp(request, id: parameters["id"]!, principal!)
        case ("GET", "/v1/usage"): return try await usage(request, principal!)
        case ("POST", "/v1/quotes"): return try await quote(request, principal!)
        case ("GET", "/v1/plans"): return plans()
        case ("POST", "/v1/executions"): return try await reserve(request)
        case ("POST", "/v1/executions/{id}/meter"): return try await meter(request, execution: parameters["id"]!)
        case ("POST", "/v1/executions/{id}/settle"): return try await settle(request, execution: parameters["id"]!)
        case ("POST", "/v1/executions/{id}/release"): return try await release(request, execution: parameters["id"]!)
        case ("GET", "/v1/executions/{id}"): return try await execution(parameters["id"]!, principal!)
        case ("GET", "/v1/payouts"): return try await payouts(request)
        case ("POST", "/v1/payouts/{week}/execute"): return try await executePayouts(request, week: parameters["week"]!)
        case ("POST", "/v1/refunds"): return try await refund(request)
        case ("GET", "/v1/ledger/verify"): return try await verify()
        case ("POST", "/v1/catalog/reload"): return try await reload(request)
        case ("POST", "/v1/webhooks/stripe"): return try await stripeWebhook(request)
        case ("POST", "/v1/webhooks"): return try await addWebhook(request)
        case ("POST", "/v1/clock"): return try await moveClock(request)
        case ("POST", "/v1/subscriptions"): return try await subscribe(request, principal!)
        case ("GET", "/v1/subscriptions"): return try await subscriptions(request, principal!)
        case ("DELETE", "/v1/subscriptions/{id}"): return try await cancelSubscription(parameters["id"]!, principal!)
        case ("POST", "/v1/portal/links"): return try await createPortalLink(request, principal!)
        case ("DELETE", "/v1/portal/links/{id}"): return try await revokePortalLink(parameters["id"]!, principal!)
        case ("GET", "/portal/{token}"): return await portalPage(token: parameters["token"]!)
        case ("GET", "/healthz"): return .json(200, .object([("status", .string("ok"))]))
        case ("GET", "/readyz"): return try await ready()
        case ("GET", "/metrics"):
            guard request.remoteIsLoopback || configuration.publicMetrics else { throw APIError.notFound("no such endpoint") }
            return ServiceResponse(status: 200, headers: [], body: metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case ("GET", "/openapi.json"): return ServiceResponse(status: 200, headers: [], body: OpenAPIDocument.text, contentType: "application/json")
        default: throw APIError.notFound("no such endpoint")
        }
    }

    // MARK: Whose data

    /// The consumer a request may name: a consumer key only its own (any other id answers as an
    /// unknown one does, so a key never learns whether another consumer exists).
    func consumer(named requested: String?, for principal: Principal, required: Bool = false) throws -> String? {
        if principal.role == .consumer {
            let own = principal.consumer ?? ""
            if let requested, requested != own { throw Self.noConsumer(requested) }
            return own
        }
        guard let requested else {
            if required { throw APIError.invalid("'consumer' is required") }
            return nil
        }
        _ = try validatedID(requested, "consumer id")
        return requested
    }

    static func noConsumer(_ id: String) -> APIError { .notFound("no consumer '\(BodyObject.printable(id))' is known") }

    // MARK: Credits

    func balanceJSON(_ balance: Balance) -> JSON {
        .object([("consumer", .string(balance.consumer)), ("currency", .string(balance.currency.code)),
                 ("available", .string(balance.available.description)), ("reserved", .string(balance.reserved.description))])
    }

    /// The balance; a consumer's own with no history yet is zeros.
    func currentBalance(_ consumer: String, own: Bool) async throws -> Balance {
        do { return try await settlement.balance(consumer: consumer) } catch let error as SettlementError where error.code == .unknownConsumer {
            if own { return Balance(consumer: consumer, currency: settlement.currency, available: .zero, reserved: .zero) }
            throw Self.noConsumer(consumer)
        }
    }

    func balance(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        try Self.onlyQuery(request, ["consumer"])
        let consumer = try consumer(named: request.queryValue("consumer"), for: principal, required: true)!
        return .json(200, balanceJSON(try await currentBalance(consumer, own: principal.role == .consumer)))
    }

    static func onlyQuery(_ request: ServiceRequest, _ names: Set<String>) throws {
        for (name, _) in request.query where !names.contains(name) {
            throw APIError.invalid("unknown query parameter '\(BodyObject.printable(name))'")
        }
    }

    func putConsumer(_ request: ServiceRequest, id: String) async throws -> ServiceResponse {
        _ = try validatedID(id, "consumer id")
        let body = try await body(request, allowed: ["stripe_customer", "low_balance"])
        let customer = try body.id("stripe_customer")
        let low = try body.amount("low_balance")
        if let low, low.micros < 0 { throw APIError(400, "invalid_amount", "'low_balance' cannot be negative") }
        var settings = try await configuration.store.consumerSettings(id) ?? ConsumerSettings(consumer: id)
        if body.has("stripe_customer") { settings.stripeCustomer = customer }
        if body.has("low_balance") { settings.lowBalance = low }
        try await configuration.store.saveConsumerSettings(settings)
        // The in-memory ledger keeps its own copy of the threshold its steps compare against.
        if body.has("low_balance") { try await outbox.setLowBalance(consumer: id, threshold: settings.lowBalance) }
        return .json(200, .object([("consumer", .string(id)), ("stripe_customer", .optional(settings.stripeCustomer)),
                                   ("low_balance", .optional(settings.lowBalance?.description))]))
    }

    // MARK: Usage, quotes, plans

    func usage(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        try Self.onlyQuery(request, ["period", "group_by", "consumer"])
        let periodText = request.queryValue("period") ?? "30d"
        guard let period = Settlement.usagePeriod(periodText) else {
            throw APIError.invalid("'period' is written like 30d, 7d or 24h (at most 3650 days)")
        }
        guard let grouping = UsageGrouping(rawValue: request.queryValue("group_by") ?? "agent") else {
            throw APIError.invalid("'group_by' is agent, consumer, plan or day")
        }
        let consumer = try consumer(named: request.queryValue("consumer"), for: principal)
        if let consumer, principal.role != .consumer { _ = try await currentBalance(consumer, own: false) }
        let rows = try await settlement.usage(period: period, groupBy: grouping, consumer: consumer)
        return .json(200, .object([("data", .array(rows.map { row in
            .object([(grouping.rawValue, .string(row.key)), ("compute_units", .string(row.computeUnits.description)),
                     ("cost", .string(row.cost.description)), ("executions", .integer(row.executions))])
        }))]))
    }

    /// The plan a request names: `plan` (and `version`, else the version in effect now), or the agent's default plan.
    func plan(id: String?, version: Int64?, agent: String?, at instant: Timestamp, in catalog: CompiledCatalog) throws -> PlanHandle {
        if let id {
            let handle: PlanHandle
            do { handle = try catalog.resolve(planID: id, version: version.map { Int($0) }, at: instant) } catch {
                throw APIError(404, "unknown_plan", error.description)
            }
            if let agent, catalog.plan(handle).agent != agent {
                throw APIError.invalid("plan '\(id)' prices agent '\(catalog.plan(handle).agent)', not '\(BodyObject.printable(agent))'")
            }
            return handle
        }
        guard let agent else { throw APIError.invalid("name a 'plan' or an 'agent'") }
        if version != nil { throw APIError.invalid("'version' needs a 'plan'") }
        guard let handle = catalog.defaultPlan(agent: agent, at: instant) else {
            throw APIError(422, "no_plan", "agent '\(BodyObject.printable(agent))' has no default plan in effect and no subscription names it")
        }
        return handle
    }

    func quote(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        let body = try await body(request, allowed: ["plan", "version", "agent", "consumer", "at", "meters", "status"])
        let settlement = settlement
        guard let catalog = settlement.catalog else { throw APIError(503, "storage", "no catalog") }
        let at = try body.timestamp("at") ?? clock.now()
        let consumer = try consumer(named: try body.id("consumer"), for: principal)
        var planID = try body.string("plan")
        let version = try body.integer("version", in: 1...1_000_000), agent = try body.string("agent")
        // With a consumer and an agent alone, the consumer's subscription to a plan of the agent prices, as a reserve's would.
        if let consumer, planID == nil, version == nil, let agent,
           let active = try await settlement.activeSubscription(consumer: consumer, agent: agent, at: at) {
            planID = active.plan
        }
        let handle = try plan(id: planID, version: version, agent: agent, at: at, in: catalog)
        let status = try body.string("status") ?? "succeeded"
        guard status == "succeeded" || status == "failed" else { throw APIError.invalid("'status' is succeeded or failed") }
        var state = PeriodState.empty
        if let consumer {
            if principal.role != .consumer { _ = try await currentBalance(consumer, own: false) }
            let definition = catalog.plan(handle)
            if definition.period == nil {
                state = try await settlement.backend.periodState(PeriodKey(consumer: consumer, plan: definition.id, start: nil))
            } else if let start = try await settlement.subscriptionPeriodStart(consumer: consumer, plan: definition.id, containing: at) {
                // The consumer's period of its subscription that contains `at`: the exact cost of the next run.
                state = try await settlement.backend.periodState(PeriodKey(consumer: consumer, plan: definition.id, start: start))
            }
        }
        let definition = catalog.plan(handle)
        let request = QuoteRequest(planID: definition.id, version: definition.version, at: at, meters: try body.meters("meters"),
                                   periodUsage: state.usedComputeUnits, periodSpend: state.usageCharges, periodExecutions: state.executions,
                                   failed: status == "failed")
        let quote: Quote
        do { quote = try catalog.quote(request) } catch { throw APIError(404, "unknown_plan", error.description) }
        return .json(200, Self.quoteJSON(quote))
    }

    static func quoteJSON(_ quote: Quote) -> JSON {
        let result = quote.result
        return .object([
            ("plan", .string(quote.plan.id)), ("version", .integer(Int64(quote.plan.version))),
            ("currency", .string(quote.plan.currency.code)), ("model", .string(quote.plan.model)),
            ("compute_units", .string(result.computeUnits.description)), ("charge", .string(result.charge.description)),
            ("split", splitJSON(result.split)),
            ("lines", linesJSON(result.lines, plan: quote.plan)),
            ("refused", .optional(result.refusal?.rawValue)),
            ("priority", .optional(quote.plan.attribute("priority"))), ("support", .optional(quote.plan.attribute("support"))),
            ("exact", .bool(quote.isExact)), ("reservation", .string(quote.reservation.description)),
            ("warnings", .array(quote.warnings.map { .string($0) })),
        ])
    }

    static func splitJSON(_ split: SplitShares) -> JSON {
        .object([("creator", .string(split.creator.description)), ("platform", .string(split.platform.description)),
                 ("processing", .string(split.processing.description))])
    }

    static func linesJSON(_ lines: ChargeLines, plan: PlanDefinition) -> JSON {
        .array(lines.map { line in
            let node = plan.executionNodes[Int(line.node)]
            return .object([("rule", .string(node.rule)), ("amount", .string(line.amount.description)), ("source", .string(node.location.description))])
        })
    }

    func plans() -> ServiceResponse {
        let catalog = catalogs.catalog
        var rows: [JSON] = []
        for id in catalog.planIDs {
            for handle in catalog.versions(of: id) {
                let plan = catalog.plan(handle)
                rows.append(.object([("id", .string(plan.id)), ("version", .integer(Int64(plan.version))), ("agent", .string(plan.agent)),
                                     ("model", .string(plan.model)), ("currency", .string(plan.currency.code)),
                                     ("effective", .optional(plan.effective?.rfc3339)), ("default", .bool(plan.isDefault))]))
            }
        }
        return .json(200, .object([("plans", .array(rows))]))
    }

    // MARK: Catalog, ledger, health

    func reload(_ request: ServiceRequest) async throws -> ServiceResponse {
        _ = try await body(request, allowed: [])
        let compilation = reloadCatalog()
        guard let catalog = compilation.catalog else {
            let diagnostics = compilation.diagnostics.filter { $0.severity == .error }.map { diagnostic -> JSON in
                .object([("file", .string(diagnostic.location.file)), ("line", .integer(Int64(diagnostic.location.line))),
                         ("column", .integer(Int64(diagnostic.location.column))), ("severity", .string("error")),
                         ("code", .string(diagnostic.code.rawValue)), ("message", .string(diagnostic.message))])
            }
            var error = APIError(422, "catalog_errors", "the catalog has \(compilation.errorCount) error(s); the previous catalog keeps pricing")
            error.extra = [("diagnostics", .array(diagnostics))]
            throw error
        }
        return .json(200, .object([("plans", .integer(Int64(catalog.definition.plans.count)))]))
    }

    func verify() async throws -> ServiceResponse {
        let report = try await settlement.verify()
        return .json(200, .object([("ok", .bool(report.passed)), ("entries", .integer(Int64(report.entries))), ("charges", .integer(Int64(report.charges))),
                                   ("invariants", .array(report.invariants.map { invariant in
            .object([("number", .integer(Int64(invariant.number))), ("name", .string(invariant.name)), ("ok", .bool(invariant.holds)),
                     ("failures", .array(invariant.failures.map { .string($0) }))])
        }))]))
    }

    func ready() async throws -> ServiceResponse {
        do {
            _ = try await settlement.backend.periodState(PeriodKey(consumer: "-", plan: "-", start: nil))
        } catch {
            throw APIError(503, "storage", "the ledger cannot be reached", headers: [("Retry-After", "1")])
        }
        return .json(200, .object([("status", .string("ready")), ("plans", .integer(Int64(catalogs.catalog.definition.plans.count)))]))
    }

    func moveClock(_ request: ServiceRequest) async throws -> ServiceResponse {
        guard let manualClock else { throw APIError.notFound("no such endpoint") }
        let body = try await body(request, allowed: ["now"])
        guard let now = try body.timestamp("now") else { throw APIError.invalid("'now' is required") }
        guard now >= manualClock.now() else { throw APIError.invalid("the test clock only moves forward (it is \(manualClock.now().rfc3339))") }
        manualClock.set(now)
        let expired = try await settlement.expireHolds()
        // Every sweep that became due: period fees and closes, then auto top-ups.
        let run = try await runPeriodClock()
        await sweepAutoTopUps()
        return .json(200, .object([("now", .string(now.rfc3339)), ("expired_holds", .integer(Int64(expired))), ("fees", .integer(Int64(run.fees))),
                                   ("closed_periods", .integer(Int64(run.closes.count)))]))
    }
}

/// The catalog did not compile: `tariff serve` does not start.
public struct ServiceStartError: Error, Sendable {
    public var diagnostics: [Diagnostic]
}
