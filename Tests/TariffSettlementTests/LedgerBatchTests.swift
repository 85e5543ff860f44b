import Tariff
import TariffSettlement
import TariffSettlementTesting
import Testing

/// `SettlementBackend.apply`: an ordered batch, each step's outcome exactly as if applied alone,
/// a refused step rolled back alone (issue 13: replay's group commit).
@Suite("Ordered batches of ledger steps")
struct LedgerBatchTests {
    static func money(_ text: String) -> Money { TestLedger.money(text) }

    static func steps(_ ledger: TestLedger) throws -> [LedgerStep] {
        let settlement = ledger.settlement
        func execution(_ id: String, _ consumer: String) throws -> LedgerStep {
            try settlement.executionStep(ReservationRequest(execution: id, consumer: consumer, plan: ledger.plan("flat"), recordsRefusal: true),
                                         meters: ledger.meters(cpuMilliseconds: 10), failed: false, endedAt: TestLedger.start)
        }
        return [
            try settlement.purchaseStep(consumer: "cus_1", amount: money("20.00"), idempotencyKey: "k1"),
            // The same key with another amount: refused, and only this step is undone.
            try settlement.purchaseStep(consumer: "cus_1", amount: money("30.00"), idempotencyKey: "k1"),
            try execution("e1", "cus_1"),
            // cus_2 bought nothing: refused for credits (recorded).
            try execution("e2", "cus_2"),
            try execution("e3", "cus_1"),
            // 20.00 - 2 x 7.00 = 6.00 left: short of the 7.00 fee.
            try execution("e4", "cus_1"),
        ]
    }

    /// What each step gives, worked by hand: flat is 7.00 a call (held exactly, charged in full).
    static func expectOutcomes(_ outcomes: [Result<LedgerStepOutcome, SettlementError>], _ when: String) {
        #expect(outcomes.count == 6, "\(when)")
        guard outcomes.count == 6 else { return }
        #expect(outcomes[0] == .success(.purchased(PurchaseReceipt(consumer: "cus_1", amount: money("20.00"), available: money("20.00")))), "\(when)")
        if case .failure(let error) = outcomes[1] { #expect(error.code == .idempotencyConflict, "\(when)") } else { Issue.record("\(when): step 2 applied") }
        for index in [2, 4] {
            guard case .success(.settled(let receipt)) = outcomes[index] else {
                Issue.record("\(when): step \(index + 1) is \(outcomes[index])")
                continue
            }
            #expect(receipt.billed == money("7.00") && receipt.charged == money("7.00") && receipt.uncollected == .zero, "\(when)")
        }
        for index in [3, 5] {
            guard case .success(.refusedForCredits) = outcomes[index] else {
                Issue.record("\(when): step \(index + 1) is \(outcomes[index])")
                continue
            }
        }
    }

    @Test("a batch gives each step the outcome it has alone, undoes a refused step alone, and repeats its first results", arguments: BackendFactory.all)
    func batch(_ factory: BackendFactory) async throws {
        let ledger = try await TestLedger.make(factory)
        let outcomes = try await ledger.settlement.apply(try Self.steps(ledger))
        Self.expectOutcomes(outcomes, "first run")
        #expect(try await ledger.settlement.balance(consumer: "cus_1") == Balance(consumer: "cus_1", currency: TestLedger.usd,
                                                                                 available: Self.money("6.00"), reserved: .zero))
        let before = try await ledger.settlement.backend.snapshot()
        // Run again: every step answers its first result and writes nothing.
        Self.expectOutcomes(try await ledger.settlement.apply(try Self.steps(ledger)), "second run")
        let after = try await ledger.settlement.backend.snapshot()
        #expect(after.entries == before.entries && after.holds == before.holds && after.charges == before.charges && after.operations == before.operations)
        #expect(try await ledger.settlement.verify().passed)

        // The same steps one at a time, a commit each, on a new ledger: the same rows.
        let alone = try await TestLedger.make(factory)
        Self.expectOutcomes(try await alone.settlement.backend.applyOneByOne(try Self.steps(alone)), "one by one")
        let aloneSnapshot = try await alone.settlement.backend.snapshot()
        #expect(aloneSnapshot.entries == before.entries && aloneSnapshot.holds == before.holds && aloneSnapshot.charges == before.charges)
        #expect(aloneSnapshot.consumers == before.consumers && aloneSnapshot.operations == before.operations)
    }
}
