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

extension SettlementConformance {
    static let refundScenarios: [Scenario] = [
        Scenario(name: "refunds: at most what is left and what is available, once per key, undone when the rail refuses; refusals change nothing", body: refunds),
        Scenario(name: "lost disputes: from available as far as it goes, the rest to dispute_losses, never negative, once per dispute", body: disputes),
    ]

    /// cus_r buys 100.00 through the rail (pay_1) and spends 7.00 on `flat`: 93.00 available.
    static func paidAndSpent(_ ledger: TestLedger, _ rail: WindowedRail) async throws {
        _ = try await ledger.settlement.purchase(railPurchase(ledger, "cus_r", "100.00", key: "p1"), through: rail)
        try await ledger.reserve("exe_r", "cus_r", plan: "flat")
        try await ledger.settle("exe_r")
        #expect(try await ledger.balance("cus_r").available == money("93.00"))
    }

    static func refunds(_ ledger: TestLedger) async throws {
        let rail = WindowedRail(clock: ledger.clock)
        try await paidAndSpent(ledger, rail)
        let refund = try await ledger.settlement.refund(purchase: "p1", amount: money("30.00"), idempotencyKey: "r1", through: rail)
        #expect(refund == ReversalRecord(key: "refund:r1", kind: .refund, purchase: "p1", consumer: "cus_r", amount: money("30.00"),
                                         fromAvailable: money("30.00"), loss: .zero, reference: "ref_1", state: .succeeded,
                                         fingerprint: "refund;purchase=p1;amount=30000000", at: TestLedger.start))
        // 93.00 - 30.00.
        #expect(try await ledger.balance("cus_r").available == money("63.00"))
        let entries = try await ledger.entries(of: "refund:r1")
        #expect(entries.map(\.amount) == [money("30.00")])
        #expect(entries.map(\.debit) == [Account(.available, "cus_r")] && entries.map(\.credit) == [Account(.refunded, "cus_r")])
        // The same refund again: the first result, nothing sent.
        #expect(try await ledger.settlement.refund(purchase: "p1", amount: money("30.00"), idempotencyKey: "r1", through: rail) == refund)
        #expect(rail.refundRequests == 1)

        // Refusals, each leaving every row as it was and sending nothing:
        try await ledger.expectRefused(.idempotencyConflict, "key r1 for another amount") {
            try await ledger.settlement.refund(purchase: "p1", amount: money("31.00"), idempotencyKey: "r1", through: rail)
        }
        // 100.00 - 30.00 = 70.00 left of the purchase.
        try await ledger.expectRefused(.invalidAmount, "71.00 of the 70.00 left") {
            try await ledger.settlement.refund(purchase: "p1", amount: money("71.00"), idempotencyKey: "r2", through: rail)
        }
        // 70.00 is left of the purchase, but only 63.00 is available: spent credits are not refundable.
        try await ledger.expectRefused(.insufficientCredits, "70.00 with 63.00 available") {
            try await ledger.settlement.refund(purchase: "p1", amount: money("70.00"), idempotencyKey: "r2", through: rail)
        }
        try await ledger.purchase("cus_r", "5.00", key: "direct")
        try await ledger.expectRefused(.unknownPurchase, "a purchase made without a rail") {
            try await ledger.settlement.refund(purchase: "direct", amount: money("1.00"), idempotencyKey: "r2", through: rail)
        }
        try await ledger.expectRefused(.unknownPurchase, "a purchase that does not exist") {
            try await ledger.settlement.refund(purchase: "nope", amount: money("1.00"), idempotencyKey: "r2", through: rail)
        }
        for (amount, what) in [("0", "zero"), ("-1.00", "negative"), ("0.001", "finer than a cent")] {
            try await ledger.expectRefused(.invalidAmount, "a refund of \(what)") {
                try await ledger.settlement.refund(purchase: "p1", amount: money(amount), idempotencyKey: "r2", through: rail)
            }
        }
        #expect(rail.refundRequests == 1)

        // The rail refuses a refund: its credits come back, it is failed, and a rerun sends nothing.
        rail.refuseNextRefund()
        await #expect(throws: SettlementError(.init(rawValue: "rail_rejected"), "charge pay_1 has been disputed")) {
            try await ledger.settlement.refund(purchase: "p1", amount: money("10.00"), idempotencyKey: "r3", through: rail)
        }
        let failed = try await ledger.backend.snapshot().reversals.first { $0.key == "refund:r3" }
        #expect(failed?.state == .failed)
        // 63.00 + 5.00 (the direct purchase); the 10.00 went out and back.
        #expect(try await ledger.balance("cus_r").available == money("68.00"))
        #expect(try await ledger.entries(of: "refund:r3").map { "\($0.debit) -> \($0.credit) \($0.amount)" }
                == ["available:cus_r -> refunded:cus_r 10.000000", "refunded:cus_r -> available:cus_r 10.000000"])
        let requests = rail.refundRequests
        await #expect(throws: SettlementError.self) {
            try await ledger.settlement.refund(purchase: "p1", amount: money("10.00"), idempotencyKey: "r3", through: rail)
        }
        #expect(rail.refundRequests == requests)
        // A failed refund does not count: 70.00 is still left, 68.00 available; refund all 68.00.
        let rest = try await ledger.settlement.refund(purchase: "p1", amount: money("68.00"), idempotencyKey: "r4", through: rail)
        #expect(rest.reference == "ref_2" && rest.state == .succeeded)
        #expect(try await ledger.balance("cus_r").available == .zero)
    }

    static func disputes(_ ledger: TestLedger) async throws {
        let rail = WindowedRail(clock: ledger.clock)
        try await paidAndSpent(ledger, rail)
        _ = try await ledger.settlement.refund(purchase: "p1", amount: money("30.00"), idempotencyKey: "r1", through: rail)
        // 63.00 available, 70.00 left of the purchase; the bank takes back 65.00: 63.00 from available, 2.00 lost.
        let lost = try await ledger.settlement.recordLostDispute(dispute: "dp_1", payment: "pay_1", amount: money("65.00"))
        #expect(lost == ReversalRecord(key: "dispute:dp_1", kind: .dispute, purchase: "p1", consumer: "cus_r", amount: money("65.00"),
                                       fromAvailable: money("63.00"), loss: money("2.00"), reference: "dp_1", state: .succeeded,
                                       fingerprint: "dispute;purchase=p1;amount=65000000", at: TestLedger.start))
        #expect(try await ledger.balance("cus_r") == Balance(consumer: "cus_r", currency: TestLedger.usd, available: .zero, reserved: .zero))
        #expect(try await ledger.entries(of: "dispute:dp_1").map { "\($0.debit) -> \($0.credit) \($0.amount)" }
                == ["available:cus_r -> disputed:cus_r 63.000000", "dispute_losses -> disputed:cus_r 2.000000"])
        // Delivered again: once.
        #expect(try await ledger.settlement.recordLostDispute(dispute: "dp_1", payment: "pay_1", amount: money("65.00")) == lost)
        try await ledger.expectRefused(.idempotencyConflict, "dp_1 again for another amount") {
            try await ledger.settlement.recordLostDispute(dispute: "dp_1", payment: "pay_1", amount: money("64.00"))
        }
        // 100.00 - 30.00 - 65.00 = 5.00 left: a dispute of 6.00 is beyond the purchase.
        try await ledger.expectRefused(.invalidAmount, "a dispute beyond what is left") {
            try await ledger.settlement.recordLostDispute(dispute: "dp_2", payment: "pay_1", amount: money("6.00"))
        }
        try await ledger.expectRefused(.unknownPurchase, "a dispute of a payment no purchase made") {
            try await ledger.settlement.recordLostDispute(dispute: "dp_3", payment: "pay_404", amount: money("1.00"))
        }
        // Nothing is left to refund either: 5.00 left but 0.00 available.
        try await ledger.expectRefused(.insufficientCredits, "a refund after the dispute emptied available") {
            try await ledger.settlement.refund(purchase: "p1", amount: money("5.00"), idempotencyKey: "r2", through: rail)
        }
        // A dispute fully covered by available: all from available, no loss.
        _ = try await ledger.settlement.purchase(railPurchase(ledger, "cus_s", "20.00", key: "p2"), through: rail)
        let covered = try await ledger.settlement.recordLostDispute(dispute: "dp_4", payment: "pay_2", amount: money("20.00"))
        #expect(covered.fromAvailable == money("20.00") && covered.loss == .zero)
        #expect(try await ledger.balance("cus_s").available == .zero)
    }
}
