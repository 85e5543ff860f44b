import Tariff

// The reference semantics of pending purchases, refunds and lost disputes (settlement.md, "Money
// that reconciles"), over a `LedgerStore`, each inside one transaction like every other step.
extension LedgerSteps {
    // MARK: Pending purchases

    /// Writes the purchase as `pending` before the rail is called, or finds it written.
    ///
    /// A key reused with another consumer, amount or payer is refused here, before any charge. A key
    /// already credited without a rail (same fingerprint) answers a `succeeded` record without
    /// writing anything: there is nothing to charge.
    /// - throws: `idempotency_conflict`, `invalid_amount`.
    public static func beginPurchase<Store: LedgerStore>(_ command: PendingPurchaseCommand, in store: inout Store) throws -> PendingPurchaseReceipt {
        if let record = try store.purchaseRecord(command.key) {
            guard record.consumer.bytesEqual(command.consumer), record.amount == command.amount, record.payer.bytesEqual(command.payer) else {
                throw SettlementError(.idempotencyConflict, "purchase key '\(command.key)' was already used for \(record.amount) by \(record.consumer)")
            }
            return PendingPurchaseReceipt(record: record, isNew: false)
        }
        if let applied = try store.operation("purchase:" + command.key) {
            guard applied.fingerprint == command.fingerprint else {
                throw SettlementError(.idempotencyConflict, "purchase key '\(command.key)' was already used with other parameters (\(applied.fingerprint))")
            }
            return PendingPurchaseReceipt(record: PurchaseRecord(key: command.key, consumer: command.consumer, amount: command.amount, payer: command.payer,
                                                                 state: .succeeded, createdAt: applied.at), isNew: false)
        }
        guard command.amount.micros > 0 else { throw SettlementError(.invalidAmount, "a purchase must be positive") }
        let record = PurchaseRecord(key: command.key, consumer: command.consumer, amount: command.amount, payer: command.payer, createdAt: command.now)
        try store.savePurchaseRecord(record, isNew: true)
        return PendingPurchaseReceipt(record: record, isNew: true)
    }

    /// Stores the rail's reference (once: another one is a conflict) and moves the state on:
    /// `pending -> succeeded | failed`, `failed -> succeeded` (a payment finished later with another
    /// method); a succeeded purchase stays succeeded. `succeeded` needs the credits applied.
    /// - throws: `unknown_purchase`, `idempotency_conflict` (another reference), `invalid_input`.
    public static func updatePurchase<Store: LedgerStore>(key: String, reference: String?, state: PurchaseRecord.State,
                                                          in store: inout Store) throws -> PurchaseRecord {
        guard var record = try store.purchaseRecord(key) else {
            throw SettlementError(.unknownPurchase, "no purchase through a rail was recorded under '\(key)'")
        }
        let before = record
        if let reference {
            if let stored = record.reference, stored != reference {
                throw SettlementError(.idempotencyConflict, "purchase '\(key)' is paid by \(stored), not \(reference)")
            }
            record.reference = reference
        }
        switch (record.state, state) {
        case (.pending, .succeeded), (.failed, .succeeded):
            guard try store.operation("purchase:" + key) != nil else {
                throw SettlementError(.invalidInput, "purchase '\(key)' cannot be marked paid before its credits are added")
            }
            record.state = .succeeded
        case (.pending, .failed):
            record.state = .failed
        default:
            break
        }
        if record != before { try store.savePurchaseRecord(record, isNew: false) }
        return record
    }

    // MARK: Refunds and disputes

    /// What is left of a purchase to refund or dispute: its amount less every refund and dispute
    /// that still counts (a failed refund gave its amount back).
    static func remaining<Store: LedgerStore>(of purchase: PurchaseRecord, in store: inout Store) throws -> Money {
        var taken = Int128(0)
        for reversal in try store.reversals(ofPurchase: purchase.key) where reversal.counts { taken += Int128(reversal.amount.micros) }
        let left = Int128(purchase.amount.micros) - taken
        guard left >= 0 else { throw SettlementError(.outOfRange, "purchase '\(purchase.key)' has more taken back than its amount") }
        return Money(micros: Int64(left))
    }

    /// A purchase that can be reversed: recorded through a rail, paid and credited.
    static func reversible<Store: LedgerStore>(_ key: String, for what: String, in store: inout Store) throws -> PurchaseRecord {
        guard let purchase = try store.purchaseRecord(key) else {
            throw SettlementError(.unknownPurchase, "no purchase paid through a rail was recorded under '\(key)'")
        }
        guard purchase.state == .succeeded, purchase.reference != nil else {
            throw SettlementError(.invalidInput, "purchase '\(key)' is \(purchase.state): \(what) needs a paid purchase")
        }
        return purchase
    }

    /// Takes a refund's credits back (`available -> refunded`), before the rail is asked: at most
    /// what is left of the purchase, at most `available` (spent credits are not refundable).
    /// - throws: `idempotency_conflict`, `invalid_amount`, `unknown_purchase`, `invalid_input`,
    ///   `insufficient_credits`.
    public static func refund<Store: LedgerStore>(_ command: RefundCommand, in store: inout Store) throws -> ReversalRecord {
        let key = "refund:" + command.key
        if let recorded = try store.reversal(key) {
            guard recorded.fingerprint == command.fingerprint else {
                throw SettlementError(.idempotencyConflict, "refund key '\(command.key)' was already used for \(recorded.amount) of purchase '\(recorded.purchase)'")
            }
            return recorded
        }
        guard command.amount.micros > 0 else { throw SettlementError(.invalidAmount, "a refund must be positive") }
        let purchase = try reversible(command.purchase, for: "a refund", in: &store)
        let left = try remaining(of: purchase, in: &store)
        guard command.amount <= left else {
            throw SettlementError(.invalidAmount, "purchase '\(purchase.key)' of \(purchase.amount) has \(left) left to refund, not \(command.amount)")
        }
        guard var consumer = try store.consumer(purchase.consumer) else {
            throw SettlementError(.unknownConsumer, "the consumer of purchase '\(purchase.key)' has no accounts")
        }
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        guard consumer.available >= command.amount else {
            throw SettlementError(.insufficientCredits, "\(purchase.consumer) has \(consumer.available) available, \(command.amount) asked back: spent credits are not refundable")
        }
        consumer.available = try SettlementMath.subtract(consumer.available, command.amount, "available")
        try store.append(Entry(operation: key, debit: Account(.available, purchase.consumer), credit: Account(.refunded, purchase.consumer),
                               amount: command.amount, at: command.now))
        try save(consumer, isNew: false, in: &store)
        let record = ReversalRecord(key: key, kind: .refund, purchase: purchase.key, consumer: purchase.consumer, amount: command.amount,
                                    fromAvailable: command.amount, loss: .zero, reference: nil, state: .pending, fingerprint: command.fingerprint,
                                    at: command.now)
        try store.saveReversal(record, isNew: true)
        return record
    }

    /// Confirms a refund the rail made (`reference`), or, when the rail refused it, gives its
    /// credits back (`refunded -> available`) and marks it failed. A confirmed or failed refund is
    /// left as it is.
    /// - throws: `invalid_input` when no refund has that key.
    public static func completeRefund<Store: LedgerStore>(key: String, reference: String?, failed: Bool, now: Timestamp,
                                                          in store: inout Store) throws -> ReversalRecord {
        guard var record = try store.reversal(key), record.kind == .refund else {
            throw SettlementError(.invalidInput, "no refund was recorded under '\(key)'")
        }
        guard record.state == .pending else { return record }
        if failed {
            guard var consumer = try store.consumer(record.consumer) else {
                throw SettlementError(.unknownConsumer, "the consumer of refund '\(key)' has no accounts")
            }
            try expireDueHolds(of: &consumer, at: now, in: &store)
            consumer.available = try SettlementMath.add(consumer.available, record.amount, "\(record.consumer)'s available credits")
            try store.append(Entry(operation: key, debit: Account(.refunded, record.consumer), credit: Account(.available, record.consumer),
                                   amount: record.amount, at: now))
            try save(consumer, isNew: false, in: &store)
            record.state = .failed
        } else {
            record.state = .succeeded
            record.reference = reference
        }
        try store.saveReversal(record, isNew: false)
        return record
    }

    /// A lost dispute: the disputed amount leaves the consumer's `available` as far as it goes
    /// (`available -> disputed`), the rest is the platform's loss (`dispute_losses -> disputed`).
    /// Never a negative balance.
    /// - throws: `idempotency_conflict`, `invalid_amount` (beyond what is left of the purchase),
    ///   `unknown_purchase`, `invalid_input`.
    public static func disputeLost<Store: LedgerStore>(_ command: DisputeCommand, in store: inout Store) throws -> ReversalRecord {
        let key = "dispute:" + command.dispute
        if let recorded = try store.reversal(key) {
            guard recorded.fingerprint == command.fingerprint else {
                throw SettlementError(.idempotencyConflict, "dispute '\(command.dispute)' was already recorded for \(recorded.amount) of purchase '\(recorded.purchase)'")
            }
            return recorded
        }
        guard command.amount.micros > 0 else { throw SettlementError(.invalidAmount, "a disputed amount must be positive") }
        let purchase = try reversible(command.purchase, for: "a dispute", in: &store)
        let left = try remaining(of: purchase, in: &store)
        guard command.amount <= left else {
            throw SettlementError(.invalidAmount, "purchase '\(purchase.key)' of \(purchase.amount) has \(left) left, less than the dispute's \(command.amount)")
        }
        guard var consumer = try store.consumer(purchase.consumer) else {
            throw SettlementError(.unknownConsumer, "the consumer of purchase '\(purchase.key)' has no accounts")
        }
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        let fromAvailable = min(consumer.available, command.amount)
        let loss = try SettlementMath.subtract(command.amount, fromAvailable, "the dispute's loss")
        if fromAvailable.micros > 0 {
            consumer.available = try SettlementMath.subtract(consumer.available, fromAvailable, "available")
            try store.append(Entry(operation: key, debit: Account(.available, purchase.consumer), credit: Account(.disputed, purchase.consumer),
                                   amount: fromAvailable, at: command.now))
        }
        if loss.micros > 0 {
            try store.append(Entry(operation: key, debit: Account(.disputeLosses), credit: Account(.disputed, purchase.consumer), amount: loss, at: command.now))
        }
        try save(consumer, isNew: false, in: &store)
        let record = ReversalRecord(key: key, kind: .dispute, purchase: purchase.key, consumer: purchase.consumer, amount: command.amount,
                                    fromAvailable: fromAvailable, loss: loss, reference: command.dispute, state: .succeeded,
                                    fingerprint: command.fingerprint, at: command.now)
        try store.saveReversal(record, isNew: true)
        return record
    }
}
