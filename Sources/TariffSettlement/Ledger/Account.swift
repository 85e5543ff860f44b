import Tariff

/// One account of the double-entry ledger: a kind and its owner (a consumer, a creator, or the
/// platform, whose accounts have an empty owner).
///
/// A balance is `credits - debits` of the entries that name the account. Settlement.md's accounts
/// are all here; two more close the books: `purchases`, where bought credits come from (money
/// from outside, so its balance is minus what was bought), and `writtenOff`, the counterpart of
/// what was billed but not collected.
public struct Account: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Kind: Int, Sendable, CaseIterable, CustomStringConvertible {
        /// A consumer's outside money: debited by every purchase.
        case purchases = 0
        /// A consumer's spendable credits.
        case available = 1
        /// A consumer's credits held for runs in progress.
        case reserved = 2
        /// A creator's share of every collected line, until paid out.
        case earnings = 3
        /// What a creator was paid (weekly payouts).
        case paidOut = 4
        /// The platform's share.
        case platform = 5
        /// The payment processing share.
        case processing = 6
        /// What a consumer was billed beyond its credits: debited, never taken from a balance.
        case uncollected = 7
        /// The counterpart of `uncollected`: revenue the platform did not collect.
        case writtenOff = 8
        // Reversals (settlement.md, "Money that reconciles"), numbered from 20 so that kinds added
        // by other work in between never collide with stored values.
        /// Credits given back to the card they came from: refunds of a consumer's purchases.
        case refunded = 20
        /// What lost disputes took back from a consumer's purchases (from `available`, and the
        /// platform's loss beyond it).
        case disputed = 21
        /// The platform's loss: the part of a lost dispute the consumer's `available` could not cover.
        case disputeLosses = 22

        public var description: String {
            switch self {
            case .purchases: "purchases"
            case .available: "available"
            case .reserved: "reserved"
            case .earnings: "earnings"
            case .paidOut: "paid_out"
            case .platform: "platform"
            case .processing: "processing"
            case .uncollected: "uncollected"
            case .writtenOff: "written_off"
            case .refunded: "refunded"
            case .disputed: "disputed"
            case .disputeLosses: "dispute_losses"
            }
        }
    }

    public var kind: Kind
    /// The consumer or creator id; empty for the platform's own accounts.
    public var owner: String

    public init(_ kind: Kind, _ owner: String = "") {
        self.kind = kind
        self.owner = owner
    }

    // Owners are ids: equal, hashed and ordered as UTF-8 bytes (usage.md), as the databases do.
    public static func == (lhs: Account, rhs: Account) -> Bool { lhs.kind == rhs.kind && lhs.owner.bytesEqual(rhs.owner) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(ByteKey(owner))
    }

    public static func < (lhs: Account, rhs: Account) -> Bool {
        lhs.kind.rawValue != rhs.kind.rawValue ? lhs.kind.rawValue < rhs.kind.rawValue : lhs.owner.bytesPrecede(rhs.owner)
    }

    /// `available:cus_1`, `platform`.
    public var description: String { owner.isEmpty ? kind.description : "\(kind):\(owner)" }
}

/// One ledger entry: `amount` moves from `debit` to `credit`. Every entry balances by construction
/// (one debit, one credit, the same amount), amounts are positive, and entries are only appended.
public struct Entry: Sendable, Hashable {
    /// Position in the ledger, assigned by the backend when the entry is appended (1, 2, ...).
    public var sequence: Int64
    /// The operation that wrote it (`reserve:exe_1`, `settle:exe_1`, `purchase:KEY`, ...).
    public var operation: String
    public var debit: Account
    public var credit: Account
    /// Always > 0: a negative line (an SLA credit) is written as an entry the other way round.
    public var amount: Money
    public var at: Timestamp

    public init(sequence: Int64 = 0, operation: String, debit: Account, credit: Account, amount: Money, at: Timestamp) {
        self.sequence = sequence
        self.operation = operation
        self.debit = debit
        self.credit = credit
        self.amount = amount
        self.at = at
    }
}
