import Foundation
import Tariff
import TariffSettlement

// Credit purchases: PaymentIntents on the platform account.

/// A PaymentIntent as far as the rail reads it.
struct PaymentIntent: Decodable {
    struct PaymentError: Decodable {
        var code: String?
        var decline_code: String?
        var message: String?
    }
    var id: String
    var status: String
    var amount: Int64
    var amount_received: Int64?
    var currency: String
    /// The customer charged (`cus_...`); Stripe may expand it to an object, read as absent then.
    var customer: String?
    var metadata: [String: String]?
    var last_payment_error: PaymentError?
}

extension StripeRail: PurchaseRail {
    /// Metadata the rail puts on each purchase's PaymentIntent, so the webhook can credit it.
    static let consumerMetadata = "tariff_consumer"
    static let purchaseKeyMetadata = "tariff_purchase_key"

    /// `POST /v1/payment_intents` with `confirm=true`, under `purchase:KEY`.
    /// - throws: `payment_declined` with Stripe's reason, and the client's errors.
    public func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome {
        var form = FormBody()
        form.append("amount", try StripeAmount.minorUnits(purchase.amount, purchase.currency))
        form.append("currency", purchase.currency.code.lowercased())
        form.append("customer", purchase.payer)
        form.append("payment_method", purchase.paymentMethod)
        // A card charged now, with no redirect: the only answers are succeeded, declined, or
        // requires_action (3-D Secure), which stays pending until the webhook.
        form.append("payment_method_types[]", "card")
        form.append("confirm", "true")
        form.append("metadata[\(Self.consumerMetadata)]", purchase.consumer)
        form.append("metadata[\(Self.purchaseKeyMetadata)]", purchase.idempotencyKey)
        let what = "the payment of \(purchase.amount) \(purchase.currency.code) for \(purchase.consumer)"
        let data = try await client.post("/v1/payment_intents", form, idempotencyKey: Self.stripeKey("purchase:", purchase.idempotencyKey), what: what)
        guard let intent = try? JSONDecoder().decode(PaymentIntent.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not a PaymentIntent")
        }
        try Self.check(intent, matches: purchase, what: what)
        return try Self.outcome(of: intent, what: what, key: client.configuration.secretKey)
    }

    /// settlement.md: a PaymentIntent is credited only when its amount, currency and customer are
    /// the purchase's. An answer that says `succeeded` for another amount (a negative one), another
    /// currency or another customer is not this purchase's payment, whatever its status: refused,
    /// nothing credited.
    /// - throws: `rail_rejected` naming what differs.
    static func check(_ intent: PaymentIntent, matches purchase: CreditPurchase, what: String) throws {
        var differences: [String] = []
        let expected = try StripeAmount.minorUnits(purchase.amount, purchase.currency)
        if intent.amount != expected { differences.append("amount \(intent.amount) instead of \(expected)") }
        if let received = intent.amount_received, intent.status == "succeeded", received != expected {
            differences.append("amount received \(received) instead of \(expected)")
        }
        if intent.currency.lowercased() != purchase.currency.code.lowercased() {
            differences.append("currency '\(SafeText.escaping(intent.currency))' instead of '\(purchase.currency.code.lowercased())'")
        }
        if intent.customer != purchase.payer {
            differences.append("customer '\(SafeText.escaping(intent.customer ?? "none"))' instead of '\(SafeText.escaping(purchase.payer))'")
        }
        guard differences.isEmpty else {
            throw SettlementError(.railRejected, "Stripe answered \(what) with PaymentIntent \(SafeText.escaping(intent.id)) of "
                                  + differences.joined(separator: ", ") + ": not this purchase's payment, nothing credited")
        }
    }

    static func outcome(of intent: PaymentIntent, what: String, key: StripeSecretKey) throws -> CreditPaymentOutcome {
        switch intent.status {
        case "succeeded":
            return .succeeded(reference: intent.id)
        case "processing", "requires_action", "requires_confirmation", "requires_capture":
            return .pending(reference: intent.id)
        default:
            // requires_payment_method after a confirm is a decline reported in the body, not as 402.
            let failure = StripeFailure(status: 402, type: "card_error", code: intent.last_payment_error?.code ?? intent.status,
                                        declineCode: intent.last_payment_error?.decline_code, message: intent.last_payment_error?.message)
            throw failure.settlementError(what: what, key: key)
        }
    }
}
