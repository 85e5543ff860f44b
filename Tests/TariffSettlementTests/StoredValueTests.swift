import Foundation
import GRDB
import Tariff
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// Issue 14, hardening: a stored enum value this build does not know (written by a newer Tariff,
/// or by hand) fails loudly as `storage`, naming the column and the value, instead of being read
/// as a default (`active`, `available`, `execution`) that would then be acted on.
@Suite("SQLite: unknown stored values fail loudly (issue 14)")
struct StoredValueTests {
    /// A ledger with one settled and one live hold, and the raw SQL that breaks one column.
    static func ledger() async throws -> (TestLedger, DatabaseQueue) {
        let path = Backends.temporaryLedgerPath()
        let ledger = try await TestLedger.make(BackendFactory(name: "sqlite-file") { currency in try SQLiteBackend(path: path, currency: currency) })
        try await ledger.purchase("cus_s", "20.00")
        try await ledger.reserve("exe_done", "cus_s", plan: "flat")
        try await ledger.settle("exe_done")
        try await ledger.reserve("exe_live", "cus_s", plan: "flat")
        return (ledger, try DatabaseQueue(path: path))
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

    @Test("a hold state of 7: reads, snapshots and the next step on the hold fail with storage naming holds.state")
    func holdState() async throws {
        let (ledger, queue) = try await Self.ledger()
        try await queue.write { try $0.execute(sql: "UPDATE holds SET state = 7 WHERE execution = 'exe_live'") }
        await Self.expectStorage("holds.state", "7") { _ = try await ledger.backend.hold(execution: "exe_live") }
        await Self.expectStorage("holds.state", "7") { _ = try await ledger.backend.snapshot() }
        // Read as `active` it would be settled; it must not be.
        await Self.expectStorage("holds.state", "7") { _ = try await ledger.settle("exe_live") }
        await Self.expectStorage("holds.state", "7") { _ = try await ledger.settlement.release(execution: "exe_live") }
    }

    @Test("a settled hold's refusal 'bogus' fails with storage naming holds.refusal")
    func refusal() async throws {
        let (ledger, queue) = try await Self.ledger()
        try await queue.write { try $0.execute(sql: "UPDATE holds SET refusal = 'bogus' WHERE execution = 'exe_done'") }
        await Self.expectStorage("holds.refusal", "bogus") { _ = try await ledger.backend.hold(execution: "exe_done") }
        // A repeated settle answers the first result, which it can no longer read.
        await Self.expectStorage("holds.refusal", "bogus") { _ = try await ledger.settle("exe_done") }
    }

    @Test("an entry's account kind 42 and a charge's kind 'bogus' fail with storage naming the column")
    func entryAndChargeKinds() async throws {
        let (ledger, queue) = try await Self.ledger()
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES ('x', 42, 'c', 1, 'c', 1, 0)")
        }
        await Self.expectStorage("entries.debit_kind", "42") { _ = try await ledger.backend.snapshot() }
        let (other, otherQueue) = try await Self.ledger()
        try await otherQueue.write { db in
            try db.execute(sql: """
                INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                creator_share, platform_share, processing_share, failed, dated_at) VALUES ('x', 'bogus', 'cus_s', 'a', 'cr', 'flat', 1, NULL, 0, 0, 0, 0, 0, 0, 0, 0, (SELECT max(dated_at) FROM charges))
                """)
        }
        await Self.expectStorage("charges.kind", "bogus") { _ = try await other.backend.snapshot() }
        await Self.expectStorage("charges.kind", "bogus") { _ = try await other.settlement.usage() }
    }
}
