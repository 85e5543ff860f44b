import TariffSettlementTesting
import Testing

extension PostgresServerTests {
/// The outbox's contract against PostgreSQL: the triggers of migration 12, and the deliveries
/// claimed by `FOR UPDATE SKIP LOCKED` under a lease.
@Suite("PostgreSQL webhook outbox")
struct PostgresWebhookTests {
    @Test("threshold events once per crossing")
    func thresholds() async throws { try await WebhookConformance.thresholdsOncePerCrossing(PostgresTestServer.factory) }

    @Test("a rolled-back step emits nothing")
    func rolledBack() async throws { try await WebhookConformance.rolledBackStepEmitsNothing(PostgresTestServer.factory) }

    @Test("deliveries in order per subject, under a lease, retried, failed")
    func deliveries() async throws { try await WebhookConformance.deliveriesInOrderUnderLease(PostgresTestServer.factory) }

    @Test("a step writes only the events an endpoint listens to")
    func onlyListened() async throws { try await WebhookConformance.onlyListenedEventsWritten(PostgresTestServer.factory) }

    @Test("emit writes alone")
    func emit() async throws { try await WebhookConformance.emitAlone(PostgresTestServer.factory) }
}
}

extension PostgresServerTests.PostgresWebhookTests {
    @Test("subscription.renewed, period.closed, payout.paid and payout.failed from the ledger's own steps")
    func ledgerEvents() async throws { try await WebhookConformance.ledgerEvents(PostgresTestServer.factory) }
}

