import Tariff
import TariffSettlement
import Testing

/// A small catalog whose prices make hand computation easy, and a ledger over a backend with a
/// manual clock: what every conformance scenario starts from.
public struct TestLedger: Sendable {
    public let settlement: Settlement
    public let clock: ManualClock
    public let factory: BackendFactory
    public var backend: any SettlementBackend { settlement.backend }
    public var catalog: CompiledCatalog { settlement.catalog! }

    /// Monday 2026-11-02 10:00 UTC: the first week of the payout scenarios.
    public static let start = Timestamp(rfc3339: "2026-11-02T10:00:00Z")!
    /// The start of the monthly periods the scenarios price in.
    public static let periodStart = Timestamp(rfc3339: "2026-11-01T00:00:00Z")!
    public static let usd = Currency(code: "USD")!
    public static let eur = Currency(code: "EUR")!

    public static func make(_ factory: BackendFactory, at start: Timestamp = TestLedger.start) async throws -> TestLedger {
        let clock = ManualClock(start)
        let backend = try await factory.make(usd)
        return TestLedger(settlement: Settlement(backend: backend, catalog: catalog, clock: clock), clock: clock, factory: factory)
    }

    // MARK: The catalog

    public static let rules = """
        metering:
          standard:
            weights: { cpu_ms: 0.001, inference_calls: 0.5 }
        splits:
          standard: { creator: 80%, platform: 15%, processing: 5% }
        payouts:
          week_starts: monday
          timezone: UTC
          pay_on: wednesday
          minimum: 10.00
        reservation: 1.00
        """

    public static let plans = [
        // 7.00 a call: the race's reservations (the per-call estimate is the exact fee).
        "flat.yaml": """
        plan: flat
        agent: agt_flat
        creator: acct_flat
        currency: USD
        model: per_call
        per_call:
          fee: 7.00
        """,
        // 10 CU included, then 0.50 per CU (cpu_ms weighs 0.001: 1,000 ms is 1 CU); holds 2.00.
        "metered.yaml": """
        plan: metered
        agent: agt_metered
        creator: acct_metered
        currency: USD
        model: subscription
        subscription:
          period: month
          fee: 10.00
          allowance: 10
          overage: 0.50
          reserve: 2.00
        """,
        // The same agent's larger plan: subscribing to it replaces `metered` (usage.md).
        "metered-max.yaml": """
        plan: metered-max
        agent: agt_metered
        creator: acct_metered
        currency: USD
        model: subscription
        subscription:
          period: month
          fee: 30.00
          allowance: 100
          overage: 0.20
          reserve: 2.00
        """,
        // 0.10 per CU, 100.00 a month, at least 150.00 billed, 10% back under 99% availability.
        "ent.yaml": """
        plan: ent
        agent: agt_ent
        creator: acct_ent
        currency: USD
        model: enterprise
        enterprise:
          period: month
          fee: 100.00
          usage:
            - price: 0.10
          commitment: 150.00
          sla:
            availability: 99%
            credits:
              - below: 99%
                credit: 10%
        """,
        "eur.yaml": """
        plan: eur
        agent: agt_eur
        creator: acct_eur
        currency: EUR
        model: per_call
        per_call:
          fee: 1.00
        """,
    ]

    public static let catalog: CompiledCatalog = {
        var sources = plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules))
        let compilation = CatalogLoader.compile(sources: sources)
        guard let catalog = compilation.catalog else {
            fatalError("the conformance catalog does not compile: \(compilation.diagnostics.map(\.description))")
        }
        return catalog
    }()

    public func plan(_ id: String) -> PlanHandle { catalog.plan(id: id, at: Self.start)! }

    // MARK: Helpers

    /// Exact money from text ("7.00"); a test's constants are written as text to be read at a glance.
    public static func money(_ text: String) -> Money {
        (try? Money(parsing: Substring(text), allowNegative: true)) ?? Money(micros: Int64.min)
    }

    public func meters(cpuMilliseconds: Int64 = 0, inferenceCalls: Int64 = 0) -> MeterReadings {
        var readings = MeterReadings()
        readings[catalog.meter(named: "cpu_ms")!] = MeterValue(micros: cpuMilliseconds * 1_000_000)
        readings[catalog.meter(named: "inference_calls")!] = MeterValue(micros: inferenceCalls * 1_000_000)
        return readings
    }

    @discardableResult
    public func purchase(_ consumer: String, _ amount: String, key: String? = nil) async throws -> PurchaseReceipt {
        try await settlement.purchase(consumer: consumer, amount: Self.money(amount), idempotencyKey: key ?? "buy-\(consumer)-\(amount)")
    }

    @discardableResult
    public func reserve(_ execution: String, _ consumer: String, plan: String, estimate: String? = nil, ttl: Duration = Settlement.defaultTTL,
                        period: BillingPeriod? = nil) async throws -> Hold {
        let handle = self.plan(plan)
        let defaultPeriod: BillingPeriod = catalog.plan(handle).period == nil ? .unbounded : .starting(Self.periodStart)
        return try await settlement.reserve(ReservationRequest(execution: execution, consumer: consumer, plan: handle, period: period ?? defaultPeriod,
                                                               estimate: estimate.map(Self.money), ttl: ttl))
    }

    @discardableResult
    public func settle(_ execution: String, cpuMilliseconds: Int64 = 0, failed: Bool = false, endedAt: Timestamp? = nil) async throws -> SettleReceipt {
        try await settlement.settle(SettlementRequest(execution: execution, meters: meters(cpuMilliseconds: cpuMilliseconds), failed: failed,
                                                      endedAt: endedAt ?? clock.now()))
    }

    public func balance(_ consumer: String) async throws -> Balance { try await settlement.balance(consumer: consumer) }

    /// Every row (the backend's raw dump when it has one, and the snapshot): equal before and after means nothing changed.
    public func state() async throws -> (snapshot: LedgerSnapshot, raw: String?) {
        (try await backend.snapshot(), try await factory.rawDump?(backend))
    }

    /// Runs an operation that must be refused with `code`, and checks it changed nothing at all.
    public func expectRefused<T>(_ code: SettlementError.Code, _ what: String, sourceLocation: Testing.SourceLocation = #_sourceLocation,
                                 _ operation: () async throws -> T) async throws {
        let before = try await state()
        do {
            _ = try await operation()
            Issue.record("\(what): expected \(code), but it succeeded", sourceLocation: sourceLocation)
        } catch let error as SettlementError {
            #expect(error.code == code, "\(what): \(error)", sourceLocation: sourceLocation)
        }
        let after = try await state()
        #expect(after.snapshot == before.snapshot, "\(what) changed the ledger", sourceLocation: sourceLocation)
        #expect(after.raw == before.raw, "\(what) changed a stored row", sourceLocation: sourceLocation)
    }

    /// `verify` must pass after every scenario.
    public func expectVerified(sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let report = try await settlement.verify()
        for invariant in report.invariants where !invariant.holds {
            Issue.record("invariant \(invariant.number) (\(invariant.name)) fails: \(invariant.failures)", sourceLocation: sourceLocation)
        }
    }

    /// Entries written by one operation.
    public func entries(of operation: String) async throws -> [Entry] {
        try await backend.snapshot().entries.filter { $0.operation == operation }
    }
}
