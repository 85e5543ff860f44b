import Foundation
import PostgresNIO
import Synchronization
import Tariff
@testable import TariffPostgres
import TariffSettlement
import TariffSettlementTesting
import Testing

/// Issue 14, hardening, without a server: certificates are checked by default off this machine.
@Suite("PostgreSQL TLS defaults (issue 14)")
struct PostgresTLSDefaultTests {
    @Test("a host that is not loopback defaults to verify-full; this machine to prefer", arguments: [
        ("postgres://u@db.internal/ledger", PostgresConfiguration.TLSMode.verifyFull),
        ("postgres://u@10.0.0.5:5432/ledger", .verifyFull),
        ("postgres://u@127.attacker.example/ledger", .verifyFull),
        ("postgres://u@127.0.0.1:5432/ledger", .prefer),
        ("postgres://u@localhost/ledger", .prefer),
        ("postgres://u@[::1]:5432/ledger", .prefer),
        // Asked for in so many words: kept (libpq's meaning), as is every explicit mode.
        ("postgres://u@db.internal/ledger?sslmode=prefer", .prefer),
        ("postgres://u@db.internal/ledger?sslmode=require", .require),
        ("postgres://u@127.0.0.1/ledger?sslmode=verify-full", .verifyFull),
    ])
    func defaults(_ url: String, _ mode: PostgresConfiguration.TLSMode) throws {
        #expect(try PostgresConfiguration(url: url, environment: [:]).tls == mode)
    }

    @Test("the library's initializer follows the same rule")
    func initializer() {
        #expect(PostgresConfiguration(host: "db.internal").tls == .verifyFull)
        #expect(PostgresConfiguration(host: "127.0.0.1").tls == .prefer)
        #expect(PostgresConfiguration().tls == .prefer)
    }
}

extension PostgresServerTests {
@Suite("PostgreSQL hardening (issue 14)")
struct PostgresHardeningTests {
    static let logger = PostgresBackend.logger

    /// A pool of its own with a short deadline, on a server with no statement timeout (the deadline alone decides).
    static func pool(deadline: Duration) throws -> ConnectionPool {
        let settings = try PostgresConfiguration(url: PostgresTestServer.freshURL() + "&statement_timeout=0")
        return ConnectionPool(configuration: try PostgresBackend.connectionConfiguration(settings), maximumConnections: 2,
                              statementTimeoutSeconds: 0, statementDeadline: deadline, logger: logger)
    }

    @Test("the deadline is per statement: three 0.4 s statements in one use outlive a 1 s deadline; one 3 s statement does not", .timeLimit(.minutes(1)))
    func perStatementDeadline() async throws {
        let pool = try Self.pool(deadline: .seconds(1))
        defer { pool.shutdown() }
        let answered = try await pool.withConnection { connection in
            var answered = 0
            for _ in 0..<3 {
                _ = try await connection.query("SELECT pg_sleep(0.4)", logger: Self.logger)
                answered += 1
            }
            return answered
        }
        #expect(answered == 3)
        let inTransaction = try await pool.withTransaction { connection in
            for _ in 0..<3 { _ = try await connection.query("SELECT pg_sleep(0.4)", logger: Self.logger) }
            return true
        }
        #expect(inTransaction)
        let started = ContinuousClock.now
        await #expect(throws: ConnectionPool.DeadlineExceeded.self) {
            try await pool.withConnection { connection in _ = try await connection.query("SELECT pg_sleep(3)", logger: Self.logger) }
        }
        #expect(ContinuousClock.now - started < .milliseconds(2_500), "the stuck statement was waited for")
        // The pool goes on: the dropped connection's slot was freed.
        let after = try await pool.withConnection { connection in
            _ = try await connection.query("SELECT 1", logger: Self.logger)
            return true
        }
        #expect(after)
    }

    @Test("no deadline timer outlives its use", .timeLimit(.minutes(1)))
    func timersEndWithTheirUse() async throws {
        let pool = try Self.pool(deadline: .seconds(60))
        defer { pool.shutdown() }
        for _ in 0..<20 {
            try await pool.withTransaction { connection in
                _ = try await connection.query("SELECT 1", logger: Self.logger)
                _ = try await connection.query("SELECT 2", logger: Self.logger)
            }
        }
        // A cancelled timer ends at its next scheduling; 1 s is plenty, the deadline is 60 s.
        var live = pool.liveDeadlineTimers.load(ordering: .relaxed)
        for _ in 0..<50 where live > 0 {
            try await Task.sleep(for: .milliseconds(20))
            live = pool.liveDeadlineTimers.load(ordering: .relaxed)
        }
        #expect(live == 0, "\(live) deadline timers still sleeping after their uses ended")
    }

    /// Raw SQL on the ledger's schema from outside the backend.
    static func execute(_ sql: String, on backend: PostgresBackend) async throws {
        let client = PostgresClient(configuration: .init(host: backend.configuration.host, port: backend.configuration.port,
                                                         username: backend.configuration.user, password: backend.configuration.password,
                                                         database: backend.configuration.database, tls: .disable))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        // Extended protocol: one statement per query, so the tables are named with their schema (`S.` in `sql`).
        try await client.query(PostgresQuery(unsafeSQL: sql.replacingOccurrences(of: "S.", with: "\"\(backend.configuration.schema)\".")))
    }

    static func expectStorage(_ column: String, _ value: String, sourceLocation: Testing.SourceLocation = #_sourceLocation,
                              _ read: () async throws -> Void) async {
        do {
            try await read()
            Issue.record("an unknown \(column) \(value) was read without an error", sourceLocation: sourceLocation)
        } catch let error as SettlementError {
            #expect(error.code == .storage, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(column) && error.message.contains(value), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a SettlementError: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("unknown stored enum values fail with storage naming the column and the value")
    func unknownStoredValues() async throws {
        for breakage in ["holds.state", "holds.refusal", "entries.debit_kind", "charges.kind"] {
            let backend = try await PostgresBackend(url: PostgresTestServer.freshURL(pool: 2))
            let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
            let plan = TestLedger.catalog.plan(id: "flat", at: TestLedger.start)!
            _ = try await settlement.purchase(consumer: "cus_s", amount: TestLedger.money("20.00"), idempotencyKey: "buy")
            _ = try await settlement.reserve(ReservationRequest(execution: "exe_done", consumer: "cus_s", plan: plan))
            _ = try await settlement.settle(SettlementRequest(execution: "exe_done", meters: MeterReadings(), endedAt: TestLedger.start))
            _ = try await settlement.reserve(ReservationRequest(execution: "exe_live", consumer: "cus_s", plan: plan))
            switch breakage {
            case "holds.state":
                try await Self.execute("UPDATE S.holds SET state = 7 WHERE execution = 'exe_live'", on: backend)
                await Self.expectStorage("holds.state", "7") { _ = try await backend.hold(execution: "exe_live") }
                await Self.expectStorage("holds.state", "7") { _ = try await backend.snapshot() }
            case "holds.refusal":
                try await Self.execute("UPDATE S.holds SET refusal = 'bogus' WHERE execution = 'exe_done'", on: backend)
                await Self.expectStorage("holds.refusal", "bogus") { _ = try await backend.hold(execution: "exe_done") }
            case "entries.debit_kind":
                try await Self.execute("INSERT INTO S.entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES ('x', 42, 'c', 1, 'c', 1, 0)", on: backend)
                await Self.expectStorage("entries.debit_kind", "42") { _ = try await backend.snapshot() }
            default:
                try await Self.execute("""
                    INSERT INTO S.charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                    creator_share, platform_share, processing_share, failed, dated_at) VALUES ('x', 'bogus', 'cus_s', 'a', 'cr', 'flat', 1, NULL, 0, 0, 0, 0, 0, 0, 0, false, (SELECT max(dated_at) FROM S.charges))
                    """, on: backend)
                await Self.expectStorage("charges.kind", "bogus") { _ = try await backend.snapshot() }
                await Self.expectStorage("charges.kind", "bogus") { _ = try await settlement.usage() }
            }
            backend.shutdown()
        }
    }

    @Test("verify-full against a server without TLS says what the default is and how to change it")
    func verifyFullMessage() async throws {
        let base = try #require(PostgresTestServer.url).replacingOccurrences(of: "sslmode=disable", with: "sslmode=verify-full")
        do {
            _ = try await PostgresBackend(url: base + (base.contains("sslmode") ? "" : (base.contains("?") ? "&" : "?") + "sslmode=verify-full"))
            Issue.record("connected with verify-full to a server without TLS")
        } catch let error as SettlementError {
            #expect(error.code == .storage)
            #expect(error.message.contains("verify-full") && error.message.contains("sslmode="), "\(error.message)")
        }
    }
}
}
