import Crypto
import Foundation
import Tariff
import TariffSettlement

extension SettlementError.Code {
    /// A webhook whose `Stripe-Signature` is missing, malformed, wrong or outside the tolerance window.
    public static let invalidSignature = SettlementError.Code(rawValue: "invalid_signature")
}

/// Verifies Stripe's webhook deliveries and credits purchases that succeeded after the purchase
/// call returned (3-D Secure, slow payment methods).
///
/// The signature (Stripe's "Check the webhook signatures"): the header is
/// `t=TIMESTAMP,v1=HEX[,v1=HEX...]`; a delivery is genuine when one `v1` equals
/// HMAC-SHA256(endpoint secret, "TIMESTAMP.PAYLOAD") and TIMESTAMP is within the tolerance of now
/// (so a captured delivery cannot be replayed days later).
///
/// ```swift
/// let webhook = try StripeWebhook(endpointSecret: secret)
/// let event = try webhook.verify(payload: body, signatureHeader: header, now: clock.now())
/// _ = try await webhook.apply(event, to: settlement)
/// ```
public struct StripeWebhook: Sendable {
    /// The endpoint secret's bytes (SymmetricKey is not Sendable: it is made per verification).
    private let secretBytes: [UInt8]
    private var secret: SymmetricKey { SymmetricKey(data: secretBytes) }
    /// Stripe's libraries default to 5 minutes.
    public var toleranceSeconds: Int64

    /// - throws: `invalid_input` for an empty secret.
    public init(endpointSecret: String, toleranceSeconds: Int64 = 300) throws {
        guard !endpointSecret.isEmpty else { throw SettlementError(.invalidInput, "the webhook endpoint secret is empty") }
        secretBytes = Array(endpointSecret.utf8)
        self.toleranceSeconds = max(0, toleranceSeconds)
    }

    /// The event of a genuine delivery.
    /// - throws: `invalid_signature` (no valid `v1`, a timestamp outside the window, a malformed
    ///   header), `invalid_input` (a payload that is not an event).
    public func verify(payload: Data, signatureHeader: String, now: Timestamp) throws -> StripeEvent {
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for item in signatureHeader.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "t" { timestamp = Int64(value) }
            if name == "v1", let bytes = Self.hexBytes(value) { signatures.append(bytes) }
        }
        guard let timestamp else { throw SettlementError(.invalidSignature, "the Stripe-Signature header has no timestamp") }
        guard !signatures.isEmpty else { throw SettlementError(.invalidSignature, "the Stripe-Signature header has no v1 signature") }
        let expected = Array(HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).".utf8) + payload, using: secret))
        guard signatures.contains(where: { Self.constantTimeEqual($0, expected) }) else {
            throw SettlementError(.invalidSignature, "no v1 signature matches the payload and the endpoint secret")
        }
        let nowSeconds = now.nanosecondsSinceEpoch / 1_000_000_000
        let (age, overflow) = nowSeconds.subtractingReportingOverflow(timestamp)
        guard !overflow, age.magnitude <= UInt64(toleranceSeconds) else {
            throw SettlementError(.invalidSignature, "the delivery was signed \(overflow ? "far" : String(age) + " s") from now; the tolerance is \(toleranceSeconds) s")
        }
        guard let event = try? JSONDecoder().decode(StripeEvent.self, from: payload) else {
            throw SettlementError(.invalidInput, "the webhook payload is not a Stripe event")
        }
        return event
    }

    /// Credits a `payment_intent.succeeded` for a purchase the rail made (its metadata names the
    /// consumer and the ledger key), under that key: a purchase already credited by the synchronous
    /// answer, or by an earlier delivery of the same event, is not credited again. Other events are
    /// ignored (nil).
    /// - throws: what `Settlement.purchase` throws; `invalid_input` for an event of the rail that lacks its metadata.
    public func apply(_ event: StripeEvent, to settlement: Settlement) async throws -> PurchaseReceipt? {
        guard event.type == "payment_intent.succeeded", let intent = event.data.object else { return nil }
        guard let consumer = intent.metadata?[StripeRail.consumerMetadata], let key = intent.metadata?[StripeRail.purchaseKeyMetadata] else {
            return nil // not a credit purchase (a direct invoice, or a payment made outside Tariff)
        }
        guard let currency = Currency(code: intent.currency.uppercased()) else {
            throw SettlementError(.invalidInput, "the payment \(intent.id) is in an unknown currency '\(intent.currency)'")
        }
        let amount = try StripeAmount.money(minorUnits: intent.amount_received ?? intent.amount, currency)
        if try await settlement.backend.purchaseRecord(key: key) != nil {
            // Recorded pending before the charge: credited only for its own PaymentIntent, amount and customer.
            try await settlement.confirmPurchase(key: key, reference: intent.id, amount: amount, payer: intent.customer ?? "")
        }
        return try await settlement.purchase(consumer: consumer, amount: amount, currency: currency, idempotencyKey: key)
    }

    /// The header Stripe would send for `payload` at `timestamp` (for tests and local tools).
    public func signatureHeader(payload: Data, timestamp: Int64) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).".utf8) + payload, using: secret)
        return "t=\(timestamp),v1=" + code.map { String($0, radix: 16).leftPadded(2) }.joined()
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, digits.count <= 128 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < digits.count {
            guard let high = FormBody.hexValue(digits[index]), let low = FormBody.hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    /// Compares every byte whatever the first difference, so timing tells nothing of the expected signature.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}

/// A webhook event, as far as the rail reads it.
public struct StripeEvent: Sendable, Decodable {
    public struct Payload: Sendable, Decodable {
        var object: PaymentIntent?
        /// The transfer of a `transfer.*` event.
        var transfer: StripeTransferObject?

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // Events of other objects (transfers, charges) decode with no PaymentIntent.
            object = try? container.decodeIfPresent(PaymentIntent.self, forKey: .object)
            transfer = try? container.decodeIfPresent(StripeTransferObject.self, forKey: .object)
        }
        enum CodingKeys: String, CodingKey { case object }
    }
    public var id: String
    public var type: String
    public var data: Payload
    /// The PaymentIntent's id, for a payment_intent.* event.
    public var paymentIntent: String? { data.object?.id }
}

