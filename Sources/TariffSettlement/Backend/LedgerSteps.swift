import Tariff

/// The reference semantics of every lifecycle step (the contract of `SettlementBackend`), written
/// once over a `LedgerStore`. Call each inside one transaction: commit when it returns, roll back
/// when it throws.
///
/// Entries are written so that no running balance is ever negative between two entries of a step:
/// a settle first gives the whole hold back to `available`, then takes the charge from it (which
/// `min(billed, held + available)` guarantees it can cover).
public enum LedgerSteps {
    // MARK: Purchase

    public static func purchase<Store: LedgerStore>(_ command: PurchaseCommand, in store: inout Store) throws -> PurchaseReceipt {
        let key = "purchase:" + command.key
        if let applied = try store.operation(key) {
            guard applied.fingerprint == command.fingerprint, applied.result.count == 2 else {
                throw SettlementError(.idempotencyConflict, "purchase key '\(command.key)' was already used with other parameters (\(applied.fingerprint))")
            }
            return PurchaseReceipt(consumer: command.consumer, amount: Money(micros: applied.result[0]), available: Money(micros: applied.result[1]))
        }
        guard command.amount.micros > 0 else { throw SettlementError(.invalidAmount, "a purchase must be positive") }
        let existing = try store.consumer(command.consumer)
        var consumer = existing ?? ConsumerRecord(id: command.consumer)
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        // available + reserved must stay in range too: every hold is given back to available one day.
        _ = try SettlementMath.add(try SettlementMath.add(consumer.available, consumer.reserved, "credits"), command.amount,
                                   "\(command.consumer)'s credits")
        consumer.available = try SettlementMath.add(consumer.available, command.amount, "\(command.consumer)'s available credits")
        try store.append(Entry(operation: key, debit: Account(.purchases, command.consumer), credit: Account(.available, command.consumer),
                               amount: command.amount, at: command.now))
        try save(consumer, isNew: existing == nil, in: &store)
        try store.saveOperation(OperationRecord(key: key, fingerprint: command.fingerprint, result: [command.amount.micros, consumer.available.micros],
                                                at: command.now))
        return PurchaseReceipt(consumer: command.consumer, amount: command.amount, available: consumer.available)
    }

    // MARK: Reserve, meter, settle, release

    public static func reserve<Store: LedgerStore>(_ command: ReserveCommand, in store: inout Store) throws -> Hold {
        if let hold = try store.hold(command.execution) {
            guard hold.fingerprint == command.fingerprint else {
                throw SettlementError(.idempotencyConflict, "execution '\(command.execution)' was already reserved with other parameters")
            }
            return Hold(execution: hold.execution, consumer: hold.consumer, amount: hold.state == .refused ? .zero : hold.estimate, expiresAt: hold.expiresAt,
                        refused: hold.state == .refused)
        }
        guard command.amount.micros >= 0 else { throw SettlementError(.invalidAmount, "a hold cannot be negative") }
        guard var consumer = try store.consumer(command.consumer) else {
            if command.recordsRefusal { return try recordRefusal(command, in: &store) }
            throw SettlementError(.unknownConsumer, "no credits were ever purchased for consumer '\(command.consumer)'")
        }
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        guard consumer.available >= command.amount else {
            if command.recordsRefusal {
                try save(consumer, isNew: false, in: &store)
                return try recordRefusal(command, in: &store)
            }
            throw SettlementError(.insufficientCredits, "\(command.consumer) has \(consumer.available) available, \(command.amount) needed")
        }
        consumer.available = try SettlementMath.subtract(consumer.available, command.amount, "available")
        consumer.reserved = try SettlementMath.add(consumer.reserved, command.amount, "\(command.consumer)'s reserved credits")
        if command.amount.micros > 0 {
            try store.append(Entry(operation: "reserve:" + command.execution, debit: Account(.available, command.consumer),
                                   credit: Account(.reserved, command.consumer), amount: command.amount, at: command.now))
        }
        try save(consumer, isNew: false, in: &store)
        try store.saveHold(HoldRecord(execution: command.execution, consumer: command.consumer, plan: command.plan, version: command.version,
                                      periodStart: command.periodStart, estimate: command.amount, amount: command.amount, createdAt: command.now,
                                      expiresAt: command.expiresAt, state: .active, fingerprint: command.fingerprint), isNew: true)
        return Hold(execution: command.execution, consumer: command.consumer, amount: command.amount, expiresAt: command.expiresAt)
    }

    /// Keeps a refusal as the execution id's first result: a hold row holding nothing, no entry.
    private static func recordRefusal<Store: LedgerStore>(_ command: ReserveCommand, in store: inout Store) throws -> Hold {
        try store.saveHold(HoldRecord(execution: command.execution, consumer: command.consumer, plan: command.plan, version: command.version,
                                      periodStart: command.periodStart, estimate: command.amount, amount: .zero, createdAt: command.now,
                                      expiresAt: command.expiresAt, state: .refused, fingerprint: command.fingerprint, closedAt: command.now), isNew: true)
        return Hold(execution: command.execution, consumer: command.consumer, amount: .zero, expiresAt: command.expiresAt, refused: true)
    }

    public static func extendHold<Store: LedgerStore>(_ command: ExtendCommand, in store: inout Store) throws -> MeterReceipt {
        var hold = try liveHold(command.execution, at: command.now, for: "a meter sample", in: &store)
        guard command.required > hold.amount else { return MeterReceipt(held: hold.amount, running: command.required, exhausted: false) }
        guard var consumer = try store.consumer(hold.consumer) else {
            throw SettlementError(.unknownConsumer, "the consumer of execution '\(command.execution)' has no accounts")
        }
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        let needed = try SettlementMath.subtract(command.required, hold.amount, "the hold extension")
        // The hold is left as it was: the runtime stops the run and settles what it used. The holds
        // that expired above were given back (their entries written): the consumer's balances are
        // saved with them (returning before this save left the running balances behind the entries).
        guard consumer.available >= needed else {
            try save(consumer, isNew: false, in: &store)
            return MeterReceipt(held: hold.amount, running: command.required, exhausted: true)
        }
        consumer.available = try SettlementMath.subtract(consumer.available, needed, "available")
        consumer.reserved = try SettlementMath.add(consumer.reserved, needed, "reserved")
        hold.amount = command.required
        try store.append(Entry(operation: "extend:" + command.execution, debit: Account(.available, hold.consumer), credit: Account(.reserved, hold.consumer),
                               amount: needed, at: command.now))
        try save(consumer, isNew: false, in: &store)
        try store.saveHold(hold, isNew: false)
        return MeterReceipt(held: hold.amount, running: command.required, exhausted: false)
    }

    public static func settle<Store: LedgerStore>(_ command: SettleCommand, pricing: (PeriodState) throws -> PricedCharge, in store: inout Store) throws -> SettleReceipt {
        guard let found = try store.hold(command.execution) else {
            throw SettlementError(.unknownReservation, "no hold was placed for execution '\(command.execution)'")
        }
        if found.state == .settled {
            guard found.closingFingerprint == command.fingerprint, let outcome = found.outcome else {
                throw SettlementError(.idempotencyConflict, "execution '\(command.execution)' was already settled with other parameters")
            }
            return outcome
        }
        var hold = try live(found, at: command.now, for: "a settle")
        guard hold.consumer == command.consumer, hold.plan == command.plan else {
            throw SettlementError(.idempotencyConflict, "execution '\(command.execution)' was reserved for \(hold.consumer) on plan \(hold.plan)")
        }
        guard var consumer = try store.consumer(hold.consumer) else {
            throw SettlementError(.unknownConsumer, "the consumer of execution '\(command.execution)' has no accounts")
        }
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        let stateKey = command.period?.rawValue
        let priced = try pricing(try stateKey.flatMap { try store.periodState($0) } ?? .empty)
        let operation = "settle:" + command.execution
        let held = hold.amount
        // Give the whole hold back first, then take the charge from available.
        consumer.reserved = try SettlementMath.subtract(consumer.reserved, held, "reserved")
        consumer.available = try SettlementMath.add(consumer.available, held, "available")
        if held.micros > 0 {
            try store.append(Entry(operation: operation, debit: Account(.reserved, hold.consumer), credit: Account(.available, hold.consumer),
                                   amount: held, at: command.now))
        }
        var receipt = SettleReceipt(execution: command.execution, consumer: hold.consumer, billed: .zero, charged: .zero, uncollected: .zero,
                                    split: .zero, computeUnits: priced.computeUnits, refusal: priced.refusal, released: held)
        if priced.refusal == nil {
            let collected = SettlementMath.collect(billed: priced.billed, split: priced.split, rule: priced.rule, coverable: consumer.available)
            consumer.available = try SettlementMath.subtract(consumer.available, collected.charged, "available")
            for entry in SettlementMath.shareEntries(consumer: hold.consumer, creator: command.creator, split: collected.split, operation: operation, at: command.now) {
                try store.append(entry)
            }
            if collected.uncollected.micros > 0 {
                try store.append(Entry(operation: operation, debit: Account(.uncollected, hold.consumer), credit: Account(.writtenOff),
                                       amount: collected.uncollected, at: command.now))
            }
            try store.append(ChargeRecord(operation: operation, kind: .execution, consumer: hold.consumer, agent: command.agent, creator: command.creator,
                                          plan: command.plan, version: command.version, execution: command.execution, computeUnits: priced.computeUnits,
                                          billed: priced.billed, charged: collected.charged, uncollected: collected.uncollected, split: collected.split,
                                          failed: command.failed, datedAt: command.endedAt))
            if let stateKey {
                try store.savePeriodState(stateKey, priced.state)
                // A late execution into a closed period: its adjustment lines in the same step.
                if let pricing = command.periodEnd, let record = try store.periodClose(stateKey), record.isClosed {
                    try applyAdjustments(command, pricing: pricing, state: priced.state, record: record, consumer: &consumer, in: &store)
                }
            }
            receipt.billed = priced.billed
            receipt.charged = collected.charged
            receipt.uncollected = collected.uncollected
            receipt.split = collected.split
            // What is left of the hold once the charge is taken (0 when the charge used all of it).
            receipt.released = Money(micros: max(0, held.micros - collected.charged.micros))
        }
        hold.state = .settled
        hold.closingFingerprint = command.fingerprint
        hold.outcome = receipt
        hold.closedAt = command.now
        try save(consumer, isNew: false, in: &store)
        try store.saveHold(hold, isNew: false)
        return receipt
    }

    /// The fingerprint a release stores: a release has no parameter beyond its execution id.
    public static let releaseFingerprint = "release"

    public static func release<Store: LedgerStore>(_ command: ReleaseCommand, in store: inout Store) throws -> ReleaseReceipt {
        guard let found = try store.hold(command.execution) else {
            throw SettlementError(.unknownReservation, "no hold was placed for execution '\(command.execution)'")
        }
        if found.state == .released {
            return ReleaseReceipt(execution: found.execution, consumer: found.consumer, released: found.amount)
        }
        var hold = try live(found, at: command.now, for: "a release")
        guard var consumer = try store.consumer(hold.consumer) else {
            throw SettlementError(.unknownConsumer, "the consumer of execution '\(command.execution)' has no accounts")
        }
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        consumer.reserved = try SettlementMath.subtract(consumer.reserved, hold.amount, "reserved")
        consumer.available = try SettlementMath.add(consumer.available, hold.amount, "available")
        if hold.amount.micros > 0 {
            try store.append(Entry(operation: "release:" + command.execution, debit: Account(.reserved, hold.consumer),
                                   credit: Account(.available, hold.consumer), amount: hold.amount, at: command.now))
        }
        hold.state = .released
        hold.closingFingerprint = releaseFingerprint
        hold.closedAt = command.now
        try save(consumer, isNew: false, in: &store)
        try store.saveHold(hold, isNew: false)
        return ReleaseReceipt(execution: hold.execution, consumer: hold.consumer, released: hold.amount)
    }

    // MARK: Period lines

    public static func chargePeriod<Store: LedgerStore>(_ command: PeriodChargeCommand, lines: (PeriodState) throws -> [PricedLine], in store: inout Store) throws -> PeriodChargeReceipt {
        if let applied = try store.operation(command.key) {
            guard applied.fingerprint == command.fingerprint, applied.result.count == 3 else {
                throw SettlementError(.idempotencyConflict, "key '\(command.key)' was already used with other parameters")
            }
            return PeriodChargeReceipt(key: command.key, consumer: command.consumer, billed: Money(micros: applied.result[0]),
                                       charged: Money(micros: applied.result[1]), uncollected: Money(micros: applied.result[2]))
        }
        let existing = try store.consumer(command.consumer)
        var consumer = existing ?? ConsumerRecord(id: command.consumer)
        try expireDueHolds(of: &consumer, at: command.now, in: &store)
        let priced = try lines(try store.periodState(command.period.rawValue) ?? .empty)
        var receipt = PeriodChargeReceipt(key: command.key, consumer: command.consumer, billed: .zero, charged: .zero, uncollected: .zero)
        for line in priced {
            let collected = SettlementMath.collect(billed: line.amount, split: line.split, rule: line.rule, coverable: consumer.available)
            consumer.available = try SettlementMath.subtract(consumer.available, collected.charged, "available")
            for entry in SettlementMath.shareEntries(consumer: command.consumer, creator: command.creator, split: collected.split, operation: command.key, at: command.now) {
                try store.append(entry)
            }
            if collected.uncollected.micros > 0 {
                try store.append(Entry(operation: command.key, debit: Account(.uncollected, command.consumer), credit: Account(.writtenOff),
                                       amount: collected.uncollected, at: command.now))
            }
            try store.append(ChargeRecord(operation: command.key, kind: line.kind, consumer: command.consumer, agent: command.agent, creator: command.creator,
                                          plan: command.plan, version: command.version, execution: nil, computeUnits: .zero, billed: line.amount,
                                          charged: collected.charged, uncollected: collected.uncollected, split: collected.split, failed: false,
                                          datedAt: command.datedAt))
            receipt.billed = try SettlementMath.add(receipt.billed, line.amount, "the period's lines")
            receipt.charged = try SettlementMath.add(receipt.charged, collected.charged, "the period's lines")
            receipt.uncollected = try SettlementMath.add(receipt.uncollected, collected.uncollected, "the period's lines")
        }
        try save(consumer, isNew: existing == nil, in: &store)
        try store.saveOperation(OperationRecord(key: command.key, fingerprint: command.fingerprint,
                                                result: [receipt.billed.micros, receipt.charged.micros, receipt.uncollected.micros], at: command.now))
        return receipt
    }

    // MARK: Expiry

    /// Gives back every hold past its expiry at `now`.
    public static func expireHolds<Store: LedgerStore>(at now: Timestamp, in store: inout Store) throws -> Int {
        // By consumer (bytes), then execution: the order PostgreSQL's sweep writes them in (it
        // locks and sweeps one consumer at a time), so every backend appends the same entries in
        // the same order.
        let due = try store.expiredHolds(consumer: nil, at: now).sorted {
            $0.consumer.bytesEqual($1.consumer) ? $0.execution.bytesPrecede($1.execution) : $0.consumer.bytesPrecede($1.consumer)
        }
        var consumers: [ByteKey: ConsumerRecord] = [:]
        for hold in due {
            guard var consumer = try consumers[ByteKey(hold.consumer)] ?? store.consumer(hold.consumer) else { continue }
            try expire(hold, of: &consumer, at: now, in: &store)
            consumers[ByteKey(hold.consumer)] = consumer
        }
        for consumer in consumers.values.sorted(by: { $0.id.bytesPrecede($1.id) }) { try save(consumer, isNew: false, in: &store) }
        return due.count
    }

    /// Gives back the consumer's holds past their expiry (the caller saves the consumer).
    static func expireDueHolds<Store: LedgerStore>(of consumer: inout ConsumerRecord, at now: Timestamp, in store: inout Store) throws {
        guard consumer.reserved.micros > 0 else { return }
        for hold in try store.expiredHolds(consumer: consumer.id, at: now) {
            try expire(hold, of: &consumer, at: now, in: &store)
        }
    }

    private static func expire<Store: LedgerStore>(_ found: HoldRecord, of consumer: inout ConsumerRecord, at now: Timestamp, in store: inout Store) throws {
        var hold = found
        consumer.reserved = try SettlementMath.subtract(consumer.reserved, hold.amount, "reserved")
        consumer.available = try SettlementMath.add(consumer.available, hold.amount, "available")
        if hold.amount.micros > 0 {
            // Dated at the expiry instant, not at the step that noticed it: the ledger reads the same whenever it is swept.
            try store.append(Entry(operation: "expire:" + hold.execution, debit: Account(.reserved, hold.consumer),
                                   credit: Account(.available, hold.consumer), amount: hold.amount, at: hold.expiresAt))
        }
        hold.state = .expired
        hold.closedAt = hold.expiresAt
        try store.saveHold(hold, isNew: false)
    }

    /// The hold of `execution` if it can still be settled, extended or released at `now`.
    private static func liveHold<Store: LedgerStore>(_ execution: String, at now: Timestamp, for what: String, in store: inout Store) throws -> HoldRecord {
        guard let hold = try store.hold(execution) else {
            throw SettlementError(.unknownReservation, "no hold was placed for execution '\(execution)'")
        }
        return try live(hold, at: now, for: what)
    }

    /// `hold` if it can still be settled, extended or released at `now`.
    private static func live(_ hold: HoldRecord, at now: Timestamp, for what: String) throws -> HoldRecord {
        let execution = hold.execution
        switch hold.state {
        case .settled: throw SettlementError(.idempotencyConflict, "execution '\(execution)' was settled: \(what) cannot follow")
        case .released: throw SettlementError(.idempotencyConflict, "execution '\(execution)' was released: \(what) cannot follow")
        case .expired: throw SettlementError(.reservationExpired, "the hold of execution '\(execution)' expired at \(hold.expiresAt)")
        case .refused: throw SettlementError(.insufficientCredits, "execution '\(execution)' was refused for credits: nothing is held")
        case .active:
            guard now < hold.expiresAt else {
                throw SettlementError(.reservationExpired, "the hold of execution '\(execution)' expired at \(hold.expiresAt)")
            }
            return hold
        }
    }

    /// Saves a consumer's balances, checking again that neither is negative: a step's arithmetic
    /// should make that impossible, and a second check costs nothing next to an overdraft.
    static func save<Store: LedgerStore>(_ consumer: ConsumerRecord, isNew: Bool, in store: inout Store) throws {
        guard consumer.available.micros >= 0, consumer.reserved.micros >= 0 else {
            throw SettlementError(.outOfRange, "\(consumer.id) would hold \(consumer.available) available, \(consumer.reserved) reserved")
        }
        try store.saveConsumer(consumer, isNew: isNew)
    }

    // MARK: Payouts

    /// The week's payout of one creator, computed from the ledger inside the step (so concurrent
    /// runs, of one week or of several, pay each creator once): a record already there is kept.
    public static func recordPayout<Store: LedgerStore>(_ command: PayoutCommand, in store: inout Store) throws -> PayoutStep {
        if let recorded = try store.payout(command.key) {
            guard recorded.creator.bytesEqual(command.creator), recorded.weekStart == command.weekStart else {
                throw SettlementError(.idempotencyConflict, "payout key '\(command.key)' was recorded for \(recorded.creator), week \(recorded.weekStart)")
            }
            return PayoutStep(record: recorded, created: false)
        }
        let owed = try store.creatorEarnings(command.creator, before: command.weekEnd) - (try store.netPaidOut(command.creator))
        guard let amount = try payableAmount(owed: owed, minimum: command.minimum, unitMicros: command.unitMicros) else {
            return PayoutStep(record: nil, created: false)
        }
        try store.append(Entry(operation: command.key, debit: Account(.earnings, command.creator), credit: Account(.paidOut, command.creator),
                               amount: amount, at: command.now))
        let record = PayoutRecord(key: command.key, creator: command.creator, weekStart: command.weekStart, payDate: command.payDate,
                                  amount: amount, recordedAt: command.now)
        try store.savePayout(record, isNew: true)
        return PayoutStep(record: record, created: true)
    }

    /// `floor_to_minor_unit(owed)` when it is at least `minimum` and above zero; nil otherwise
    /// (nothing is sent for zero). Floored before anything is recorded: a payout is always a
    /// whole number of the currency's smallest unit, as a rail can send it.
    /// - throws: `out_of_range` when the amount is beyond a 64-bit ledger amount.
    public static func payableAmount(owed: Int128, minimum: Money, unitMicros: Int64) throws -> Money? {
        let unit = Int128(max(unitMicros, 1))
        guard owed > 0 else { return nil }
        let floored = owed / unit * unit // owed > 0: truncation is the floor
        guard floored > 0, floored >= Int128(minimum.micros) else { return nil }
        guard let micros = Int64(exactly: floored) else {
            throw SettlementError(.outOfRange, "a payout of \(DecimalText.format(floored, fractionalDigits: Money.fractionalDigits)) is beyond the largest amount (the ledger's 64-bit range)")
        }
        return Money(micros: micros)
    }

    public static func markPayoutSent<Store: LedgerStore>(key: String, reference: String, in store: inout Store) throws {
        guard var payout = try store.payout(key) else { throw SettlementError(.invalidInput, "no payout was recorded under '\(key)'") }
        guard payout.reference == nil, payout.failure == nil else { return }
        payout.reference = reference
        try store.savePayout(payout, isNew: false)
    }

    /// The rail refused a recorded payout's transfer: the payout becomes `failed` with the reason,
    /// and its amount goes back to the creator's earnings (`paid_out -> earnings`), owed again and
    /// paid by a later run. Idempotent: a failed payout stays as it first failed.
    /// - throws: `invalid_input` when no payout has that key, or when it was confirmed sent.
    public static func failPayout<Store: LedgerStore>(key: String, reason: String, now: Timestamp, in store: inout Store) throws -> PayoutRecord {
        guard var payout = try store.payout(key) else { throw SettlementError(.invalidInput, "no payout was recorded under '\(key)'") }
        if payout.failure != nil { return payout }
        guard payout.reference == nil else {
            throw SettlementError(.invalidInput, "payout '\(key)' was confirmed sent (\(payout.reference ?? "")): it cannot fail")
        }
        let back = payout.netAmount
        if back.micros > 0 {
            try store.append(Entry(operation: "payout-failed:" + key, debit: Account(.paidOut, payout.creator), credit: Account(.earnings, payout.creator),
                                   amount: back, at: now))
        }
        payout.failure = reason.isEmpty ? "refused" : reason
        payout.returned = payout.amount
        try store.savePayout(payout, isNew: false)
        return payout
    }

    /// A transfer reversed after it was made (`transfer.reversed`): what was reversed so far
    /// (`reversedTotal`, Stripe's cumulative `amount_reversed`, at most the payout) goes back to the
    /// creator's earnings by a compensating entry (`paid_out -> earnings`, only the part not given
    /// back yet, so a repeated event changes nothing), and the creator is put on hold: later runs
    /// skip it until an admin releases it. A failed payout (no transfer) changes nothing.
    /// - throws: `invalid_input` when no payout has that key, `invalid_amount` for a negative total.
    public static func reversePayout<Store: LedgerStore>(key: String, reversedTotal: Money, transfer: String, now: Timestamp,
                                                         in store: inout Store) throws -> PayoutRecord {
        guard var payout = try store.payout(key) else { throw SettlementError(.invalidInput, "no payout was recorded under '\(key)'") }
        guard reversedTotal.micros >= 0 else { throw SettlementError(.invalidAmount, "a reversed amount cannot be negative: \(reversedTotal)") }
        guard payout.failure == nil else { return payout }
        let target = min(reversedTotal, payout.amount)
        if target > payout.returned {
            try store.append(Entry(operation: "payout-reversed:" + key, debit: Account(.paidOut, payout.creator), credit: Account(.earnings, payout.creator),
                                   amount: Money(micros: target.micros - payout.returned.micros), at: now))
            payout.returned = target
            try store.savePayout(payout, isNew: false)
        }
        if try store.creatorHold(payout.creator) == nil {
            try store.saveCreatorHold(CreatorHold(creator: payout.creator, reason: "transfer \(transfer) of \(key) was reversed", since: now))
        }
        return payout
    }

    /// Lifts the hold on a creator's payouts (`tariff ledger payouts release`); whether there was one.
    public static func releaseCreator<Store: LedgerStore>(_ creator: String, in store: inout Store) throws -> Bool {
        try store.removeCreatorHold(creator)
    }
}
