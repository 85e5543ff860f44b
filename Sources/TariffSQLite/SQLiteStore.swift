import GRDB
import Tariff
import TariffSettlement

/// `LedgerStore` over one GRDB connection inside a write transaction: every read and write is a
/// cached prepared statement (parsed once per connection).
struct SQLiteStore: LedgerStore {
    let db: Database
    let currency: Currency

    func consumer(_ id: String) throws -> ConsumerRecord? {
        let statement = try db.cachedStatement(sql: "SELECT available, reserved FROM consumers WHERE id = ?")
        guard let row = try Row.fetchOne(statement, arguments: [id]) else { return nil }
        return ConsumerRecord(id: id, available: Money(micros: row[0]), reserved: Money(micros: row[1]))
    }

    func saveConsumer(_ record: ConsumerRecord, isNew: Bool) throws {
        let sql = isNew ? "INSERT INTO consumers (available, reserved, id) VALUES (?, ?, ?)" : "UPDATE consumers SET available = ?, reserved = ? WHERE id = ?"
        try db.cachedStatement(sql: sql).execute(arguments: [record.available.micros, record.reserved.micros, record.id])
    }

    static let holdColumns = """
        execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint, closing_fingerprint, closed_at,
        billed, charged, uncollected, creator_share, platform_share, processing_share, compute_units, refusal, released
        """

    func hold(_ execution: String) throws -> HoldRecord? {
        let statement = try db.cachedStatement(sql: "SELECT \(Self.holdColumns) FROM holds WHERE execution = ?")
        return try Row.fetchOne(statement, arguments: [execution]).map(Self.hold(from:))
    }

    static func hold(from row: Row) -> HoldRecord {
        var outcome: SettleReceipt?
        if let billed: Int64 = row[13] {
            outcome = SettleReceipt(execution: row[0], consumer: row[1], billed: Money(micros: billed), charged: Money(micros: row[14]),
                                    uncollected: Money(micros: row[15]),
                                    split: SplitShares(creator: Money(micros: row[16]), platform: Money(micros: row[17]), processing: Money(micros: row[18])),
                                    computeUnits: ComputeUnits(millis: row[19]), refusal: (row[20] as String?).flatMap(Refusal.init(rawValue:)),
                                    released: Money(micros: row[21]))
        }
        return HoldRecord(execution: row[0], consumer: row[1], plan: row[2], version: row[3],
                          periodStart: (row[4] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)),
                          estimate: Money(micros: row[5]), amount: Money(micros: row[6]), createdAt: Timestamp(nanosecondsSinceEpoch: row[7]),
                          expiresAt: Timestamp(nanosecondsSinceEpoch: row[8]), state: HoldRecord.State(rawValue: row[9]) ?? .active,
                          fingerprint: row[10], closingFingerprint: row[11], outcome: outcome,
                          closedAt: (row[12] as Int64?).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    func saveHold(_ record: HoldRecord, isNew: Bool) throws {
        let outcome = record.outcome
        if isNew {
            let statement = try db.cachedStatement(sql: """
                INSERT INTO holds (execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            try statement.execute(arguments: [record.execution, record.consumer, record.plan, record.version, record.periodStart?.nanosecondsSinceEpoch,
                                              record.estimate.micros, record.amount.micros, record.createdAt.nanosecondsSinceEpoch,
                                              record.expiresAt.nanosecondsSinceEpoch, record.state.rawValue, record.fingerprint])
        } else {
            let statement = try db.cachedStatement(sql: """
                UPDATE holds SET amount = ?, state = ?, closing_fingerprint = ?, closed_at = ?, billed = ?, charged = ?, uncollected = ?,
                creator_share = ?, platform_share = ?, processing_share = ?, compute_units = ?, refusal = ?, released = ? WHERE execution = ?
                """)
            try statement.execute(arguments: [record.amount.micros, record.state.rawValue, record.closingFingerprint, record.closedAt?.nanosecondsSinceEpoch,
                                              outcome?.billed.micros, outcome?.charged.micros, outcome?.uncollected.micros, outcome?.split.creator.micros,
                                              outcome?.split.platform.micros, outcome?.split.processing.micros, outcome?.computeUnits.millis,
                                              outcome?.refusal?.rawValue, outcome?.released.micros, record.execution])
        }
    }

    func expiredHolds(consumer: String?, at now: Timestamp) throws -> [HoldRecord] {
        if let consumer {
            let statement = try db.cachedStatement(sql: """
                SELECT \(Self.holdColumns) FROM holds WHERE consumer = ? AND state = 0 AND expires_at <= ? ORDER BY execution
                """)
            return try Row.fetchAll(statement, arguments: [consumer, now.nanosecondsSinceEpoch]).map(Self.hold(from:))
        }
        let statement = try db.cachedStatement(sql: "SELECT \(Self.holdColumns) FROM holds WHERE state = 0 AND expires_at <= ? ORDER BY execution")
        return try Row.fetchAll(statement, arguments: [now.nanosecondsSinceEpoch]).map(Self.hold(from:))
    }

    func periodState(_ key: String) throws -> PeriodState? {
        let statement = try db.cachedStatement(sql: """
            SELECT used_compute_units, usage_charges, executions, succeeded, failed FROM period_states WHERE key = ?
            """)
        guard let row = try Row.fetchOne(statement, arguments: [key]) else { return nil }
        return Self.periodState(row, from: 0)
    }

    static func periodState(_ row: Row, from index: Int) -> PeriodState {
        PeriodState(usedComputeUnits: ComputeUnits(millis: row[index]), usageCharges: Money(micros: row[index + 1]), executions: row[index + 2],
                    succeeded: row[index + 3], failed: row[index + 4])
    }

    func savePeriodState(_ key: String, _ state: PeriodState) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO period_states (key, used_compute_units, usage_charges, executions, succeeded, failed) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET used_compute_units = excluded.used_compute_units, usage_charges = excluded.usage_charges,
            executions = excluded.executions, succeeded = excluded.succeeded, failed = excluded.failed
            """)
        try statement.execute(arguments: [key, state.usedComputeUnits.millis, state.usageCharges.micros, state.executions, state.succeeded, state.failed])
    }

    func operation(_ key: String) throws -> OperationRecord? {
        let statement = try db.cachedStatement(sql: "SELECT fingerprint, result, at FROM operations WHERE key = ?")
        guard let row = try Row.fetchOne(statement, arguments: [key]) else { return nil }
        return Self.operation(key: key, row, from: 0)
    }

    static func operation(key: String, _ row: Row, from index: Int) -> OperationRecord {
        let result: String = row[index + 1]
        return OperationRecord(key: key, fingerprint: row[index], result: result.split(separator: ",").compactMap { Int64($0) },
                               at: Timestamp(nanosecondsSinceEpoch: row[index + 2]))
    }

    func saveOperation(_ record: OperationRecord) throws {
        try db.cachedStatement(sql: "INSERT INTO operations (key, fingerprint, result, at) VALUES (?, ?, ?, ?)")
            .execute(arguments: [record.key, record.fingerprint, record.result.map(String.init).joined(separator: ","), record.at.nanosecondsSinceEpoch])
    }

    func payout(_ key: String) throws -> PayoutRecord? {
        let statement = try db.cachedStatement(sql: "SELECT key, creator, week_start, pay_date, amount, recorded_at, reference FROM payouts WHERE key = ?")
        return try Row.fetchOne(statement, arguments: [key]).flatMap(Self.payout(from:))
    }

    static func payout(from row: Row) -> PayoutRecord? {
        guard let week = Timestamp(date: row[2] as String)?.civilDate, let pay = Timestamp(date: row[3] as String)?.civilDate else { return nil }
        return PayoutRecord(key: row[0], creator: row[1], weekStart: week, payDate: pay, amount: Money(micros: row[4]),
                            recordedAt: Timestamp(nanosecondsSinceEpoch: row[5]), reference: row[6])
    }

    func savePayout(_ record: PayoutRecord, isNew: Bool) throws {
        if isNew {
            try db.cachedStatement(sql: """
                INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [record.key, record.creator, record.weekStart.description, record.payDate.description, record.amount.micros,
                                         record.recordedAt.nanosecondsSinceEpoch, record.reference])
        } else {
            try db.cachedStatement(sql: "UPDATE payouts SET reference = ? WHERE key = ?").execute(arguments: [record.reference, record.key])
        }
    }

    func append(_ entry: Entry) throws {
        try db.cachedStatement(sql: """
            INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [entry.operation, entry.debit.kind.rawValue, entry.debit.owner, entry.credit.kind.rawValue, entry.credit.owner,
                                     entry.amount.micros, entry.at.nanosecondsSinceEpoch])
    }

    func append(_ charge: ChargeRecord) throws {
        try db.cachedStatement(sql: """
            INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
            creator_share, platform_share, processing_share, failed, dated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [charge.operation, charge.kind.rawValue, charge.consumer, charge.agent, charge.creator, charge.plan, charge.version,
                                     charge.execution, charge.computeUnits.millis, charge.billed.micros, charge.charged.micros, charge.uncollected.micros,
                                     charge.split.creator.micros, charge.split.platform.micros, charge.split.processing.micros, charge.failed ? 1 : 0,
                                     charge.datedAt.nanosecondsSinceEpoch])
    }

    // MARK: Reads outside the steps

    static let chargeColumns = """
        sequence, operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
        creator_share, platform_share, processing_share, failed, dated_at
        """

    static func charge(from row: Row) -> ChargeRecord {
        ChargeRecord(sequence: row[0], operation: row[1], kind: ChargeRecord.Kind(rawValue: row[2]) ?? .execution, consumer: row[3], agent: row[4],
                     creator: row[5], plan: row[6], version: row[7], execution: row[8], computeUnits: ComputeUnits(millis: row[9]),
                     billed: Money(micros: row[10]), charged: Money(micros: row[11]), uncollected: Money(micros: row[12]),
                     split: SplitShares(creator: Money(micros: row[13]), platform: Money(micros: row[14]), processing: Money(micros: row[15])),
                     failed: (row[16] as Int64) != 0, datedAt: Timestamp(nanosecondsSinceEpoch: row[17]))
    }

    static func entry(from row: Row) -> Entry {
        Entry(sequence: row[0], operation: row[1], debit: Account(Account.Kind(rawValue: row[2]) ?? .available, row[3]),
              credit: Account(Account.Kind(rawValue: row[4]) ?? .available, row[5]), amount: Money(micros: row[6]),
              at: Timestamp(nanosecondsSinceEpoch: row[7]))
    }
}
