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

    @Test("emit writes alone", arguments: Backends.all)
    func emit(_ backend: BackendFactory) async throws { try await WebhookConformance.emitAlone(backend) }
}
