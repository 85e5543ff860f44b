import Foundation
import Tariff

// Credit purchases through a payment rail. `PaymentRail` (payouts) is left exactly as it is: a rail
// that also takes card payments adopts this second protocol, so the log rail, the test rails and
// every existing caller are untouched (the least invasive extension of the settlement layer).

/// A credit purchase to be paid through a rail before any credit is added.
public struct CreditPurchase: Sendable, Hashable {
    public var consumer: String
    public var amount: Money
    public var currency: Currency
    /// The ledger's purchase key: the rail derives its own request key from it, so a retried
    /// purchase charges once, and the ledger applies it once whichever path confirms it first.
    public var idempotencyKey: String
    /// Who pays on the rail (a Stripe customer, `cus_...`).
    public var payer: String
    /// How they pay (a Stripe payment method, `pm_...`).
    public var paymentMethod: String

    public init(consumer: String, amount: Money, currency: Currency, idempotencyKey: String, payer: String, paymentMethod: String) {
        self.consumer = consumer
        self.amount = amount
        self.currency = currency
        self.idempotencyKey = idempotencyKey
        self.payer = payer
        self.paymentMethod = paymentMethod
    }
}

/// What the rail says about a purchase's payment. A declined payment is not an outcome: the rail
/// throws (`SettlementError`), and nothing is added.
public enum CreditPaymentOutcome: Sendable, Hashable {
    /// Paid: the credits can be added now. The reference is the rail's (`pi_...`).
    case succeeded(reference: String)
    /// Accepted but not final (3-D Secure, a bank debit still processing): the credits are added
    /// later, when the rail confirms it (Stripe's `payment_intent.succeeded` webhook).
    case pending(reference: String)
}

/// A rail that takes card payments for credit purchases (Stripe: a PaymentIntent on the platform
/// account). It must be idempotent by the purchase's key: the same purchase sent twice charges once.
public protocol PurchaseRail: Sendable {
    /// Charges the payer; returns once the rail has an answer.
    /// - throws: `SettlementError` (a declined card, a rail that cannot be reached).
    func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome
}

/// A purchase's payment and, when it succeeded, the credits it added.
public struct RailPurchaseReceipt: Sendable, Hashable {
    public var outcome: CreditPaymentOutcome
    /// nil while the payment is pending.
    public var receipt: PurchaseReceipt?
}

extension Settlement {
    /// Charges the purchase through `rail`, then adds the credits (same key, so exactly once) only
    /// when the payment succeeded. Every check `purchase` makes runs before the rail is called, so a
    /// purchase the ledger would refuse never charges a card.
    /// - throws: what `purchase(consumer:amount:currency:idempotencyKey:)` throws, and what the rail throws
    ///   (a decline leaves the ledger unchanged).
    public func purchase(_ purchase: CreditPurchase, through rail: some PurchaseRail) async throws -> RailPurchaseReceipt {
        try Self.validate(purchase.consumer, "consumer id")
        try Self.validate(purchase.idempotencyKey, "idempotency key")
        try Self.validate(purchase.payer, "payer")
        try Self.validate(purchase.paymentMethod, "payment method")
        try checkCurrency(purchase.currency, "the purchase")
        guard purchase.amount.micros > 0 else { throw SettlementError(.invalidAmount, "a purchase must be positive, not \(purchase.amount)") }
        guard purchase.amount.micros % 10_000 == 0 else { throw SettlementError(.invalidAmount, "a purchase is whole cents: \(purchase.amount) is not") }
        guard purchase.amount <= Self.maximumPurchase else {
            throw SettlementError(.invalidAmount, "a purchase is at most \(Self.maximumPurchase), not \(purchase.amount)")
        }
        let outcome = try await rail.charge(purchase)
        guard case .succeeded = outcome else { return RailPurchaseReceipt(outcome: outcome, receipt: nil) }
        let receipt = try await self.purchase(consumer: purchase.consumer, amount: purchase.amount, currency: purchase.currency,
                                              idempotencyKey: purchase.idempotencyKey)
        return RailPurchaseReceipt(outcome: outcome, receipt: receipt)
    }
}

extension CreditPurchase {
    /// The amount in the currency's smallest unit (cents for USD, yen for JPY), by integer division.
    /// - throws: `invalid_amount` when it is negative or finer than that unit.
    public func minorUnits() throws -> Int64 {
        let divisor = Int64(PowerOfTen.int128(Money.fractionalDigits - min(max(currency.minorUnitDigits, 0), Money.fractionalDigits)))
        guard amount.micros >= 0, amount.micros % divisor == 0 else {
            throw SettlementError(.invalidAmount, "\(amount) \(currency.code) is not a whole number of the currency's smallest unit")
        }
        return amount.micros / divisor
    }
}

/// The log rail takes purchases too (`tariff ledger purchase --rail log`, a dry run of the Stripe
/// flow): it writes the PaymentIntent it would create and reports it paid, so the credits are
/// added as after a real payment, just as its payouts are marked paid.
/// `{"method":"POST","path":"/v1/payment_intents","idempotency_key":"purchase:order-1","body":{"amount":10000,"currency":"usd","customer":"cus_1","payment_method":"pm_1","confirm":true}}`
extension LogRail: PurchaseRail {
    public func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome {
        let line = "{\"method\":\"POST\",\"path\":\"/v1/payment_intents\",\"idempotency_key\":\(Self.quoted("purchase:" + purchase.idempotencyKey)),"
            + "\"body\":{\"amount\":\(try purchase.minorUnits()),\"currency\":\(Self.quoted(purchase.currency.code.lowercased())),"
            + "\"customer\":\(Self.quoted(purchase.payer)),\"payment_method\":\(Self.quoted(purchase.paymentMethod)),\"confirm\":true}}\n"
        try append(line)
        return .succeeded(reference: "log:purchase:" + purchase.idempotencyKey)
    }
}
