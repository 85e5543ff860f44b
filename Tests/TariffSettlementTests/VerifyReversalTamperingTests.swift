import Tariff
import TariffSettlement
import TariffSettlementTesting
import Testing

/// `verify`'s reversal checks (invariant 2 restated for refunds and disputes, invariant 7) shown
/// failing, in the style of `VerifyTamperingTests`: a real ledger written through the lifecycle,
/// then one break applied to the rows `verify` reads.
@Suite("verify against broken reversals")
struct VerifyReversalTamperingTests {
    static func money(_ text: String) -> Money { TestLedger.money(text) }

    /// cus_r buys 100.00 through the rail (p1), spends 7.00 on `flat` and is refunded 30.00:
    /// available 100 - 7 - 30 = 63.00. cus_s buys 20.00 (p2), loses a dispute of 20.00 after
    /// spending 7.00: 13.00 from available, 7.00 to dispute_losses.
    static func ledger(_ tamper: @escaping @Sendable (inout LedgerSnapshot) -> Void) async throws -> Settlement {
        let inner = InMemoryBackend(currency: TestLedger.usd)
        let ledger = try await TestLedger.make(BackendFactory(name: "given") { _ in inner })
        let rail = WindowedRail(clock: ledger.clock)
        for (consumer, amount, key) in [("cus_r", "100.00", "p1"), ("cus_s", "20.00", "p2")] {
            _ = try await ledger.settlement.purchase(CreditPurchase(consumer: consumer, amount: money(amount), currency: TestLedger.usd, idempotencyKey: key,
                                                                    payer: "cus_stripe_\(consumer)", paymentMethod: "pm_card"), through: rail)
            try await ledger.reserve("exe_\(consumer)", consumer, plan: "flat")
            try await ledger.settle("exe_\(consumer)")
        }
        _ = try await ledger.settlement.refund(purchase: "p1", amount: money("30.00"), idempotencyKey: "r1", through: rail)
        let lost = try await ledger.settlement.recordLostDispute(dispute: "dp_1", payment: "pay_2", amount: money("20.00"))
        #expect(lost.fromAvailable == money("13.00") && lost.loss == money("7.00"))
        #expect(try await ledger.balance("cus_r").available == money("63.00"))
        return Settlement(backend: TamperedBackend(inner: inner, tamper: tamper), catalog: TestLedger.catalog)
    }

    static func failing(_ settlement: Settlement) async throws -> [Int] {
        try await settlement.verify().invariants.filter { !$0.holds }.map(\.number)
    }

    @Test("the ledger with a refund and a lost dispute passes every invariant")
    func clean() async throws {
        #expect(try await Self.failing(Self.ledger { _ in }) == [])
    }

    @Test("a refund's entry removed: the running balance and the refund entries disagree (1, 2)")
    func refundEntryRemoved() async throws {
        #expect(try await Self.failing(Self.ledger { $0.entries.removeAll { $0.operation == "refund:r1" } }) == [1, 2])
    }

    @Test("a refund recorded beyond its purchase (130.00 of 100.00): 2 and 7")
    func refundBeyondPurchase() async throws {
        let broken = try await Self.failing(Self.ledger { snapshot in
            guard let index = snapshot.reversals.firstIndex(where: { $0.key == "refund:r1" }) else { return }
            snapshot.reversals[index].amount = Self.money("130.00")
            snapshot.reversals[index].fromAvailable = Self.money("130.00")
        })
        #expect(broken == [2, 7])
    }

    @Test("a refund of a purchase never paid through a rail: 7 only")
    func refundOfNoPurchase() async throws {
        let broken = try await Self.failing(Self.ledger { snapshot in
            guard let index = snapshot.reversals.firstIndex(where: { $0.key == "refund:r1" }) else { return }
            snapshot.reversals[index].purchase = "p_ghost"
        })
        #expect(broken == [7])
    }

    @Test("a dispute's loss moved onto the consumer (no dispute_losses entry, more from available): 2")
    func disputeLossMoved() async throws {
        let broken = try await Self.failing(Self.ledger { snapshot in
            guard let index = snapshot.reversals.firstIndex(where: { $0.key == "dispute:dp_1" }) else { return }
            snapshot.reversals[index].fromAvailable = Self.money("20.00")
            snapshot.reversals[index].loss = .zero
        })
        #expect(broken == [2])
    }
}
