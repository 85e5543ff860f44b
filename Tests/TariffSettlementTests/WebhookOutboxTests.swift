import Tariff
import TariffSettlement
import TariffSettlementTesting
import Testing

@Suite("Webhook outbox")
struct WebhookOutboxTests {
    @Test("threshold events once per crossing", arguments: Backends.all)
    func thresholds(_ backend: BackendFactory) async throws { try await WebhookConformance.thresholdsOncePerCrossing(backend) }

    @Test("a rolled-back step emits nothing", arguments: Backends.all)
    func rolledBack(_ backend: BackendFactory) async throws { try await WebhookConformance.rolledBackStepEmitsNothing(backend) }

    @Test("deliveries in order per subject, under a lease, retried, failed", arguments: Backends.all)
    func deliveries(_ backend: BackendFactory) async throws { try await WebhookConformance.deliveriesInOrderUnderLease(backend) }

    @Test("a step writes only the events an endpoint listens to", arguments: Backends.all)
    func onlyListened(_ backend: BackendFactory) async throws { try await WebhookConformance.onlyListenedEventsWritten(backend) }

    @Test("emit writes alone", arguments: Backends.all)
    func emit(_ backend: BackendFactory) async throws { try await WebhookConformance.emitAlone(backend) }
}

/// `low_balance` of rules/ (docs/pricing.md): read, checked, once per catalog.
@Suite("low_balance")
struct LowBalanceRuleTests {
    static func compile(_ files: [String]) -> (catalog: CompiledCatalog?, diagnostics: [Diagnostic]) {
        var sources = TestLedger.plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "rules/rules.yaml", text: TestLedger.rules, kind: .rules))
        for (index, text) in files.enumerated() { sources.append(CatalogSource(path: "rules/low\(index).yaml", text: text, kind: .rules)) }
        let compilation = CatalogLoader.compile(sources: sources)
        return (compilation.catalog, compilation.diagnostics)
    }

    @Test("default 10.00; written; negative or twice refused")
    func rule() throws {
        #expect(TestLedger.catalog.definition.lowBalance.exact.roundedToMoney(.halfEven) == Money(micros: 10_000_000))
        let written = try #require(Self.compile(["low_balance: 2.50\n"]).catalog)
        #expect(written.definition.lowBalance.exact.roundedToMoney(.halfEven) == Money(micros: 2_500_000))
        let negative = Self.compile(["low_balance: -1.00\n"])
        #expect(negative.catalog == nil && negative.diagnostics.contains { $0.severity == .error })
        let twice = Self.compile(["low_balance: 1.00\n", "low_balance: 2.00\n"])
        #expect(twice.catalog == nil && twice.diagnostics.contains { $0.code == "duplicate-name" })
    }
}

extension WebhookOutboxTests {
    @Test("subscription.renewed, period.closed, payout.paid and payout.failed from the ledger's own steps", arguments: Backends.all)
    func ledgerEvents(_ backend: BackendFactory) async throws { try await WebhookConformance.ledgerEvents(backend) }
}
