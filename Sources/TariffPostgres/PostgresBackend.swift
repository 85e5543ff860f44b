import Logging
import Synchronization
import PostgresNIO
import Tariff
import TariffSettlement

/// The shared settlement backend: one PostgreSQL database, many settlement workers on many
/// machines (`postgres://user@host:port/db`).
///
/// Each lifecycle step is one call of a server-side function (`Schema`): one round trip and one
/// implicit transaction, so a step is atomic and durable when it returns, and a refused step
/// writes nothing. Settle and period charges price in Swift first (one read), then apply
/// conditionally on what they read (`stale` means: read and price again); after a few stale
/// answers in a row (a hot consumer) the step takes the consumer's row lock for its read, price and
/// apply, so it always makes progress.
///
/// Transient failures (serialization failure 40001, deadlock 40P01, a unique key taken by a
/// concurrent duplicate, a lost connection) are retried with the same command: every step carries
/// its idempotency key, so a retry of a step that did commit before its answer was lost returns
/// the first result and writes nothing.
///
/// ```swift
/// let backend = try await PostgresBackend(url: "postgres://tariff@db:5432/ledger?pool=16")
/// let settlement = Settlement(backend: backend, catalog: catalog)
/// ```
public final class PostgresBackend: SettlementBackend {
    public let currency: Currency
    public let configuration: PostgresConfiguration
    let pool: ConnectionPool
    /// Reserves on a consumer that arrive while one is in flight go together (group commit).
    let reserveBatcher: StepBatcher<ReserveCommand, Hold>
    /// Settles priced before any read (per-call plans), batched the same way; nil: stale (read, then price again).
    let settleBatcher: StepBatcher<PricedSettle, SettleReceipt?>
    /// Optimistic tries of a settle or period charge before it takes the consumer's lock.
    static let optimisticAttempts = 3
    /// Tries of a step that failed transiently (each after a short, growing, jittered pause).
    static let transientAttempts = 12

    static let logger = Logger(label: "tariff.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects, applies pending migrations (serialised between workers by an advisory lock) and
    /// reads the ledger's currency.
    /// - parameter currency: required to match an existing ledger's; nil opens an existing ledger
    ///   in its own currency, or creates one in USD.
    /// - throws: `wrong_currency`, `invalid_input` (the URL), `storage` (cannot connect or migrate).
    public convenience init(url: String, currency: Currency? = nil) async throws {
        try await self.init(configuration: PostgresConfiguration(url: url), currency: currency)
    }

    public init(configuration: PostgresConfiguration, currency: Currency? = nil, migrate: Bool = true) async throws {
        self.configuration = configuration
        pool = ConnectionPool(configuration: try Self.connectionConfiguration(configuration), maximumConnections: configuration.poolSize,
                              statementTimeoutSeconds: configuration.statementTimeoutSeconds, logger: Self.logger)
        let pool = pool
        reserveBatcher = StepBatcher(consumerOf: { $0.consumer }, runBatch: { commands in try await Self.reserveBatch(commands, pool: pool) },
                                     runAlone: { command in try await Self.reserveAlone(command, pool: pool, configuration: configuration) })
        settleBatcher = StepBatcher(consumerOf: { $0.command.consumer }, runBatch: { settles in try await Self.settleBatch(settles, pool: pool) },
                                    runAlone: { settle in try await Self.settleAlone(settle, pool: pool, configuration: configuration) })
        do {
            try await Self.probe(configuration, pool.configuration)
            if migrate { try await Self.retrying(configuration) { try await Self.migrate(pool, schema: configuration.schema) } }
            let stored = try await Self.retrying(configuration) { try await Self.storedCurrency(pool, creating: currency ?? Self.defaultCurrency) }
            guard let storedCurrency = Currency(code: stored) else {
                throw SettlementError(.storage, "the ledger at \(configuration) keeps an unknown currency '\(stored)'")
            }
            if let currency, currency != storedCurrency {
                throw SettlementError(.wrongCurrency, "the ledger at \(configuration) keeps \(storedCurrency.code), not \(currency.code)")
            }
            self.currency = storedCurrency
        } catch {
            pool.shutdown()
            throw Self.settlementError(error, configuration: configuration)
        }
    }

    deinit { pool.shutdown() }

    /// Closes the pool's connections (those in use when they come back); later steps fail with `storage`.
    public func shutdown() { pool.shutdown() }

    /// The currency a new ledger keeps when none is asked for.
    public static let defaultCurrency = Currency(code: "USD")!

    /// Opens one connection first, outside the retries: a worker started against a wrong host
    /// fails once, in `connect_timeout`, with the reason. Any answer from the server (even a
    /// refusal) proves it is there; the pool's first connection then says what.
    static func probe(_ settings: PostgresConfiguration, _ configuration: PostgresConnection.Configuration) async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try await connection.close()
        } catch let error as PSQLError where error.serverInfo != nil {
            return
        } catch {
            let reason = (error as? PSQLError)?.code.description ?? "\(error)"
            throw SettlementError(.storage, "cannot reach the ledger at \(settings): \(reason)" + tlsAdvice(settings, reason: reason))
        }
    }

    /// What to do when a connection failed under `verify-full` (the default off this machine): the
    /// error says it was the default and how to trust the server, so nobody is left guessing.
    static func tlsAdvice(_ settings: PostgresConfiguration, reason: String) -> String {
        guard settings.tls == .verifyFull else { return "" }
        let defaulted = PostgresConfiguration.defaultTLS(host: settings.host) == .verifyFull
        return " (sslmode=verify-full\(defaulted ? ", the default for a host that is not loopback," : "") needs the server to offer TLS "
            + "with a certificate for '\(settings.host)' signed by a trusted authority: give sslrootcert=FILE for a private CA, "
            + "or sslmode=require to encrypt without checking the certificate, or sslmode=disable on a network you trust)"
    }

    /// - throws: `invalid_input` when the TLS settings cannot make a context (no usable trust store for verify-full).
    static func connectionConfiguration(_ settings: PostgresConfiguration) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch settings.tls {
        case .disable: tls = .disable
        case .prefer, .require:
            // libpq's prefer/require encrypt without checking the certificate; verify-full checks it.
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .none
            let sslContext = try Self.sslContext(context)
            tls = settings.tls == .prefer ? .prefer(sslContext) : .require(sslContext)
        case .verifyFull:
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .fullVerification
            if let file = settings.trustedCertificatesFile { context.trustRoots = .file(file) }
            tls = .require(try Self.sslContext(context))
        }
        var configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user, password: settings.password,
                                                             database: settings.database, tls: tls)
        configuration.options.connectTimeout = .seconds(Int64(settings.connectTimeoutSeconds))
        configuration.options.additionalStartupParameters = [
            ("search_path", "\"\(settings.schema)\""),
            ("statement_timeout", "\(settings.statementTimeoutSeconds * 1000)"),
            ("application_name", settings.applicationName),
        ]
        return configuration
    }

    static func sslContext(_ configuration: TLSConfiguration) throws -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw SettlementError(.invalidInput, "cannot set up TLS for the ledger: \(error)")
        }
    }

    // MARK: Migrations

    /// Applies every migration not yet recorded, in one transaction under an advisory lock on the
    /// schema: several workers starting at once apply each migration exactly once (the others
    /// wait for the lock, then find it recorded).
    /// - parameter migrations: all of them but in tests of an upgrade from an older schema.
    static func migrate(_ pool: ConnectionPool, schema: String, migrations: [Schema.Migration] = Schema.migrations) async throws {
        try await pool.withTransaction { connection in
            // Two-key advisory lock: a fixed class (the ASCII of "TF") and the schema's hash.
            try await connection.query("SELECT pg_advisory_xact_lock(21574, hashtext(\(schema)))", logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(schema)\""), logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS "\(schema)".tariff_migrations (version bigint PRIMARY KEY, name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
                """), logger: logger)
            var applied = Set<Int64>()
            for row in try await connection.query(PostgresQuery(unsafeSQL: "SELECT version FROM \"\(schema)\".tariff_migrations"), logger: logger) {
                applied.insert(try row.decode(Int64.self))
            }
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \"\(schema)\".tariff_migrations (version, name) VALUES (\(migration.version), '\(migration.name)')"),
                                           logger: logger)
            }
        }
    }

    /// Every migration version this release knows, in order (tests of an upgrade in place).
    public static var knownMigrations: [Int64] { Schema.migrations.map(\.version) }

    /// The versions recorded as applied (tests).
    public func appliedMigrations() async throws -> [Int64] {
        try await rows("SELECT version FROM tariff_migrations ORDER BY version").map { try $0[0].decode(Int64.self) }
    }

    /// The migrations recorded as applied, oldest first, as `VERSION NAME` (`tariff ledger migrate`).
    public func migrationHistory() async throws -> [String] {
        try await step { [self] in
            try await rows("SELECT version, name FROM tariff_migrations ORDER BY version").map { "\(try $0[0].decode(Int64.self)) \(try $0[1].decode(String.self))" }
        }
    }

    static func storedCurrency(_ pool: ConnectionPool, creating currency: Currency) async throws -> String {
        let code = currency.code
        return try await pool.withConnection { connection in
            try await connection.query("INSERT INTO ledger_meta (key, value) VALUES ('currency', \(code)) ON CONFLICT (key) DO NOTHING", logger: logger)
            for row in try await connection.query("SELECT value FROM ledger_meta WHERE key = 'currency'", logger: logger) {
                return try row.decode(String.self)
            }
            throw SettlementError(.storage, "the ledger keeps no currency")
        }
    }

    // MARK: Running statements

    /// The rows of one statement, on `connection` (inside a transaction) or on a connection of the pool.
    func rows(_ query: PostgresQuery, on connection: LeasedConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        if let connection { return try await Self.collect(query, on: connection) }
        return try await pool.withConnection { connection in try await Self.collect(query, on: connection) }
    }

    static func collect(_ query: PostgresQuery, on connection: LeasedConnection) async throws -> [PostgresRandomAccessRow] {
        try await connection.query(query, logger: logger).map { $0.makeRandomAccess() }
    }

    func row(_ query: PostgresQuery, on connection: LeasedConnection? = nil) async throws -> PostgresRandomAccessRow {
        guard let row = try await rows(query, on: connection).first else { throw SettlementError(.storage, "the ledger's function returned no row") }
        return row
    }

    /// Runs one step, retrying transient failures with the same command (safe: every step is idempotent by its key).
    func step<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Self.retrying(configuration, body)
    }

    static func retrying<T: Sendable>(_ configuration: PostgresConfiguration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch {
                attempt += 1
                guard attempt < Self.transientAttempts, Self.isTransient(error) else { throw Self.settlementError(error, configuration: configuration) }
                try await Self.pause(attempt)
            }
        }
    }

    static func pause(_ attempt: Int) async throws {
        // 1, 2, 4 ... ms, capped at 64 ms, with jitter so that colliding workers spread out.
        let base = min(64, 1 << min(attempt - 1, 6))
        try await Task.sleep(for: .microseconds(Int.random(in: (base * 500)...(base * 1_000))))
    }

    /// The server's error inside a transaction's wrapper (a refusal raised in a locked step arrives wrapped).
    static func underlying(_ error: any Error) -> any Error {
        if let wrapped = error as? ConnectionPool.TransactionError { return underlying(wrapped.underlying) }
        guard let wrapped = error as? PostgresTransactionError else { return error }
        return wrapped.closureError.map(underlying) ?? wrapped.beginError ?? wrapped.commitError ?? error
    }

    static func isTransient(_ error: any Error) -> Bool {
        // A connection that did not answer within its deadline was dropped: like a lost connection.
        if underlying(error) is ConnectionPool.DeadlineExceeded { return true }
        guard let error = underlying(error) as? PSQLError else { return false }
        switch error.code {
        // clientClosedConnection: a query sent on a connection the server had just cut (the pool has not noticed yet).
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown: return true
        default: break
        }
        // serialization_failure, deadlock_detected, unique_violation (a concurrent duplicate took the key:
        // the retry finds it and answers as a retry), lock_not_available, admin/crash shutdown, connection exceptions.
        return ["40001", "40P01", "23505", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    static func isStale(_ error: any Error) -> Bool { (underlying(error) as? PSQLError)?.serverInfo?[.hint] == "tariff-stale" }

    /// A refusal raised by a function (`tariff_refuse`) as the `SettlementError` it names; any other failure as `storage`.
    static func settlementError(_ wrapped: any Error, configuration: PostgresConfiguration) -> any Error {
        let error = underlying(wrapped)
        if error is SettlementError { return error }
        if let error = error as? PSQLError {
            let message = error.serverInfo?[.message] ?? "\(error.code)"
            if let hint = error.serverInfo?[.hint], hint.hasPrefix("tariff:") {
                return SettlementError(SettlementError.Code(rawValue: String(hint.dropFirst("tariff:".count))), message)
            }
            switch error.serverInfo?[.sqlState] {
            case "22003": return SettlementError(.outOfRange, "an amount would leave the ledger's 64-bit range (\(message))")
            case "23514": return SettlementError(.outOfRange, "a balance would become negative (\(message))")
            default: break
            }
            if error.serverInfo == nil {
                return SettlementError(.storage, "cannot reach the ledger at \(configuration): \(error.code)")
            }
            return SettlementError(.storage, "the ledger's database failed: \(message)")
        }
        if String(describing: type(of: error)).contains("ConnectionPoolError") {
            // The pool gave up opening connections (postgres-nio's circuit breaker): the server is unreachable.
            return SettlementError(.storage, "cannot reach the ledger at \(configuration): \(error)")
        }
        return SettlementError(.storage, "the ledger's database failed: \(error)")
    }

    // MARK: Steps

    /// A batch applied one step at a time (`applyOneByOne`): each step is its own server-side
    /// transaction with its retries (the reserves and per-call settles still share round trips with
    /// concurrent ones through the step batchers). Correct, not fast: one commit per step, where
    /// the SQLite backend commits a batch once.
    public func apply(_ steps: [LedgerStep]) async throws -> [Result<LedgerStepOutcome, SettlementError>] {
        try await applyOneByOne(steps)
    }

    public func purchase(_ command: PurchaseCommand) async throws -> PurchaseReceipt {
        let key = "purchase:" + command.key
        let row = try await step { [self] in
            try await self.row("SELECT * FROM tariff_purchase(\(key), \(command.fingerprint), \(command.consumer), \(command.amount.micros), \(command.now.nanosecondsSinceEpoch))")
        }
        return PurchaseReceipt(consumer: command.consumer, amount: Money(micros: try row[0].decode(Int64.self)), available: Money(micros: try row[1].decode(Int64.self)))
    }

    public func reserve(_ command: ReserveCommand) async throws -> Hold {
        try await reserveBatcher.submit(command)
    }

    /// Several reserves on one consumer in one call (`StepBatcher`): an outcome each, in order.
    static func reserveBatch(_ commands: [ReserveCommand], pool: ConnectionPool) async throws -> [Result<Hold, any Error>] {
        let versions: [Int64] = commands.map { Int64($0.version) }
        // Arrays cannot carry NULLs here: Int64.min (an instant in 1677) stands for "no period".
        let periodStarts: [Int64] = commands.map { $0.periodStart?.nanosecondsSinceEpoch ?? Int64.min }
        let rows = try await pool.withConnection { connection in try await collect("""
            SELECT o_index, o_consumer, o_amount, o_expires_at, o_refused, o_code, o_message FROM tariff_reserve_batch(
                \(commands.map(\.execution)), \(commands.map(\.fingerprint)), \(commands.map(\.consumer)), \(commands.map(\.plan)),
                \(versions), \(periodStarts), \(commands.map(\.amount.micros)),
                \(commands.map(\.expiresAt.nanosecondsSinceEpoch)), \(commands.map(\.now.nanosecondsSinceEpoch)), \(commands.map(\.recordsRefusal)))
            ORDER BY o_index
            """, on: connection) }
        return try zip(commands, rows).map { (command: ReserveCommand, row: PostgresRandomAccessRow) throws -> Result<Hold, any Error> in
            if let code = try row[5].decode(String?.self) {
                return .failure(SettlementError(SettlementError.Code(rawValue: code), try row[6].decode(String?.self) ?? code))
            }
            return .success(Hold(execution: command.execution, consumer: try row[1].decode(String.self), amount: Money(micros: try row[2].decode(Int64.self)),
                                 expiresAt: Timestamp(nanosecondsSinceEpoch: try row[3].decode(Int64.self)), refused: try row[4].decode(Bool.self)))
        }
    }

    /// One reserve, with its retries.
    static func reserveAlone(_ command: ReserveCommand, pool: ConnectionPool, configuration: PostgresConfiguration) async throws -> Hold {
        let rows = try await retrying(configuration) {
            try await pool.withConnection { connection in try await collect("""
                SELECT * FROM tariff_reserve(\(command.execution), \(command.fingerprint), \(command.consumer), \(command.plan), \(Int64(command.version)),
                \(command.periodStart?.nanosecondsSinceEpoch), \(command.amount.micros), \(command.expiresAt.nanosecondsSinceEpoch), \(command.now.nanosecondsSinceEpoch), \(command.recordsRefusal))
                """, on: connection) }
        }
        guard let row = rows.first else { throw SettlementError(.storage, "the ledger's function returned no row") }
        return Hold(execution: command.execution, consumer: try row[0].decode(String.self), amount: Money(micros: try row[1].decode(Int64.self)),
                    expiresAt: Timestamp(nanosecondsSinceEpoch: try row[2].decode(Int64.self)), refused: try row[3].decode(Bool.self))
    }

    public func extendHold(_ command: ExtendCommand) async throws -> MeterReceipt {
        let row = try await step { [self] in
            try await self.row("SELECT * FROM tariff_extend(\(command.execution), \(command.required.micros), \(command.now.nanosecondsSinceEpoch))")
        }
        return MeterReceipt(held: Money(micros: try row[0].decode(Int64.self)), running: command.required, exhausted: try row[1].decode(Bool.self))
    }

    public func release(_ command: ReleaseCommand) async throws -> ReleaseReceipt {
        let row = try await step { [self] in try await self.row("SELECT * FROM tariff_release(\(command.execution), \(command.now.nanosecondsSinceEpoch))") }
        return ReleaseReceipt(execution: command.execution, consumer: try row[0].decode(String.self), released: Money(micros: try row[1].decode(Int64.self)))
    }

    public func settle(_ command: SettleCommand, pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) async throws -> SettleReceipt {
        // A per-call plan keeps no period state: price first and apply in one round trip (batched
        // with the consumer's other settles in flight) when the hold covers the price.
        if command.period == nil, let receipt = try await settleBatcher.submit(try PricedSettle(command, pricing: pricing)) {
            return receipt
        }
        return try await step { [self] in
            attempts: for _ in 0..<Self.optimisticAttempts {
                do {
                    return try await settleOnce(command, pricing: pricing, on: nil)
                } catch let error where Self.isStale(error) {
                    _ = error
                    continue
                } catch is NeedsConsumerLock {
                    // A late execution into a closed period: its adjustments are computed under the lock.
                    break attempts
                }
            }
            // A hot consumer: hold its row lock while reading, pricing and applying, so nothing can go stale.
            return try await pool.withTransaction { [self] connection in
                try await lockConsumer(ofExecution: command.execution, on: connection)
                return try await settleOnce(command, pricing: pricing, on: connection)
            }
        }
    }

    /// A settle that must run under its consumer's row lock (a late execution into a closed period).
    struct NeedsConsumerLock: Error {}

    private func lockConsumer(ofExecution execution: String, on connection: LeasedConnection) async throws {
        _ = try await rows("SELECT 1 FROM consumers WHERE id = (SELECT consumer FROM holds WHERE execution = \(execution)) FOR UPDATE", on: connection)
    }

    /// A settle priced against the empty state (the only state of a per-call plan), to apply with
    /// no expected hold: the function takes it if the hold covers the price (the whole price is
    /// then charged, whatever the balance), else answers stale.
    struct PricedSettle: Sendable {
        let command: SettleCommand
        let priced: PricedCharge
        let charged: Money, uncollected: Money, split: SplitShares

        init(_ command: SettleCommand, pricing: (PeriodState) throws -> PricedCharge) throws {
            self.command = command
            priced = try pricing(.empty)
            if priced.refusal == nil {
                // Collected against exactly the price: all of it (what any hold >= the price gives).
                (charged, uncollected, split) = SettlementMath.collect(billed: priced.billed, split: priced.split, rule: priced.rule, coverable: priced.billed)
            } else {
                (charged, uncollected, split) = (.zero, .zero, .zero)
            }
        }
    }

    /// One priced settle, with its retries; nil when stale.
    static func settleAlone(_ settle: PricedSettle, pool: ConnectionPool, configuration: PostgresConfiguration) async throws -> SettleReceipt? {
        try await retrying(configuration) {
            do {
                return try await pool.withConnection { connection in
                    try await applySettle(settle.command, priced: settle.priced, periodVersion: 0, expectedHeld: nil, minimumAvailable: nil, exactAvailable: nil,
                                          charged: settle.charged, uncollected: settle.uncollected, split: settle.split, on: connection)
                }
            } catch let error where isStale(error) {
                _ = error
                return nil
            }
        }
    }

    /// Several priced settles in one call: a receipt, nil (stale) or a refusal each, in order.
    static func settleBatch(_ settles: [PricedSettle], pool: ConnectionPool) async throws -> [Result<SettleReceipt?, any Error>] {
        let commands = settles.map(\.command)
        let versions: [Int64] = commands.map { Int64($0.version) }
        let refusals: [String] = settles.map { $0.priced.refusal?.rawValue ?? "" }
        let billed: [Int64] = settles.map(\.priced.billed.micros), computeUnits: [Int64] = settles.map(\.priced.computeUnits.millis)
        let charged: [Int64] = settles.map(\.charged.micros), uncollected: [Int64] = settles.map(\.uncollected.micros)
        let creatorShares: [Int64] = settles.map(\.split.creator.micros), platformShares: [Int64] = settles.map(\.split.platform.micros)
        let processingShares: [Int64] = settles.map(\.split.processing.micros)
        let endedAt: [Int64] = commands.map(\.endedAt.nanosecondsSinceEpoch), now: [Int64] = commands.map(\.now.nanosecondsSinceEpoch)
        let rows = try await pool.withConnection { connection in try await collect("""
            SELECT * FROM tariff_settle_batch(\(commands.map(\.execution)), \(commands.map(\.fingerprint)), \(commands.map(\.consumer)),
                \(commands.map(\.plan)), \(commands.map(\.agent)), \(commands.map(\.creator)), \(versions), \(refusals), \(billed), \(charged),
                \(uncollected), \(creatorShares), \(platformShares), \(processingShares), \(computeUnits), \(commands.map(\.failed)), \(endedAt), \(now))
            ORDER BY o_index
            """, on: connection) }
        return try zip(commands, rows).map { (command: SettleCommand, row: PostgresRandomAccessRow) throws -> Result<SettleReceipt?, any Error> in
            if let code = try row[11].decode(String?.self) {
                if code == "stale" { return .success(nil) }
                return .failure(SettlementError(SettlementError.Code(rawValue: code), try row[12].decode(String?.self) ?? code))
            }
            return .success(try receipt(command.execution, row, from: 1))
        }
    }

    /// Reads the hold, the period state and the consumer's available credits; prices; applies if
    /// nothing it read changed (else the function raises `stale`).
    private func settleOnce(_ command: SettleCommand, pricing: @Sendable (PeriodState) throws -> PricedCharge, on connection: LeasedConnection?) async throws -> SettleReceipt {
        // nil for a per-call plan, which keeps no period state (the join then finds no row: empty state).
        let stateKey = command.period?.rawValue
        let now = command.now.nanosecondsSinceEpoch
        let read = try await rows("""
            SELECT \(unescaped: Rows.holdColumns("h")), c.available,
                   (SELECT COALESCE(SUM(d.amount), 0)::bigint FROM holds d WHERE d.consumer = h.consumer AND d.state = 0 AND d.expires_at <= \(now)
                                                                          AND d.execution <> h.execution),
                   p.used_compute_units, p.usage_charges, p.executions, p.succeeded, p.failed, p.version,
                   \(unescaped: Self.closeColumns("pc")),
                   CASE WHEN pc.closed_at IS NOT NULL THEN (SELECT COALESCE(SUM(u.uncollected), 0)::bigint FROM charges u WHERE u.consumer = h.consumer) END
            FROM holds h LEFT JOIN consumers c ON c.id = h.consumer LEFT JOIN period_states p ON p.key = \(stateKey)
                 LEFT JOIN period_closes pc ON pc.key = \(stateKey)
            WHERE h.execution = \(command.execution)
            """, on: connection)
        guard let row = read.first else {
            throw SettlementError(.unknownReservation, "no hold was placed for execution '\(command.execution)'")
        }
        let hold = try Rows.hold(row)
        // The reference's checks, in its order, before pricing (the function checks them again under the locks).
        switch hold.state {
        case .settled:
            guard hold.closingFingerprint == command.fingerprint, let outcome = hold.outcome else {
                throw SettlementError(.idempotencyConflict, "execution '\(command.execution)' was already settled with other parameters")
            }
            return outcome
        case .released: throw SettlementError(.idempotencyConflict, "execution '\(command.execution)' was released: a settle cannot follow")
        case .expired: throw SettlementError(.reservationExpired, "the hold of execution '\(command.execution)' expired at \(hold.expiresAt)")
        case .refused: throw SettlementError(.insufficientCredits, "execution '\(command.execution)' was refused for credits: nothing is held")
        case .active:
            guard command.now < hold.expiresAt else {
                throw SettlementError(.reservationExpired, "the hold of execution '\(command.execution)' expired at \(hold.expiresAt)")
            }
        }
        guard hold.consumer == command.consumer, hold.plan == command.plan else {
            throw SettlementError(.idempotencyConflict, "execution '\(command.execution)' was reserved for \(hold.consumer) on plan \(hold.plan)")
        }
        let base = Rows.holdColumnCount
        let available = (try row[base].decode(Int64?.self) ?? 0) + (try row[base + 1].decode(Int64.self))
        let periodVersion = try row[base + 7].decode(Int64?.self) ?? 0
        let state = periodVersion == 0 ? PeriodState.empty : try Rows.periodState(row, from: base + 2)
        let priced = try pricing(state)
        let held = hold.amount
        var charged = Money.zero, uncollected = Money.zero, split = SplitShares.zero
        var minimumAvailable: Int64?, exactAvailable: Int64?
        if priced.refusal == nil {
            guard let coverable = held.adding(Money(micros: available)) else {
                throw SettlementError(.outOfRange, "held + available would exceed the ledger's 64-bit range")
            }
            let collected = SettlementMath.collect(billed: priced.billed, split: priced.split, rule: priced.rule, coverable: coverable)
            (charged, uncollected, split) = (collected.charged, collected.uncollected, collected.split)
            // The collection depends on available only when the price is beyond the hold.
            if priced.billed > held {
                if collected.uncollected.micros == 0 { minimumAvailable = priced.billed.micros - held.micros } else { exactAvailable = available }
            }
        }
        let closeColumn = base + 8
        if priced.refusal == nil, let periodEnd = command.periodEnd, let stateKey, try row[closeColumn].decode(String?.self) != nil,
           let record = try Self.close(row, from: closeColumn), record.isClosed {
            guard let connection else { throw NeedsConsumerLock() }
            // Under the consumer's lock nothing read can change: the settle, then its adjustments.
            let owed = try row[closeColumn + Self.closeColumnCount].decode(Int64?.self) ?? 0
            guard let coverable = Money(micros: available).adding(held)?.subtracting(charged) else {
                throw SettlementError(.outOfRange, "available would exceed the ledger's 64-bit range")
            }
            let adjusted = try LedgerSteps.adjustments(record: record, target: try periodEnd.lines(priced.state, record.fees), rule: periodEnd.rule,
                                                       owed: Int128(owed), available: coverable)
            let receipt = try await Self.applySettle(command, priced: priced, periodVersion: periodVersion, expectedHeld: held.micros,
                                                     minimumAvailable: minimumAvailable, exactAvailable: exactAvailable, charged: charged,
                                                     uncollected: uncollected, split: split, on: connection)
            if !adjusted.lines.isEmpty {
                let lines = adjusted.lines
                _ = try await Self.collect("""
                    SELECT tariff_adjust_period(\(stateKey), \(command.execution), \(hold.consumer), \(now), \(lines.map(\.kind.rawValue)),
                        \(lines.map(\.billed.micros)), \(lines.map(\.charged.micros)), \(lines.map(\.uncollected.micros)),
                        \(lines.map(\.split.creator.micros)), \(lines.map(\.split.platform.micros)), \(lines.map(\.split.processing.micros)),
                        \(adjusted.shortfall.micros), \(adjusted.slaCredit.micros))
                    """, on: connection)
            }
            return receipt
        }
        if let connection {
            return try await Self.applySettle(command, priced: priced, periodVersion: periodVersion, expectedHeld: held.micros, minimumAvailable: minimumAvailable,
                                              exactAvailable: exactAvailable, charged: charged, uncollected: uncollected, split: split, on: connection)
        }
        return try await pool.withConnection { [minimumAvailable, exactAvailable, charged, uncollected, split] connection in
            try await Self.applySettle(command, priced: priced, periodVersion: periodVersion, expectedHeld: held.micros, minimumAvailable: minimumAvailable,
                                       exactAvailable: exactAvailable, charged: charged, uncollected: uncollected, split: split, on: connection)
        }
    }

    /// Calls `tariff_settle` with a price and what it was computed against (a NULL expected hold: any hold covering the price).
    static func applySettle(_ command: SettleCommand, priced: PricedCharge, periodVersion: Int64, expectedHeld: Int64?, minimumAvailable: Int64?,
                            exactAvailable: Int64?, charged: Money, uncollected: Money, split: SplitShares,
                            on connection: LeasedConnection) async throws -> SettleReceipt {
        let stateKey = command.period?.rawValue
        let now = command.now.nanosecondsSinceEpoch
        let rows = try await collect("""
            SELECT * FROM tariff_settle(\(command.execution), \(command.fingerprint), \(command.consumer), \(command.plan), \(command.agent),
                \(command.creator), \(Int64(command.version)), \(stateKey), \(periodVersion), \(expectedHeld), \(minimumAvailable), \(exactAvailable),
                \(priced.state.usedComputeUnits.millis), \(priced.state.usageCharges.micros), \(priced.state.executions), \(priced.state.succeeded),
                \(priced.state.failed), \(priced.refusal?.rawValue), \(priced.billed.micros), \(charged.micros), \(uncollected.micros),
                \(split.creator.micros), \(split.platform.micros), \(split.processing.micros), \(priced.computeUnits.millis), \(command.failed),
                \(command.endedAt.nanosecondsSinceEpoch), \(now))
            """, on: connection)
        guard let row = rows.first else { throw SettlementError(.storage, "the ledger's function returned no row") }
        return try receipt(command.execution, row, from: 1)
    }

    /// A settle's receipt from the function's columns consumer, billed, charged, uncollected, the three shares, compute units, refusal, released.
    static func receipt(_ execution: String, _ row: PostgresRandomAccessRow, from first: Int) throws -> SettleReceipt {
        SettleReceipt(execution: execution, consumer: try row[first].decode(String.self),
                      billed: Money(micros: try row[first + 1].decode(Int64.self)), charged: Money(micros: try row[first + 2].decode(Int64.self)),
                      uncollected: Money(micros: try row[first + 3].decode(Int64.self)),
                      split: SplitShares(creator: Money(micros: try row[first + 4].decode(Int64.self)), platform: Money(micros: try row[first + 5].decode(Int64.self)),
                                         processing: Money(micros: try row[first + 6].decode(Int64.self))),
                      computeUnits: ComputeUnits(millis: try row[first + 7].decode(Int64.self)),
                      refusal: try StoredValue.decode(Refusal.self, try row[first + 8].decode(String?.self), column: "refusal"),
                      released: Money(micros: try row[first + 9].decode(Int64.self)))
    }

    public func chargePeriod(_ command: PeriodChargeCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await chargePeriod(command, closing: nil, lines: lines)
    }

    /// A period charge, or with `closing` a period's close (`tariff_close_period`).
    func chargePeriod(_ command: PeriodChargeCommand, closing: PeriodCloseRecord?,
                      lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await step { [self] in
            for _ in 0..<Self.optimisticAttempts {
                do {
                    return try await chargePeriodOnce(command, closing: closing, lines: lines, on: nil)
                } catch let error where Self.isStale(error) {
                    _ = error
                    continue
                }
            }
            return try await pool.withTransaction { [self] connection in
                _ = try await rows("INSERT INTO consumers (id, available, reserved) VALUES (\(command.consumer), 0, 0) ON CONFLICT (id) DO NOTHING", on: connection)
                _ = try await rows("SELECT 1 FROM consumers WHERE id = \(command.consumer) FOR UPDATE", on: connection)
                return try await chargePeriodOnce(command, closing: closing, lines: lines, on: connection)
            }
        }
    }

    private func chargePeriodOnce(_ command: PeriodChargeCommand, closing: PeriodCloseRecord?, lines: (PeriodState) throws -> [PricedLine],
                                  on connection: LeasedConnection?) async throws -> PeriodChargeReceipt {
        let stateKey = command.period.rawValue
        let now = command.now.nanosecondsSinceEpoch
        let row = try await self.row("""
            SELECT o.fingerprint, o.result, c.available,
                   (SELECT COALESCE(SUM(d.amount), 0)::bigint FROM holds d WHERE d.consumer = \(command.consumer) AND d.state = 0 AND d.expires_at <= \(now)),
                   p.used_compute_units, p.usage_charges, p.executions, p.succeeded, p.failed, p.version
            FROM (SELECT 1) AS one LEFT JOIN operations o ON o.key = \(command.key) LEFT JOIN consumers c ON c.id = \(command.consumer)
                 LEFT JOIN period_states p ON p.key = \(stateKey)
            """, on: connection)
        if let fingerprint = try row[0].decode(String?.self) {
            let result = try row[1].decode([Int64].self)
            guard fingerprint == command.fingerprint, result.count == 3 else {
                throw SettlementError(.idempotencyConflict, "key '\(command.key)' was already used with other parameters")
            }
            return PeriodChargeReceipt(key: command.key, consumer: command.consumer, billed: Money(micros: result[0]), charged: Money(micros: result[1]),
                                       uncollected: Money(micros: result[2]))
        }
        let available = (try row[2].decode(Int64?.self) ?? 0) + (try row[3].decode(Int64.self))
        let periodVersion = try row[9].decode(Int64?.self) ?? 0
        let state = periodVersion == 0 ? PeriodState.empty : try Rows.periodState(row, from: 4)
        var coverable = Money(micros: available)
        var kinds: [String] = [], billed: [Int64] = [], charged: [Int64] = [], uncollected: [Int64] = []
        var creatorShares: [Int64] = [], platformShares: [Int64] = [], processingShares: [Int64] = []
        for line in try lines(state) {
            let collected = SettlementMath.collect(billed: line.amount, split: line.split, rule: line.rule, coverable: coverable)
            guard let left = coverable.subtracting(collected.charged) else {
                throw SettlementError(.outOfRange, "available would exceed the ledger's 64-bit range")
            }
            coverable = left
            kinds.append(line.kind.rawValue)
            billed.append(line.amount.micros)
            charged.append(collected.charged.micros)
            uncollected.append(collected.uncollected.micros)
            creatorShares.append(collected.split.creator.micros)
            platformShares.append(collected.split.platform.micros)
            processingShares.append(collected.split.processing.micros)
        }
        let result: PostgresRandomAccessRow
        if let closing {
            result = try await self.row("""
                SELECT * FROM tariff_close_period(\(command.key), \(command.fingerprint), \(command.consumer), \(command.agent), \(command.creator),
                    \(command.plan), \(Int64(command.version)), \(stateKey), \(periodVersion), \(available), \(command.datedAt.nanosecondsSinceEpoch), \(now),
                    \(kinds), \(billed), \(charged), \(uncollected), \(creatorShares), \(platformShares), \(processingShares),
                    \(closing.start.nanosecondsSinceEpoch), \(closing.fees.micros), \(closing.commitment?.micros))
                """, on: connection)
        } else {
            result = try await self.row("""
                SELECT * FROM tariff_charge_period(\(command.key), \(command.fingerprint), \(command.consumer), \(command.agent), \(command.creator),
                    \(command.plan), \(Int64(command.version)), \(stateKey), \(periodVersion), \(available), \(command.datedAt.nanosecondsSinceEpoch), \(now),
                    \(kinds), \(billed), \(charged), \(uncollected), \(creatorShares), \(platformShares), \(processingShares))
                """, on: connection)
        }
        return PeriodChargeReceipt(key: command.key, consumer: command.consumer, billed: Money(micros: try result[0].decode(Int64.self)),
                                   charged: Money(micros: try result[1].decode(Int64.self)), uncollected: Money(micros: try result[2].decode(Int64.self)))
    }

    /// Sweeps in batches of this many consumers (one transaction each: short locks, bounded size).
    static let sweepBatch: Int64 = 256

    public func expireHolds(at now: Timestamp) async throws -> Int {
        var total: Int64 = 0
        while true {
            let row = try await step { [self] in try await self.row("SELECT * FROM tariff_expire_sweep(\(now.nanosecondsSinceEpoch), \(Self.sweepBatch)::int)") }
            total += try row[0].decode(Int64.self)
            if Int64(try row[1].decode(Int32.self)) < Self.sweepBatch { return Int(total) }
        }
    }

    public func recordPayout(_ command: PayoutCommand) async throws -> PayoutStep {
        let row = try await step { [self] in
            try await self.row("""
                SELECT * FROM tariff_payout(\(command.key), \(command.creator), \(command.weekStart.description), \(command.payDate.description),
                \(command.weekEnd.nanosecondsSinceEpoch), \(command.minimum.micros), \(command.unitMicros), \(command.now.nanosecondsSinceEpoch))
                """)
        }
        guard try row[1].decode(String?.self) != nil else { return PayoutStep(record: nil, created: false) }
        guard let record = try Rows.payout(row, from: 1) else { throw SettlementError(.storage, "payout '\(command.key)' has an unreadable date") }
        return PayoutStep(record: record, created: try row[0].decode(Bool.self))
    }

    public func markPayoutSent(key: String, reference: String) async throws {
        _ = try await step { [self] in try await rows("SELECT tariff_mark_payout_sent(\(key), \(reference))") }
    }

    public func failPayout(key: String, reason: String, now: Timestamp) async throws -> PayoutRecord {
        let row = try await step { [self] in
            try await self.row("SELECT \(unescaped: Rows.payoutColumns) FROM tariff_fail_payout(\(key), \(reason), \(now.nanosecondsSinceEpoch))")
        }
        guard let record = try Rows.payout(row) else { throw SettlementError(.storage, "payout '\(key)' has an unreadable date") }
        return record
    }

    public func reversePayout(key: String, reversedTotal: Money, transfer: String, now: Timestamp) async throws -> PayoutRecord {
        let row = try await step { [self] in
            try await self.row("""
                SELECT \(unescaped: Rows.payoutColumns) FROM tariff_reverse_payout(\(key), \(reversedTotal.micros), \(transfer), \(now.nanosecondsSinceEpoch))
                """)
        }
        guard let record = try Rows.payout(row) else { throw SettlementError(.storage, "payout '\(key)' has an unreadable date") }
        return record
    }

    // MARK: Period close

    static func closeColumns(_ table: String) -> String {
        ["key", "consumer", "plan", "version", "agent", "creator", "period_start", "period_end", "closed_at", "fees", "commitment", "shortfall", "sla_credit"]
            .map { "\(table).\($0)" }.joined(separator: ", ")
    }

    static let closeColumns = closeColumns("period_closes")
    static let closeColumnCount = 13

    static func close(_ row: PostgresRandomAccessRow) throws -> PeriodCloseRecord {
        guard let record = try close(row, from: 0) else { throw SettlementError(.storage, "a period close row has no key") }
        return record
    }

    /// A `period_closes` row (columns in `closeColumns` order, from `first`); nil when its key is NULL (no row joined).
    static func close(_ row: PostgresRandomAccessRow, from first: Int) throws -> PeriodCloseRecord? {
        guard let key = try row[first].decode(String?.self) else { return nil }
        return PeriodCloseRecord(key: key, consumer: try row[first + 1].decode(String.self), plan: try row[first + 2].decode(String.self),
                                 version: Int(try row[first + 3].decode(Int64.self)), agent: try row[first + 4].decode(String.self),
                                 creator: try row[first + 5].decode(String.self),
                                 start: Timestamp(nanosecondsSinceEpoch: try row[first + 6].decode(Int64.self)),
                                 end: Timestamp(nanosecondsSinceEpoch: try row[first + 7].decode(Int64.self)),
                                 closedAt: try row[first + 8].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)),
                                 fees: Money(micros: try row[first + 9].decode(Int64.self)),
                                 commitment: try row[first + 10].decode(Int64?.self).map { Money(micros: $0) },
                                 shortfall: Money(micros: try row[first + 11].decode(Int64.self)),
                                 slaCredit: Money(micros: try row[first + 12].decode(Int64.self)))
    }

    public func openPeriod(_ record: PeriodCloseRecord) async throws -> PeriodCloseRecord {
        try await step { [self] in
            _ = try await rows("""
                SELECT tariff_open_period(\(record.key), \(record.consumer), \(record.plan), \(Int64(record.version)), \(record.agent), \(record.creator),
                    \(record.start.nanosecondsSinceEpoch), \(record.end.nanosecondsSinceEpoch), \(record.fees.micros), \(record.commitment?.micros))
                """)
        }
        let read = try await step { [self] in try await rows("SELECT \(unescaped: Self.closeColumns) FROM period_closes WHERE key = \(record.key)") }
        guard let row = read.first else { throw SettlementError(.storage, "the period \(record.key) was not registered") }
        return try Self.close(row)
    }

    public func closePeriod(_ command: PeriodCloseCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await chargePeriod(command.charge, closing: command.record, lines: lines)
    }

    public func periodCloses() async throws -> [PeriodCloseRecord] {
        let read = try await step { [self] in try await rows("SELECT \(unescaped: Self.closeColumns) FROM period_closes ORDER BY key COLLATE \"C\"") }
        return try read.map(Self.close)
    }

    public func releaseCreator(_ creator: String) async throws -> Bool {
        let read = try await step { [self] in try await rows("DELETE FROM creator_holds WHERE creator = \(creator) RETURNING creator") }
        return !read.isEmpty
    }

    public func creatorHolds() async throws -> [CreatorHold] {
        let read = try await step { [self] in try await rows("SELECT creator, reason, since FROM creator_holds ORDER BY creator COLLATE \"C\"") }
        return try read.map {
            CreatorHold(creator: try $0[0].decode(String.self), reason: try $0[1].decode(String.self),
                        since: Timestamp(nanosecondsSinceEpoch: try $0[2].decode(Int64.self)))
        }
    }

    public func payoutRecords() async throws -> [PayoutRecord] {
        let read = try await step { [self] in try await rows("SELECT \(unescaped: Rows.payoutColumns) FROM payouts ORDER BY key COLLATE \"C\"") }
        return try read.compactMap(Rows.payout)
    }

    // MARK: Reads

    public func balance(consumer: String, at now: Timestamp) async throws -> Balance {
        let read = try await step { [self] in
            try await rows("""
                SELECT available, reserved,
                       (SELECT COALESCE(SUM(amount), 0)::bigint FROM holds WHERE consumer = consumers.id AND state = 0 AND expires_at <= \(now.nanosecondsSinceEpoch))
                FROM consumers WHERE id = \(consumer)
                """)
        }
        guard let row = read.first else { throw SettlementError(.unknownConsumer, "no credits were ever purchased for consumer '\(consumer)'") }
        // Holds past their expiry already count as available (the next step on the consumer writes it).
        let available = try row[0].decode(Int64.self), reserved = try row[1].decode(Int64.self), expired = try row[2].decode(Int64.self)
        return Balance(consumer: consumer, currency: currency, available: Money(micros: available + expired), reserved: Money(micros: reserved - expired))
    }

    public func periodState(_ key: PeriodKey) async throws -> PeriodState {
        let read = try await step { [self] in
            try await rows("SELECT used_compute_units, usage_charges, executions, succeeded, failed FROM period_states WHERE key = \(key.rawValue)")
        }
        guard let row = read.first else { return .empty }
        return try Rows.periodState(row, from: 0)
    }

    public func hold(execution: String) async throws -> HoldRecord? {
        let read = try await step { [self] in try await rows("SELECT \(unescaped: Rows.holdColumns("holds")) FROM holds WHERE execution = \(execution)") }
        return try read.first.map(Rows.hold)
    }

    public func payouts(weekStart: CivilDate) async throws -> [PayoutRecord] {
        let read = try await step { [self] in
            try await rows("""
                SELECT \(unescaped: Rows.payoutColumns) FROM payouts WHERE week_start = \(weekStart.description) ORDER BY creator COLLATE "C"
                """)
        }
        return try read.compactMap(Rows.payout)
    }

    public func chargeRecords(_ query: ChargeQuery) async throws -> [ChargeRecord] {
        // NULL bounds match everything: one statement text for every combination.
        let read = try await step { [self] in
            try await rows("""
                SELECT \(unescaped: Rows.chargeColumns) FROM charges
                WHERE (\(query.consumer)::text IS NULL OR consumer = \(query.consumer)) AND (\(query.creator)::text IS NULL OR creator = \(query.creator))
                  AND (\(query.from?.nanosecondsSinceEpoch)::bigint IS NULL OR dated_at >= \(query.from?.nanosecondsSinceEpoch))
                  AND (\(query.to?.nanosecondsSinceEpoch)::bigint IS NULL OR dated_at < \(query.to?.nanosecondsSinceEpoch))
                ORDER BY sequence
                """)
        }
        return try read.map(Rows.charge)
    }

    public func snapshot() async throws -> LedgerSnapshot {
        let currency = currency
        // One repeatable-read transaction: every table as of the same instant.
        return try await step { [self] in
            try await pool.withConnection { [self] connection in
                _ = try await rows("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", on: connection)
                do {
                    let consumers = try await rows("SELECT id, available, reserved FROM consumers ORDER BY id COLLATE \"C\"", on: connection).map {
                        ConsumerRecord(id: try $0[0].decode(String.self), available: Money(micros: try $0[1].decode(Int64.self)),
                                       reserved: Money(micros: try $0[2].decode(Int64.self)))
                    }
                    let holds = try await rows("SELECT \(unescaped: Rows.holdColumns("holds")) FROM holds ORDER BY execution COLLATE \"C\"", on: connection).map(Rows.hold)
                    let entries = try await rows("""
                        SELECT sequence, operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at FROM entries ORDER BY sequence
                        """, on: connection).map(Rows.entry)
                    let charges = try await rows("SELECT \(unescaped: Rows.chargeColumns) FROM charges ORDER BY sequence", on: connection).map(Rows.charge)
                    let operations = try await rows("SELECT key, fingerprint, result, at FROM operations ORDER BY key COLLATE \"C\"", on: connection).map {
                        OperationRecord(key: try $0[0].decode(String.self), fingerprint: try $0[1].decode(String.self), result: try $0[2].decode([Int64].self),
                                        at: Timestamp(nanosecondsSinceEpoch: try $0[3].decode(Int64.self)))
                    }
                    let payouts = try await rows("""
                        SELECT \(unescaped: Rows.payoutColumns) FROM payouts ORDER BY key COLLATE "C"
                        """, on: connection).compactMap(Rows.payout)
                    let periods = try await rows("""
                        SELECT key, used_compute_units, usage_charges, executions, succeeded, failed FROM period_states ORDER BY key COLLATE "C"
                        """, on: connection).map { PeriodRecord(key: try $0[0].decode(String.self), state: try Rows.periodState($0, from: 1)) }
                    let purchases = try await rows("SELECT \(unescaped: Self.purchaseColumns) FROM purchases ORDER BY key COLLATE \"C\"", on: connection)
                        .map(Self.purchase)
                    let reversals = try await rows("SELECT \(unescaped: Self.reversalColumns) FROM reversals ORDER BY key COLLATE \"C\"", on: connection)
                        .map(Self.reversal)
                    let closes = try await rows("SELECT \(unescaped: Self.closeColumns) FROM period_closes ORDER BY key COLLATE \"C\"", on: connection)
                        .map(Self.close)
                    let subscriptions = try await rows("SELECT \(unescaped: Self.subscriptionColumns) FROM subscriptions ORDER BY id COLLATE \"C\"",
                                                       on: connection).map(Self.subscription)
                    _ = try await rows("COMMIT", on: connection)
                    var snapshot = LedgerSnapshot(currency: currency, consumers: consumers, holds: holds, entries: entries, charges: charges,
                                                  operations: operations, payouts: payouts, periods: periods, purchases: purchases, reversals: reversals)
                    snapshot.closes = closes
                    snapshot.subscriptions = subscriptions
                    return snapshot
                } catch {
                    _ = try? await rows("ROLLBACK", on: connection)
                    throw error
                }
            }
        }
    }

    /// Every row of every table as text, straight from SQL (not through the ledger's types): what a
    /// test compares before and after a refused operation to show the database did not change.
    public func dump() async throws -> String {
        var text = ""
        for table in Schema.tables {
            text += "== \(table)\n"
            for row in try await rows(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(table) AS t ORDER BY 1")) {
                text += try row[0].decode(String.self) + "\n"
            }
        }
        return text
    }
}

