import Tariff

/// A refund of part or all of a purchase's payment, as the rail sends it.
public struct CreditRefund: Sendable, Hashable {
    /// The caller's refund key: the rail sends `refund:KEY` as its idempotency key and keeps the
    /// key in the refund's metadata, so a resend refunds once and a look-up finds it.
    public var idempotencyKey: String
    /// The purchase's key, and its payment on the rail (`pi_...`).
    public var purchase: String
    public var payment: String
    public var amount: Money
    public var currency: Currency

    public init(idempotencyKey: String, purchase: String, payment: String, amount: Money, currency: Currency) {
        self.idempotencyKey = idempotencyKey
        self.purchase = purchase
        self.payment = payment
        self.amount = amount
        self.currency = currency
    }
}

/// A rail that gives money back to the card a purchase came from (Stripe: `POST /v1/refunds`).
/// Idempotent by the refund's key.
public protocol RefundRail: Sendable {
    /// Refunds and returns the rail's reference (`re_...`).
    /// - throws: `rail_rejected` when the rail refuses it (the refund is then undone in the ledger),
    ///   `rail_unavailable` when it cannot tell (the refund stays pending; a rerun sends it again).
    func refund(_ refund: CreditRefund) async throws -> String

    /// The refund already made under this key, found on the rail (a rerun after the rail's
    /// idempotency window), or nil.
    func existingRefund(for refund: CreditRefund) async throws -> String?
}

extension RefundRail {
    public func existingRefund(for refund: CreditRefund) async throws -> String? { nil }
}

extension Settlement {
    /// Gives `amount` of a purchase back to the card it came from (settlement.md, "Refunds").
    ///
    /// The credits are taken first (`available -> refunded`, under `refund:KEY`): at most what is left
    /// of the purchase after earlier refunds and lost disputes (`invalid_amount`), at most what is
    /// `available` (`insufficient_credits`: spent credits are not refundable). A refused refund
    /// leaves the ledger unchanged and sends nothing. Then the rail refunds the purchase's payment
    /// (idempotency key `refund:KEY`; a pending refund is looked up on the rail first); a refund the
    /// rail refuses gives the credits back (`refunded -> available`) and is marked `failed`.
    /// - throws: `invalid_amount`, `invalid_key`, `idempotency_conflict`, `unknown_purchase`,
    ///   `invalid_input` (a purchase not paid), `insufficient_credits`, and the rail's errors.
    @discardableResult
    public func refund(purchase: String, amount: Money, idempotencyKey: String, through rail: some RefundRail) async throws -> ReversalRecord {
        try Self.validate(purchase, "purchase key")
        try Self.validate(idempotencyKey, "idempotency key")
        guard amount.micros > 0 else { throw SettlementError(.invalidAmount, "a refund must be positive, not \(amount)") }
        guard amount <= Self.maximumPurchase else { throw SettlementError(.invalidAmount, "a refund is at most \(Self.maximumPurchase), not \(amount)") }
        let minorUnit = Int64(PowerOfTen.int128(Money.fractionalDigits - min(max(currency.minorUnitDigits, 0), Money.fractionalDigits)))
        guard amount.micros % minorUnit == 0 else {
            throw SettlementError(.invalidAmount, "a refund is whole \(currency.minorUnitDigits == 0 ? "units" : "cents") of \(currency.code): \(amount) is not")
        }
        var record = try await backend.refund(RefundCommand(key: idempotencyKey, purchase: purchase, amount: amount, now: clock.now()))
        switch record.state {
        case .succeeded: return record
        case .failed: throw SettlementError(Self.railRejected, "refund '\(idempotencyKey)' was refused by the payment rail; its credits were given back")
        case .pending: break
        }
        guard let paid = try await backend.purchaseRecord(key: record.purchase), let payment = paid.reference else {
            throw SettlementError(.storage, "refund '\(idempotencyKey)' names purchase '\(record.purchase)', which has no payment")
        }
        let request = CreditRefund(idempotencyKey: idempotencyKey, purchase: record.purchase, payment: payment, amount: record.amount, currency: currency)
        let reference: String
        do {
            if let found = try await rail.existingRefund(for: request) { reference = found } else { reference = try await rail.refund(request) }
        } catch let error as SettlementError where error.code == Self.railRejected {
            record = try await backend.completeRefund(key: record.key, reference: nil, failed: true, now: clock.now())
            throw error
        }
        return try await backend.completeRefund(key: record.key, reference: reference, failed: false, now: clock.now())
    }

    /// Records a dispute the card's bank decided against the platform (Stripe's
    /// `charge.dispute.closed` with status `lost`) for the purchase paid by `payment`: the disputed
    /// amount leaves the consumer's `available` as far as it goes, the rest is the platform's loss
    /// (`dispute_losses`); never a negative balance. Recorded once per dispute id.
    /// - throws: `unknown_purchase` (no purchase has that payment), `invalid_amount`,
    ///   `idempotency_conflict`, `invalid_key`.
    @discardableResult
    public func recordLostDispute(dispute: String, payment: String, amount: Money) async throws -> ReversalRecord {
        try Self.validate(dispute, "dispute id")
        try Self.validate(payment, "payment reference")
        guard amount.micros > 0, amount <= Self.maximumPurchase else { throw SettlementError(.invalidAmount, "a disputed amount must be positive, not \(amount)") }
        guard let purchase = try await backend.purchaseRecord(reference: payment) else {
            throw SettlementError(.unknownPurchase, "no purchase was paid by \(payment)")
        }
        return try await backend.disputeLost(DisputeCommand(dispute: dispute, purchase: purchase.key, amount: amount, now: clock.now()))
    }

    /// The rail's refusal code (`rail_rejected`), named here because the rail modules define it.
    static let railRejected = SettlementError.Code(rawValue: "rail_rejected")
}

/// The log rail refunds too (a dry run): it writes the request it would send.
/// `{"method":"POST","path":"/v1/refunds","idempotency_key":"refund:r-1","body":{"payment_intent":"pi_1","amount":500,"metadata":{"tariff_refund_key":"r-1"}}}`
extension LogRail: RefundRail {
    public func refund(_ refund: CreditRefund) async throws -> String {
        let divisor = Int64(PowerOfTen.int128(Money.fractionalDigits - min(max(refund.currency.minorUnitDigits, 0), Money.fractionalDigits)))
        let line = "{\"method\":\"POST\",\"path\":\"/v1/refunds\",\"idempotency_key\":\(Self.quoted("refund:" + refund.idempotencyKey)),"
            + "\"body\":{\"payment_intent\":\(Self.quoted(refund.payment)),\"amount\":\(refund.amount.micros / divisor),"
            + "\"metadata\":{\"tariff_refund_key\":\(Self.quoted(refund.idempotencyKey))}}}\n"
        try append(line)
        return "log:refund:" + refund.idempotencyKey
    }
}
