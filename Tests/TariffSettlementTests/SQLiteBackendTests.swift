import Foundation
import GRDB
import Tariff
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// What only the SQLite backend promises: the file, its pragmas, migrations, reopening, the
/// database's own guards, and a refused step that leaves the file's bytes alone.
@Suite("SQLite backend")
struct SQLiteBackendTests {
    static let usd = Currency(code: "USD")!

    @Test("the file is in WAL mode with synchronous=FULL, migrated to v1, and keeps its rows across opens")
    func reopen() async throws {
        let path = Backends.temporaryLedgerPath()
        do {
            let settlement = Settlement(backend: try SQLiteBackend(path: path, currency: Self.usd), catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
            try await settlement.purchase(consumer: "cus_1", amount: TestLedger.money("12.34"), idempotencyKey: "k")
        }
        // A second open (as a second `tariff ledger` command would) sees the purchase and the currency.
        let reopened = try SQLiteBackend(path: path)
        #expect(reopened.currency == Self.usd)
        #expect(try await reopened.balance(consumer: "cus_1", at: TestLedger.start).available == TestLedger.money("12.34"))
        let queue = try DatabaseQueue(path: path)
        let (journal, migrations) = try await queue.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        }
        #expect(journal == "wal")
        #expect(migrations == ["v1: ledger", "v2: service"])
        // synchronous is per connection: read on the backend's own connections. 2 is FULL (an fsync at every commit).
        #expect(try await reopened.synchronousSetting() == 2)
    }

    @Test("opening a ledger in another currency is refused")
    func currency() throws {
        let path = Backends.temporaryLedgerPath()
        _ = try SQLiteBackend(path: path, currency: Self.usd)
        #expect(throws: SettlementError(.wrongCurrency, "the ledger at \(path) keeps USD, not EUR")) {
            try SQLiteBackend(path: path, currency: Currency(code: "EUR")!)
        }
    }

    @Test("entries and charge lines cannot be changed or deleted, and verify catches a tampered balance")
    func appendOnly() async throws {
        let path = Backends.temporaryLedgerPath()
        let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-file") { currency in try SQLiteBackend(path: path, currency: currency) })
        try await ledger.purchase("cus_t", "10.00")
        try await ledger.reserve("exe_t", "cus_t", plan: "flat")
        try await ledger.settle("exe_t")
        let queue = try DatabaseQueue(path: path)
        for tampering in ["UPDATE entries SET amount = 1", "DELETE FROM charges", "UPDATE consumers SET available = -1"] {
            await #expect(throws: DatabaseError.self, "\(tampering)") { try await queue.write { try $0.execute(sql: tampering) } }
        }
        #expect(try await ledger.settlement.verify().passed)
        // Someone adds a cent to a balance behind the ledger's back: invariants 1 and 2 fail.
        try await queue.write { try $0.execute(sql: "UPDATE consumers SET available = available + 10000") }
        let report = try await ledger.settlement.verify()
        #expect(report.invariants.filter { !$0.holds }.map(\.number) == [1, 2])
    }

    @Test("a refused step leaves the database file byte for byte unchanged")
    func bytesUnchanged() async throws {
        let path = Backends.temporaryLedgerPath()
        let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-file") { currency in try SQLiteBackend(path: path, currency: currency) })
        try await ledger.purchase("cus_b", "10.00")
        try await ledger.reserve("exe_1", "cus_b", plan: "flat")
        func bytes() throws -> [Data] { try [path, path + "-wal"].map { try Data(contentsOf: URL(fileURLWithPath: $0)) } }
        let before = try bytes()
        // Refused after the step wrote its first rows (the expiry check and the balance read ran):
        // the savepoint rolls them back and the empty commit writes nothing.
        await #expect(throws: SettlementError.self) { try await ledger.reserve("exe_2", "cus_b", plan: "flat") }
        await #expect(throws: SettlementError.self) { try await ledger.purchase("cus_b", "20.00", key: "buy-cus_b-10.00") }
        await #expect(throws: SettlementError.self) { try await ledger.settle("exe_none") }
        #expect(try bytes() == before)
    }

    @Test("steps from concurrent tasks share commits and each is answered after its commit")
    func groupCommit() async throws {
        let path = Backends.temporaryLedgerPath()
        let backend = try SQLiteBackend(path: path, currency: Self.usd)
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask { try await settlement.purchase(consumer: "cus_\(index % 10)", amount: TestLedger.money("1.00"), idempotencyKey: "k\(index)") }
            }
            try await group.waitForAll()
        }
        // 200 purchases of 1.00 over 10 consumers: 20.00 each, read back from a second connection.
        let other = try SQLiteBackend(path: path)
        for index in 0..<10 {
            #expect(try await other.balance(consumer: "cus_\(index)", at: TestLedger.start).available == TestLedger.money("20.00"))
        }
    }
}
