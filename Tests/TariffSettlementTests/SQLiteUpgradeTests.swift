import Foundation
import GRDB
import Tariff
import TariffSettlement
import TariffSettlementTesting
@testable import TariffSQLite
import Testing

/// An existing ledger is upgraded in place: a file written by the schema before payouts from the
/// ledger (migrations v1 and v2 only) is opened by this release, which applies "v3: payouts" and
/// keeps every row; its old payout reads as paid with nothing returned, and payouts go on.
@Suite("SQLite ledger upgrade")
struct SQLiteUpgradeTests {
    @Test("a v2 ledger with a paid payout is migrated to v3 on open, verifies, and pays the next week from its balances")
    func upgradeToPayouts() async throws {
        let path = Backends.temporaryLedgerPath()
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(queue, upTo: "v2: service")
            // cus_old bought 10.00; a 10.00 fee on 2026-10-27 (8.00 / 1.50 / 0.50) earned acct_old 8.00,
            // paid out in the week of 2026-10-26 (transfer tr_old), all through v2's columns.
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO ledger_meta (key, value) VALUES ('currency', 'USD');
                    INSERT INTO consumers (id, available, reserved) VALUES ('cus_old', 0, 0);
                    INSERT INTO operations (key, fingerprint, result, at) VALUES ('purchase:k', 'old', '10000000,10000000', 0);
                    INSERT INTO operations (key, fingerprint, result, at) VALUES ('period-start:old', 'old', '10000000,10000000,0', 0);
                    INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES
                        ('purchase:k', 0, 'cus_old', 1, 'cus_old', 10000000, 0),
                        ('period-start:old', 1, 'cus_old', 3, 'acct_old', 8000000, 0),
                        ('period-start:old', 1, 'cus_old', 5, '', 1500000, 0),
                        ('period-start:old', 1, 'cus_old', 6, '', 500000, 0),
                        ('payout:acct_old:2026-10-26', 3, 'acct_old', 4, 'acct_old', 8000000, 0);
                    INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                        creator_share, platform_share, processing_share, failed, dated_at) VALUES
                        ('period-start:old', 'fee', 'cus_old', 'agt_old', 'acct_old', 'old', 1, NULL, 0, 10000000, 10000000, 0, 8000000, 1500000, 500000, 0,
                         \(Timestamp(rfc3339: "2026-10-27T00:00:00Z")!.nanosecondsSinceEpoch));
                    INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference) VALUES
                        ('payout:acct_old:2026-10-26', 'acct_old', '2026-10-26', '2026-11-04', 8000000, 0, 'tr_old');
                    """)
            }
            try queue.close()
        }
        let backend = try SQLiteBackend(path: path)
        #expect(try backend.migrationHistory().starts(with: ["v1: ledger", "v2: service", "v3: payouts"]))
        let old = try #require(try await backend.payoutRecords().first)
        #expect(old.status == .paid && old.returned == .zero && old.failure == nil && old.amount == TestLedger.money("8.00"))
        let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T12:00:00Z")!)
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: clock)
        #expect(try await settlement.verify().passed)
        // Two flat calls (5.60 each to acct_flat) in the week of 2026-11-02, paid on 2026-11-11; acct_old owes nothing more.
        try await settlement.purchase(consumer: "cus_old", amount: TestLedger.money("20.00"), idempotencyKey: "k2")
        for execution in ["exe_a", "exe_b"] {
            try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_old", plan: TestLedger.catalog.plan(id: "flat", at: clock.now())!))
            try await settlement.settle(SettlementRequest(execution: execution, meters: MeterReadings(), endedAt: clock.now()))
        }
        clock.set(Timestamp(rfc3339: "2026-11-11T09:00:00Z")!)
        let lines = try await settlement.executePayouts(week: Timestamp(date: "2026-11-02")!.civilDate, rail: RefusingRail())
        #expect(lines.map(\.creator) == ["acct_flat"] && lines.map(\.amount) == [TestLedger.money("11.20")] && lines.map(\.status) == [.paid])
        let report = try await settlement.verify()
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }
}
