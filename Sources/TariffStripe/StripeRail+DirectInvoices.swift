import Foundation
import Tariff
import TariffSettlement

// Direct invoices: destination charges.

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
