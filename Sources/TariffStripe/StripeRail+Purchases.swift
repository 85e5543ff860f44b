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
        return try Self.outcome(of: intent, what: what, key: client.configuration.secretKey)
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
