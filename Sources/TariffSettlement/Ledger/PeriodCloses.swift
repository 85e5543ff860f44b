import Tariff

/// A subscription or enterprise period as the ledger knows it (settlement.md, "Periods close"):
/// registered when its fee is charged (open, with its scheduled end), closed when its end lines
/// (commitment shortfall, SLA credit) are charged, at its end plus `late_usage_grace` (a replay:
/// at its end). After the close, `shortfall` and `slaCredit` follow the period's adjustment lines:
/// a late execution credits back shortfall and recomputes the SLA credit.
public struct PeriodCloseRecord: Sendable, Hashable {
    /// `PeriodKey.rawValue` (the key of the period's state).
    public var key: String
    public var consumer: String
    public var plan: String
    public var version: Int
    public var agent: String
    public var creator: String
    public var start: Timestamp
    /// The period's end (its end lines and adjustments are dated here).
    public var end: Timestamp
    /// When it was closed; nil while open.
    public var closedAt: Timestamp?
    /// The fees its end lines are computed over.
    public var fees: Money
    /// The plan's commitment rounded half-even to micro-units (nil: the plan has none).
    public var commitment: Money?
    /// The shortfall charged at the close, less what adjustments credited back.
    public var shortfall: Money
    /// The SLA credit (zero or negative) as last recomputed.
    public var slaCredit: Money

    public init(key: String, consumer: String, plan: String, version: Int, agent: String, creator: String, start: Timestamp, end: Timestamp,
                closedAt: Timestamp? = nil, fees: Money, commitment: Money?, shortfall: Money = .zero, slaCredit: Money = .zero) {
        self.key = key
        self.consumer = consumer
        self.plan = plan
        self.version = version
        self.agent = agent
        self.creator = creator
        self.start = start
        self.end = end
        self.closedAt = closedAt
        self.fees = fees
        self.commitment = commitment
        self.shortfall = shortfall
        self.slaCredit = slaCredit
    }

    public var isClosed: Bool { closedAt != nil }
}

/// Closes a period: charges its end lines (`period`, computed inside the step from its state) and
/// records it closed, in one step.
public struct PeriodCloseCommand: Sendable, Hashable {
    public var charge: PeriodChargeCommand
    /// What the period is registered as (used when it was not registered before).
    public var record: PeriodCloseRecord
    public init(charge: PeriodChargeCommand, record: PeriodCloseRecord) {
        self.charge = charge
        self.record = record
    }
}

/// A period's end lines as a function of its state and fees: what a settle into a closed period
/// recomputes them with (the adjustments are the differences). Compared by `identity` (plan and
/// version): the function is the catalog's, the same for one plan version.
public struct PeriodEndPricing: Sendable, Hashable {
    public let identity: String
    public let rule: SplitRule
    public let lines: @Sendable (PeriodState, Money) throws -> [PricedLine]

    public init(identity: String, rule: SplitRule, lines: @escaping @Sendable (PeriodState, Money) throws -> [PricedLine]) {
        self.identity = identity
        self.rule = rule
        self.lines = lines
    }

    public static func == (lhs: PeriodEndPricing, rhs: PeriodEndPricing) -> Bool { lhs.identity == rhs.identity }
    public func hash(into hasher: inout Hasher) { hasher.combine(identity) }
}

/// One adjustment line, computed before it is written (PostgreSQL computes them in Swift and
/// hands them to its function).
public struct AdjustmentLine: Sendable, Hashable {
    public var kind: ChargeRecord.Kind
    public var billed: Money
    public var charged: Money
    public var uncollected: Money
    public var split: SplitShares
}

extension LedgerSteps {
    /// Registers an open period (idempotent: a period already registered or closed is kept as it is).
    public static func openPeriod<Store: LedgerStore>(_ record: PeriodCloseRecord, in store: inout Store) throws -> PeriodCloseRecord {
        if let existing = try store.periodClose(record.key) { return existing }
        var open = record
        open.closedAt = nil
        open.shortfall = .zero
        open.slaCredit = .zero
        try store.savePeriodClose(open, isNew: true)
        return open
    }

    /// Charges a period's end lines and records it closed, in one step. A period closed already
    /// answers its first result (the lines are keyed by `period-end:...`). A ledger upgraded from
    /// before closes (its end lines charged, no record): nothing more is recorded.
    public static func closePeriod<Store: LedgerStore>(_ command: PeriodCloseCommand, lines: (PeriodState) throws -> [PricedLine],
                                                      in store: inout Store) throws -> PeriodChargeReceipt {
        // A period closes once: another key for a closed period is refused before anything is charged.
        if let closed = try store.periodClose(command.record.key), closed.isClosed, try store.operation(command.charge.key) == nil {
            throw SettlementError(.idempotencyConflict, "the period \(closed.consumer)/\(closed.plan)/\(closed.start.rfc3339) was already closed at \(closed.closedAt?.rfc3339 ?? "?")")
        }
        var computed: [PricedLine]?
        let receipt = try chargePeriod(command.charge, lines: { state in
            let priced = try lines(state)
            computed = priced
            return priced
        }, in: &store)
        let existing = try store.periodClose(command.record.key)
        guard let computed, existing?.isClosed != true else { return receipt }
        var record = existing ?? command.record
        // Its actual end (a replaced subscription's period ends at the replacement): the lines are dated there.
        record.end = command.record.end
        record.closedAt = command.charge.now
        record.shortfall = try sum(computed, .shortfall)
        record.slaCredit = try sum(computed, .slaCredit)
        try store.savePeriodClose(record, isNew: existing == nil)
        // The state is written (as read) so that every backend's rows agree: PostgreSQL bumps the
        // state's version at a close, so a settle priced against an open period goes stale.
        let stateKey = command.charge.period.rawValue
        try store.savePeriodState(stateKey, try store.periodState(stateKey) ?? .empty)
        return receipt
    }

    static func sum(_ lines: [PricedLine], _ kind: ChargeRecord.Kind) throws -> Money {
        var total = Money.zero
        for line in lines where line.kind == kind { total = try SettlementMath.add(total, line.amount, "the period's \(kind.rawValue)") }
        return total
    }

    /// The adjustment lines of a late execution into a closed period (settlement.md, "Periods
    /// close"): the end lines recomputed with the period's new state (`target`) less what the
    /// period holds (`record`), per kind. A credit-back first reduces what the consumer still owes
    /// (`owed`, the uncollected of its lines) and only then adds to available; a positive
    /// difference is collected from `available`, the rest uncollected. The split of an adjustment
    /// is `split(new total) - split(old total)` of its kind (shares never drift by rounding), or,
    /// when part of it goes to what the consumer owes, the split of the part that moves credits.
    public static func adjustments(record: PeriodCloseRecord, target: [PricedLine], rule: SplitRule, owed: Int128,
                                   available: Money) throws -> (lines: [AdjustmentLine], shortfall: Money, slaCredit: Money) {
        let newShortfall = try sum(target, .shortfall), newCredit = try sum(target, .slaCredit)
        var lines: [AdjustmentLine] = []
        var owedLeft = max(owed, 0), coverable = available
        for (kind, old, new) in [(ChargeRecord.Kind.shortfallAdjustment, record.shortfall, newShortfall),
                                 (.slaAdjustment, record.slaCredit, newCredit)] where old != new {
            let difference = try SettlementMath.subtract(new, old, "the period's adjustment")
            let oldSplit = rule.allocate(old), newSplit = rule.allocate(new)
            var split = SplitShares(creator: try SettlementMath.subtract(newSplit.creator, oldSplit.creator, "a share"),
                                    platform: try SettlementMath.subtract(newSplit.platform, oldSplit.platform, "a share"),
                                    processing: try SettlementMath.subtract(newSplit.processing, oldSplit.processing, "a share"))
            if difference.micros < 0 {
                // A credit-back: first what the consumer owes, then available.
                let credit = Int128(-difference.micros)
                let toOwed = min(credit, owedLeft)
                owedLeft -= toOwed
                let charged = Money(micros: Int64(-(credit - toOwed)))
                if toOwed > 0 { split = rule.allocate(charged) }
                coverable = try SettlementMath.subtract(coverable, charged, "available")
                lines.append(AdjustmentLine(kind: kind, billed: difference, charged: charged, uncollected: Money(micros: Int64(-toOwed)), split: split))
            } else {
                let collected = SettlementMath.collect(billed: difference, split: split, rule: rule, coverable: coverable)
                coverable = try SettlementMath.subtract(coverable, collected.charged, "available")
                lines.append(AdjustmentLine(kind: kind, billed: difference, charged: collected.charged, uncollected: collected.uncollected,
                                            split: collected.split))
            }
        }
        return (lines, newShortfall, newCredit)
    }

    /// Writes a late settle's adjustment lines (`adjust:EXECUTION`, dated at the period's end) and
    /// their entries, and updates the period's record and the consumer's available credits.
    static func applyAdjustments<Store: LedgerStore>(_ command: SettleCommand, pricing: PeriodEndPricing, state: PeriodState,
                                                     record found: PeriodCloseRecord, consumer: inout ConsumerRecord,
                                                     in store: inout Store) throws {
        var record = found
        let target = try pricing.lines(state, record.fees)
        let owed = try store.consumerUncollected(consumer.id)
        let adjusted = try adjustments(record: record, target: target, rule: pricing.rule, owed: owed, available: consumer.available)
        guard !adjusted.lines.isEmpty else { return }
        let operation = "adjust:" + command.execution
        for line in adjusted.lines {
            consumer.available = try SettlementMath.subtract(consumer.available, line.charged, "available")
            for entry in SettlementMath.shareEntries(consumer: consumer.id, creator: record.creator, split: line.split, operation: operation, at: command.now) {
                try store.append(entry)
            }
            if line.uncollected.micros > 0 {
                try store.append(Entry(operation: operation, debit: Account(.uncollected, consumer.id), credit: Account(.writtenOff),
                                       amount: line.uncollected, at: command.now))
            } else if line.uncollected.micros < 0 {
                try store.append(Entry(operation: operation, debit: Account(.writtenOff), credit: Account(.uncollected, consumer.id),
                                       amount: Money(micros: -line.uncollected.micros), at: command.now))
            }
            try store.append(ChargeRecord(operation: operation, kind: line.kind, consumer: record.consumer, agent: record.agent, creator: record.creator,
                                          plan: record.plan, version: record.version, execution: command.execution, computeUnits: .zero,
                                          billed: line.billed, charged: line.charged, uncollected: line.uncollected, split: line.split, failed: false,
                                          datedAt: record.end))
        }
        record.shortfall = adjusted.shortfall
        record.slaCredit = adjusted.slaCredit
        try store.savePeriodClose(record, isNew: false)
    }
}
