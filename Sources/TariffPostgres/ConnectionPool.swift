import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TariffSettlement

/// A fixed-size pool of `PostgresConnection`s: at most `maximumConnections` open, idle ones
/// reused, a connection the server or the network closed dropped when it comes back and its slot
/// handed to the next waiter, which opens a new one.
///
/// Why not postgres-nio's `PostgresClient`: with 1.33.2 its pool was seen, about one run in three,
/// to stop opening connections after the server cut some under load, leaving every step waiting
/// for a lease for good (see the README's PostgreSQL notes). The settlement steps need only this
/// much of a pool, and every path of this one is small enough to read: a lease either gets an idle
/// connection, or a free slot to open one in, or waits for one of those two; a failed open gives
/// its slot back (and to the next waiter) before it throws.
final class ConnectionPool: Sendable {
    let configuration: PostgresConnection.Configuration
    let maximumConnections: Int
    private let logger: Logger
    private let state = Mutex(State())

    /// What a waiting lease is handed: a connection to use, or a slot to open one in.
    private enum Grant: Sendable {
        case connection(PostgresConnection)
        case slot
    }

    private struct State: ~Copyable {
        var idle: [PostgresConnection] = []
        /// Connections open, being opened, or leased (never above `maximumConnections`).
        var slotsTaken = 0
        var waiters: [CheckedContinuation<Grant, any Error>] = []
        var nextConnectionID = 0
        var isShutDown = false
    }

    /// The server's statement timeout in seconds (0: none), for the deadline of a use of a connection.
    let statementTimeoutSeconds: Int

    /// Statement deadline timers alive now: each ends when its statement answers (tests check that
    /// none outlives its use).
    let liveDeadlineTimers = Atomic<Int>(0)
    /// A shorter deadline than the statement timeout's (tests).
    let deadlineOverride: Duration?

    init(configuration: PostgresConnection.Configuration, maximumConnections: Int, statementTimeoutSeconds: Int = 30, statementDeadline: Duration? = nil, logger: Logger) {
        self.configuration = configuration
        self.deadlineOverride = statementDeadline
        self.statementTimeoutSeconds = statementTimeoutSeconds
        self.maximumConnections = max(1, maximumConnections)
        self.logger = logger
    }

    deinit { shutdown() }

    static var shutDownError: SettlementError { SettlementError(.storage, "the ledger's connections are closed (the backend was shut down)") }

    /// Runs `body` on a leased connection and gives the connection back whatever happens.
    ///
    /// Every statement sent through the `LeasedConnection` races its own deadline (the server's
    /// statement timeout + 15 s): postgres-nio 1.33.2 was seen (about one run in 100 of the
    /// lost-connections test) to leave a query unanswered for good when the server terminated its
    /// connection as the query was sent, even after the connection was closed. Past a statement's
    /// deadline the use is abandoned: the connection is closed and dropped, its slot freed, the
    /// stuck task cancelled (its late answer, if any, is ignored), and the caller gets
    /// `DeadlineExceeded`, which the backend retries like a lost connection, under the step's
    /// idempotency key. The deadline is per statement, not per use, so a transaction of many quick
    /// statements (a migration, a locked settle) is never cut for its length; each statement's
    /// timer is cancelled as soon as the statement answers, so none outlives its use.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (LeasedConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let work = Mutex<Task<Void, Never>?>(nil)
            let use = Use(deadline: deadline, pool: self) { [deadlineSeconds] in
                // A statement's deadline passed first: abandon the use.
                work.withLock { $0 }?.cancel()
                self.giveBack(connection, discard: true)
                continuation.resume(throwing: DeadlineExceeded(seconds: deadlineSeconds))
            }
            let task = Task {
                let outcome: Result<T, any Error>
                do { outcome = .success(try await body(LeasedConnection(connection: connection, use: use))) } catch { outcome = .failure(error) }
                guard use.claim() else { return }
                switch outcome {
                case .success: self.giveBack(connection)
                // A connection the server terminated (or that failed below the protocol) is not reused,
                // even if its socket is not closed yet: a query sent on it may never be answered.
                case .failure(let error): self.giveBack(connection, discard: Self.isConnectionLost(error))
                }
                continuation.resume(with: outcome)
            }
            work.withLock { $0 = task }
        }
    }

    /// One use of a leased connection: whichever of the work and a statement's deadline claims it
    /// first settles it.
    final class Use: Sendable {
        private let claimed = Mutex(false)
        let deadline: Duration
        /// Counts the live timers (`liveDeadlineTimers`).
        private let pool: ConnectionPool
        private let expire: @Sendable () -> Void

        init(deadline: Duration, pool: ConnectionPool, expire: @escaping @Sendable () -> Void) {
            self.deadline = deadline
            self.pool = pool
            self.expire = expire
        }

        func claim() -> Bool {
            claimed.withLock { claimed in
                defer { claimed = true }
                return !claimed
            }
        }

        /// Runs one statement under its own deadline; its timer ends as soon as it answers.
        func statement<R: Sendable>(_ body: () async throws -> R) async throws -> R {
            let timer = Task { [self] in
                pool.liveDeadlineTimers.add(1, ordering: .relaxed)
                defer { pool.liveDeadlineTimers.subtract(1, ordering: .relaxed) }
                do { try await Task.sleep(for: deadline) } catch { return }
                guard claim() else { return }
                expire()
            }
            defer { timer.cancel() }
            return try await body()
        }
    }

    /// A use of a connection that did not finish within its deadline (the connection was dropped).
    struct DeadlineExceeded: Error, CustomStringConvertible {
        let seconds: Int
        var description: String { "no answer from the ledger's database to a statement within \(seconds) s (the connection was dropped)" }
    }

    private var deadlineSeconds: Int { statementTimeoutSeconds == 0 ? 600 : statementTimeoutSeconds + 15 }

    /// The longest one statement may wait for its answer: the server's statement timeout plus the
    /// time to send and answer it (a statement timeout of 0, no limit, gets a generous 10 minutes).
    private var deadline: Duration { deadlineOverride ?? .seconds(deadlineSeconds) }

    /// Errors after which a connection must be dropped: below the protocol (no server answer), the
    /// server's "terminating connection" and connection-exception classes (57P0x, 08xxx), or a
    /// transaction whose BEGIN, COMMIT or ROLLBACK failed (the connection's state is unknown).
    static func isConnectionLost(_ error: any Error) -> Bool {
        var error = error
        if let wrapped = error as? TransactionError {
            if wrapped.phase != .body || wrapped.rollbackFailed { return true }
            error = wrapped.underlying
        }
        guard let psql = error as? PSQLError else { return false }
        guard let state = psql.serverInfo?[.sqlState] else { return true }
        return state.hasPrefix("57P") || state.hasPrefix("08")
    }

    /// A transaction that failed: in which phase, and the error there.
    struct TransactionError: Error, CustomStringConvertible {
        enum Phase: Sendable { case begin, body, commit }
        let phase: Phase
        let underlying: any Error
        /// The body failed and so did its ROLLBACK.
        var rollbackFailed = false
        var description: String { "\(underlying)" }
    }

    /// `BEGIN`, `body`, `COMMIT` on one connection (`ROLLBACK` when `body` throws), each statement
    /// under its own deadline. A connection whose rollback or commit failed is in an unknown state:
    /// `withConnection` closes it rather than reuse it.
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (LeasedConnection) async throws -> T) async throws -> T {
        let logger = logger
        return try await withConnection { connection in
            do { try await connection.query("BEGIN", logger: logger) } catch { throw TransactionError(phase: .begin, underlying: error) }
            let value: T
            do {
                value = try await body(connection)
            } catch {
                var failure = TransactionError(phase: .body, underlying: error)
                do { try await connection.query("ROLLBACK", logger: logger) } catch { failure.rollbackFailed = true }
                throw failure
            }
            do { try await connection.query("COMMIT", logger: logger) } catch { throw TransactionError(phase: .commit, underlying: error) }
            return value
        }
    }

    /// One decision under the lock, taken where the step would wait (so a connection given back
    /// or a slot freed just before cannot be missed): an idle connection, a free slot, or a place
    /// among the waiters, whom `giveBack` and `freeSlot` serve in order.
    private func lease() async throws -> PostgresConnection {
        let grant = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
            enum Now { case grant(Grant), shutDown, queued }
            let now = state.withLock { state -> Now in
                if state.isShutDown { return .shutDown }
                while let connection = state.idle.popLast() {
                    if !connection.isClosed { return .grant(.connection(connection)) }
                    // Closed while idle (the server restarted, an idle timeout): its slot is free again.
                    state.slotsTaken -= 1
                }
                if state.slotsTaken < maximumConnections {
                    state.slotsTaken += 1
                    return .grant(.slot)
                }
                state.waiters.append(continuation)
                return .queued
            }
            switch now {
            case .grant(let grant): continuation.resume(returning: grant)
            case .shutDown: continuation.resume(throwing: ConnectionPool.shutDownError)
            case .queued: break
            }
        }
        switch grant {
        case .connection(let connection): return connection
        case .slot:
            let id = state.withLock { state in
                state.nextConnectionID += 1
                return state.nextConnectionID
            }
            return try await open(id: id)
        }
    }

    /// Opens a connection in a slot already taken; on failure frees the slot (handing it to a waiter).
    private func open(id: Int) async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        } catch {
            freeSlot()
            throw error
        }
    }

    private func freeSlot() {
        let waiter = state.withLock { state -> CheckedContinuation<Grant, any Error>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.slotsTaken -= 1
            return nil
        }
        waiter?.resume(returning: .slot)
    }

    /// - parameter discard: close it (without waiting) and free its slot, whatever its socket says.
    private func giveBack(_ connection: PostgresConnection, discard: Bool = false) {
        if discard {
            Self.close(connection)
            return freeSlot()
        }
        if connection.isClosed { return freeSlot() }
        enum Next { case resume(CheckedContinuation<Grant, any Error>), close, keep }
        let next = state.withLock { state -> Next in
            if state.isShutDown {
                state.slotsTaken -= 1
                return .close
            }
            if !state.waiters.isEmpty { return .resume(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .keep
        }
        switch next {
        case .resume(let waiter): waiter.resume(returning: .connection(connection))
        case .close: Self.close(connection)
        case .keep: break
        }
    }

    /// Closes the idle connections and refuses new leases; leased ones are closed when they come back.
    func shutdown() {
        let (idle, waiters) = state.withLock { state in
            state.isShutDown = true
            let taken = (state.idle, state.waiters)
            state.slotsTaken -= state.idle.count
            state.idle = []
            state.waiters = []
            return taken
        }
        for connection in idle { Self.close(connection) }
        for waiter in waiters { waiter.resume(throwing: ConnectionPool.shutDownError) }
    }

    /// Closes without waiting; the closure keeps the connection alive until its channel is closed
    /// (postgres-nio asserts that a connection is closed before it is released).
    private static func close(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}

/// A connection leased for one use of the pool: every statement sent through it runs under its
/// own deadline (`ConnectionPool.withConnection`), and its rows are read in full within it.
struct LeasedConnection: Sendable {
    let connection: PostgresConnection
    let use: ConnectionPool.Use

    /// Runs one statement and reads all its rows, under the statement's deadline.
    @discardableResult
    func query(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await use.statement {
            var rows: [PostgresRow] = []
            for try await row in try await connection.query(query, logger: logger) { rows.append(row) }
            return rows
        }
    }
}
