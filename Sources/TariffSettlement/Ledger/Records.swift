import Tariff

/// A consumer's running balances (checked against the entries by `verify`).
public struct ConsumerRecord: Sendable, Hashable {
    public var id: String
    public var available: Money
    public var reserved: Money
    public init(id: String, available: Money = .zero, reserved: Money = .zero) {
        self.id = id
        self.available = available
        self.reserved = reserved
    }
}

/// The billing period an execution's period state belongs to: one per consumer, plan id and
/// period start (nil: a plan without periods, such as per-call, keeps one state for good).
public struct PeriodKey: Sendable, Hashable, CustomStringConvertible {
    public var consumer: String
    public var plan: String
    public var start: Timestamp?

    public init(consumer: String, plan: String, start: Timestamp?) {
        self.consumer = consumer
        self.plan = plan
        self.start = start
    }

    /// The storage key. Ids never hold control characters (validated), so U+001F separates them unambiguously.
    public var rawValue: String { "\(consumer)\u{1F}\(plan)\u{1F}\(start.map { String($0.nanosecondsSinceEpoch) } ?? "-")" }

    public var description: String { "\(consumer)/\(plan)/\(start?.rfc3339 ?? "-")" }
}

/// A hold on a consumer's credits for one execution, and how it ended.
public struct HoldRecord: Sendable, Hashable {
    public enum State: Int, Sendable, Hashable, CustomStringConvertible {
        case active = 0, settled, released, expired
        /// Refused for credits, and the refusal kept as the key's first result (`recordsRefusal`).
        case refused
        public var description: String { ["active", "settled", "released", "expired", "refused"][rawValue] }
    }

    /// The execution id: the idempotency key of reserve, settle and release.
    public var execution: String
    public var consumer: String
    public var plan: String
    public var version: Int
    /// The period the run was reserved in (its meter samples are priced there).
    public var periodStart: Timestamp?
    /// The amount first held (the estimate).
    public var estimate: Money
    /// The amount held now (the estimate plus extensions from meter samples).
    public var amount: Money
    public var createdAt: Timestamp
    public var expiresAt: Timestamp
    public var state: State
    /// The reserve's parameters, to tell a retry from a conflicting reuse of the id.
    public var fingerprint: String
    /// The settle's or release's parameters, once closed by one of them.
    public var closingFingerprint: String?
    /// The settle's result, once settled.
    public var outcome: SettleReceipt?
    public var closedAt: Timestamp?

    public init(execution: String, consumer: String, plan: String, version: Int, periodStart: Timestamp?, estimate: Money, amount: Money,
                createdAt: Timestamp, expiresAt: Timestamp, state: State, fingerprint: String, closingFingerprint: String? = nil,
                outcome: SettleReceipt? = nil, closedAt: Timestamp? = nil) {
        self.execution = execution
        self.consumer = consumer
        self.plan = plan
        self.version = version
        self.periodStart = periodStart
        self.estimate = estimate
        self.amount = amount
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.state = state
        self.fingerprint = fingerprint
        self.closingFingerprint = closingFingerprint
        self.outcome = outcome
        self.closedAt = closedAt
    }

    /// Whether the hold still holds funds at `now` (a hold is gone at its expiry instant).
    public func isLive(at now: Timestamp) -> Bool { state == .active && now < expiresAt }
}

/// One charge line as the ledger keeps it: what was billed, what was collected from credits, its
/// three shares (of the collected amount) and what it is dated by (payout weeks, usage windows).
public struct ChargeRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case execution, fee, shortfall
        case slaCredit = "sla_credit"
        /// A late execution in a closed period: the shortfall it credits back (negative), dated at
        /// the period's end (settlement.md, "Periods close").
        case shortfallAdjustment = "shortfall_adjustment"
        /// The difference of a closed period's SLA credit recomputed with a late execution.
        case slaAdjustment = "sla_adjustment"

        /// Written by a late settle into a closed period, not under a period key.
        public var isAdjustment: Bool { self == .shortfallAdjustment || self == .slaAdjustment }
    }

    /// Position in the ledger, assigned on append.
    public var sequence: Int64
    /// The operation that wrote it (`settle:exe_1`, `period-start:...`).
    public var operation: String
    public var kind: Kind
    public var consumer: String
    public var agent: String
    public var creator: String
    public var plan: String
    public var version: Int
    /// The execution id of an execution line.
    public var execution: String?
    public var computeUnits: ComputeUnits
    /// The line as priced (negative for an SLA credit).
    public var billed: Money
    /// What was taken from (or, for a credit, given back to) the consumer's credits.
    public var charged: Money
    /// `billed - charged`: billed beyond the credits, reported, never a negative balance.
    public var uncollected: Money
    /// The shares of `charged`; they add up to it exactly.
    public var split: SplitShares
    /// A failed execution (free unless the model bills failures).
    public var failed: Bool
    /// An execution's `ended_at`, a fee's period start, a period-end line's period end.
    public var datedAt: Timestamp

    public init(sequence: Int64 = 0, operation: String, kind: Kind, consumer: String, agent: String, creator: String, plan: String, version: Int,
                execution: String?, computeUnits: ComputeUnits, billed: Money, charged: Money, uncollected: Money, split: SplitShares,
                failed: Bool, datedAt: Timestamp) {
        self.sequence = sequence
        self.operation = operation
        self.kind = kind
        self.consumer = consumer
        self.agent = agent
        self.creator = creator
        self.plan = plan
        self.version = version
        self.execution = execution
        self.computeUnits = computeUnits
        self.billed = billed
        self.charged = charged
        self.uncollected = uncollected
        self.split = split
        self.failed = failed
        self.datedAt = datedAt
    }
}

/// An applied operation that is not a hold (purchases, period charges): its key, the fingerprint
/// of its parameters and its result, so a retry returns the first result.
public struct OperationRecord: Sendable, Hashable {
    /// Namespaced: `purchase:KEY`, `period-start:...`, `period-end:...`.
    public var key: String
    public var fingerprint: String
    /// The result's amounts in micro-units, in the order the operation defines.
    public var result: [Int64]
    public var at: Timestamp

    public init(key: String, fingerprint: String, result: [Int64], at: Timestamp) {
        self.key = key
        self.fingerprint = fingerprint
        self.result = result
        self.at = at
    }
}

/// A creator's recorded payout for one week (`payout:CREATOR:WEEK`), and how far it went.
///
/// A payout is recorded (`earnings -> paid_out`) before its transfer is sent; the rail's reference
/// confirms it. A transfer the rail refused (`failure`) or reversed later gives its amount back to
/// the creator's earnings by a compensating entry (`paid_out -> earnings`): `returned` is what went
/// back, so what the creator was paid, net, is `amount - returned`.
public struct PayoutRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Recorded in the ledger; the rail has not confirmed the transfer.
        case recorded
        /// Recorded and confirmed by the rail.
        case paid
        /// The rail refused the transfer: its amount went back to earnings.
        case failed
    }

    public var key: String
    public var creator: String
    public var weekStart: CivilDate
    public var payDate: CivilDate
    public var amount: Money
    public var recordedAt: Timestamp
    /// The rail's reference once sent (nil: recorded in the ledger, not yet confirmed sent).
    public var reference: String?
    /// Why the rail refused the transfer (nil unless `failed`).
    public var failure: String?
    /// What compensating entries gave back to earnings (a refusal: all of it; a reversal: what was reversed).
    public var returned: Money

    public init(key: String, creator: String, weekStart: CivilDate, payDate: CivilDate, amount: Money, recordedAt: Timestamp, reference: String? = nil,
                failure: String? = nil, returned: Money = .zero) {
        self.key = key
        self.creator = creator
        self.weekStart = weekStart
        self.payDate = payDate
        self.amount = amount
        self.recordedAt = recordedAt
        self.reference = reference
        self.failure = failure
        self.returned = returned
    }

    public var status: Status { failure != nil ? .failed : reference != nil ? .paid : .recorded }

    /// What the creator was paid by this payout, net of what went back (never negative: `returned <= amount`).
    public var netAmount: Money { Money(micros: amount.micros - returned.micros) }
}

/// A creator whose payouts are held (a transfer was reversed: a clawback is not paid straight
/// back): later runs skip the creator until an admin releases it.
public struct CreatorHold: Sendable, Hashable {
    public var creator: String
    public var reason: String
    public var since: Timestamp
    public init(creator: String, reason: String, since: Timestamp) {
        self.creator = creator
        self.reason = reason
        self.since = since
    }
}

/// The period state stored under a key.
public struct PeriodRecord: Sendable, Hashable {
    public var key: String
    public var state: PeriodState
    public init(key: String, state: PeriodState) {
        self.key = key
        self.state = state
    }
}

/// Every row of a ledger, in a stable order: what `verify` checks and what tests compare to show
/// that a refused operation changed nothing.
public struct LedgerSnapshot: Sendable, Hashable {
    public var currency: Currency
    /// By id.
    public var consumers: [ConsumerRecord]
    /// By execution id.
    public var holds: [HoldRecord]
    /// By sequence.
    public var entries: [Entry]
    /// By sequence.
    public var charges: [ChargeRecord]
    /// By key.
    public var operations: [OperationRecord]
    /// By key.
    public var payouts: [PayoutRecord]
    /// By key.
    public var periods: [PeriodRecord]
    /// Purchases paid through a rail, by key.
    public var purchases: [PurchaseRecord]
    /// Refunds and disputes, by key.
    public var reversals: [ReversalRecord]
    /// Every registered or closed billing period, by key.
    public var closes: [PeriodCloseRecord] = []
    /// Every subscription, by id.
    public var subscriptions: [SubscriptionRecord] = []

    public init(currency: Currency, consumers: [ConsumerRecord] = [], holds: [HoldRecord] = [], entries: [Entry] = [], charges: [ChargeRecord] = [],
                operations: [OperationRecord] = [], payouts: [PayoutRecord] = [], periods: [PeriodRecord] = [], purchases: [PurchaseRecord] = [],
                reversals: [ReversalRecord] = []) {
        self.currency = currency
        self.consumers = consumers
        self.holds = holds
        self.entries = entries
        self.charges = charges
        self.operations = operations
        self.payouts = payouts
        self.periods = periods
        self.purchases = purchases
        self.reversals = reversals
    }

    /// Each account's balance (`credits - debits`), derived from the entries alone.
    public var balances: [Account: Int128] {
        var balances: [Account: Int128] = [:]
        for entry in entries {
            balances[entry.debit, default: 0] -= Int128(entry.amount.micros)
            balances[entry.credit, default: 0] += Int128(entry.amount.micros)
        }
        return balances
    }
}
