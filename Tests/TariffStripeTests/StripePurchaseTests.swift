import TariffStripeTesting
import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// Credit purchases through the rail against the fake (for idempotent replay and the pending ->
/// webhook path, which localstripe cannot show); `LocalStripeTests` runs the same flow against localstripe.
@Suite("Credit purchases through the Stripe rail (fake)")
struct StripePurchaseTests {
    typealias S = StripeTestSupport

    static func purchase(_ key: String, _ amount: String = "100.00", method: String = "pm_card_visa", consumer: String = "cus_tariff_1") -> CreditPurchase {
        CreditPurchase(consumer: consumer, amount: S.money(amount), currency: S.usd, idempotencyKey: key, payer: "cus_stripe_1", paymentMethod: method)
    }

    @Test("a succeeded PaymentIntent adds the credits; the same purchase again charges and credits once")
    func succeeded() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let rail = try S.rail(fake.baseURL)
        let first = try await settlement.purchase(Self.purchase("order-1"), through: rail)
        guard case .succeeded(let reference) = first.outcome else { Issue.record("not succeeded: \(first.outcome)"); return }
        #expect(first.receipt?.available == S.money("100.00"))
        let request = try #require(fake.seen.first)
        let fields = S.fields(request.body)
        #expect(request.path == "/v1/payment_intents" && request.idempotencyKey == "purchase:order-1")
        #expect(fields["amount"] == "10000" && fields["currency"] == "usd" && fields["customer"] == "cus_stripe_1")
        #expect(fields["payment_method"] == "pm_card_visa" && fields["confirm"] == "true")
        #expect(fields["metadata[tariff_consumer]"] == "cus_tariff_1" && fields["metadata[tariff_purchase_key]"] == "order-1")
        let again = try await settlement.purchase(Self.purchase("order-1"), through: rail)
        #expect(again.outcome == .succeeded(reference: reference))
        #expect(fake.charges.count == 1)
        #expect(try await settlement.balance(consumer: "cus_tariff_1").available == S.money("100.00"))
    }

    @Test("a declined card adds nothing and says Stripe's reason")
    func declined() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let before = try await settlement.backend.snapshot()
        do {
            _ = try await settlement.purchase(Self.purchase("order-2", method: "pm_card_chargeDeclinedInsufficientFunds"), through: try S.rail(fake.baseURL))
            Issue.record("a declined card added credits")
        } catch let error as SettlementError {
            #expect(error.code == .paymentDeclined)
            #expect(error.message.contains("insufficient_funds") && error.message.contains("Your card has insufficient funds."))
        }
        // Nothing added: the only row written is the purchase's own record (written pending before
        // the charge, settlement.md), now `failed`, so a rerun answers the decline without charging.
        var after = try await settlement.backend.snapshot()
        #expect(after.purchases.map(\.state) == [.failed])
        after.purchases = []
        #expect(after == before)
    }

    @Test("a decline reported in the PaymentIntent's body (requires_payment_method) is a decline too, with its reason")
    func declinedInBody() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        do {
            _ = try await settlement.purchase(Self.purchase("order-6", method: "pm_card_declinedInBody"), through: try S.rail(fake.baseURL))
            Issue.record("a declined payment added credits")
        } catch let error as SettlementError {
            #expect(error.code == .paymentDeclined && error.message.contains("lost_card"), "\(error)")
        }
        await #expect(throws: SettlementError.self) { try await settlement.balance(consumer: "cus_tariff_1") }
    }

    @Test("a purchase the ledger would refuse never reaches Stripe")
    func validatedFirst() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let rail = try S.rail(fake.baseURL)
        var euro = Self.purchase("order-3")
        euro.currency = Currency(code: "EUR")!
        for bad in [Self.purchase("order-3", "0.001"), Self.purchase("order-3", "0"), Self.purchase(""), euro,
                    Self.purchase("order-3", consumer: String(repeating: "c", count: 256))] {
            await #expect(throws: SettlementError.self) { try await settlement.purchase(bad, through: rail) }
        }
        #expect(fake.seen.isEmpty)
    }

    @Test("a payment that needs 3-D Secure is pending: no credits until the signed webhook, then exactly once")
    func pendingThenWebhook() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let result = try await settlement.purchase(Self.purchase("order-4", "42.00", method: "pm_card_threeDSecure2Required"), through: try S.rail(fake.baseURL))
        guard case .pending(let reference, _) = result.outcome else { Issue.record("not pending: \(result.outcome)"); return }
        #expect(result.receipt == nil)
        await #expect(throws: SettlementError.self) { try await settlement.balance(consumer: "cus_tariff_1") }
        // Stripe later sends payment_intent.succeeded for it (twice, as it may).
        let payload = Data(("{\"id\":\"evt_4\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":{\"id\":\"\(reference)\",\"status\":\"succeeded\","
            + "\"amount\":4200,\"amount_received\":4200,\"currency\":\"usd\",\"customer\":\"cus_stripe_1\",\"metadata\":{\"tariff_consumer\":\"cus_tariff_1\",\"tariff_purchase_key\":\"order-4\"}}}}").utf8)
        let webhook = try StripeWebhook(endpointSecret: "whsec_1")
        let now = Timestamp(nanosecondsSinceEpoch: 1_796_040_000 * 1_000_000_000)
        let event = try webhook.verify(payload: payload, signatureHeader: webhook.signatureHeader(payload: payload, timestamp: 1_796_040_000), now: now)
        _ = try await webhook.apply(event, to: settlement)
        _ = try await webhook.apply(event, to: settlement)
        #expect(try await settlement.balance(consumer: "cus_tariff_1").available == S.money("42.00"))
    }

    @Test("a synchronous success and its webhook credit once between them")
    func syncThenWebhook() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let result = try await settlement.purchase(Self.purchase("order-5", "15.00"), through: try S.rail(fake.baseURL))
        guard case .succeeded(let reference) = result.outcome else { Issue.record("not succeeded"); return }
        let payload = Data(("{\"id\":\"evt_5\",\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":{\"id\":\"\(reference)\",\"status\":\"succeeded\","
            + "\"amount\":1500,\"amount_received\":1500,\"currency\":\"usd\",\"customer\":\"cus_stripe_1\",\"metadata\":{\"tariff_consumer\":\"cus_tariff_1\",\"tariff_purchase_key\":\"order-5\"}}}}").utf8)
        let webhook = try StripeWebhook(endpointSecret: "whsec_1")
        let event = try webhook.verify(payload: payload, signatureHeader: webhook.signatureHeader(payload: payload, timestamp: 1_796_040_000),
                                       now: Timestamp(nanosecondsSinceEpoch: 1_796_040_000 * 1_000_000_000))
        _ = try await webhook.apply(event, to: settlement)
        #expect(try await settlement.balance(consumer: "cus_tariff_1").available == S.money("15.00"))
    }
}

@Suite("Credit purchases through the log rail")
struct LogRailPurchaseTests {
    @Test("the log rail writes the PaymentIntent it would create, amounts in the smallest unit, and the credits are added")
    func logRail() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("purchase-\(UUID().uuidString).log").path
        let settlement = Settlement(backend: InMemoryBackend(currency: StripeTestSupport.usd), catalog: nil)
        let purchase = CreditPurchase(consumer: "cus_log", amount: StripeTestSupport.money("12.62"), currency: StripeTestSupport.usd,
                                      idempotencyKey: "order-\"7", payer: "cus_S1", paymentMethod: "pm_1")
        let result = try await settlement.purchase(purchase, through: try LogRail(path: path))
        #expect(result.outcome == .succeeded(reference: "log:purchase:order-\"7"))
        #expect(result.receipt?.available == StripeTestSupport.money("12.62"))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == #"{"method":"POST","path":"/v1/payment_intents","idempotency_key":"purchase:order-\"7","body":{"amount":1262,"currency":"usd","customer":"cus_S1","payment_method":"pm_1","confirm":true}}"# + "\n")
    }
}
