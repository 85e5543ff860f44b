import Synchronization
import Tariff
import TariffSettlement

/// An in-process payment rail that behaves as Stripe does where lost answers matter, for the
/// conformance scenarios (no HTTP: the Stripe rail's own tests use the HTTP fake):
/// - a charge is a payment carrying the purchase key in its metadata, found by `existingPayment`;
/// - idempotency keys are remembered for `windowSeconds` (24 h) of the injected clock, then
///   forgotten: the same key sent again after that makes a second payment, as at Stripe;
/// - faults: `loseNextAnswer()` applies the next charge and then throws `rail_unavailable` (a
///   crash or timeout between "charged" and "confirmed"); `failNextBeforeApplying()` applies nothing.
/// Payment methods: `pm_declined` is declined, `pm_3ds` stays pending, anything else succeeds.
public final class WindowedRail: PurchaseRail, Sendable {
    public struct Payment: Sendable, Hashable {
        public var id: String
        public var purchaseKey: String
        public var amount: Money
        public var currency: Currency
        public var payer: String
        public var status: String
        public var createdAt: Timestamp
    }

    private struct State {
        var payments: [Payment] = []
        /// Key -> (payment id or nil for a decline, when it was first seen).
        var keys: [String: (payment: String?, at: Timestamp)] = [:]
        var loseNext = false
        var failNext = false
        var charges = 0
        var lookUps = 0
        /// Refund key -> refund id.
        var refunds: [String: String] = [:]
        var refundRequests = 0
        var refuseNextRefund = false
    }

    private let state = Mutex(State())
    private let clock: any SettlementClock
    public let windowSeconds: Int64

    public init(clock: any SettlementClock, windowSeconds: Int64 = 24 * 3_600) {
        self.clock = clock
        self.windowSeconds = windowSeconds
    }

    public var payments: [Payment] { state.withLock { $0.payments } }
    /// Refund requests that reached the rail, and the refunds made (by key).
    public var refundRequests: Int { state.withLock { $0.refundRequests } }
    public var refunds: [String: String] { state.withLock { $0.refunds } }
    /// The next refund is refused (`rail_rejected`, as Stripe refuses a refund of a disputed charge).
    public func refuseNextRefund() { state.withLock { $0.refuseNextRefund = true } }
    /// Charge requests that reached the rail (replays included).
    public var charges: Int { state.withLock { $0.charges } }
    public var lookUps: Int { state.withLock { $0.lookUps } }
    public func loseNextAnswer() { state.withLock { $0.loseNext = true } }
    /// The next charge does not reach the rail (a connection refused): nothing applied.
    public func failNextBeforeApplying() { state.withLock { $0.failNext = true } }

    /// Marks a pending payment paid (the consumer finished 3-D Secure).
    public func complete(_ id: String) { state.withLock { state in
        if let index = state.payments.firstIndex(where: { $0.id == id }) { state.payments[index].status = "succeeded" }
    } }

    /// Adds a payment carrying `purchaseKey` made outside the ledger (another amount, say).
    public func plant(_ payment: Payment) { state.withLock { $0.payments.append(payment) } }

    public func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome {
        let now = clock.now()
        let windowNanoseconds = windowSeconds * 1_000_000_000
        let (outcome, lose): (Result<CreditPaymentOutcome, SettlementError>, Bool) = state.withLock { state in
            if state.failNext {
                state.failNext = false
                return (.failure(SettlementError(.init(rawValue: "rail_unavailable"), "the rail could not be reached")), false)
            }
            state.charges += 1
            let lose = state.loseNext
            state.loseNext = false
            if let remembered = state.keys[purchase.idempotencyKey], now.nanosecondsSinceEpoch - remembered.at.nanosecondsSinceEpoch < windowNanoseconds {
                guard let id = remembered.payment, let payment = state.payments.first(where: { $0.id == id }) else {
                    return (.failure(SettlementError(.init(rawValue: "payment_declined"), "card_declined (replayed)")), lose)
                }
                return (.success(Self.outcome(payment)), lose)
            }
            if purchase.paymentMethod == "pm_declined" {
                state.keys[purchase.idempotencyKey] = (nil, now)
                return (.failure(SettlementError(.init(rawValue: "payment_declined"), "card_declined: insufficient_funds")), lose)
            }
            let payment = Payment(id: "pay_\(state.payments.count + 1)", purchaseKey: purchase.idempotencyKey, amount: purchase.amount,
                                  currency: purchase.currency, payer: purchase.payer,
                                  status: purchase.paymentMethod == "pm_3ds" ? "requires_action" : "succeeded", createdAt: now)
            state.payments.append(payment)
            state.keys[purchase.idempotencyKey] = (payment.id, now)
            return (.success(Self.outcome(payment)), lose)
        }
        if lose { throw SettlementError(.init(rawValue: "rail_unavailable"), "the answer was lost after the payment was made") }
        return try outcome.get()
    }

    public func existingPayment(for purchase: CreditPurchase, since: Timestamp) async throws -> CreditPaymentOutcome? {
        let found = state.withLock { state -> Payment? in
            state.lookUps += 1
            let mine = state.payments.filter { $0.purchaseKey == purchase.idempotencyKey }
            return mine.first { $0.status == "succeeded" } ?? mine.first
        }
        guard let found else { return nil }
        guard found.amount == purchase.amount, found.currency == purchase.currency, found.payer == purchase.payer else {
            throw SettlementError(.init(rawValue: "rail_rejected"), "payment \(found.id) of \(found.amount) \(found.currency.code) by \(found.payer) is not purchase \(purchase.idempotencyKey)'s")
        }
        return Self.outcome(found)
    }

    static func outcome(_ payment: Payment) -> CreditPaymentOutcome {
        payment.status == "succeeded" ? .succeeded(reference: payment.id) : .pending(reference: payment.id, clientSecret: payment.id + "_secret")
    }
}

extension WindowedRail: RefundRail {
    public func refund(_ refund: CreditRefund) async throws -> String {
        try state.withLock { state in
            state.refundRequests += 1
            if let made = state.refunds[refund.idempotencyKey] { return made }
            if state.refuseNextRefund {
                state.refuseNextRefund = false
                throw SettlementError(.init(rawValue: "rail_rejected"), "charge \(refund.payment) has been disputed")
            }
            guard state.payments.contains(where: { $0.id == refund.payment && $0.status == "succeeded" }) else {
                throw SettlementError(.init(rawValue: "rail_rejected"), "no such payment: \(refund.payment)")
            }
            let id = "ref_\(state.refunds.count + 1)"
            state.refunds[refund.idempotencyKey] = id
            return id
        }
    }
}

