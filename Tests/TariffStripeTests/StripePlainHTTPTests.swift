import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// Issue 14, hardening: the secret key travels in the `Authorization` header of every request, so
/// `STRIPE_API_BASE` over plain `http://` may name this machine only (the fakes and localstripe).
@Suite("Stripe rail: no secret key in clear over a network (issue 14)")
struct StripePlainHTTPTests {
    static let key = "sk_test_plainhttp_4242"

    @Test("plain http to a host that is not loopback is refused, naming https and the rule", arguments: [
        "http://api.stripe.com", "http://10.0.0.7:12111", "HTTP://stripe.internal", "http://127.attacker.example:8080",
        "http://localhost.attacker.example", "http://[2001:db8::1]:80", "http://0.0.0.0:12111",
    ])
    func refused(_ base: String) throws {
        do {
            _ = try StripeConfiguration.load(keyFile: nil, environment: ["STRIPE_SECRET_KEY": Self.key, "STRIPE_API_BASE": base])
            Issue.record("\(base) was accepted")
        } catch let error as SettlementError {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains("https://"), "\(error.message)")
            #expect(error.message.contains("loopback"), "\(error.message)")
            #expect(!error.message.contains(Self.key))
        }
        // The library path too: a rail is never built over it.
        let configuration = StripeConfiguration(apiBase: base, secretKey: try StripeSecretKey(Self.key))
        #expect(throws: SettlementError.self) { try configuration.validate() }
        #expect(throws: SettlementError.self) { try StripeRail(configuration: configuration) }
    }

    @Test("https anywhere, and plain http to this machine (the fakes, localstripe) are accepted", arguments: [
        "https://api.stripe.com", "https://stripe.internal:8443", "http://127.0.0.1:12111", "http://127.5.6.7:1",
        "http://localhost:12111", "http://LOCALHOST:1", "http://[::1]:12111",
    ])
    func accepted(_ base: String) throws {
        let configuration = try StripeConfiguration.load(keyFile: nil, environment: ["STRIPE_SECRET_KEY": Self.key, "STRIPE_API_BASE": base])
        #expect(configuration.apiBase == base)
    }
}
