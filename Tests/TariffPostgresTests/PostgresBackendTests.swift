import Foundation
import PostgresNIO
import Tariff
@testable import TariffPostgres
import TariffSettlement
import TariffSettlementTesting
import Testing

/// What only a shared database shows: migrations from several workers at once, the sweep skipping
/// a busy consumer, and steps surviving the loss of their connections.
extension PostgresServerTests {
@Suite("PostgreSQL backend")
struct PostgresBackendTests {
    static func money(_ text: String) -> Money { TestLedger.money(text) }

    @Test("eight workers migrating one new schema at once apply each migration exactly once")
    func concurrentMigrations() async throws {
        let url = PostgresTestServer.freshURL(pool: 2)
        let backends = try await withThrowingTaskGroup(of: PostgresBackend.self) { group in
            for _ in 0..<8 { group.addTask { try await PostgresBackend(url: url) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for backend in backends {
            #expect(try await backend.appliedMigrations() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
            #expect(backend.currency.code == "USD")
        }
        // A reopened ledger keeps its currency and refuses another.
        await #expect(throws: SettlementError(.wrongCurrency, "the ledger at \(try PostgresConfiguration(url: url)) keeps USD, not EUR")) {
            _ = try await PostgresBackend(url: url, currency: TestLedger.eur)
        }
    }

    @Test("the expiry sweep skips a consumer whose row another step holds, and gets it on the next sweep")
    func sweepSkipsLocked() async throws {
        let url = PostgresTestServer.freshURL()
        let backend = try await PostgresBackend(url: url)
        let clock = ManualClock(TestLedger.start)
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: clock)
        let plan = TestLedger.catalog.plan(id: "flat", at: TestLedger.start)!
        for consumer in ["cus_busy", "cus_idle"] {
            _ = try await settlement.purchase(consumer: consumer, amount: Self.money("10.00"), idempotencyKey: "buy-\(consumer)")
            _ = try await settlement.reserve(ReservationRequest(execution: "exe_\(consumer)", consumer: consumer, plan: plan))
        }
        clock.advance(by: .seconds(16 * 60))
        // Another worker's step is in the middle of cus_busy: its row is locked until that transaction ends.
        let other = PostgresClient(configuration: .init(host: backend.configuration.host, port: backend.configuration.port,
                                                        username: backend.configuration.user, password: nil,
                                                        database: backend.configuration.database, tls: .disable))
        let runner = Task { await other.run() }
        defer { runner.cancel() }
        let schema = backend.configuration.schema
        let locked = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await other.withTransaction(logger: Logger(label: "test")) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "SELECT 1 FROM \"\(schema)\".consumers WHERE id = 'cus_busy' FOR UPDATE"), logger: Logger(label: "test"))
                locked.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        for await _ in locked.stream { break }
        // Not blocked by the lock: only cus_idle's hold is swept.
        #expect(try await settlement.expireHolds() == 1)
        #expect(try await backend.hold(execution: "exe_cus_idle")?.state == .expired)
        #expect(try await backend.hold(execution: "exe_cus_busy")?.state == .active)
        release.continuation.yield()
        try await holder.value
        #expect(try await settlement.expireHolds() == 1)
        #expect(try await backend.hold(execution: "exe_cus_busy")?.state == .expired)
        // 10.00 back in full for both.
        #expect(try await settlement.balance(consumer: "cus_busy").available == Self.money("10.00"))
        #expect(try await settlement.verify().passed)
    }

    // Run under a time limit: with postgres-nio's own pool (1.33.2) this test hung about one run in
    // three (no new connection after cut ones); `ConnectionPool` replaced it.
    @Test("steps whose connections are killed mid-run are retried under their keys: nothing lost, nothing twice", .timeLimit(.minutes(1)))
    func lostConnections() async throws {
        // Its own application name: the killer cuts this test's connections only, not those of tests running beside it.
        let name = "kill_" + UUID().uuidString.prefix(8).lowercased()
        let backend = try await PostgresBackend(url: PostgresTestServer.freshURL(pool: 4) + "&application_name=\(name)&statement_timeout=5")
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
        let plan = TestLedger.catalog.plan(id: "flat", at: TestLedger.start)!
        _ = try await settlement.purchase(consumer: "cus_k", amount: Self.money("1000.00"), idempotencyKey: "buy")
        let killer = PostgresClient(configuration: .init(host: backend.configuration.host, port: backend.configuration.port,
                                                         username: backend.configuration.user, password: nil,
                                                         database: backend.configuration.database, tls: .disable))
        let runner = Task { await killer.run() }
        defer { runner.cancel() }
        let stop = ManualStop()
        let killing = Task {
            var kills = 0
            // At most 8 cuts, 50 ms apart: enough to hit steps in flight, few enough that the pool is never left with none.
            while !stop.isSet && kills < 8 {
                // Every connection of this ledger's pool (its schema is its search_path), cut by the server.
                let rows = try await killer.query("""
                    SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity
                    WHERE pid <> pg_backend_pid() AND application_name = \(name) AND datname = current_database()
                      AND query LIKE '%tariff_%' AND state = 'active'
                    """)
                for try await count in rows.decode(Int64.self) { kills += Int(count) }
                try await Task.sleep(for: .milliseconds(50))
            }
            return kills
        }
        defer { stop.set() }
        // 100 lifecycles of 7.00 on 4 workers while connections die under them.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for index in 0..<25 {
                        let execution = "exe_\(worker)_\(index)"
                        _ = try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_k", plan: plan))
                        _ = try await settlement.settle(SettlementRequest(execution: execution, meters: MeterReadings(), endedAt: TestLedger.start))
                    }
                }
            }
            try await group.waitForAll()
        }
        stop.set()
        let kills = try await killing.value
        // 1000.00 - 100 x 7.00: each lifecycle charged exactly once whatever was retried.
        #expect(try await settlement.balance(consumer: "cus_k").available == Self.money("300.00"))
        let snapshot = try await backend.snapshot()
        #expect(snapshot.charges.count == 100 && Set(snapshot.charges.compactMap(\.execution)).count == 100)
        #expect(try await settlement.verify().passed)
        // A run that cut no connection tested nothing: it must have cut some (the killer looks every
        // 50 ms while 4 workers keep the pool's connections busy).
        #expect(kills > 0, "no connection was cut while the lifecycles ran")
        print("lostConnections: \(kills) connections terminated mid-run")
    }
}

}

/// A flag set once, read from any task.
final class ManualStop: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// An upgrade: a ledger written by the first release's schema (migration 1 only) is opened by
/// this one, which applies migration 2 and keeps every row; its holds settle as before.
extension PostgresServerTests {
@Suite("PostgreSQL schema upgrade")
struct PostgresUpgradeTests {
    @Test("a version-1 ledger with a live hold is migrated on open; the hold settles and the ledger verifies")
    func upgradeFromVersionOne() async throws {
        let url = PostgresTestServer.freshURL(pool: 2)
        let configuration = try PostgresConfiguration(url: url)
        let pool = ConnectionPool(configuration: try PostgresBackend.connectionConfiguration(configuration), maximumConnections: 1,
                                  logger: Logger(label: "test"))
        defer { pool.shutdown() }
        try await PostgresBackend.migrate(pool, schema: configuration.schema, migrations: Array(Schema.migrations.prefix(1)))
        // What the first release wrote: a purchase of 10.00 and a hold of 7.00 (its 9-argument tariff_reserve).
        let start = TestLedger.start.nanosecondsSinceEpoch
        try await pool.withConnection { connection in
            for statement: PostgresQuery in [
                "INSERT INTO ledger_meta (key, value) VALUES ('currency', 'USD')",
                "SELECT * FROM tariff_purchase('purchase:buy', 'f', 'cus_old', 10000000, \(start))",
                "SELECT * FROM tariff_reserve('exe_old', 'consumer=cus_old;plan=flat@1;period=none;estimate=7000000;ttl_ns=900000000000', 'cus_old', 'flat', 1, NULL, 7000000, \(start + 900_000_000_000), \(start))",
            ] {
                try await connection.query(statement, logger: Logger(label: "test"))
            }
        }
        let backend = try await PostgresBackend(url: url)
        defer { backend.shutdown() }
        #expect(try await backend.appliedMigrations() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
        #expect(try await backend.hold(execution: "exe_old")?.state == .active)
        #expect(try await backend.balance(consumer: "cus_old", at: TestLedger.start).reserved == TestLedger.money("7.00"))
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
        let receipt = try await settlement.settle(SettlementRequest(execution: "exe_old", meters: MeterReadings(), endedAt: TestLedger.start))
        // The flat plan's 7.00 fee, held in full: nothing left reserved, 3.00 available.
        #expect(receipt.charged == TestLedger.money("7.00"))
        #expect(try await settlement.balance(consumer: "cus_old") == Balance(consumer: "cus_old", currency: TestLedger.usd, available: TestLedger.money("3.00"), reserved: .zero))
        #expect(try await settlement.verify().passed)
    }
}
}

/// Group commit of reserves on one consumer (`StepBatcher`): concurrent reserves go to the server
/// together, and a refusal inside a batch refuses that reserve alone.
extension PostgresServerTests {
@Suite("PostgreSQL reserve batches")
struct PostgresBatchTests {
    @Test("48 concurrent reserves of 7.00 on 70.00: exactly 10 held, 38 refused for credits, most of them in batches; retries return the first result")
    func concurrentReservesOnOneConsumer() async throws {
        let backend = try await PostgresBackend(url: PostgresTestServer.freshURL(pool: 8))
        defer { backend.shutdown() }
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
        let plan = TestLedger.catalog.plan(id: "flat", at: TestLedger.start)!
        _ = try await settlement.purchase(consumer: "cus_hot", amount: TestLedger.money("70.00"), idempotencyKey: "buy")
        func reserveAll() async throws -> [String: Result<Hold, SettlementError>] {
            try await withThrowingTaskGroup(of: (String, Result<Hold, SettlementError>).self) { group in
                for index in 0..<48 {
                    group.addTask {
                        let execution = "exe_\(index)"
                        do {
                            return (execution, .success(try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_hot", plan: plan))))
                        } catch let error as SettlementError {
                            return (execution, .failure(error))
                        }
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
        }
        let first = try await reserveAll()
        let held = first.values.filter { if case .success = $0 { true } else { false } }
        let refused = first.values.compactMap { if case .failure(let error) = $0 { error } else { nil } }
        // 70.00 / 7.00 = 10 holds; the other 38 refused with the code of a lone reserve.
        #expect(held.count == 10 && refused.count == 38)
        #expect(refused.allSatisfy { $0.code == .insufficientCredits })
        #expect(try await settlement.balance(consumer: "cus_hot") == Balance(consumer: "cus_hot", currency: TestLedger.usd, available: .zero,
                                                                           reserved: TestLedger.money("70.00")))
        #expect(backend.reserveBatcher.batchedSteps.load(ordering: .relaxed) > 0, "no reserve went in a batch")
        // The held ones again (concurrently, so in batches too): each returns its first hold, nothing moves.
        let before = try await backend.snapshot()
        let heldExecutions = first.filter { if case .success = $0.value { true } else { false } }.map(\.key)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for execution in heldExecutions {
                group.addTask {
                    let hold = try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_hot", plan: plan))
                    #expect(hold.amount == TestLedger.money("7.00"))
                }
            }
            try await group.waitForAll()
        }
        #expect(try await backend.snapshot() == before)
        #expect(try await settlement.verify().passed)
    }
}
}
