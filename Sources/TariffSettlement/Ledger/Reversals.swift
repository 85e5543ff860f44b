import Tariff

// Purchases paid through a rail, and money that goes back (settlement.md, "Money that reconciles").

/// A purchase paid through a payment rail, written to the ledger **before** the card is charged.
///
/// Why before: a purchase whose charge succeeded but whose answer was lost (a crash, a timeout) must
/// never be charged again by a rerun, even after Stripe's 24 h idempotency window. The record holds
/// the key, what was asked and, as soon as the rail answers, the rail's reference (`pi_...`); a
/// rerun that finds it `pending` looks the payment up on the rail before charging again.
/// The credits themselves are the ordinary `purchase:KEY` operation, added once.
public struct PurchaseRecord: Sendable, Hashable {
    public enum State: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Recorded, not yet confirmed paid: no credit added.
        case pending = 0
        /// Paid and credited (`purchase:KEY` applied).
        case succeeded = 1
        /// Declined by the rail: nothing was added, and a rerun does not charge again.
        case failed = 2
        public var description: String { ["pending", "succeeded", "failed"][rawValue] }

        /// Stored numbers read back: an unknown one fails loudly rather than passing as a default.
        /// - throws: `storage`.
        public static func stored(_ value: Int) throws -> State {
            guard let state = State(rawValue: value) else { throw SettlementError(.storage, "a purchase row holds an unknown state \(value)") }
            return state
        }
    }

    /// The caller's key (the credits are `purchase:KEY`).
    public var key: String
    public var consumer: String
    public var amount: Money
    /// Who pays on the rail (`cus_...`): a payment of another customer is never credited.
    public var payer: String
    /// The rail's payment (`pi_...`), stored as soon as the rail answered.
    public var reference: String?
    public var state: State
    public var createdAt: Timestamp

    public init(key: String, consumer: String, amount: Money, payer: String, reference: String? = nil, state: State = .pending, createdAt: Timestamp) {
        self.key = key
        self.consumer = consumer
        self.amount = amount
        self.payer = payer
        self.reference = reference
        self.state = state
        self.createdAt = createdAt
    }
}

/// Money that went back from a purchase: a refund (asked by the platform) or a lost dispute (taken
/// by the card's bank).
public struct ReversalRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case refund, dispute

        /// - throws: `storage` for a stored value this version does not know.
        public static func stored(_ value: String) throws -> Kind {
            guard let kind = Kind(rawValue: value) else { throw SettlementError(.storage, "a reversal row holds an unknown kind '\(SafeText.escaping(value))'") }
            return kind
        }
    }

    public enum State: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Recorded in the ledger (credits taken), not yet confirmed by the rail.
        case pending = 0
        /// Confirmed by the rail (a refund's `re_...`), or a dispute (final when recorded).
        case succeeded = 1
        /// The rail refused the refund: its amount went back to `available` (a compensating entry).
        case failed = 2
        public var description: String { ["pending", "succeeded", "failed"][rawValue] }

        /// - throws: `storage` for a stored value this version does not know.
        public static func stored(_ value: Int) throws -> State {
            guard let state = State(rawValue: value) else { throw SettlementError(.storage, "a reversal row holds an unknown state \(value)") }
            return state
        }
    }

    /// `refund:KEY` or `dispute:DISPUTE_ID`: the idempotency key and the entries' operation.
    public var key: String
    public var kind: Kind
    /// The purchase's key.
    public var purchase: String
    public var consumer: String
    /// The amount taken back from the purchase.
    public var amount: Money
    /// What came out of the consumer's `available` (all of a refund; of a dispute, as far as it went).
    public var fromAvailable: Money
    /// The rest of a lost dispute: the platform's loss (`dispute_losses`).
    public var loss: Money
    /// The rail's reference (`re_...`, `dp_...`) once known; a failed refund's reason.
    public var reference: String?
    public var state: State
    /// The parameters, to tell a retry from a conflicting reuse of the key.
    public var fingerprint: String
    public var at: Timestamp

    public init(key: String, kind: Kind, purchase: String, consumer: String, amount: Money, fromAvailable: Money, loss: Money, reference: String?,
                state: State, fingerprint: String, at: Timestamp) {
        self.key = key
        self.kind = kind
        self.purchase = purchase
        self.consumer = consumer
        self.amount = amount
        self.fromAvailable = fromAvailable
        self.loss = loss
        self.reference = reference
        self.state = state
        self.fingerprint = fingerprint
        self.at = at
    }

    /// Whether it still takes money back from its purchase (a failed refund gave it back).
    public var counts: Bool { state != .failed }
}

/// Records a purchase as pending before its rail is called.
public struct PendingPurchaseCommand: Sendable, Hashable {
    public var key: String
    /// The same fingerprint as the credits' `PurchaseCommand`: a key applied without the rail
    /// (`tariff ledger purchase` with no rail) and with the same parameters is the same purchase.
    public var fingerprint: String
    public var consumer: String
    public var amount: Money
    public var payer: String
    public var now: Timestamp
    public init(key: String, fingerprint: String, consumer: String, amount: Money, payer: String, now: Timestamp) {
        self.key = key
        self.fingerprint = fingerprint
        self.consumer = consumer
        self.amount = amount
        self.payer = payer
        self.now = now
    }
}

/// What `beginPurchase` found or wrote.
public struct PendingPurchaseReceipt: Sendable, Hashable {
    public var record: PurchaseRecord
    /// Written by this call: nothing can have been sent to the rail for it yet.
    public var isNew: Bool
    public init(record: PurchaseRecord, isNew: Bool) {
        self.record = record
        self.isNew = isNew
    }
}

/// Takes credits back for a refund (`available -> refunded`).
public struct RefundCommand: Sendable, Hashable {
    /// The caller's key (stored as `refund:KEY`).
    public var key: String
    public var purchase: String
    public var amount: Money
    public var now: Timestamp
    public init(key: String, purchase: String, amount: Money, now: Timestamp) {
        self.key = key
        self.purchase = purchase
        self.amount = amount
        self.now = now
    }
    public var fingerprint: String { "refund;purchase=\(purchase);amount=\(amount.micros)" }
}

/// Records a lost dispute of a purchase's payment.
public struct DisputeCommand: Sendable, Hashable {
    /// The rail's dispute id (`dp_...`): stored as `dispute:ID`.
    public var dispute: String
    public var purchase: String
    public var amount: Money
    public var now: Timestamp
    public init(dispute: String, purchase: String, amount: Money, now: Timestamp) {
        self.dispute = dispute
        self.purchase = purchase
        self.amount = amount
        self.now = now
    }
    public var fingerprint: String { "dispute;purchase=\(purchase);amount=\(amount.micros)" }
}
