import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

@Suite("Stripe amounts, forms, keys and configuration")
struct StripeAmountTests {
    typealias S = StripeTestSupport

    @Test("amounts go to Stripe in the currency's smallest unit, exactly")
    func minorUnits() throws {
        // 12.62 USD = 1262 cents; 0.29 USD = 29 cents (through a Double, 0.29 * 100 = 28.999999999999996).
        #expect(try StripeAmount.minorUnits(S.money("12.62"), S.usd) == 1262)
        #expect(try StripeAmount.minorUnits(S.money("0.29"), S.usd) == 29)
        // JPY has no minor unit: 1500 yen is 1500.
        #expect(try StripeAmount.minorUnits(S.money("1500"), S.jpy) == 1500)
        // KWD has three: 1.234 KWD is 1234 fils.
        #expect(try StripeAmount.minorUnits(S.money("1.234"), Currency(code: "KWD")!) == 1234)
        // The largest ledger amount: 9,223,372,036,854.770000 USD is 922,337,203,685,477 cents.
        #expect(try StripeAmount.minorUnits(Money(micros: 9_223_372_036_854_770_000), S.usd) == 922_337_203_685_477)
        for (amount, currency) in [("0.001", S.usd), ("1500.5", S.jpy), ("0.000001", S.usd)] {
            #expect(throws: SettlementError.self, "\(amount) \(currency)") { try StripeAmount.minorUnits(S.money(amount), currency) }
        }
        #expect(throws: SettlementError.self) { try StripeAmount.minorUnits(Money(micros: -10_000), S.usd) }
    }

    @Test("Stripe amounts come back to the ledger exactly, and out-of-range ones are refused")
    func money() throws {
        #expect(try StripeAmount.money(minorUnits: 1262, S.usd) == S.money("12.62"))
        #expect(try StripeAmount.money(minorUnits: 1500, S.jpy) == S.money("1500"))
        #expect(throws: SettlementError.self) { try StripeAmount.money(minorUnits: -1, S.usd) }
        // Int64.max yen would be 9.2e24 micro-units: beyond the ledger.
        #expect(throws: SettlementError.self) { try StripeAmount.money(minorUnits: Int64.max, S.jpy) }
    }

    @Test("form bodies: brackets and reserved characters escaped, and read back")
    func form() {
        var form = FormBody()
        form.append("transfer_data[destination]", "acct_1")
        form.append("metadata[tariff_purchase_key]", "a&b=c d/é")
        form.append("amount", Int64(1262))
        #expect(form.encoded == "transfer_data%5Bdestination%5D=acct_1&metadata%5Btariff_purchase_key%5D=a%26b%3Dc%20d%2F%C3%A9&amount=1262")
        let decoded = FormBody.decode(form.encoded) ?? []
        #expect(decoded.map(\.0) == ["transfer_data[destination]", "metadata[tariff_purchase_key]", "amount"])
        #expect(decoded.map(\.1) == ["acct_1", "a&b=c d/é", "1262"])
        #expect(FormBody.decode("a=%zz") == nil)
        #expect(FormBody.decode("a=%C3") == nil)
    }

    @Test("the secret key never shows in descriptions, dumps or mirrors")
    func secretKeyRedacted() throws {
        let key = try StripeSecretKey("sk_test_supersecret123\n")
        #expect("\(key)" == "sk_***")
        #expect(String(reflecting: key) == "sk_***")
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("supersecret"))
        #expect(key.redacting("Invalid API Key provided: sk_test_supersecret123") == "Invalid API Key provided: sk_***")
        #expect(throws: SettlementError.self) { try StripeSecretKey("  \n") }
        #expect(throws: SettlementError.self) { try StripeSecretKey("sk_test_a b") }
    }

    @Test("the key comes from --stripe-key-file first, else STRIPE_SECRET_KEY; the base from STRIPE_API_BASE")
    func configuration() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("stripe-key-\(UUID().uuidString)").path
        try "sk_test_fromfile\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = try StripeConfiguration.load(keyFile: file, environment: ["STRIPE_SECRET_KEY": "sk_test_fromenv"])
        #expect(fromFile.secretKey == (try StripeSecretKey("sk_test_fromfile")))
        #expect(fromFile.apiBase == "https://api.stripe.com")
        let fromEnvironment = try StripeConfiguration.load(keyFile: nil, environment: ["STRIPE_SECRET_KEY": "sk_test_fromenv", "STRIPE_API_BASE": "http://127.0.0.1:12111"])
        #expect(fromEnvironment.secretKey == (try StripeSecretKey("sk_test_fromenv")))
        #expect(fromEnvironment.apiBase == "http://127.0.0.1:12111")
        do {
            _ = try StripeConfiguration.load(keyFile: nil, environment: [:])
            Issue.record("a missing key was accepted")
        } catch let error as SettlementError {
            #expect(error.code == .invalidInput && error.message.contains("STRIPE_SECRET_KEY"))
        }
        #expect(throws: SettlementError.self) { try StripeConfiguration.load(keyFile: "/nonexistent/key", environment: [:]) }
        #expect(throws: SettlementError.self) { try StripeConfiguration.load(keyFile: nil, environment: ["STRIPE_SECRET_KEY": "sk_1", "STRIPE_API_BASE": "ftp://x"]) }
    }

    @Test("backoff doubles from the first wait up to the cap")
    func backoff() throws {
        let configuration = StripeConfiguration(secretKey: try StripeSecretKey("sk_test_1"), initialBackoffMilliseconds: 500, maximumBackoffMilliseconds: 3_000)
        #expect((1...5).map { configuration.backoffMilliseconds(afterAttempt: $0) } == [500, 1_000, 2_000, 3_000, 3_000])
    }

    @Test("long idempotency keys are shortened to a stable digest within Stripe's 255 characters")
    func longKeys() {
        // The digests were computed outside Swift: python3 -c "import hashlib; print(hashlib.sha256(('purchase:' + 'k' * 255).encode()).hexdigest())".
        let long = String(repeating: "k", count: 255)
        #expect(StripeRail.stripeKey("purchase:", long) == "purchase:sha256:5f7d6f6e1554d76650b0c822911f8c78622cd8361cfb65ddf3ae340441abc45a")
        // "purchase:" + 246 characters is 255: kept as written; one more and it is the digest of the whole.
        let longest = String(repeating: "k", count: 246)
        #expect(StripeRail.stripeKey("purchase:", longest) == "purchase:" + longest)
        #expect(StripeRail.stripeKey("purchase:", longest + "k") == "purchase:sha256:e39d9c023528be5e29a4dfaf15ccca32367859a89cf858c0e09b770aaac1f39c")
        // Distinct keys stay distinct.
        #expect(StripeRail.stripeKey("purchase:", long) != StripeRail.stripeKey("purchase:", longest + "k"))
        #expect(StripeRail.stripeKey("purchase:", "order-1") == "purchase:order-1")
    }
}
