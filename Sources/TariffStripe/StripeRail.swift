import Crypto
import Foundation
import Tariff
import TariffSettlement

/// The Stripe Connect payment rail (settlement.md, "Stripe Connect").
///
/// - Credit purchases (`PurchaseRail`): a PaymentIntent on the platform account for the consumer's
///   customer and payment method, confirmed at once. Credits are added by `Settlement` only when
///   it reports `succeeded`; a pending one is credited by the `payment_intent.succeeded` webhook
///   (`StripeWebhook`) under the same ledger key, so exactly once whichever comes first.
/// - Weekly payouts (`PaymentRail`): one transfer per creator and week to the creator's connected
///   account, `transfer_group` = the week, `Idempotency-Key: payout:CREATOR:WEEK`.
/// - Direct invoices (`chargeInvoice`): destination charges, `transfer_data[destination]` = the
///   creator and `application_fee_amount` = the platform and processing shares.
///
/// ```swift
/// let rail = try StripeRail(configuration: .load(keyFile: nil))
/// let lines = try await settlement.executePayouts(week: week, rail: rail)
/// ```
public struct StripeRail: Sendable {
    public let client: StripeClient

    public init(configuration: StripeConfiguration) throws {
        client = try StripeClient(configuration: configuration)
    }

    /// Stripe keys are at most 255 characters: a longer derived key is shortened to a digest of
    /// it, which is as unique and as stable across retries.
    static func stripeKey(_ prefix: String, _ key: String) -> String {
        let full = prefix + key
        guard full.utf8.count > 255 else { return full }
        let digest = SHA256.hash(data: Data(full.utf8))
        return prefix + "sha256:" + digest.map { String($0, radix: 16).leftPadded(2) }.joined()
    }
}

// MARK: Payouts

extension StripeRail: PaymentRail {
    struct Transfer: Decodable { var id: String }

    /// `POST /v1/transfers`; returns the transfer's id (`tr_...`).
    /// - throws: `invalid_amount` (zero or finer than the currency allows), and the client's errors.
    public func send(_ transfer: PayoutTransfer) async throws -> String {
        let minor = try StripeAmount.minorUnits(transfer.amount, transfer.currency)
        guard minor > 0 else { throw SettlementError(.invalidAmount, "a transfer must be positive, not \(transfer.amount) \(transfer.currency.code)") }
        var form = FormBody()
        form.append("amount", minor)
        form.append("currency", transfer.currency.code.lowercased())
        form.append("destination", transfer.destination)
        form.append("transfer_group", transfer.transferGroup)
        form.append("metadata[tariff_payout_key]", transfer.idempotencyKey)
        let data = try await client.post("/v1/transfers", form, idempotencyKey: Self.stripeKey("", transfer.idempotencyKey),
                                         what: "the transfer \(transfer.idempotencyKey)")
        guard let answer = try? JSONDecoder().decode(Transfer.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to the transfer \(transfer.idempotencyKey) has no transfer id")
        }
        return answer.id
    }
}

// MARK: Credit purchases

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

// MARK: Direct invoices

/// An invoice paid by card where the creator is known: one destination charge.
public struct DirectInvoice: Sendable, Hashable {
    /// The invoice's id; the charge's key is `invoice:ID`.
    public var invoice: String
    public var customer: String
    public var paymentMethod: String
    /// The creator's connected account.
    public var destination: String
    public var amount: Money
    public var currency: Currency
    /// The invoice's split: the creator's share is transferred, the rest is the application fee.
    public var split: SplitShares

    public init(invoice: String, customer: String, paymentMethod: String, destination: String, amount: Money, currency: Currency, split: SplitShares) {
        self.invoice = invoice
        self.customer = customer
        self.paymentMethod = paymentMethod
        self.destination = destination
        self.amount = amount
        self.currency = currency
        self.split = split
    }

    /// `application_fee_amount` in the smallest unit: the invoice minus the creator's share floored
    /// to that unit. The platform and processing shares are the fee; a fraction of a cent the
    /// creator's share cannot be transferred in stays with the platform, as in payouts.
    /// - throws: `invalid_amount` when the shares do not add up to the invoice or are negative.
    public func applicationFeeMinorUnits() throws -> Int64 {
        let total = try StripeAmount.minorUnits(amount, currency)
        guard split.creator.micros >= 0, split.platform.micros >= 0, split.processing.micros >= 0,
              Int128(split.creator.micros) + Int128(split.platform.micros) + Int128(split.processing.micros) == Int128(amount.micros) else {
            throw SettlementError(.invalidAmount, "the invoice \(invoice)'s shares do not add up to its \(amount)")
        }
        let creatorMinor = split.creator.micros / StripeAmount.microsPerMinorUnit(currency)
        return total - creatorMinor
    }
}

/// A destination charge's answer.
public struct InvoicePayment: Sendable, Hashable {
    /// The PaymentIntent (`pi_...`).
    public var reference: String
    public var outcome: CreditPaymentOutcome
    public var applicationFeeMinorUnits: Int64
}

extension StripeRail {
    /// `POST /v1/payment_intents` on the platform with `transfer_data[destination]` and
    /// `application_fee_amount`, confirmed at once, under `invoice:ID`.
    /// - throws: `invalid_amount`, `payment_declined` with Stripe's reason, and the client's errors.
    public func chargeInvoice(_ invoice: DirectInvoice) async throws -> InvoicePayment {
        try Settlement.validate(invoice.invoice, "invoice id")
        let total = try StripeAmount.minorUnits(invoice.amount, invoice.currency)
        guard total > 0 else { throw SettlementError(.invalidAmount, "an invoice charge must be positive, not \(invoice.amount)") }
        let fee = try invoice.applicationFeeMinorUnits()
        var form = FormBody()
        form.append("amount", total)
        form.append("currency", invoice.currency.code.lowercased())
        form.append("customer", invoice.customer)
        form.append("payment_method", invoice.paymentMethod)
        form.append("payment_method_types[]", "card")
        form.append("confirm", "true")
        form.append("application_fee_amount", fee)
        form.append("transfer_data[destination]", invoice.destination)
        form.append("metadata[tariff_invoice]", invoice.invoice)
        let what = "the invoice \(invoice.invoice)"
        let data = try await client.post("/v1/payment_intents", form, idempotencyKey: Self.stripeKey("invoice:", invoice.invoice), what: what)
        guard let intent = try? JSONDecoder().decode(PaymentIntent.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not a PaymentIntent")
        }
        let outcome = try Self.outcome(of: intent, what: what, key: client.configuration.secretKey)
        return InvoicePayment(reference: intent.id, outcome: outcome, applicationFeeMinorUnits: fee)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
