import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// settlement.md, "Calls whose answer was lost, beyond Stripe's idempotency window": a purchase is
/// written pending before the card is charged, and a rerun looks the PaymentIntent up (by the
/// purchase key in its metadata) before charging again, so it charges once even after the fake
/// Stripe has forgotten the idempotency key.
@Suite("Purchases whose answer was lost (fake Stripe, 24 h idempotency window)")
struct StripeLostAnswerTests {
    typealias S = StripeTestSupport

    static func purchase(_ key: String, _ amount: String = "100.00", method: String = "pm_card_visa") -> CreditPurchase {
        CreditPurchase(consumer: "cus_tariff_1", amount: S.money(amount), currency: S.usd, idempotencyKey: key, payer: "cus_stripe_1", paymentMethod: method)
    }

    /// The fake's clock starts at 1_796_040_000 s; the ledger's clock starts at the same instant.
    static let start = Timestamp(nanosecondsSinceEpoch: 1_796_040_000 * 1_000_000_000)

    @Test("a crash between charge and confirmation, rerun 25 simulated hours later: one charge, credited once")
    func rerunAfterTheWindow() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let clock = ManualClock(Self.start)
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil, clock: clock)
        // Stripe applies the charge, then the answer never arrives (one attempt: the process "crashes").
        fake.inject(.timeoutAfterApplying(milliseconds: 2_000))
        let crashing = try S.rail(fake.baseURL, attempts: 1, timeoutMilliseconds: 300)
        await #expect(throws: SettlementError.self) { try await settlement.purchase(Self.purchase("order-lost"), through: crashing) }
        #expect(fake.charges.count == 1)
        let pending = try #require(try await settlement.backend.purchaseRecord(key: "order-lost"))
        #expect(pending.state == .pending && pending.reference == nil && pending.createdAt == Self.start)
        await #expect(throws: SettlementError.self) { try await settlement.balance(consumer: "cus_tariff_1") }

        // 25 hours later: the fake has forgotten the key.
        fake.advanceClock(seconds: 25 * 3_600)
        clock.advance(by: .seconds(25 * 3_600))
        #expect(fake.rememberedKeys == 0)
        let seenBefore = fake.seen.count
        let rerun = try await settlement.purchase(Self.purchase("order-lost"), through: try S.rail(fake.baseURL))
        #expect(rerun.outcome == .succeeded(reference: "pi_1"))
        #expect(rerun.receipt?.available == S.money("100.00"))
        #expect(fake.charges.count == 1, "one charge, not two")
        // The rerun only read: a list of the customer's PaymentIntents since an hour before the purchase was recorded.
        let reads = fake.seen.dropFirst(seenBefore)
        #expect(reads.map(\.method) == ["GET"])
        let query = S.fields(String(reads.first?.path.drop { $0 != "?" }.dropFirst() ?? ""))
        #expect(query["customer"] == "cus_stripe_1" && query["created[gte]"] == String(1_796_040_000 - 3_600) && query["limit"] == "100")
        #expect(try await settlement.backend.purchaseRecord(key: "order-lost") == PurchaseRecord(
            key: "order-lost", consumer: "cus_tariff_1", amount: S.money("100.00"), payer: "cus_stripe_1", reference: "pi_1", state: .succeeded, createdAt: Self.start))
        #expect(try await settlement.balance(consumer: "cus_tariff_1").available == S.money("100.00"))

        // The control: the same request sent blind (no look-up) would have charged a second time.
        _ = try await S.rail(fake.baseURL).charge(Self.purchase("order-lost"))
        #expect(fake.charges.count == 2)
    }

    @Test("the look-up pages through the customer's PaymentIntents and adopts only the purchase's own")
    func lookUpPages() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let rail = try S.rail(fake.baseURL)
        // 150 other PaymentIntents of the customer after the purchase's: the match is on the second page.
        fake.inject(.timeoutAfterApplying(milliseconds: 2_000))
        let clock = ManualClock(Self.start)
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil, clock: clock)
        await #expect(throws: SettlementError.self) {
            try await settlement.purchase(Self.purchase("order-paged", "12.00"), through: try S.rail(fake.baseURL, attempts: 1, timeoutMilliseconds: 300))
        }
        for index in 0..<150 { _ = try await rail.charge(Self.purchase("other-\(index)", "1.00")) }
        fake.advanceClock(seconds: 25 * 3_600)
        let rerun = try await settlement.purchase(Self.purchase("order-paged", "12.00"), through: rail)
        #expect(rerun.outcome == .succeeded(reference: "pi_1") && rerun.receipt?.available == S.money("12.00"))
        #expect(fake.charges.count == 151)
        #expect(fake.seen.filter { $0.method == "GET" }.count == 2)
    }

    @Test("a pending PaymentIntent answers Stripe's client_secret")
    func clientSecret() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil, clock: ManualClock(Self.start))
        let result = try await settlement.purchase(Self.purchase("order-3ds", method: "pm_card_threeDSecure2Required"), through: try S.rail(fake.baseURL))
        #expect(result.outcome == .pending(reference: "pi_1", clientSecret: "pi_1_secret_fake"))
        #expect(result.record?.state == .pending && result.record?.reference == "pi_1")
    }
}
