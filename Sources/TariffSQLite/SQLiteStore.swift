import GRDB
import Tariff
import TariffSettlement

/// `LedgerStore` over one GRDB connection inside a write transaction: every read and write is a
/// cached prepared statement (parsed once per connection).
struct SQLiteStore: LedgerStore {
    let db: Database
    let currency: Currency
    let statements: StatementCache

    /// Statements are keyed by their literal's address: no SQL text is hashed on the write path.
    private func statement(_ sql: StaticString) throws -> RawStatement { try statements.statement(sql, in: db) }

    func consumer(_ id: String) throws -> ConsumerRecord? {
        let statement = try statement("SELECT available, reserved FROM consumers WHERE id = ?")
        defer { statement.reset() }
        statement.bind(1, id)
        guard try statement.step() else { return nil }
        return ConsumerRecord(id: id, available: Money(micros: statement.int64(0)), reserved: Money(micros: statement.int64(1)))
    }

    func saveConsumer(_ record: ConsumerRecord, isNew: Bool) throws {
        let sql: StaticString = isNew ? "INSERT INTO consumers (available, reserved, id) VALUES (?, ?, ?)"
                                      : "UPDATE consumers SET available = ?, reserved = ? WHERE id = ?"
        let statement = try statement(sql)
        statement.bind(1, record.available.micros)
        statement.bind(2, record.reserved.micros)
        statement.bind(3, record.id)
        try statement.run()
    }

    static let holdColumns = """
        execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint, closing_fingerprint, closed_at,
        billed, charged, uncollected, creator_share, platform_share, processing_share, compute_units, refusal, released
        """

    func hold(_ execution: String) throws -> HoldRecord? {
        let statement = try statement("SELECT execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint, closing_fingerprint, closed_at, billed, charged, uncollected, creator_share, platform_share, processing_share, compute_units, refusal, released FROM holds WHERE execution = ?")
        defer { statement.reset() }
        statement.bind(1, execution)
        return try statement.step() ? try Self.hold(from: statement) : nil
    }

    /// The hold of the statement's current row (columns in `holdColumns` order).
    /// - throws: `storage` for a state or refusal this build does not know.
    static func hold(from row: RawStatement) throws -> HoldRecord {
        var outcome: SettleReceipt?
        if let billed = row.optionalInt64(13) {
            outcome = SettleReceipt(execution: row.text(0), consumer: row.text(1), billed: Money(micros: billed), charged: Money(micros: row.int64(14)),
                                    uncollected: Money(micros: row.int64(15)),
                                    split: SplitShares(creator: Money(micros: row.int64(16)), platform: Money(micros: row.int64(17)),
                                                       processing: Money(micros: row.int64(18))),
                                    computeUnits: ComputeUnits(millis: row.int64(19)),
                                    refusal: try StoredValue.decode(Refusal.self, row.optionalText(20), column: "holds.refusal"),
                                    released: Money(micros: row.int64(21)))
        }
        return HoldRecord(execution: row.text(0), consumer: row.text(1), plan: row.text(2), version: row.int(3),
                          periodStart: row.optionalInt64(4).map(Timestamp.init(nanosecondsSinceEpoch:)),
                          estimate: Money(micros: row.int64(5)), amount: Money(micros: row.int64(6)), createdAt: Timestamp(nanosecondsSinceEpoch: row.int64(7)),
                          expiresAt: Timestamp(nanosecondsSinceEpoch: row.int64(8)),
                          state: try StoredValue.decode(HoldRecord.State.self, row.int(9), column: "holds.state"),
                          fingerprint: row.text(10), closingFingerprint: row.optionalText(11), outcome: outcome,
                          closedAt: row.optionalInt64(12).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    /// The same from a GRDB row (reads outside the steps).
    static func hold(from row: Row) throws -> HoldRecord {
        var outcome: SettleReceipt?
        if let billed: Int64 = row[13] {
            outcome = SettleReceipt(execution: row[0], consumer: row[1], billed: Money(micros: billed), charged: Money(micros: row[14]),
                                    uncollected: Money(micros: row[15]),
                                    split: SplitShares(creator: Money(micros: row[16]), platform: Money(micros: row[17]), processing: Money(micros: row[18])),
                                    computeUnits: ComputeUnits(millis: row[19]),
                                    refusal: try StoredValue.decode(Refusal.self, row[20] as String?, column: "holds.refusal"),
                                    released: Money(micros: row[21]))
        }
        return HoldRecord(execution: row[0], consumer: row[1], plan: row[2], version: row[3],
                          periodStart: (row[4] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)),
                          estimate: Money(micros: row[5]), amount: Money(micros: row[6]), createdAt: Timestamp(nanosecondsSinceEpoch: row[7]),
                          expiresAt: Timestamp(nanosecondsSinceEpoch: row[8]),
                          state: try StoredValue.decode(HoldRecord.State.self, row[9] as Int, column: "holds.state"),
                          fingerprint: row[10], closingFingerprint: row[11], outcome: outcome,
                          closedAt: (row[12] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    func saveHold(_ record: HoldRecord, isNew: Bool) throws {
        if isNew {
            let statement = try statement("""
                INSERT INTO holds (execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint,
                closing_fingerprint, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            statement.bind(1, record.execution)
            statement.bind(2, record.consumer)
            statement.bind(3, record.plan)
            statement.bind(4, record.version)
            statement.bind(5, record.periodStart?.nanosecondsSinceEpoch)
            statement.bind(6, record.estimate.micros)
            statement.bind(7, record.amount.micros)
            statement.bind(8, record.createdAt.nanosecondsSinceEpoch)
            statement.bind(9, record.expiresAt.nanosecondsSinceEpoch)
            statement.bind(10, record.state.rawValue)
            statement.bind(11, record.fingerprint)
            // A refusal kept as a first result is inserted closed.
            statement.bind(12, record.closingFingerprint)
            statement.bind(13, record.closedAt?.nanosecondsSinceEpoch)
            try statement.run()
        } else {
            let outcome = record.outcome
            let statement = try statement("""
                UPDATE holds SET amount = ?, state = ?, closing_fingerprint = ?, closed_at = ?, billed = ?, charged = ?, uncollected = ?,
                creator_share = ?, platform_share = ?, processing_share = ?, compute_units = ?, refusal = ?, released = ? WHERE execution = ?
                """)
            statement.bind(1, record.amount.micros)
            statement.bind(2, record.state.rawValue)
            statement.bind(3, record.closingFingerprint)
            statement.bind(4, record.closedAt?.nanosecondsSinceEpoch)
            statement.bind(5, outcome?.billed.micros)
            statement.bind(6, outcome?.charged.micros)
            statement.bind(7, outcome?.uncollected.micros)
            statement.bind(8, outcome?.split.creator.micros)
            statement.bind(9, outcome?.split.platform.micros)
            statement.bind(10, outcome?.split.processing.micros)
            statement.bind(11, outcome?.computeUnits.millis)
            statement.bind(12, outcome?.refusal?.rawValue)
            statement.bind(13, outcome?.released.micros)
            statement.bind(14, record.execution)
            try statement.run()
        }
    }

    func expiredHolds(consumer: String?, at now: Timestamp) throws -> [HoldRecord] {
        // Both read the partial index of active holds (only live holds are in it, so even the
        // sweep over all consumers reads little).
        let statement: RawStatement
        if let consumer {
            statement = try self.statement("SELECT execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint, closing_fingerprint, closed_at, billed, charged, uncollected, creator_share, platform_share, processing_share, compute_units, refusal, released FROM holds WHERE consumer = ? AND state = 0 AND expires_at <= ? ORDER BY execution")
            statement.bind(1, consumer)
            statement.bind(2, now.nanosecondsSinceEpoch)
        } else {
            statement = try self.statement("SELECT execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint, closing_fingerprint, closed_at, billed, charged, uncollected, creator_share, platform_share, processing_share, compute_units, refusal, released FROM holds WHERE state = 0 AND expires_at <= ? ORDER BY execution")
            statement.bind(1, now.nanosecondsSinceEpoch)
        }
        defer { statement.reset() }
        var holds: [HoldRecord] = []
        while try statement.step() { holds.append(try Self.hold(from: statement)) }
        return holds
    }

    func periodState(_ key: String) throws -> PeriodState? {
        let statement = try statement("SELECT used_compute_units, usage_charges, executions, succeeded, failed FROM period_states WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        guard try statement.step() else { return nil }
        return PeriodState(usedComputeUnits: ComputeUnits(millis: statement.int64(0)), usageCharges: Money(micros: statement.int64(1)),
                           executions: statement.int64(2), succeeded: statement.int64(3), failed: statement.int64(4))
    }

    static func periodState(_ row: Row, from index: Int) -> PeriodState {
        PeriodState(usedComputeUnits: ComputeUnits(millis: row[index]), usageCharges: Money(micros: row[index + 1]), executions: row[index + 2],
                    succeeded: row[index + 3], failed: row[index + 4])
    }

    func savePeriodState(_ key: String, _ state: PeriodState) throws {
        let statement = try statement("""
            INSERT INTO period_states (key, used_compute_units, usage_charges, executions, succeeded, failed) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET used_compute_units = excluded.used_compute_units, usage_charges = excluded.usage_charges,
            executions = excluded.executions, succeeded = excluded.succeeded, failed = excluded.failed
            """)
        statement.bind(1, key)
        statement.bind(2, state.usedComputeUnits.millis)
        statement.bind(3, state.usageCharges.micros)
        statement.bind(4, state.executions)
        statement.bind(5, state.succeeded)
        statement.bind(6, state.failed)
        try statement.run()
    }

    func operation(_ key: String) throws -> OperationRecord? {
        let statement = try statement("SELECT fingerprint, result, at FROM operations WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        guard try statement.step() else { return nil }
        return OperationRecord(key: key, fingerprint: statement.text(0), result: statement.text(1).split(separator: ",").compactMap { Int64($0) },
                               at: Timestamp(nanosecondsSinceEpoch: statement.int64(2)))
    }

    static func operation(key: String, _ row: Row, from index: Int) -> OperationRecord {
        let result: String = row[index + 1]
        return OperationRecord(key: key, fingerprint: row[index], result: result.split(separator: ",").compactMap { Int64($0) },
                               at: Timestamp(nanosecondsSinceEpoch: row[index + 2]))
    }

    func saveOperation(_ record: OperationRecord) throws {
        let statement = try statement("INSERT INTO operations (key, fingerprint, result, at) VALUES (?, ?, ?, ?)")
        statement.bind(1, record.key)
        statement.bind(2, record.fingerprint)
        statement.bind(3, record.result.map(String.init).joined(separator: ","))
        statement.bind(4, record.at.nanosecondsSinceEpoch)
        try statement.run()
    }

    static let payoutColumns = "key, creator, week_start, pay_date, amount, recorded_at, reference, failure, returned"

    func payout(_ key: String) throws -> PayoutRecord? {
        let statement = try statement("SELECT key, creator, week_start, pay_date, amount, recorded_at, reference, failure, returned FROM payouts WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        guard try statement.step() else { return nil }
        guard let week = Timestamp(date: statement.text(2))?.civilDate, let pay = Timestamp(date: statement.text(3))?.civilDate else {
            throw SettlementError(.storage, "payout '\(key)' holds an unreadable date")
        }
        return PayoutRecord(key: statement.text(0), creator: statement.text(1), weekStart: week, payDate: pay, amount: Money(micros: statement.int64(4)),
                            recordedAt: Timestamp(nanosecondsSinceEpoch: statement.int64(5)), reference: statement.optionalText(6),
                            failure: statement.optionalText(7), returned: Money(micros: statement.int64(8)))
    }

    /// A payout row (columns in `payoutColumns` order).
    static func payout(from row: Row) -> PayoutRecord? {
        guard let week = Timestamp(date: row[2] as String)?.civilDate, let pay = Timestamp(date: row[3] as String)?.civilDate else { return nil }
        return PayoutRecord(key: row[0], creator: row[1], weekStart: week, payDate: pay, amount: Money(micros: row[4]),
                            recordedAt: Timestamp(nanosecondsSinceEpoch: row[5]), reference: row[6], failure: row[7], returned: Money(micros: row[8]))
    }

    func savePayout(_ record: PayoutRecord, isNew: Bool) throws {
        if isNew {
            let statement = try statement("INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference, failure, returned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            statement.bind(1, record.key)
            statement.bind(2, record.creator)
            statement.bind(3, record.weekStart.description)
            statement.bind(4, record.payDate.description)
            statement.bind(5, record.amount.micros)
            statement.bind(6, record.recordedAt.nanosecondsSinceEpoch)
            statement.bind(7, record.reference)
            statement.bind(8, record.failure)
            statement.bind(9, record.returned.micros)
            try statement.run()
        } else {
            let statement = try statement("UPDATE payouts SET reference = ?, failure = ?, returned = ? WHERE key = ?")
            statement.bind(1, record.reference)
            statement.bind(2, record.failure)
            statement.bind(3, record.returned.micros)
            statement.bind(4, record.key)
            try statement.run()
        }
    }

    func creatorHold(_ creator: String) throws -> CreatorHold? {
        let statement = try statement("SELECT reason, since FROM creator_holds WHERE creator = ?")
        defer { statement.reset() }
        statement.bind(1, creator)
        guard try statement.step() else { return nil }
        return CreatorHold(creator: creator, reason: statement.text(0), since: Timestamp(nanosecondsSinceEpoch: statement.int64(1)))
    }

    func saveCreatorHold(_ hold: CreatorHold) throws {
        let statement = try statement("INSERT OR REPLACE INTO creator_holds (creator, reason, since) VALUES (?, ?, ?)")
        statement.bind(1, hold.creator)
        statement.bind(2, hold.reason)
        statement.bind(3, hold.since.nanosecondsSinceEpoch)
        try statement.run()
    }

    func removeCreatorHold(_ creator: String) throws -> Bool {
        guard try creatorHold(creator) != nil else { return false }
        let statement = try statement("DELETE FROM creator_holds WHERE creator = ?")
        statement.bind(1, creator)
        try statement.run()
        return true
    }

    /// Summed in Swift (SQLite's SUM would fail past Int64), through the (creator, dated_at) index.
    func creatorEarnings(_ creator: String, before: Timestamp) throws -> Int128 {
        let statement = try statement("SELECT creator_share FROM charges WHERE creator = ? AND dated_at < ?")
        defer { statement.reset() }
        statement.bind(1, creator)
        statement.bind(2, before.nanosecondsSinceEpoch)
        var total = Int128(0)
        while try statement.step() { total += Int128(statement.int64(0)) }
        return total
    }

    func netPaidOut(_ creator: String) throws -> Int128 {
        let statement = try statement("SELECT amount, returned FROM payouts WHERE creator = ?")
        defer { statement.reset() }
        statement.bind(1, creator)
        var total = Int128(0)
        while try statement.step() { total += Int128(statement.int64(0)) - Int128(statement.int64(1)) }
        return total
    }

    func append(_ entry: Entry) throws {
        let statement = try statement("""
            INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        statement.bind(1, entry.operation)
        statement.bind(2, entry.debit.kind.rawValue)
        statement.bind(3, entry.debit.owner)
        statement.bind(4, entry.credit.kind.rawValue)
        statement.bind(5, entry.credit.owner)
        statement.bind(6, entry.amount.micros)
        statement.bind(7, entry.at.nanosecondsSinceEpoch)
        try statement.run()
    }

    func append(_ charge: ChargeRecord) throws {
        let statement = try statement("""
            INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
            creator_share, platform_share, processing_share, failed, dated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        statement.bind(1, charge.operation)
        statement.bind(2, charge.kind.rawValue)
        statement.bind(3, charge.consumer)
        statement.bind(4, charge.agent)
        statement.bind(5, charge.creator)
        statement.bind(6, charge.plan)
        statement.bind(7, charge.version)
        statement.bind(8, charge.execution)
        statement.bind(9, charge.computeUnits.millis)
        statement.bind(10, charge.billed.micros)
        statement.bind(11, charge.charged.micros)
        statement.bind(12, charge.uncollected.micros)
        statement.bind(13, charge.split.creator.micros)
        statement.bind(14, charge.split.platform.micros)
        statement.bind(15, charge.split.processing.micros)
        statement.bind(16, charge.failed ? 1 : 0)
        statement.bind(17, charge.datedAt.nanosecondsSinceEpoch)
        try statement.run()
    }

    // MARK: Reads outside the steps

    static let chargeColumns = """
        sequence, operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
        creator_share, platform_share, processing_share, failed, dated_at
        """

    static func charge(from row: Row) throws -> ChargeRecord {
        ChargeRecord(sequence: row[0], operation: row[1], kind: try StoredValue.decode(ChargeRecord.Kind.self, row[2] as String, column: "charges.kind"),
                     consumer: row[3], agent: row[4],
                     creator: row[5], plan: row[6], version: row[7], execution: row[8], computeUnits: ComputeUnits(millis: row[9]),
                     billed: Money(micros: row[10]), charged: Money(micros: row[11]), uncollected: Money(micros: row[12]),
                     split: SplitShares(creator: Money(micros: row[13]), platform: Money(micros: row[14]), processing: Money(micros: row[15])),
                     failed: (row[16] as Int64) != 0, datedAt: Timestamp(nanosecondsSinceEpoch: row[17]))
    }

    static func entry(from row: Row) throws -> Entry {
        Entry(sequence: row[0], operation: row[1], debit: Account(try StoredValue.decode(Account.Kind.self, row[2] as Int, column: "entries.debit_kind"), row[3]),
              credit: Account(try StoredValue.decode(Account.Kind.self, row[4] as Int, column: "entries.credit_kind"), row[5]), amount: Money(micros: row[6]),
              at: Timestamp(nanosecondsSinceEpoch: row[7]))
    }
}

// MARK: Purchases through a rail, refunds and disputes (migration `v4: reversals`)

extension SQLiteStore {
    static let purchaseColumns = "key, consumer, amount, payer, reference, state, created_at"
    static let reversalColumns = "key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at"

    func purchaseRecord(_ key: String) throws -> PurchaseRecord? {
        let statement = try statement("SELECT key, consumer, amount, payer, reference, state, created_at FROM purchases WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        guard try statement.step() else { return nil }
        return PurchaseRecord(key: statement.text(0), consumer: statement.text(1), amount: Money(micros: statement.int64(2)), payer: statement.text(3),
                              reference: statement.optionalText(4), state: try .stored(statement.int(5)),
                              createdAt: Timestamp(nanosecondsSinceEpoch: statement.int64(6)))
    }

    static func purchase(from row: Row) throws -> PurchaseRecord {
        PurchaseRecord(key: row[0], consumer: row[1], amount: Money(micros: row[2]), payer: row[3], reference: row[4], state: try .stored(row[5]),
                       createdAt: Timestamp(nanosecondsSinceEpoch: row[6]))
    }

    func savePurchaseRecord(_ record: PurchaseRecord, isNew: Bool) throws {
        if isNew {
            let statement = try statement("INSERT INTO purchases (key, consumer, amount, payer, reference, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            statement.bind(1, record.key)
            statement.bind(2, record.consumer)
            statement.bind(3, record.amount.micros)
            statement.bind(4, record.payer)
            statement.bind(5, record.reference)
            statement.bind(6, record.state.rawValue)
            statement.bind(7, record.createdAt.nanosecondsSinceEpoch)
            try statement.run()
        } else {
            let statement = try statement("UPDATE purchases SET reference = ?, state = ? WHERE key = ?")
            statement.bind(1, record.reference)
            statement.bind(2, record.state.rawValue)
            statement.bind(3, record.key)
            try statement.run()
        }
    }

    private func reversal(from statement: RawStatement) throws -> ReversalRecord {
        ReversalRecord(key: statement.text(0), kind: try .stored(statement.text(1)), purchase: statement.text(2), consumer: statement.text(3),
                       amount: Money(micros: statement.int64(4)), fromAvailable: Money(micros: statement.int64(5)), loss: Money(micros: statement.int64(6)),
                       reference: statement.optionalText(7), state: try .stored(statement.int(8)), fingerprint: statement.text(9),
                       at: Timestamp(nanosecondsSinceEpoch: statement.int64(10)))
    }

    static func reversal(from row: Row) throws -> ReversalRecord {
        ReversalRecord(key: row[0], kind: try .stored(row[1]), purchase: row[2], consumer: row[3], amount: Money(micros: row[4]),
                       fromAvailable: Money(micros: row[5]), loss: Money(micros: row[6]), reference: row[7], state: try .stored(row[8]),
                       fingerprint: row[9], at: Timestamp(nanosecondsSinceEpoch: row[10]))
    }

    func reversal(_ key: String) throws -> ReversalRecord? {
        let statement = try statement("SELECT key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at FROM reversals WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        guard try statement.step() else { return nil }
        return try reversal(from: statement)
    }

    func reversals(ofPurchase key: String) throws -> [ReversalRecord] {
        let statement = try statement("SELECT key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at FROM reversals WHERE purchase = ? ORDER BY key")
        defer { statement.reset() }
        statement.bind(1, key)
        var found: [ReversalRecord] = []
        while try statement.step() { found.append(try reversal(from: statement)) }
        return found
    }

    func saveReversal(_ record: ReversalRecord, isNew: Bool) throws {
        if isNew {
            let statement = try statement("""
                INSERT INTO reversals (key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            statement.bind(1, record.key)
            statement.bind(2, record.kind.rawValue)
            statement.bind(3, record.purchase)
            statement.bind(4, record.consumer)
            statement.bind(5, record.amount.micros)
            statement.bind(6, record.fromAvailable.micros)
            statement.bind(7, record.loss.micros)
            statement.bind(8, record.reference)
            statement.bind(9, record.state.rawValue)
            statement.bind(10, record.fingerprint)
            statement.bind(11, record.at.nanosecondsSinceEpoch)
            try statement.run()
        } else {
            let statement = try statement("UPDATE reversals SET reference = ?, state = ? WHERE key = ?")
            statement.bind(1, record.reference)
            statement.bind(2, record.state.rawValue)
            statement.bind(3, record.key)
            try statement.run()
        }
    }

    static let closeColumns = "key, consumer, plan, version, agent, creator, period_start, period_end, closed_at, fees, commitment, shortfall, sla_credit"

    static func close(from row: Row) -> PeriodCloseRecord {
        PeriodCloseRecord(key: row[0], consumer: row[1], plan: row[2], version: row[3], agent: row[4], creator: row[5],
                          start: Timestamp(nanosecondsSinceEpoch: row[6]), end: Timestamp(nanosecondsSinceEpoch: row[7]),
                          closedAt: (row[8] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)), fees: Money(micros: row[9]),
                          commitment: (row[10] as Int64?).map { Money(micros: $0) }, shortfall: Money(micros: row[11]), slaCredit: Money(micros: row[12]))
    }

    func periodClose(_ key: String) throws -> PeriodCloseRecord? {
        try Row.fetchOne(db, sql: "SELECT \(Self.closeColumns) FROM period_closes WHERE key = ?", arguments: [key]).map(Self.close(from:))
    }

    func savePeriodClose(_ record: PeriodCloseRecord, isNew: Bool) throws {
        if isNew {
            try db.execute(sql: """
                INSERT INTO period_closes (\(Self.closeColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.key, record.consumer, record.plan, record.version, record.agent, record.creator, record.start.nanosecondsSinceEpoch,
                                 record.end.nanosecondsSinceEpoch, record.closedAt?.nanosecondsSinceEpoch, record.fees.micros, record.commitment?.micros,
                                 record.shortfall.micros, record.slaCredit.micros])
        } else {
            try db.execute(sql: "UPDATE period_closes SET period_end = ?, closed_at = ?, shortfall = ?, sla_credit = ? WHERE key = ?",
                           arguments: [record.end.nanosecondsSinceEpoch, record.closedAt?.nanosecondsSinceEpoch, record.shortfall.micros,
                                       record.slaCredit.micros, record.key])
        }
    }

    static let subscriptionColumns = "id, consumer, plan, agent, unit, start, ends_at, ending, charged_periods, next_period_start, created_at"

    /// - throws: `storage` for a period unit or ending this build does not know.
    static func subscription(from row: Row) throws -> SubscriptionRecord {
        SubscriptionRecord(id: row[0], consumer: row[1], plan: row[2], agent: row[3],
                           unit: try StoredValue.decode(PeriodUnit.self, row[4] as String, column: "subscriptions.unit"),
                           start: Timestamp(nanosecondsSinceEpoch: row[5]), endsAt: (row[6] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)),
                           ending: try StoredValue.decode(SubscriptionRecord.Ending.self, row[7] as String?, column: "subscriptions.ending"),
                           chargedPeriods: row[8], nextPeriodStart: (row[9] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)),
                           createdAt: Timestamp(nanosecondsSinceEpoch: row[10]))
    }

    func subscription(_ id: String) throws -> SubscriptionRecord? {
        try Row.fetchOne(db, sql: "SELECT \(Self.subscriptionColumns) FROM subscriptions WHERE id = ?", arguments: [id]).map(Self.subscription(from:))
    }

    func subscriptions(consumer: String) throws -> [SubscriptionRecord] {
        try Row.fetchAll(db, sql: "SELECT \(Self.subscriptionColumns) FROM subscriptions WHERE consumer = ? ORDER BY start, id", arguments: [consumer])
            .map(Self.subscription(from:))
    }

    func saveSubscription(_ record: SubscriptionRecord, isNew: Bool) throws {
        if isNew {
            try db.execute(sql: "INSERT INTO subscriptions (\(Self.subscriptionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [record.id, record.consumer, record.plan, record.agent, record.unit.rawValue, record.start.nanosecondsSinceEpoch,
                                       record.endsAt?.nanosecondsSinceEpoch, record.ending?.rawValue, record.chargedPeriods,
                                       record.nextPeriodStart?.nanosecondsSinceEpoch, record.createdAt.nanosecondsSinceEpoch])
        } else {
            try db.execute(sql: "UPDATE subscriptions SET ends_at = ?, ending = ?, charged_periods = ?, next_period_start = ? WHERE id = ?",
                           arguments: [record.endsAt?.nanosecondsSinceEpoch, record.ending?.rawValue, record.chargedPeriods,
                                       record.nextPeriodStart?.nanosecondsSinceEpoch, record.id])
        }
    }

    /// Summed in Swift (SQLite's SUM fails past Int64).
    func consumerUncollected(_ consumer: String) throws -> Int128 {
        var total = Int128(0)
        let values = try Int64.fetchCursor(db, sql: "SELECT uncollected FROM charges WHERE consumer = ? AND uncollected != 0", arguments: [consumer])
        while let micros = try values.next() { total += Int128(micros) }
        return total
    }
}
