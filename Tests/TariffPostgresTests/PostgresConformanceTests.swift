import PropertyBased
import Synchronization
import Tariff
import TariffPostgres
import TariffSettlement
import TariffSettlementTesting
import Testing

/// The whole conformance suite, unchanged, against PostgreSQL: the race (64 tasks x 200 holds),
/// expiry with an injected clock, idempotency (16 concurrent settles of one key), bad inputs (each
/// compared against a raw SQL dump before and after), period lines, usage and payouts.
extension PostgresServerTests {
@Suite("PostgreSQL conformance")
struct PostgresConformanceTests {
    @Test(arguments: SettlementConformance.scenarios)
    func scenario(_ scenario: SettlementConformance.Scenario) async throws {
        try await scenario.run(PostgresTestServer.factory)
    }

    @Test("conservation of money over random operation sequences")
    func conservation() async {
        let total = ConservationCounts.Total()
        await propertyCheck(count: 20, input: Gen.int(in: 0...100_000)) { seed in
            total.add(try await SettlementConformance.conservation(PostgresTestServer.factory, seed: UInt64(seed)))
        }
        // Over all the seeds, a third of the random steps applied, settles among them, and money was
        // charged (a backend refusing them would not; any one seed may by chance apply few).
        #expect(total.value.applied >= total.value.operations / 3 && total.value.settles >= 10 && total.value.charged >= 10, "\(total.value)")
    }

    @Test("conservation, seed 18360: an exhausted meter sample after an expiry keeps balances and entries together")
    func exhaustedMeterAfterExpiry() async throws {
        try await SettlementConformance.conservation(PostgresTestServer.factory, seed: 18_360)
    }

    @Test("period close over random late arrivals: total = max(commitment, fee + usage) exactly, SLA credit recomputed")
    func periodClose() async {
        let total = Mutex(SettlementConformance.CloseCounts())
        await propertyCheck(count: 15, input: Gen.int(in: 0...100_000)) { seed in
            let counts = try await SettlementConformance.periodCloseProperty(PostgresTestServer.factory, seed: UInt64(seed))
            total.withLock { $0.add(counts) }
        }
        let counts = total.withLock { $0 }
        #expect(counts.late >= 20 && counts.creditBacks >= 3, "\(counts)")
    }

    @Test("payouts over random interleavings of settles, late settles and runs: paid + owed = earnings")
    func payoutInterleavings() async {
        let total = Mutex(SettlementConformance.PayoutInterleavingCounts())
        await propertyCheck(count: 15, input: Gen.int(in: 0...100_000)) { seed in
            let counts = try await SettlementConformance.payoutInterleaving(PostgresTestServer.factory, seed: UInt64(seed))
            total.withLock { $0.add(counts) }
        }
        let counts = total.withLock { $0 }
        #expect(counts.lateSettles >= 30 && counts.runs >= 10 && counts.payouts >= 15, "\(counts)")
    }
}
}
