import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

@Suite("Stripe webhook signatures")
struct StripeWebhookTests {
    static let secret = "whsec_test_secret"
    static let payload = Data(#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_9","status":"succeeded","amount":5000,"amount_received":5000,"currency":"usd","metadata":{"tariff_consumer":"cus_w","tariff_purchase_key":"order-w"}}}}"#.utf8)
    /// HMAC-SHA256("whsec_test_secret", "1796040000." + payload), worked out apart (Python's hmac module).
    static let signature = "f837ce63ea7348546bbd759f1bcfaf704ed7d369c8443abad9b713143f31b235"
    static let signedAt: Int64 = 1_796_040_000
    static func at(_ seconds: Int64) -> Timestamp { Timestamp(nanosecondsSinceEpoch: seconds * 1_000_000_000) }

    func expectRejected(_ header: String, payload: Data = Self.payload, secret: String = Self.secret, now: Int64 = Self.signedAt,
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let webhook = try StripeWebhook(endpointSecret: secret)
        do {
            _ = try webhook.verify(payload: payload, signatureHeader: header, now: Self.at(now))
            Issue.record("accepted: \(header)", sourceLocation: sourceLocation)
        } catch let error as SettlementError {
            #expect(error.code == .invalidSignature, "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a genuine delivery verifies and decodes")
    func genuine() throws {
        let webhook = try StripeWebhook(endpointSecret: Self.secret)
        #expect(webhook.signatureHeader(payload: Self.payload, timestamp: Self.signedAt) == "t=\(Self.signedAt),v1=\(Self.signature)")
        let event = try webhook.verify(payload: Self.payload, signatureHeader: "t=\(Self.signedAt),v1=\(Self.signature)", now: Self.at(Self.signedAt + 10))
        #expect(event.type == "payment_intent.succeeded" && event.paymentIntent == "pi_9")
        // Several v1 signatures (a secret being rolled): one match is enough; v0 is ignored.
        _ = try webhook.verify(payload: Self.payload, signatureHeader: "t=\(Self.signedAt),v1=\(String(repeating: "0", count: 64)),v1=\(Self.signature),v0=abc",
                               now: Self.at(Self.signedAt))
    }

    @Test("a tampered payload, another secret, a stale or future timestamp, or a malformed header is refused")
    func refused() throws {
        var tampered = Self.payload
        tampered[tampered.count - 5] = UInt8(ascii: "x")
        try expectRejected("t=\(Self.signedAt),v1=\(Self.signature)", payload: tampered)
        try expectRejected("t=\(Self.signedAt),v1=\(Self.signature)", secret: "whsec_other")
        try expectRejected("t=\(Self.signedAt + 1),v1=\(Self.signature)", now: Self.signedAt + 1)
        // Tolerance 300 s: 301 s late or early is refused, 300 s is accepted.
        try expectRejected("t=\(Self.signedAt),v1=\(Self.signature)", now: Self.signedAt + 301)
        try expectRejected("t=\(Self.signedAt),v1=\(Self.signature)", now: Self.signedAt - 301)
        _ = try StripeWebhook(endpointSecret: Self.secret).verify(payload: Self.payload, signatureHeader: "t=\(Self.signedAt),v1=\(Self.signature)",
                                                                   now: Self.at(Self.signedAt + 300))
        for header in ["", "v1=\(Self.signature)", "t=\(Self.signedAt)", "t=abc,v1=\(Self.signature)", "t=\(Self.signedAt),v1=zz",
                       "t=\(Self.signedAt),v1=\(Self.signature.dropLast())", "t=\(Int64.min),v1=\(Self.signature)", ",,,=,t,v1"] {
            try expectRejected(header)
        }
    }

    @Test("payment_intent.succeeded credits the purchase once however often it is delivered, under the purchase's key")
    func credits() async throws {
        let settlement = Settlement(backend: InMemoryBackend(currency: StripeTestSupport.usd), catalog: nil)
        let webhook = try StripeWebhook(endpointSecret: Self.secret)
        let event = try webhook.verify(payload: Self.payload, signatureHeader: "t=\(Self.signedAt),v1=\(Self.signature)", now: Self.at(Self.signedAt))
        let first = try await webhook.apply(event, to: settlement)
        let again = try await webhook.apply(event, to: settlement)
        // amount_received 5000 cents = 50.00.
        #expect(first?.amount == StripeTestSupport.money("50.00") && again == first)
        #expect(try await settlement.balance(consumer: "cus_w").available == StripeTestSupport.money("50.00"))
        // Another event type, or a payment made outside Tariff, credits nothing.
        let other = Data(#"{"id":"evt_2","type":"payment_intent.succeeded","data":{"object":{"id":"pi_x","status":"succeeded","amount":100,"currency":"usd","metadata":{}}}}"#.utf8)
        let transfer = Data(#"{"id":"evt_3","type":"transfer.created","data":{"object":{"id":"tr_1","object":"transfer","amount":100}}}"#.utf8)
        for payload in [other, transfer] {
            let event = try webhook.verify(payload: payload, signatureHeader: webhook.signatureHeader(payload: payload, timestamp: Self.signedAt), now: Self.at(Self.signedAt))
            #expect(try await webhook.apply(event, to: settlement) == nil)
        }
        #expect(try await settlement.balance(consumer: "cus_w").available == StripeTestSupport.money("50.00"))
    }
}
