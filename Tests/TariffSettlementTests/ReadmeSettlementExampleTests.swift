import Tariff
import TariffSettlement
import Testing

/// The README's settlement example, compiled and run as a test so it can never rot.
@Suite("README settlement example")
struct ReadmeSettlementExampleTests {
    @Test("purchase -> reserve -> settle through the library")
    func readmeExample() async throws {
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let plansDirectory = "/\(root)/plans", rulesDirectory = "/\(root)/rules"
        // --- README example begins ---
        let catalog = CatalogLoader.compile(plansDirectory: plansDirectory, rulesDirectory: rulesDirectory).catalog!
        // The ledger: in memory here; SQLiteBackend(path: "tariff.sqlite") (import TariffSQLite) keeps it on disk.
        let settlement = Settlement(backend: InMemoryBackend(currency: Currency(code: "USD")!), catalog: catalog)

        // Prepaid credits: whole cents, applied once per idempotency key.
        try await settlement.purchase(consumer: "cus_1", amount: Money(micros: 100_000_000), idempotencyKey: "order-1")  // 100.00
        // Hold the estimate before the run (research-payg is per-call: its exact fee), for 15 minutes.
        let at = Timestamp(rfc3339: "2026-11-30T12:00:00Z")!
        let plan = catalog.plan(id: "research-payg", at: at)!
        let hold = try await settlement.reserve(ReservationRequest(execution: "exe_1", consumer: "cus_1", plan: plan))
        print(hold.amount)                                                          // 0.020000
        // Settle with the final meters: priced with the period state read in the same step;
        // charges min(price, held + available), gives back the rest of the hold.
        var meters = MeterReadings()
        meters[catalog.meter(named: "cpu_ms")!] = MeterValue(micros: 1_200_000_000)  // 1200 ms
        let receipt = try await settlement.settle(SettlementRequest(execution: "exe_1", meters: meters, endedAt: at))
        print(receipt.charged, receipt.split.creator)                               // 0.020000 0.016000
        let balance = try await settlement.balance(consumer: "cus_1")
        print(balance.available, balance.reserved)                                  // 99.980000 0.000000
        // --- README example ends ---
        // 0.02 fee; 80% to the creator (the standard split); 100.00 - 0.02.
        #expect(hold.amount == Money(micros: 20_000))
        #expect(receipt.charged == Money(micros: 20_000) && receipt.split.creator == Money(micros: 16_000))
        #expect(balance.available == Money(micros: 99_980_000) && balance.reserved == .zero)
        #expect(try await settlement.verify().passed)
    }
}
