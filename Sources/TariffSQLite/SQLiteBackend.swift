import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CSQLiteSetup
import GRDB
import Synchronization
import Tariff
import TariffSettlement

/// The embedded, durable settlement backend: one SQLite file through GRDB (`sqlite:PATH`).
///
/// - **WAL** (GRDB's `DatabasePool`): readers (balances, reports, `verify`) never wait for the writer.
/// - **Durable commits**: `synchronous = FULL` by default, so a step's commit is on disk (the WAL
///   is fsynced) before the step returns, and survives a power loss, not only a crash of the
///   process. `NORMAL` would skip that fsync in WAL mode and lose the last commits on power loss
///   (never consistency); it is offered as `.normal` for throwaway ledgers, never the default.
/// - **Group commit**: concurrent steps are applied in one write transaction, each inside its own
///   savepoint (all or nothing: a refused step is rolled back to its savepoint and leaves no row
///   behind), then committed with one fsync; no step is answered before that commit. This is what
///   lets one fsync cover hundreds of lifecycles (`tariff bench ledger-sqlite`).
/// - **Migrations** versioned from the first release (`DatabaseMigrator`), applied on open.
///
/// Every step runs `LedgerSteps`, the same reference semantics as the in-memory backend.
public final class SQLiteBackend {
    /// How a commit reaches the disk.
    public enum Durability: Sendable {
        /// fsync of the WAL at every commit (the default): survives a crash and a power loss.
        case full
        /// No fsync at commit in WAL mode: survives a crash of the process, may lose the last
        /// commits on power loss. For throwaway ledgers (simulations).
        case normal
    }

    public let currency: Currency
    public let path: String
    /// Reads (and the dry run of a first write, see `step`): read-only connections, so a command
    /// that only reads, or whose step is refused, leaves the file's bytes as they were. GRDB's
    /// writable pool writes on open (it creates and drops a table to make a WAL file: GRDB issue
    /// 102), which changed three header bytes of the file for `balance` or `verify`.
    /// Internal (not private) for the service store's reads (`SQLiteBackend+ServiceStore.swift`).
    let pool: DatabasePool
    /// The writable pool and its group-commit writer, opened at the first step that writes.
    private let writer = Mutex<GroupCommitWriter?>(nil)
    private let configuration: Configuration
    private let access: Access
    private let durability: Durability

    /// Whether the backend may write.
    public enum Access: Sendable {
        /// Reads, and writes when a step needs one (the default).
        case readWrite
        /// Reads only (`balance`, `usage`, `verify`, `payouts` without `--execute`): works on a
        /// read-only file or mount; every write step is refused with `storage`.
        case readOnly
    }

    /// The writer connection's page cache: the most a ledger of any size holds in its pages.
    public static let writerCacheKibibytes = 16_384
    /// Each reader connection's page cache.
    public static let readerCacheKibibytes = 2_048

    static func synchronousPragma(_ durability: Durability) -> String { durability == .full ? "FULL" : "NORMAL" }

    /// The currency a new ledger keeps when none is asked for.
    public static let defaultCurrency = Currency(code: "USD")!

    /// Every migration this version knows, in the order it applies them (tests of an upgrade in place).
    public static var knownMigrations: [String] { Schema.migrator.migrations }

    /// The schema migrations recorded as applied, oldest first (GRDB's identifiers, e.g. `v1: ledger`).
    public func migrationHistory() throws -> [String] {
        do { return try pool.read { db in try Schema.migrator.appliedMigrations(db) } } catch {
            throw SettlementError(.storage, "cannot read the ledger's migrations: \(error)")
        }
    }

    /// Opens the ledger at `path`: an existing, migrated ledger read-only until a step writes; a
    /// new (or older) one is created (migrated) through the writer at once.
    /// - parameter currency: the ledger's currency: required to match an existing ledger's; nil
    ///   opens an existing ledger in its own currency, or creates one in USD.
    /// - parameter access: `.readOnly` never writes (and never creates the file).
    /// - throws: `wrong_currency` when the file keeps another currency; `storage` when it cannot be opened.
    /// `tariff_sqlite_configure()`'s result, run once before the first connection opens: 0 when
    /// SQLite runs in multi-thread mode without memory statistics (on the writer, its per-call
    /// connection mutex and the allocator's statistics mutex were ~10% of the CPU), 21
    /// (`SQLITE_MISUSE`) when something in the process had initialized SQLite first (then its
    /// defaults stay: slower, equally correct).
    public static let sqliteSetup: Int32 = tariff_sqlite_configure()

    public init(path: String, currency: Currency? = nil, durability: Durability = .full, access: Access = .readWrite) throws {
        _ = Self.sqliteSetup
        var configuration = Configuration()
        // Another process (a second `tariff ledger` command) may hold the write lock for a moment.
        configuration.busyMode = .timeout(30)
        configuration.label = "tariff-ledger"
        let synchronous = Self.synchronousPragma(durability)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            // Checkpoint every ~40 MB of WAL rather than every 4 MB: a checkpoint copies each page once
            // however often it changed, and the same pages (balances, index pages) change in every commit.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
            // A bounded page cache (issue 12: replay's memory followed the ledger's size, 0.5 KB per
            // event, while the cache filled its former 64 MiB): pages beyond it are read again from
            // the kernel's file cache, outside the process. The writer keeps a group commit's pages
            // until its commit; a reader scans (usage, verify, replay's summary) through a little.
            try db.execute(sql: "PRAGMA cache_size = -\(db.configuration.readonly ? Self.readerCacheKibibytes : Self.writerCacheKibibytes)")
        }
        self.configuration = configuration
        self.access = access
        self.durability = durability
        self.path = path
        let shown = Redaction.url(path)
        do {
            var stored: String?
            if let reader = try Self.openReadOnly(path: path, configuration: configuration, access: access) {
                pool = reader
                stored = try pool.read { db -> String? in
                    guard try Schema.migrator.hasCompletedMigrations(db) else { return nil }
                    return try String.fetchOne(db, sql: "SELECT value FROM ledger_meta WHERE key = 'currency'")
                }
                if stored == nil, access == .readOnly {
                    throw SettlementError(.storage, "the ledger at \(shown) is not migrated to this version (run tariff ledger migrate)")
                }
            } else {
                guard access == .readWrite else { throw SettlementError(.storage, "there is no ledger at \(shown)") }
                pool = try DatabasePool(path: path, configuration: configuration)
            }
            if stored == nil {
                // A new ledger, or one from an older version: created and migrated through the writer.
                let writable = try Self.openWritable(path: path, configuration: configuration, durability: durability,
                                                     currency: currency ?? Self.defaultCurrency)
                stored = try writable.pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM ledger_meta WHERE key = 'currency'") }
                writer.withLock { $0 = writable.writer }
            }
            guard let code = stored, let storedCurrency = Currency(code: code) else {
                throw SettlementError(.storage, "the ledger at \(shown) keeps an unknown currency '\(SafeText.escaping(stored ?? ""))'")
            }
            if let currency, currency != storedCurrency {
                throw SettlementError(.wrongCurrency, "the ledger at \(shown) keeps \(storedCurrency.code), not \(currency.code)")
            }
            self.currency = storedCurrency
        } catch let error as SettlementError {
            throw error
        } catch {
            // The path may be a mistyped URL holding a password (`sqlite://u:SECRET@x`): redacted,
            // also where SQLite's own message repeats it.
            throw SettlementError(.storage, "cannot open the ledger at \(shown): " + "\(error)".replacingOccurrences(of: path, with: shown))
        }
    }


    /// A read-only pool on an existing file; nil when there is no file. On a read-only mount, where
    /// SQLite cannot make the WAL's shared-memory file, the file is opened `immutable` (nothing can
    /// change it there).
    private static func openReadOnly(path: String, configuration: Configuration, access: Access) throws -> DatabasePool? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var readOnly = configuration
        readOnly.readonly = true
        do {
            let pool = try DatabasePool(path: path, configuration: readOnly)
            _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return pool
        } catch {
            guard access == .readOnly, Glibc.access(path, W_OK) != 0 || Glibc.access(URL(fileURLWithPath: path).deletingLastPathComponent().path, W_OK) != 0 else { throw error }
            let pool = try DatabasePool(path: "file:" + path + "?immutable=1", configuration: readOnly)
            _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return pool
        }
    }

    /// The writable pool, migrated, with the currency recorded, and its writer.
    private static func openWritable(path: String, configuration: Configuration, durability: Durability,
                                     currency: Currency) throws -> (pool: DatabasePool, writer: GroupCommitWriter) {
        let pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB's pool sets `synchronous = NORMAL` on its writer when it turns WAL on, after
        // `prepareDatabase` ran: without this, every "durable" commit skipped its fsync (a power
        // loss could lose the last answered commits). Set again here, on the one writer connection.
        // temp_store = MEMORY on the writer only: each step's savepoint keeps the pages it changes in
        // a sub-journal, which SQLite spills to a file in /var/tmp past 64 KiB and then writes for
        // every later step of the transaction (some 12 pwrite calls an execution in a replay). In
        // memory it holds at most one step's pages: truncated when the step's savepoint is released.
        // Readers keep file-backed temp storage (a large report's sort must not grow the process).
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(Self.synchronousPragma(durability))")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        try Schema.migrator.migrate(pool)
        let code = try pool.write { db -> String in
            if let code = try String.fetchOne(db, sql: "SELECT value FROM ledger_meta WHERE key = 'currency'") { return code }
            try db.execute(sql: "INSERT INTO ledger_meta (key, value) VALUES ('currency', ?)", arguments: [currency.code])
            return currency.code
        }
        guard let stored = Currency(code: code) else { throw SettlementError(.storage, "the ledger keeps an unknown currency") }
        return (pool, GroupCommitWriter(pool: pool, currency: stored))
    }

    deinit {
        writer.withLock { $0?.close() }
    }

    /// Runs a write step. Before the writer is open, the step is first tried on a read-only
    /// connection: a step that is refused (an idempotency conflict, insufficient credits) or that
    /// repeats a first result needs no write, so it never opens the writer and leaves the file's
    /// bytes unchanged (settlement.md: a refused operation leaves the ledger byte-for-byte as it was).
    fileprivate func step<T: Sendable>(_ body: @escaping @Sendable (inout SQLiteStore) throws -> T) async throws -> T {
        if let open = writer.withLock({ $0 }) { return try await open.write(body) }
        guard access == .readWrite else { throw SettlementError(.storage, "the ledger at \(Redaction.url(path)) is open read-only") }
        let currency = currency
        let dryRun: DryRun<T>
        do {
            dryRun = try await pool.read { db -> DryRun<T> in
                var store = SQLiteStore(db: db, currency: currency, statements: StatementCache())
                do { return .answered(try body(&store)) } catch let error as SettlementError { return .refused(error) } catch { return .needsWrite }
            }
        } catch {
            dryRun = .needsWrite
        }
        switch dryRun {
        case .answered(let value): return value
        case .refused(let error): throw error
        case .needsWrite: break
        }
        return try await openWriter().write(body)
    }

    /// The writable pool, opened (and migrated) at the first write: the service store's small,
    /// rare writes (keys, kept answers, consumer settings) go straight through it, outside the
    /// group-commit writer; both serialise on the pool's one writer connection.
    func writablePool() throws -> DatabasePool { try openWriter().pool }

    /// The group-commit writer, opened (and the file migrated) at the first write.
    private func openWriter() throws -> GroupCommitWriter {
        guard access == .readWrite else { throw SettlementError(.storage, "the ledger at \(Redaction.url(path)) is open read-only") }
        let currency = currency
        return try writer.withLock { writer -> GroupCommitWriter in
            if let writer { return writer }
            do {
                let opened = try Self.openWritable(path: path, configuration: configuration, durability: durability, currency: currency).writer
                writer = opened
                return opened
            } catch {
                throw SettlementError(.storage, "cannot open the ledger at \(Redaction.url(path)) for writing: "
                                      + "\(error)".replacingOccurrences(of: path, with: Redaction.url(path)))
            }
        }
    }

    /// Runs write steps in order in one transaction (`GroupCommitWriter.writeBatch`). Before the
    /// writer is open, the batch is first tried on a read-only connection, as `step` tries one
    /// step: when every step is answered or refused without writing (a replay run again), the
    /// file is left as it was.
    fileprivate func batch<T: Sendable>(_ bodies: [@Sendable (inout SQLiteStore) throws -> T]) async throws -> [Result<T, any Error>] {
        if let open = writer.withLock({ $0 }) { return try await open.writeBatch(bodies) }
        guard access == .readWrite else { throw SettlementError(.storage, "the ledger at \(Redaction.url(path)) is open read-only") }
        let currency = currency
        let dryRun: [Result<T, any Error>]?
        do {
            dryRun = try await pool.read { db -> [Result<T, any Error>]? in
                var store = SQLiteStore(db: db, currency: currency, statements: StatementCache())
                var results: [Result<T, any Error>] = []
                for body in bodies {
                    do { results.append(.success(try body(&store))) } catch let error as SettlementError where error.code != .storage {
                        results.append(.failure(error))
                    } catch {
                        return nil
                    }
                }
                return results
            }
        } catch {
            dryRun = nil
        }
        if let dryRun { return dryRun }
        return try await openWriter().writeBatch(bodies)
    }

    private enum DryRun<T: Sendable>: Sendable {
        case answered(T)
        case refused(SettlementError)
        case needsWrite
    }

    /// `PRAGMA synchronous` as the backend's connections run it (2 is FULL, 1 NORMAL).
    public func synchronousSetting() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// `PRAGMA synchronous` of the writer connection (2: FULL, 1: NORMAL), opening it if needed.
    public func writerSynchronousSetting() async throws -> Int {
        try await openWriter().pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// `PRAGMA cache_size` as a reader connection runs it (negative: KiB).
    public func readerCacheSetting() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0 }
    }

    fileprivate func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as SettlementError {
            throw error
        } catch {
            throw SettlementError(.storage, "reading the ledger failed: \(error)")
        }
    }
}

extension SQLiteBackend: SettlementBackend {
    // MARK: Steps (group-committed writes)

    /// The batch in one transaction, each step in its own savepoint, one commit (one fsync).
    public func apply(_ steps: [LedgerStep]) async throws -> [Result<LedgerStepOutcome, SettlementError>] {
        let bodies: [@Sendable (inout SQLiteStore) throws -> LedgerStepOutcome] = steps.map { step in { try LedgerSteps.apply(step, in: &$0) } }
        return try await batch(bodies).map { result in
            result.mapError { error in
                (GroupCommitWriter.settlementError(error) as? SettlementError) ?? SettlementError(.storage, "\(error)")
            }
        }
    }

    public func purchase(_ command: PurchaseCommand) async throws -> PurchaseReceipt {
        try await step { try LedgerSteps.purchase(command, in: &$0) }
    }

    public func reserve(_ command: ReserveCommand) async throws -> Hold {
        try await step { try LedgerSteps.reserve(command, in: &$0) }
    }

    public func extendHold(_ command: ExtendCommand) async throws -> MeterReceipt {
        try await step { try LedgerSteps.extendHold(command, in: &$0) }
    }

    public func settle(_ command: SettleCommand, pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) async throws -> SettleReceipt {
        try await step { try LedgerSteps.settle(command, pricing: pricing, in: &$0) }
    }

    public func release(_ command: ReleaseCommand) async throws -> ReleaseReceipt {
        try await step { try LedgerSteps.release(command, in: &$0) }
    }

    public func chargePeriod(_ command: PeriodChargeCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await step { try LedgerSteps.chargePeriod(command, lines: lines, in: &$0) }
    }

    public func expireHolds(at now: Timestamp) async throws -> Int {
        try await step { try LedgerSteps.expireHolds(at: now, in: &$0) }
    }

    public func recordPayout(_ command: PayoutCommand) async throws -> PayoutStep {
        try await step { try LedgerSteps.recordPayout(command, in: &$0) }
    }

    public func failPayout(key: String, reason: String, now: Timestamp) async throws -> PayoutRecord {
        try await step { try LedgerSteps.failPayout(key: key, reason: reason, now: now, in: &$0) }
    }

    public func markPayoutSent(key: String, reference: String) async throws {
        try await step { try LedgerSteps.markPayoutSent(key: key, reference: reference, in: &$0) }
    }

    public func beginPurchase(_ command: PendingPurchaseCommand) async throws -> PendingPurchaseReceipt {
        try await step { try LedgerSteps.beginPurchase(command, in: &$0) }
    }

    public func updatePurchase(key: String, reference: String?, state: PurchaseRecord.State) async throws -> PurchaseRecord {
        try await step { try LedgerSteps.updatePurchase(key: key, reference: reference, state: state, in: &$0) }
    }

    public func refund(_ command: RefundCommand) async throws -> ReversalRecord {
        try await step { try LedgerSteps.refund(command, in: &$0) }
    }

    public func completeRefund(key: String, reference: String?, failed: Bool, now: Timestamp) async throws -> ReversalRecord {
        try await step { try LedgerSteps.completeRefund(key: key, reference: reference, failed: failed, now: now, in: &$0) }
    }

    public func disputeLost(_ command: DisputeCommand) async throws -> ReversalRecord {
        try await step { try LedgerSteps.disputeLost(command, in: &$0) }
    }

    // MARK: Reads (WAL readers: committed steps only)

    public func purchaseRecord(key: String) async throws -> PurchaseRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(SQLiteStore.purchaseColumns) FROM purchases WHERE key = ?", arguments: [key]).map(SQLiteStore.purchase(from:))
        }
    }

    public func purchaseRecord(reference: String) async throws -> PurchaseRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(SQLiteStore.purchaseColumns) FROM purchases WHERE reference = ? ORDER BY key LIMIT 1", arguments: [reference])
                .map(SQLiteStore.purchase(from:))
        }
    }

    /// One consumer's balance; the statement is prepared once per reader connection (the
    /// service's `GET /v1/balance` and a replay's summary call it thousands of times).
    public func balance(consumer: String, at now: Timestamp) async throws -> Balance {
        let currency = currency
        return try await read { db in
            let statement = try db.cachedStatement(sql: Self.balanceSQL + " WHERE id = ?")
            guard let row = try Row.fetchOne(statement, arguments: [now.nanosecondsSinceEpoch, consumer]) else {
                throw SettlementError(.unknownConsumer, "no credits were ever purchased for consumer '\(consumer)'")
            }
            return Self.balance(row, currency: currency)
        }
    }

    /// Every consumer's balance in one read, in byte order of the ids (a replay's summary).
    public func balances(at now: Timestamp) async throws -> [Balance] {
        let currency = currency
        return try await read { db in
            // TEXT's default BINARY collation: byte order, as `consumerIDs`.
            try Row.fetchAll(db, sql: Self.balanceSQL + " ORDER BY id", arguments: [now.nanosecondsSinceEpoch]).map { Self.balance($0, currency: currency) }
        }
    }

    private static let balanceSQL = """
        SELECT id, available, reserved,
               (SELECT COALESCE(SUM(amount), 0) FROM holds WHERE consumer = consumers.id AND state = 0 AND expires_at <= ?)
        FROM consumers
        """

    /// Holds past their expiry already count as available (the next step on the consumer writes it).
    private static func balance(_ row: Row, currency: Currency) -> Balance {
        let available: Int64 = row[1], reserved: Int64 = row[2], expired: Int64 = row[3]
        return Balance(consumer: row[0], currency: currency, available: Money(micros: available + expired), reserved: Money(micros: reserved - expired))
    }

    public func periodState(_ key: PeriodKey) async throws -> PeriodState {
        let raw = key.rawValue
        return try await read { db in
            let statement = try db.cachedStatement(sql: """
                SELECT used_compute_units, usage_charges, executions, succeeded, failed FROM period_states WHERE key = ?
                """)
            guard let row = try Row.fetchOne(statement, arguments: [raw]) else { return .empty }
            return SQLiteStore.periodState(row, from: 0)
        }
    }

    /// A hold by its execution id (the service's settle reads it first, for its replay header):
    /// the statement is prepared once per reader connection.
    public func hold(execution: String) async throws -> HoldRecord? {
        try await read { db in
            let statement = try db.cachedStatement(sql: "SELECT \(SQLiteStore.holdColumns) FROM holds WHERE execution = ?")
            return try Row.fetchOne(statement, arguments: [execution]).map(SQLiteStore.hold(from:))
        }
    }

    public func payouts(weekStart: CivilDate) async throws -> [PayoutRecord] {
        let week = weekStart.description
        return try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(SQLiteStore.payoutColumns) FROM payouts WHERE week_start = ? ORDER BY creator
                """, arguments: [week]).compactMap(SQLiteStore.payout(from:))
        }
    }

    public func reversePayout(key: String, reversedTotal: Money, transfer: String, now: Timestamp) async throws -> PayoutRecord {
        try await step { try LedgerSteps.reversePayout(key: key, reversedTotal: reversedTotal, transfer: transfer, now: now, in: &$0) }
    }

    public func releaseCreator(_ creator: String) async throws -> Bool {
        try await step { try LedgerSteps.releaseCreator(creator, in: &$0) }
    }

    public func openPeriod(_ record: PeriodCloseRecord) async throws -> PeriodCloseRecord {
        try await step { try LedgerSteps.openPeriod(record, in: &$0) }
    }

    public func closePeriod(_ command: PeriodCloseCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await step { try LedgerSteps.closePeriod(command, lines: lines, in: &$0) }
    }

    public func subscribe(_ command: SubscribeCommand) async throws -> SubscribeReceipt {
        try await step { try LedgerSteps.subscribe(command, in: &$0) }
    }

    public func cancelSubscription(id: String, at: Timestamp) async throws -> SubscriptionRecord {
        try await step { try LedgerSteps.cancelSubscription(id: id, at: at, in: &$0) }
    }

    public func advanceSubscription(id: String, chargedPeriods: Int) async throws -> SubscriptionRecord {
        try await step { try LedgerSteps.advanceSubscription(id: id, chargedPeriods: chargedPeriods, in: &$0) }
    }

    /// One consumer's subscriptions (every reserve that names an agent reads them) through the
    /// `subscriptions_by_consumer` index and a statement prepared once per reader connection; all of
    /// them without a consumer. (One statement for both, `?1 IS NULL OR consumer = ?1`, was prepared
    /// for each call and scanned the whole table.)
    public func subscriptions(consumer: String?) async throws -> [SubscriptionRecord] {
        try await read { db in
            guard let consumer else {
                return try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.subscriptionColumns) FROM subscriptions ORDER BY consumer, start, id")
                    .map(SQLiteStore.subscription(from:))
            }
            let statement = try db.cachedStatement(sql: """
                SELECT \(SQLiteStore.subscriptionColumns) FROM subscriptions WHERE consumer = ? ORDER BY consumer, start, id
                """)
            return try Row.fetchAll(statement, arguments: [consumer]).map(SQLiteStore.subscription(from:))
        }
    }

    public func subscription(id: String) async throws -> SubscriptionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(SQLiteStore.subscriptionColumns) FROM subscriptions WHERE id = ?", arguments: [id])
                .map(SQLiteStore.subscription(from:))
        }
    }

    public func dueSubscriptions(at now: Timestamp) async throws -> [SubscriptionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(SQLiteStore.subscriptionColumns) FROM subscriptions WHERE next_period_start IS NOT NULL AND next_period_start <= ? ORDER BY id
                """, arguments: [now.nanosecondsSinceEpoch]).map(SQLiteStore.subscription(from:))
        }
    }

    public func periodCloses() async throws -> [PeriodCloseRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.closeColumns) FROM period_closes ORDER BY key").map(SQLiteStore.close(from:))
        }
    }

    public func creatorHolds() async throws -> [CreatorHold] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT creator, reason, since FROM creator_holds ORDER BY creator").map {
                CreatorHold(creator: $0[0], reason: $0[1], since: Timestamp(nanosecondsSinceEpoch: $0[2]))
            }
        }
    }

    public func payoutRecords() async throws -> [PayoutRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.payoutColumns) FROM payouts ORDER BY key").compactMap(SQLiteStore.payout(from:))
        }
    }

    public func chargeRecords(_ query: ChargeQuery) async throws -> [ChargeRecord] {
        try await read { db in
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let consumer = query.consumer { conditions.append("consumer = ?"); arguments.append(consumer) }
            if let creator = query.creator { conditions.append("creator = ?"); arguments.append(creator) }
            if let from = query.from { conditions.append("dated_at >= ?"); arguments.append(from.nanosecondsSinceEpoch) }
            if let to = query.to { conditions.append("dated_at < ?"); arguments.append(to.nanosecondsSinceEpoch) }
            let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            return try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.chargeColumns) FROM charges\(filter) ORDER BY sequence",
                                    arguments: StatementArguments(arguments)).map(SQLiteStore.charge(from:))
        }
    }

    /// SQLite's `BINARY` collation is byte order.
    public func consumerIDs() async throws -> [String] {
        try await read { db in try String.fetchAll(db, sql: "SELECT id FROM consumers ORDER BY id") }
    }

    /// Summed in Swift through a cursor (SQLite's SUM would fail past Int64; no row list is held).
    public func uncollectedTotal() async throws -> MoneySum {
        try await read { db in
            var total = MoneySum()
            let values = try Int64.fetchCursor(db, sql: "SELECT uncollected FROM charges WHERE uncollected != 0")
            while let micros = try values.next() { total.add(Money(micros: micros)) }
            return total
        }
    }

    public func snapshot() async throws -> LedgerSnapshot {
        let currency = currency
        return try await read { db in
            let consumers = try Row.fetchAll(db, sql: "SELECT id, available, reserved FROM consumers ORDER BY id").map {
                ConsumerRecord(id: $0[0], available: Money(micros: $0[1]), reserved: Money(micros: $0[2]))
            }
            let holds = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.holdColumns) FROM holds ORDER BY execution").map(SQLiteStore.hold(from:))
            let entries = try Row.fetchAll(db, sql: """
                SELECT sequence, operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at FROM entries ORDER BY sequence
                """).map(SQLiteStore.entry(from:))
            let charges = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.chargeColumns) FROM charges ORDER BY sequence").map(SQLiteStore.charge(from:))
            let operations = try Row.fetchAll(db, sql: "SELECT key, fingerprint, result, at FROM operations ORDER BY key").map {
                SQLiteStore.operation(key: $0[0], $0, from: 1)
            }
            let payouts = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.payoutColumns) FROM payouts ORDER BY key")
                .compactMap(SQLiteStore.payout(from:))
            let periods = try Row.fetchAll(db, sql: """
                SELECT key, used_compute_units, usage_charges, executions, succeeded, failed FROM period_states ORDER BY key
                """).map { PeriodRecord(key: $0[0], state: SQLiteStore.periodState($0, from: 1)) }
            let purchases = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.purchaseColumns) FROM purchases ORDER BY key").map(SQLiteStore.purchase(from:))
            let reversals = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.reversalColumns) FROM reversals ORDER BY key").map(SQLiteStore.reversal(from:))
            var snapshot = LedgerSnapshot(currency: currency, consumers: consumers, holds: holds, entries: entries, charges: charges, operations: operations,
                                          payouts: payouts, periods: periods, purchases: purchases, reversals: reversals)
            snapshot.closes = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.closeColumns) FROM period_closes ORDER BY key").map(SQLiteStore.close(from:))
            snapshot.subscriptions = try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.subscriptionColumns) FROM subscriptions ORDER BY id")
                .map(SQLiteStore.subscription(from:))
            return snapshot
        }
    }

    /// Every row of every table as text, straight from SQL (not through the ledger's types): what a
    /// test compares before and after a refused operation to show the database did not change.
    public func dump() async throws -> String {
        try await read { db in
            var text = ""
            for table in Schema.tables {
                text += "== \(table)\n"
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1") { text += row.description + "\n" }
            }
            return text
        }
    }
}

/// Applies write steps in group commits: every step waiting when the writer is free goes into one
/// transaction, each in its own savepoint, and is answered after the commit.
final class GroupCommitWriter: Sendable {
    /// The most steps in one commit: bounds a transaction's size and the latency of its first step.
    static let maximumBatch = 4_096

    /// One step, or an ordered batch of steps: runs each step in a savepoint of its own (through
    /// `Savepoint.run`), then is told how the commit went.
    private struct Job: Sendable {
        let run: @Sendable (inout SQLiteStore, Savepoint) throws -> @Sendable ((any Error)?) -> Void
        /// Answers a step that never ran because its batch's transaction failed first.
        let fail: @Sendable (any Error) -> Void
    }

    /// A step inside its savepoint: kept when it returns, rolled back to the savepoint when it throws.
    private struct Savepoint {
        let begin: RawStatement, release: RawStatement, rollBack: RawStatement

        func run<T>(_ store: inout SQLiteStore, _ body: (inout SQLiteStore) throws -> T) throws -> Result<T, any Error> {
            try begin.run()
            let result: Result<T, any Error>
            do { result = .success(try body(&store)) } catch {
                result = .failure(error)
                try rollBack.run()
            }
            try release.run()
            return result
        }
    }

    private struct Queue: ~Copyable {
        var jobs: [Job] = []
        var draining = false
    }

    let pool: DatabasePool
    private let currency: Currency
    private let queue = Mutex(Queue())
    private let thread = DispatchQueue(label: "tariff.sqlite.group-commit")
    /// Only touched inside the pool's writer (serial).
    private let statements = StatementCache()

    init(pool: DatabasePool, currency: Currency) {
        self.pool = pool
        self.currency = currency
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (inout SQLiteStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            enqueue(Job(run: { store, savepoint in
                let result = try savepoint.run(&store, body)
                return { commitError in
                    if let commitError { return continuation.resume(throwing: Self.settlementError(commitError)) }
                    continuation.resume(with: result.mapError(Self.settlementError))
                }
            }, fail: { error in continuation.resume(throwing: Self.settlementError(error)) }))
        }
    }

    /// Steps applied in order in one transaction (with whatever other steps share its commit),
    /// each in its own savepoint: a step that throws is rolled back alone and answers its error.
    /// Answered after the commit; throws (nothing applied) when the transaction failed.
    func writeBatch<T: Sendable>(_ bodies: [@Sendable (inout SQLiteStore) throws -> T]) async throws -> [Result<T, any Error>] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Result<T, any Error>], any Error>) in
            enqueue(Job(run: { store, savepoint in
                var results: [Result<T, any Error>] = []
                results.reserveCapacity(bodies.count)
                for body in bodies { results.append(try savepoint.run(&store, body).mapError(Self.settlementError)) }
                let answered = results
                return { commitError in
                    if let commitError { return continuation.resume(throwing: Self.settlementError(commitError)) }
                    continuation.resume(returning: answered)
                }
            }, fail: { error in continuation.resume(throwing: Self.settlementError(error)) }))
        }
    }

    private func enqueue(_ job: Job) {
        let start = queue.withLock { queue -> Bool in
            queue.jobs.append(job)
            guard !queue.draining else { return false }
            queue.draining = true
            return true
        }
        if start { thread.async { self.drain() } }
    }

    private func drain() {
        while true {
            let batch = queue.withLock { queue -> [Job] in
                guard !queue.jobs.isEmpty else {
                    queue.draining = false
                    return []
                }
                let count = min(queue.jobs.count, Self.maximumBatch)
                let batch = Array(queue.jobs.prefix(count))
                queue.jobs.removeFirst(count)
                return batch
            }
            guard !batch.isEmpty else { return }
            var finishers: [@Sendable ((any Error)?) -> Void] = []
            finishers.reserveCapacity(batch.count)
            do {
                try pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        var store = SQLiteStore(db: db, currency: currency, statements: statements)
                        // Savepoints through prepared statements: GRDB's inSavepoint parses its SQL on every call.
                        let savepoint = Savepoint(begin: try statements.statement("SAVEPOINT step", in: db),
                                                  release: try statements.statement("RELEASE step", in: db),
                                                  rollBack: try statements.statement("ROLLBACK TO step", in: db))
                        for job in batch { finishers.append(try job.run(&store, savepoint)) }
                        return .commit
                    }
                }
                for finish in finishers { finish(nil) }
            } catch {
                // The transaction was rolled back: every step of the batch failed, those that had run and those that had not.
                for finish in finishers { finish(error) }
                for job in batch.dropFirst(finishers.count) { job.fail(error) }
            }
        }
    }

    /// Finalizes the prepared statements on the writer connection, before it closes. Called when
    /// the backend goes away: no step can be in flight then (each waiting step holds the backend).
    func close() {
        pool.writeWithoutTransaction { _ in statements.removeAll() }
    }

    static func settlementError(_ error: any Error) -> any Error {
        if error is SettlementError { return error }
        return SettlementError(.storage, "the ledger's database failed: \(error)")
    }
}
