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
    /// Charged with nobody present (an auto top-up): Stripe is told so (`off_session`), and a
    /// payment that needs the customer's authentication fails instead of waiting for them.
    public var offSession = false

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
    /// later, when the rail confirms it (Stripe's `payment_intent.succeeded` webhook). The client
    /// secret (Stripe's `client_secret`) lets the consumer's own page finish the payment.
    case pending(reference: String, clientSecret: String?)

    /// The rail's reference of the payment, either way.
    public var reference: String {
        switch self {
        case .succeeded(let reference), .pending(let reference, _): reference
        }
    }
}

/// A rail that takes card payments for credit purchases (Stripe: a PaymentIntent on the platform
/// account). It must be idempotent by the purchase's key: the same purchase sent twice charges once.
public protocol PurchaseRail: Sendable {
    /// Charges the payer; returns once the rail has an answer.
    /// - throws: `SettlementError` (a declined card, a rail that cannot be reached).
    func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome

    /// The payment already made for this purchase, found on the rail by the purchase's key (a
    /// PaymentIntent carrying it in `metadata`), or nil when there is none. Asked before a purchase
    /// recorded `pending` is charged again: a rerun after the rail's idempotency window (24 h at
    /// Stripe) adopts the first payment instead of charging twice. A payment found for another
    /// amount, currency or customer is not adopted (`rail_rejected`).
    /// - throws: `SettlementError` (a declined payment found, a rail that cannot be reached).
    func existingPayment(for purchase: CreditPurchase, since: Timestamp) async throws -> CreditPaymentOutcome?
}

extension PurchaseRail {
    /// A rail whose charges are idempotent for ever by their key (the log rail, test rails) has
    /// nothing to look up.
    public func existingPayment(for purchase: CreditPurchase, since: Timestamp) async throws -> CreditPaymentOutcome? { nil }
}

/// A purchase's payment and, when it succeeded, the credits it added.
public struct RailPurchaseReceipt: Sendable, Hashable {
    public var outcome: CreditPaymentOutcome
    /// nil while the payment is pending.
    public var receipt: PurchaseReceipt?
    /// The purchase as the ledger keeps it after this call.
    public var record: PurchaseRecord?
}

extension Settlement {
    /// Charges the purchase through `rail`, then adds the credits (same key, so exactly once) only
    /// when the payment succeeded (settlement.md, "Calls whose answer was lost").
    ///
    /// 1. The purchase is written `pending` under its key **before** the rail is called: a key
    ///    reused with another consumer, amount or payer is refused (`idempotency_conflict`) before
    ///    any charge, and a crash after the charge leaves a record a rerun finds.
    /// 2. A purchase found `pending` from an earlier call is first looked up on the rail
    ///    (`existingPayment`): its payment is adopted, never made twice, even after the rail's
    ///    idempotency window. Only when there is none is the card charged.
    /// 3. The rail's reference is stored as soon as it answers; the credits are added when the
    ///    payment succeeded, and the record marked `succeeded`. A decline marks it `failed` (a rerun
    ///    answers the decline again and charges nothing).
    /// - throws: what `purchase(consumer:amount:currency:idempotencyKey:)` throws, and what the rail
    ///   throws (a decline leaves no credit).
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
        let key = purchase.idempotencyKey
        let begun = try await backend.beginPurchase(PendingPurchaseCommand(key: key, fingerprint: Self.purchaseFingerprint(purchase.consumer, purchase.amount, currency),
                                                                           consumer: purchase.consumer, amount: purchase.amount, payer: purchase.payer,
                                                                           now: clock.now()))
        switch begun.record.state {
        case .succeeded:
            // Paid and credited before: the first result, nothing charged.
            let receipt = try await self.purchase(consumer: purchase.consumer, amount: purchase.amount, currency: purchase.currency, idempotencyKey: key)
            return RailPurchaseReceipt(outcome: .succeeded(reference: begun.record.reference ?? ""), receipt: receipt, record: begun.record)
        case .failed:
            throw SettlementError(Self.paymentDeclined, "the payment of purchase '\(key)' was declined; a new purchase needs a new key")
        case .pending:
            break
        }
        let outcome: CreditPaymentOutcome
        do {
            if !begun.isNew, let found = try await rail.existingPayment(for: purchase, since: begun.record.createdAt) {
                outcome = found
            } else {
                outcome = try await rail.charge(purchase)
            }
        } catch let error as SettlementError where error.code == Self.paymentDeclined {
            _ = try? await backend.updatePurchase(key: key, reference: nil, state: .failed)
            throw error
        }
        var record = try await backend.updatePurchase(key: key, reference: outcome.reference, state: .pending)
        guard case .succeeded = outcome else { return RailPurchaseReceipt(outcome: outcome, receipt: nil, record: record) }
        let receipt = try await self.purchase(consumer: purchase.consumer, amount: purchase.amount, currency: purchase.currency, idempotencyKey: key)
        record = try await backend.updatePurchase(key: key, reference: nil, state: .succeeded)
        return RailPurchaseReceipt(outcome: outcome, receipt: receipt, record: record)
    }

    /// Credits a pending purchase its rail confirmed later (Stripe's `payment_intent.succeeded`),
    /// once, and only when the payment is the purchase's: its reference (when one was stored),
    /// amount and payer.
    /// - throws: `unknown_purchase`, `rail_rejected` (a payment that is not the purchase's), and
    ///   what `purchase(consumer:amount:currency:idempotencyKey:)` throws.
    @discardableResult
    public func confirmPurchase(key: String, reference: String, amount: Money, payer: String) async throws -> PurchaseRecord {
        try Self.validate(key, "idempotency key")
        guard let record = try await backend.purchaseRecord(key: key) else {
            throw SettlementError(.unknownPurchase, "no purchase through a rail was recorded under '\(key)'")
        }
        guard record.amount == amount, record.payer.bytesEqual(payer), record.reference == nil || record.reference == reference else {
            throw SettlementError(SettlementError.Code(rawValue: "rail_rejected"), "payment \(reference) of \(amount) by \(payer) is not purchase '\(key)''s payment")
        }
        _ = try await backend.updatePurchase(key: key, reference: reference, state: .pending)
        try await self.purchase(consumer: record.consumer, amount: record.amount, idempotencyKey: key)
        return try await backend.updatePurchase(key: key, reference: nil, state: .succeeded)
    }

    /// Marks a pending purchase failed (Stripe's `payment_intent.payment_failed`).
    /// - throws: `unknown_purchase`.
    @discardableResult
    public func failPurchase(key: String) async throws -> PurchaseRecord {
        try Self.validate(key, "idempotency key")
        return try await backend.updatePurchase(key: key, reference: nil, state: .failed)
    }

    /// The rail's decline code (`payment_declined`), named here because the rail modules define it.
    static let paymentDeclined = SettlementError.Code(rawValue: "payment_declined")

    /// The parameters of a purchase's credits: the same for a purchase with and without a rail.
    static func purchaseFingerprint(_ consumer: String, _ amount: Money, _ currency: Currency) -> String {
        "consumer=\(consumer);amount=\(amount.micros);currency=\(currency.code)"
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
