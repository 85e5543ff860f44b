import Tariff

/// The rows of a ledger, read and written inside one transaction: what a backend over a
/// transactional store provides so that `LedgerSteps` can run every lifecycle step on it.
///
/// The backend opens a transaction (or a savepoint), hands the store to one `LedgerSteps`
/// function, and commits when it returns or rolls everything back when it throws: the function may
/// have written some rows before a later check failed.
public protocol LedgerStore {
    var currency: Currency { get }
    mutating func consumer(_ id: String) throws -> ConsumerRecord?
    mutating func saveConsumer(_ record: ConsumerRecord, isNew: Bool) throws
    mutating func hold(_ execution: String) throws -> HoldRecord?
    mutating func saveHold(_ record: HoldRecord, isNew: Bool) throws
    /// Active holds with `expiresAt <= now`, of one consumer (or of all when nil), by execution id.
    mutating func expiredHolds(consumer: String?, at now: Timestamp) throws -> [HoldRecord]
    mutating func periodState(_ key: String) throws -> PeriodState?
    mutating func savePeriodState(_ key: String, _ state: PeriodState) throws
    mutating func operation(_ key: String) throws -> OperationRecord?
    mutating func saveOperation(_ record: OperationRecord) throws
    mutating func payout(_ key: String) throws -> PayoutRecord?
    mutating func savePayout(_ record: PayoutRecord, isNew: Bool) throws
    /// The creator shares of every charge line of `creator` dated before `before`, summed exactly.
    mutating func creatorEarnings(_ creator: String, before: Timestamp) throws -> Int128
    /// What `creator`'s payouts paid, net of what went back (`amount - returned`, summed exactly).
    mutating func netPaidOut(_ creator: String) throws -> Int128
    /// The hold on a creator's payouts, if any.
    mutating func creatorHold(_ creator: String) throws -> CreatorHold?
    /// Places (or replaces) a hold on a creator's payouts.
    mutating func saveCreatorHold(_ hold: CreatorHold) throws
    /// Lifts the hold on a creator's payouts; whether there was one.
    mutating func removeCreatorHold(_ creator: String) throws -> Bool
    /// Appends an entry; the store assigns its sequence.
    mutating func append(_ entry: Entry) throws
    /// Appends a charge record; the store assigns its sequence.
    mutating func append(_ charge: ChargeRecord) throws
    /// A purchase paid through a rail, by its key (`PurchaseRecord`).
    mutating func purchaseRecord(_ key: String) throws -> PurchaseRecord?
    mutating func savePurchaseRecord(_ record: PurchaseRecord, isNew: Bool) throws
    /// A refund or dispute by its key (`refund:KEY`, `dispute:ID`).
    mutating func reversal(_ key: String) throws -> ReversalRecord?
    /// Every refund and dispute of one purchase.
    mutating func reversals(ofPurchase key: String) throws -> [ReversalRecord]
    mutating func saveReversal(_ record: ReversalRecord, isNew: Bool) throws
    /// A billing period registered or closed (`PeriodCloseRecord`), by its state's key.
    mutating func periodClose(_ key: String) throws -> PeriodCloseRecord?
    mutating func savePeriodClose(_ record: PeriodCloseRecord, isNew: Bool) throws
    /// What the consumer still owes: the uncollected of its charge lines, summed exactly.
    mutating func consumerUncollected(_ consumer: String) throws -> Int128
    /// A subscription by its id (`SubscriptionRecord`).
    mutating func subscription(_ id: String) throws -> SubscriptionRecord?
    /// Every subscription of a consumer, whatever its state.
    mutating func subscriptions(consumer: String) throws -> [SubscriptionRecord]
    mutating func saveSubscription(_ record: SubscriptionRecord, isNew: Bool) throws
}
