import Foundation
import Logging
import Synchronization
import Tariff
import TariffPostgres
import TariffSettlement
import Testing
@testable import TariffServer

/// Two delivery workers (two servers' worth: two backends, two owners) on one PostgreSQL ledger:
/// each delivery is sent exactly once (no failures, so no lease runs out), in order per consumer.
@Suite("PostgreSQL: two webhook workers, one ledger (WebhookPostgresServerTests)", .serialized,
       .enabled(if: ServicePostgres.url != nil, "TARIFF_TEST_POSTGRES_URL is not set"))
struct WebhookPostgresServerTests {
    @Test("two workers on one ledger never send one delivery twice")
    func twoWorkers() async throws {
        let url = ServicePostgresServerTests.freshURL()
        let usd = Currency(code: "USD")!
        let first = try await PostgresBackend(url: url, currency: usd)
        let second = try await PostgresBackend(url: url, currency: usd)
        let receiver = try await EventReceiver.start(refuseFirst: 0)
        let endpoint = try await WebhookRegistry.add(url: receiver.url, events: ["purchase.succeeded"], to: first, now: SystemClock().now())
        receiver.use(secret: endpoint.secret)
        let now = SystemClock().now()
        // 4 consumers x 10 purchases, written through both backends.
        for index in 0..<40 {
            let backend = index % 2 == 0 ? first : second
            _ = try await backend.purchase(PurchaseCommand(key: "p\(index)", fingerprint: "f\(index)", consumer: "cus_\(index % 4)",
                                                           amount: Money(micros: 1_000_000), now: now))
        }
        let clock = ManualClock(now)
        let workers = [WebhookDeliveryWorker(outbox: first, clock: clock, logger: Logger(label: "w1")),
                       WebhookDeliveryWorker(outbox: second, clock: clock, logger: Logger(label: "w2"))]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask {
                    for _ in 0..<400 where Set(receiver.accepted.map(\.id)).count < 40 {
                        if try await worker.runOnce() == 0 { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
            }
            try await group.waitForAll()
        }
        for worker in workers { await worker.shutdown() }
        let accepted = receiver.accepted
        #expect(accepted.count == 40, "each of the 40 deliveries exactly once: \(accepted.count) arrived")
        #expect(Set(accepted.map(\.id)).count == 40)
        for consumer in 0..<4 {
            let order = accepted.filter { $0.subject == "cus_\(consumer)" }.map(\.sequence)
            #expect(order == order.sorted() && order.count == 10, "cus_\(consumer): \(order)")
        }
        #expect(receiver.badSignatures == 0)
        await receiver.stop()
        first.shutdown()
        second.shutdown()
    }
}
