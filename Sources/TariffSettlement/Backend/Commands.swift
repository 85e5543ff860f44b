import Tariff

// The requests a `SettlementBackend` applies and the results it returns. The lifecycle
// (`Settlement`) builds them from validated input: ids and keys checked, amounts in range, the
// time read from the injected clock, and a fingerprint of the parameters that tells a retry (same
// fingerprint) from a conflicting reuse of a key (another fingerprint).

/// Adds prepaid credits: `purchases -> available`.
public struct PurchaseCommand: Sendable, Hashable {
    /// The caller's idempotency key (stored as `purchase:KEY`).
    public var key: String
    public var fingerprint: String
    public var consumer: String
    /// Positive, whole cents.
    public var amount: Money
    public var now: Timestamp
    public init(key: String, fingerprint: String, consumer: String, amount: Money, now: Timestamp) {
        self.key = key
        self.fingerprint = fingerprint
        self.consumer = consumer
        self.amount = amount
        self.now = now
    }
}

public struct PurchaseReceipt: Sendable, Hashable {
    public var consumer: String
    public var amount: Money
    /// The consumer's `available` right after the purchase.
    public var available: Money
    public init(consumer: String, amount: Money, available: Money) {
        self.consumer = consumer
        self.amount = amount
        self.available = available
    }
}

/// A consumer's credits at one instant: holds past their TTL already count as available.
public struct Balance: Sendable, Hashable {
    public var consumer: String
    public var currency: Currency
    public var available: Money
    public var reserved: Money
    public init(consumer: String, currency: Currency, available: Money, reserved: Money) {
        self.consumer = consumer
        self.currency = currency
        self.available = available
        self.reserved = reserved
    }
}

/// Holds `amount` for one execution: `available -> reserved`, refused when available is short.
public struct ReserveCommand: Sendable, Hashable {
    public var execution: String
    public var fingerprint: String
    public var consumer: String
    public var plan: String
    public var version: Int
    public var periodStart: Timestamp?
    public var amount: Money
    public var expiresAt: Timestamp
    public var now: Timestamp
    /// Keep a refusal for credits (or an unknown consumer) as the execution id's first result, so a
    /// retry is refused the same way whatever happened since (a replay that is rerun after a crash).
    public var recordsRefusal: Bool
    public init(execution: String, fingerprint: String, consumer: String, plan: String, version: Int, periodStart: Timestamp?, amount: Money,
                expiresAt: Timestamp, now: Timestamp, recordsRefusal: Bool = false) {
        self.execution = execution
        self.fingerprint = fingerprint
        self.consumer = consumer
        self.plan = plan
        self.version = version
        self.periodStart = periodStart
        self.amount = amount
        self.expiresAt = expiresAt
        self.now = now
        self.recordsRefusal = recordsRefusal
    }
}

/// A placed hold, as first placed (a retry returns it unchanged).
public struct Hold: Sendable, Hashable {
    public var execution: String
    public var consumer: String
    public var amount: Money
    public var expiresAt: Timestamp
    /// The reserve was refused for credits and the refusal recorded (`recordsRefusal`): nothing is held.
    public var refused: Bool
    public init(execution: String, consumer: String, amount: Money, expiresAt: Timestamp, refused: Bool = false) {
        self.execution = execution
        self.consumer = consumer
        self.amount = amount
        self.expiresAt = expiresAt
        self.refused = refused
    }
}

/// Makes a live hold at least `required` (the running cost of the samples so far).
public struct ExtendCommand: Sendable, Hashable {
    public var execution: String
    public var required: Money
    public var now: Timestamp
    public init(execution: String, required: Money, now: Timestamp) {
        self.execution = execution
        self.required = required
        self.now = now
    }
}

/// The answer to a meter sample.
public struct MeterReceipt: Sendable, Hashable {
    /// The amount held after the sample.
    public var held: Money
    /// The running cost of the samples so far.
    public var running: Money
    /// The running cost passed the hold and `available` could not extend it: stop the run.
    public var exhausted: Bool
    public init(held: Money, running: Money, exhausted: Bool) {
        self.held = held
        self.running = running
        self.exhausted = exhausted
    }
}

/// Settles one execution: its pricing is asked for inside the step, with the period state as
/// stored at that moment.
public struct SettleCommand: Sendable, Hashable {
    public var execution: String
    public var fingerprint: String
    /// The hold's consumer (checked against the stored hold).
    public var consumer: String
    public var agent: String
    public var creator: String
    public var plan: String
    public var version: Int
    /// The period the execution ended in: its state is read, priced against and written back.
    /// nil: the plan keeps no period state (per-call): priced from the empty state, nothing stored.
    public var period: PeriodKey?
    public var endedAt: Timestamp
    public var failed: Bool
    public var now: Timestamp
    /// The period's end lines as a function of its state: a settle into a closed period writes
    /// the adjustments they give (nil: the plan has none, or the caller prices no period end).
    public var periodEnd: PeriodEndPricing? = nil
    public init(execution: String, fingerprint: String, consumer: String, agent: String, creator: String, plan: String, version: Int, period: PeriodKey?,
                endedAt: Timestamp, failed: Bool, now: Timestamp) {
        self.execution = execution
        self.fingerprint = fingerprint
        self.consumer = consumer
        self.agent = agent
        self.creator = creator
        self.plan = plan
        self.version = version
        self.period = period
        self.endedAt = endedAt
        self.failed = failed
        self.now = now
    }
}

/// What pricing an execution gave, for the backend to collect: the engine's result plus the split
/// rule (a charge collected only in part is split again on what was collected).
public struct PricedCharge: Sendable, Hashable {
    public var billed: Money
    /// The shares of `billed`.
    public var split: SplitShares
    public var rule: SplitRule
    public var computeUnits: ComputeUnits
    /// The period state after the execution (unchanged when refused).
    public var state: PeriodState
    public var refusal: Refusal?
    public init(billed: Money, split: SplitShares, rule: SplitRule, computeUnits: ComputeUnits, state: PeriodState, refusal: Refusal?) {
        self.billed = billed
        self.split = split
        self.rule = rule
        self.computeUnits = computeUnits
        self.state = state
        self.refusal = refusal
    }
}

/// What settling an execution did.
public struct SettleReceipt: Sendable, Hashable {
    public var execution: String
    public var consumer: String
    /// The execution's price (0 when refused).
    public var billed: Money
    /// `min(billed, held + available)`: taken from the consumer's credits.
    public var charged: Money
    /// `billed - charged`.
    public var uncollected: Money
    /// The shares of `charged`.
    public var split: SplitShares
    public var computeUnits: ComputeUnits
    /// `no_plan`, `spend_cap` or `out_of_range` when pricing refused the execution (nothing charged).
    public var refusal: Refusal?
    /// What the hold gave back to `available`.
    public var released: Money
    public init(execution: String, consumer: String, billed: Money, charged: Money, uncollected: Money, split: SplitShares,
                computeUnits: ComputeUnits, refusal: Refusal?, released: Money) {
        self.execution = execution
        self.consumer = consumer
        self.billed = billed
        self.charged = charged
        self.uncollected = uncollected
        self.split = split
        self.computeUnits = computeUnits
        self.refusal = refusal
        self.released = released
    }
}

/// Gives a hold back in full: the run never happened.
public struct ReleaseCommand: Sendable, Hashable {
    public var execution: String
    public var now: Timestamp
    public init(execution: String, now: Timestamp) {
        self.execution = execution
        self.now = now
    }
}

public struct ReleaseReceipt: Sendable, Hashable {
    public var execution: String
    public var consumer: String
    public var released: Money
    public init(execution: String, consumer: String, released: Money) {
        self.execution = execution
        self.consumer = consumer
        self.released = released
    }
}

/// Charges a period's lines (the fee at its start; the shortfall and SLA credit at its end) with
/// no hold: a positive line is collected up to `available`, a credit is given back in full.
public struct PeriodChargeCommand: Sendable, Hashable {
    /// `period-start:...` or `period-end:...` (or a caller's key).
    public var key: String
    public var fingerprint: String
    public var consumer: String
    public var agent: String
    public var creator: String
    public var plan: String
    public var version: Int
    public var period: PeriodKey
    public var datedAt: Timestamp
    public var now: Timestamp
    public init(key: String, fingerprint: String, consumer: String, agent: String, creator: String, plan: String, version: Int, period: PeriodKey,
                datedAt: Timestamp, now: Timestamp) {
        self.key = key
        self.fingerprint = fingerprint
        self.consumer = consumer
        self.agent = agent
        self.creator = creator
        self.plan = plan
        self.version = version
        self.period = period
        self.datedAt = datedAt
        self.now = now
    }
}

/// One priced period line (its amount is negative for an SLA credit).
public struct PricedLine: Sendable, Hashable {
    public var kind: ChargeRecord.Kind
    public var amount: Money
    public var split: SplitShares
    public var rule: SplitRule
    public init(kind: ChargeRecord.Kind, amount: Money, split: SplitShares, rule: SplitRule) {
        self.kind = kind
        self.amount = amount
        self.split = split
        self.rule = rule
    }
}

/// The totals of a period charge (the lines themselves are in the ledger's charge records).
public struct PeriodChargeReceipt: Sendable, Hashable {
    public var key: String
    public var consumer: String
    public var billed: Money
    public var charged: Money
    public var uncollected: Money
    public init(key: String, consumer: String, billed: Money, charged: Money, uncollected: Money) {
        self.key = key
        self.consumer = consumer
        self.billed = billed
        self.charged = charged
        self.uncollected = uncollected
    }
}

/// Records a creator's payout for a week from the ledger's balances (settlement.md, "Money that
/// reconciles"): inside one step, `owed = earnings dated before weekEnd - paid out so far (net of
/// what went back)`, floored to the currency's minor unit; recorded (`earnings -> paid_out`) when
/// that is at least `minimum` and above zero. A creator already recorded for the week keeps that
/// record, whatever its amount: `payout:CREATOR:WEEK` is paid once.
public struct PayoutCommand: Sendable, Hashable {
    /// `payout:CREATOR:WEEK`.
    public var key: String
    public var creator: String
    public var weekStart: CivilDate
    public var payDate: CivilDate
    /// Lines dated before this instant count (the week's end).
    public var weekEnd: Timestamp
    /// Below this the amount is not paid (it stays owed).
    public var minimum: Money
    /// The currency's minor unit in micro-units (10,000 for cents, 1,000,000 for whole yen): the
    /// amount is floored to it before anything is recorded.
    public var unitMicros: Int64
    public var now: Timestamp
    public init(key: String, creator: String, weekStart: CivilDate, payDate: CivilDate, weekEnd: Timestamp, minimum: Money, unitMicros: Int64,
                now: Timestamp) {
        self.key = key
        self.creator = creator
        self.weekStart = weekStart
        self.payDate = payDate
        self.weekEnd = weekEnd
        self.minimum = minimum
        self.unitMicros = unitMicros
        self.now = now
    }
}

/// What a payout step found or did.
public struct PayoutStep: Sendable, Hashable {
    /// The week's record: the one already there, or the one just written; nil when nothing was due.
    public var record: PayoutRecord?
    /// The record was written by this step (false: it was already there, from an earlier run).
    public var created: Bool
    public init(record: PayoutRecord?, created: Bool) {
        self.record = record
        self.created = created
    }
}

/// Which charge records to read (usage reports, payouts): all bounds optional, `[from, to)` by `datedAt`.
public struct ChargeQuery: Sendable, Hashable {
    public var consumer: String?
    public var creator: String?
    public var from: Timestamp?
    public var to: Timestamp?
    public init(consumer: String? = nil, creator: String? = nil, from: Timestamp? = nil, to: Timestamp? = nil) {
        self.consumer = consumer
        self.creator = creator
        self.from = from
        self.to = to
    }

    public func matches(_ record: ChargeRecord) -> Bool {
        if let consumer, record.consumer != consumer { return false }
        if let creator, record.creator != creator { return false }
        if let from, record.datedAt < from { return false }
        if let to, !(record.datedAt < to) { return false }
        return true
    }
}
