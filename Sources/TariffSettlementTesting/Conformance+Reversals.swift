import Tariff
import TariffSettlement
import Testing

// Pending purchases, refunds and disputes (settlement.md, "Money that reconciles"), on every backend.
extension SettlementConformance {
    static let reversalScenarios: [Scenario] = [
        Scenario(name: "pending purchases: written before the charge, a lost answer adopted 25 h later, one charge", body: pendingPurchases),
        Scenario(name: "pending purchases: 3-D Secure confirmed later, declines, conflicting keys refused before any charge", body: pendingOutcomes),
    ]

    static func railPurchase(_ ledger: TestLedger, _ consumer: String, _ amount: String, key: String, payer: String = "cus_stripe_a",
                             method: String = "pm_card") -> CreditPurchase {
        CreditPurchase(consumer: consumer, amount: money(amount), currency: TestLedger.usd, idempotencyKey: key, payer: payer, paymentMethod: method)
    }

    static func pendingPurchases(_ ledger: TestLedger) async throws {
        let rail = WindowedRail(clock: ledger.clock)
        // A crash between "charged" and "confirmed": the rail applied the charge, the answer is lost.
        rail.loseNextAnswer()
        await #expect(throws: SettlementError.self) { try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "40.00", key: "order-1"), through: rail) }
        // The purchase was written before the charge: pending, no reference (the answer never came), no credit.
        let pending = try #require(try await ledger.backend.purchaseRecord(key: "order-1"))
        #expect(pending == PurchaseRecord(key: "order-1", consumer: "cus_p", amount: money("40.00"), payer: "cus_stripe_a", reference: nil, state: .pending,
                                          createdAt: TestLedger.start))
        #expect(try await ledger.backend.snapshot().entries.isEmpty)
        #expect(rail.payments.count == 1)
        // 25 hours later the rail has forgotten the key (24 h window): a blind resend would charge again.
        ledger.clock.advance(by: .seconds(25 * 3_600))
        let rerun = try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "40.00", key: "order-1"), through: rail)
        // The rerun looked the payment up and adopted it: one payment, credited once.
        #expect(rail.payments.count == 1 && rail.charges == 1 && rail.lookUps == 1)
        #expect(rerun.outcome == .succeeded(reference: "pay_1"))
        #expect(rerun.receipt?.available == money("40.00"))
        #expect(rerun.record?.state == .succeeded && rerun.record?.reference == "pay_1")
        #expect(try await ledger.balance("cus_p").available == money("40.00"))
        // A third run: already paid and credited, nothing sent to the rail at all.
        let third = try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "40.00", key: "order-1"), through: rail)
        #expect(third.receipt?.available == money("40.00") && rail.charges == 1 && rail.lookUps == 1)
        #expect(try await ledger.backend.snapshot().entries.map(\.amount) == [money("40.00")])

        // The answer lost again, but the reference known: a rerun within the window replays the key.
        rail.loseNextAnswer()
        await #expect(throws: SettlementError.self) { try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "10.00", key: "order-2"), through: rail) }
        let second = try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "10.00", key: "order-2"), through: rail)
        #expect(second.outcome == .succeeded(reference: "pay_2") && rail.payments.count == 2)
        // 40.00 + 10.00.
        #expect(try await ledger.balance("cus_p").available == money("50.00"))

        // A payment found for another amount is not adopted: refused, nothing credited, the record stays pending.
        rail.plant(WindowedRail.Payment(id: "pay_x", purchaseKey: "order-3", amount: money("99.00"), currency: TestLedger.usd, payer: "cus_stripe_a",
                                        status: "succeeded", createdAt: ledger.clock.now()))
        rail.failNextBeforeApplying()
        await #expect(throws: SettlementError.self) { try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "5.00", key: "order-3"), through: rail) }
        try await ledger.expectRefused(.init(rawValue: "rail_rejected"), "adopting a payment of 99.00 for a purchase of 5.00") {
            try await ledger.settlement.purchase(railPurchase(ledger, "cus_p", "5.00", key: "order-3"), through: rail)
        }
        #expect(try await ledger.backend.purchaseRecord(key: "order-3")?.state == .pending)
        #expect(try await ledger.balance("cus_p").available == money("50.00"))
    }

    static func pendingOutcomes(_ ledger: TestLedger) async throws {
        let rail = WindowedRail(clock: ledger.clock)
        // 3-D Secure: pending, with the reference stored and nothing credited.
        let pending = try await ledger.settlement.purchase(railPurchase(ledger, "cus_q", "25.00", key: "3ds-1", method: "pm_3ds"), through: rail)
        #expect(pending.outcome == .pending(reference: "pay_1", clientSecret: "pay_1_secret") && pending.receipt == nil)
        #expect(try await ledger.backend.purchaseRecord(key: "3ds-1")?.reference == "pay_1")
        #expect(try await ledger.backend.purchaseRecord(reference: "pay_1")?.key == "3ds-1")
        #expect(try await ledger.backend.snapshot().entries.isEmpty)
        // The webhook's confirmation for another amount or payer, or of another payment, credits nothing.
        for (reference, amount, payer) in [("pay_1", "24.00", "cus_stripe_a"), ("pay_1", "25.00", "cus_other"), ("pay_9", "25.00", "cus_stripe_a")] {
            try await ledger.expectRefused(.init(rawValue: "rail_rejected"), "a confirmation of \(reference) \(amount) \(payer)") {
                try await ledger.settlement.confirmPurchase(key: "3ds-1", reference: reference, amount: money(amount), payer: payer)
            }
        }
        // The right one credits 25.00, once however often it comes.
        rail.complete("pay_1")
        for _ in 0..<2 {
            let record = try await ledger.settlement.confirmPurchase(key: "3ds-1", reference: "pay_1", amount: money("25.00"), payer: "cus_stripe_a")
            #expect(record.state == .succeeded)
        }
        #expect(try await ledger.balance("cus_q").available == money("25.00"))
        #expect(try await ledger.backend.snapshot().entries.map(\.amount) == [money("25.00")])

        // A key reused with another amount (or consumer, or payer) is refused before any charge, and changes nothing.
        let chargesBefore = rail.charges
        for (consumer, amount, payer) in [("cus_q", "26.00", "cus_stripe_a"), ("cus_r", "25.00", "cus_stripe_a"), ("cus_q", "25.00", "cus_stripe_b")] {
            try await ledger.expectRefused(.idempotencyConflict, "key 3ds-1 reused for \(consumer) \(amount) \(payer)") {
                try await ledger.settlement.purchase(railPurchase(ledger, consumer, amount, key: "3ds-1", payer: payer), through: rail)
            }
        }
        // A key credited without a rail, reused through the rail for another amount: refused before any charge.
        try await ledger.purchase("cus_q", "7.00", key: "direct-1")
        try await ledger.expectRefused(.idempotencyConflict, "key direct-1 reused for another amount") {
            try await ledger.settlement.purchase(railPurchase(ledger, "cus_q", "8.00", key: "direct-1"), through: rail)
        }
        // With the same amount it is the same purchase: answered, nothing charged.
        let direct = try await ledger.settlement.purchase(railPurchase(ledger, "cus_q", "7.00", key: "direct-1"), through: rail)
        #expect(direct.receipt?.available == money("32.00"))
        #expect(rail.charges == chargesBefore)

        // A decline: the purchase is failed, nothing added, and a rerun answers the decline without charging.
        await #expect(throws: SettlementError(.init(rawValue: "payment_declined"), "card_declined: insufficient_funds")) {
            try await ledger.settlement.purchase(railPurchase(ledger, "cus_q", "50.00", key: "declined-1", method: "pm_declined"), through: rail)
        }
        #expect(try await ledger.backend.purchaseRecord(key: "declined-1")?.state == .failed)
        let declinedCharges = rail.charges
        try await ledger.expectRefused(.init(rawValue: "payment_declined"), "a rerun of a declined purchase") {
            try await ledger.settlement.purchase(railPurchase(ledger, "cus_q", "50.00", key: "declined-1", method: "pm_declined"), through: rail)
        }
        #expect(rail.charges == declinedCharges)
        // 25.00 + 7.00: the decline added nothing.
        #expect(try await ledger.balance("cus_q").available == money("32.00"))
    }
}
