import Foundation
import GRDB
import Tariff
import TariffSettlement
import TariffSettlementTesting
@testable import TariffSQLite
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
            let created = try SQLiteBackend(path: path, currency: Self.usd)
            let settlement = Settlement(backend: created, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
            try await settlement.purchase(consumer: "cus_1", amount: TestLedger.money("12.34"), idempotencyKey: "k")
            // The connection that commits: GRDB's pool turns it to NORMAL when it enables WAL, after
            // our own setup ran, so every commit skipped its fsync until the backend set it again.
            #expect(try await created.writerSynchronousSetting() == 2)
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
        // Every migration of this release, in order (later releases append; the first ones never change).
        #expect(migrations == ["v1: ledger", "v2: service", "v3: payouts", "v4: reversals", "v5: period closes", "v6: subscriptions", "v7: webhooks", "v8: portal", "v9: auto top-up",
                              "v10: event triggers follow the endpoints"])
        #expect(migrations == SQLiteBackend.knownMigrations)
        // synchronous is per connection: read on the backend's own connections. 2 is FULL (an fsync at every commit).
        #expect(try await reopened.synchronousSetting() == 2)
        #expect(try await reopened.writerSynchronousSetting() == 2)
        // `.normal` (throwaway ledgers) is NORMAL on the writer too.
        let throwaway = try SQLiteBackend(path: Backends.temporaryLedgerPath(), currency: Self.usd, durability: .normal)
        #expect(try await throwaway.writerSynchronousSetting() == 1)
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

    @Test("a refused refund leaves the database file byte for byte unchanged")
    func refusedRefundBytesUnchanged() async throws {
        let path = Backends.temporaryLedgerPath()
        let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-file") { currency in try SQLiteBackend(path: path, currency: currency) })
        let rail = WindowedRail(clock: ledger.clock)
        _ = try await ledger.settlement.purchase(CreditPurchase(consumer: "cus_b", amount: TestLedger.money("10.00"), currency: TestLedger.usd,
                                                                idempotencyKey: "p1", payer: "cus_stripe_b", paymentMethod: "pm_card"), through: rail)
        try await ledger.reserve("exe_1", "cus_b", plan: "flat")
        func bytes() throws -> [Data] { try [path, path + "-wal"].map { try Data(contentsOf: URL(fileURLWithPath: $0)) } }
        let before = try bytes()
        // 10.00 bought, 7.00 held: 3.00 available. Beyond what is available, beyond the purchase, a conflicting key.
        await #expect(throws: SettlementError(.insufficientCredits, "cus_b has 3.000000 available, 4.000000 asked back: spent credits are not refundable")) {
            try await ledger.settlement.refund(purchase: "p1", amount: TestLedger.money("4.00"), idempotencyKey: "r1", through: rail)
        }
        await #expect(throws: SettlementError.self) {
            try await ledger.settlement.refund(purchase: "p1", amount: TestLedger.money("10.01"), idempotencyKey: "r1", through: rail)
        }
        #expect(try bytes() == before)
        _ = try await ledger.settlement.refund(purchase: "p1", amount: TestLedger.money("1.00"), idempotencyKey: "r2", through: rail)
        let afterRefund = try bytes()
        await #expect(throws: SettlementError.self) {
            try await ledger.settlement.refund(purchase: "p1", amount: TestLedger.money("2.00"), idempotencyKey: "r2", through: rail)
        }
        #expect(try bytes() == afterRefund)
        #expect(afterRefund != before)
        #expect(rail.refundRequests == 1)
    }

    @Test("a ledger of the previous schema (v1, v2) is upgraded in place to v4: its rows kept, purchases and refunds work, verify passes")
    func upgradeInPlace() async throws {
        let path = Backends.temporaryLedgerPath()
        do {
            let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-file") { currency in try SQLiteBackend(path: path, currency: currency) })
            try await ledger.purchase("cus_old", "20.00", key: "old-1")
            try await ledger.reserve("exe_old", "cus_old", plan: "flat")
            try await ledger.settle("exe_old")
        }
        // Back to the schema before "v4: reversals", as a ledger written by the previous release is.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "DROP TABLE purchases; DROP TABLE reversals; DELETE FROM grdb_migrations WHERE identifier = 'v4: reversals'")
        }
        let old = try await queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        #expect(!old.contains("v4: reversals"))
        try queue.close()
        let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-upgraded") { currency in try SQLiteBackend(path: path, currency: currency) })
        #expect(try (ledger.backend as! SQLiteBackend).migrationHistory() == SQLiteBackend.knownMigrations)
        // 20.00 - 7.00, kept.
        #expect(try await ledger.balance("cus_old").available == TestLedger.money("13.00"))
        let rail = WindowedRail(clock: ledger.clock)
        _ = try await ledger.settlement.purchase(CreditPurchase(consumer: "cus_old", amount: TestLedger.money("5.00"), currency: TestLedger.usd,
                                                                idempotencyKey: "new-1", payer: "cus_stripe_o", paymentMethod: "pm_card"), through: rail)
        _ = try await ledger.settlement.refund(purchase: "new-1", amount: TestLedger.money("2.00"), idempotencyKey: "r1", through: rail)
        // 13.00 + 5.00 - 2.00.
        #expect(try await ledger.balance("cus_old").available == TestLedger.money("16.00"))
        try await ledger.expectVerified()
    }

    @Test("a ledger of the schema before subscriptions (v5) is upgraded in place to v6: its periods kept, subscriptions and the clock work, verify passes")
    func upgradeToSubscriptions() async throws {
        let path = Backends.temporaryLedgerPath()
        let periodStart = Timestamp(rfc3339: "2026-11-01T00:00:00Z")!, periodEnd = Timestamp(rfc3339: "2026-12-01T00:00:00Z")!
        do {
            let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-file") { currency in try SQLiteBackend(path: path, currency: currency) })
            try await ledger.purchase("cus_old", "200.00", key: "old-1")
            // A period registered by a replay before subscriptions were kept: 200.00 - 100.00.
            try await ledger.settlement.chargePeriodStart(consumer: "cus_old", plan: ledger.plan("ent"), periodStart: periodStart, periodEnd: periodEnd)
        }
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "DROP TABLE subscriptions; DELETE FROM grdb_migrations WHERE identifier = 'v6: subscriptions'")
        }
        try queue.close()
        let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-upgraded") { currency in try SQLiteBackend(path: path, currency: currency) })
        #expect(try (ledger.backend as! SQLiteBackend).migrationHistory() == SQLiteBackend.knownMigrations)
        #expect(SQLiteBackend.knownMigrations.contains("v6: subscriptions"))
        #expect(try await ledger.balance("cus_old").available == TestLedger.money("100.00"))
        #expect(try await ledger.backend.periodCloses().map(\.end) == [periodEnd])
        // 100.00 - 10.00 (metered's first fee at the subscribe), then the old period closes at its end + 1h:
        // shortfall 150.00 - 100.00 = 50.00.
        try await ledger.settlement.subscribe(consumer: "cus_old", plan: "metered", id: "sub_new")
        #expect(try await ledger.balance("cus_old").available == TestLedger.money("90.00"))
        let run = try await ledger.settlement.runClock(at: Timestamp(rfc3339: "2026-12-01T01:00:00Z")!)
        #expect(run.fees == 0 && run.closes.map(\.shortfall) == [TestLedger.money("50.00")])
        #expect(try await ledger.balance("cus_old").available == TestLedger.money("40.00"))
        #expect(try await ledger.backend.subscriptions(consumer: "cus_old").map(\.id) == ["sub_new"])
        try await ledger.expectVerified()
    }

    static func eventTriggers(_ path: String) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'webhook_%' ORDER BY name")
        }
    }

    @Test("the outbox's triggers exist only while an endpoint listens to their events, for every writer on the file; v9 ledgers keep theirs")
    func eventTriggersFollowEndpoints() async throws {
        let path = Backends.temporaryLedgerPath()
        let first = try SQLiteBackend(path: path, currency: Self.usd)
        let second = try SQLiteBackend(path: path, currency: Self.usd)
        let start = Timestamp(rfc3339: "2026-11-02T10:00:00Z")!
        _ = try await first.purchase(PurchaseCommand(key: "b-1", fingerprint: "f1", consumer: "c", amount: TestLedger.money("5.00"), now: start))
        _ = try await second.purchase(PurchaseCommand(key: "b-2", fingerprint: "f2", consumer: "c", amount: TestLedger.money("5.00"), now: start))
        // A new ledger: only the fan-out (on the outbox itself).
        #expect(try Self.eventTriggers(path) == ["webhook_fan_out"])
        #expect(try await first.outboxEvents(after: 0, limit: 100).isEmpty)
        // An endpoint for purchases, added through one backend: the other writes the event at its next purchase.
        try await first.addWebhookEndpoint(WebhookEndpoint(id: "whe_1", url: "http://127.0.0.1:1/", events: ["purchase.succeeded"], secret: "s", createdAt: start))
        #expect(try Self.eventTriggers(path) == ["webhook_fan_out", "webhook_purchase"])
        _ = try await second.purchase(PurchaseCommand(key: "b-3", fingerprint: "f3", consumer: "c", amount: TestLedger.money("5.00"), now: start))
        #expect(try await first.outboxEvents(after: 0, limit: 100).map(\.type) == ["purchase.succeeded"])
        // A second endpoint for balance events and purchases; removing the first keeps the purchase trigger (the second listens).
        try await second.addWebhookEndpoint(WebhookEndpoint(id: "whe_2", url: "http://127.0.0.1:1/", events: ["balance.low", "purchase.succeeded"],
                                                            secret: "s", createdAt: start))
        #expect(try Self.eventTriggers(path) == ["webhook_balance", "webhook_balance_opened", "webhook_fan_out", "webhook_purchase"])
        _ = try await first.removeWebhookEndpoint(id: "whe_1", at: start)
        #expect(try Self.eventTriggers(path) == ["webhook_balance", "webhook_balance_opened", "webhook_fan_out", "webhook_purchase"])
        // 15.00 -> 4.00: below the 10.00 default, written by the first backend's writer.
        _ = try await first.reserve(ReserveCommand(execution: "e1", fingerprint: "fe1", consumer: "c", plan: "p", version: 1, periodStart: nil,
                                                   amount: TestLedger.money("11.00"), expiresAt: start.adding(nanoseconds: 60_000_000_000)!, now: start))
        #expect(try await second.outboxEvents(after: 0, limit: 100).map(\.type) == ["purchase.succeeded", "balance.low"])
        _ = try await second.removeWebhookEndpoint(id: "whe_2", at: start)
        #expect(try Self.eventTriggers(path) == ["webhook_fan_out"])
        // A ledger migrated from v9 with a live endpoint keeps the triggers of its events (and only those).
        let old = Backends.temporaryLedgerPath()
        do {
            let backend = try SQLiteBackend(path: old, currency: Self.usd)
            try await backend.addWebhookEndpoint(WebhookEndpoint(id: "whe_r", url: "http://127.0.0.1:1/", events: ["execution.refused"], secret: "s", createdAt: start))
        }
        let queue = try DatabaseQueue(path: old)
        try await queue.write { db in
            // Back to v9's schema: every trigger of v7, and v10 not applied.
            for name in ["webhook_refused_reserve", "webhook_refused_settle"] { try db.execute(sql: "DROP TRIGGER \(name)") }
            try db.execute(sql: EventTriggers.createAll)
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v10: event triggers follow the endpoints'")
        }
        try queue.close()
        #expect(try Self.eventTriggers(old).count == 11)
        let migrated = try SQLiteBackend(path: old, currency: Self.usd)
        #expect(try migrated.migrationHistory() == SQLiteBackend.knownMigrations)
        #expect(try Self.eventTriggers(old) == ["webhook_fan_out", "webhook_refused_reserve", "webhook_refused_settle"])
    }

    /// The commits in a WAL file: frames whose header carries a database size (a commit frame), with
    /// the salts of the WAL header (frames left over from before a reset do not count).
    /// Layout (sqlite.org/fileformat.html): a 32-byte header (page size at 8, salts at 16), then
    /// frames of a 24-byte header (commit size at 4, salts at 8) and a page.
    static func walCommits(_ path: String) throws -> Int {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "-wal")))
        guard bytes.count >= 32 else { return 0 }
        func u32(_ at: Int) -> UInt32 { bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        let pageSize = Int(u32(8)), salts = bytes[16..<24]
        var commits = 0, frame = 32
        while frame + 24 + pageSize <= bytes.count {
            if bytes[frame + 8..<frame + 16].elementsEqual(salts) && u32(frame + 4) != 0 { commits += 1 }
            frame += 24 + pageSize
        }
        return commits
    }

    @Test("steps from concurrent tasks share commits and each is answered after its commit")
    func groupCommit() async throws {
        let path = Backends.temporaryLedgerPath()
        let backend = try SQLiteBackend(path: path, currency: Self.usd)
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
        // A second connection: what it sees is committed.
        let other = try DatabaseQueue(path: path)
        let commitsBefore = try Self.walCommits(path)
        let steps = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<steps {
                group.addTask {
                    try await settlement.purchase(consumer: "cus_\(index % 10)", amount: TestLedger.money("1.00"), idempotencyKey: "k\(index)")
                    // Answered only after its commit: the other connection already reads the purchase.
                    let applied = try await other.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM operations WHERE key = ?", arguments: ["purchase:k\(index)"]) }
                    #expect(applied == 1, "purchase k\(index) was answered before its commit")
                }
            }
            try await group.waitForAll()
        }
        // Shared commits: one commit a step is what a serial backend writes; the group commit writes
        // fewer (the steps arriving while one commit is on its way to the disk go in the next one).
        let commits = try Self.walCommits(path) - commitsBefore
        #expect(commits >= 1 && commits < steps, "\(commits) commits for \(steps) steps: no commit was shared")
        // 200 purchases of 1.00 over 10 consumers: 20.00 each, read back from a second connection.
        let reopened = try SQLiteBackend(path: path)
        for index in 0..<10 {
            #expect(try await reopened.balance(consumer: "cus_\(index)", at: TestLedger.start).available == TestLedger.money("20.00"))
        }
    }
}
