import Foundation
import PostgresNIO
import PropertyBased
import Tariff
import TariffPostgres
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// Issue 14's differential test through all three backends: the in-memory reference, a SQLite
/// file and a PostgreSQL schema, with PostgreSQL's connections cut by the server mid-run
/// (`pg_terminate_backend`) on top of the faults every backend gets (a crash as a reopen, a rail
/// that times out after applying, answers lost and sent again).
/// `TARIFF_DIFFERENTIAL_RUNS` sets how many sequences (default 8).
extension PostgresServerTests {
@Suite("differential: memory, SQLite and PostgreSQL (issue 14)")
struct PostgresDifferentialTests {
    static var runs: Int { ProcessInfo.processInfo.environment["TARIFF_DIFFERENTIAL_RUNS"].flatMap(Int.init) ?? 8 }

    static func sqlite() -> Differential.Subject {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-differential-\(UUID().uuidString).sqlite").path
        return Differential.Subject(name: "sqlite", open: { try SQLiteBackend(path: path, currency: TestLedger.usd) })
    }

    /// One schema for the run, reopened on a crash; its own application name, so that the cut
    /// terminates this run's connections only.
    static func postgres() -> Differential.Subject {
        let name = "diff_" + UUID().uuidString.prefix(8).lowercased()
        let url = PostgresTestServer.freshURL(pool: 4) + "&application_name=\(name)"
        return Differential.Subject(name: "postgres", open: { try await PostgresBackend(url: url, currency: TestLedger.usd) }, cutConnections: { backend in
            guard let backend = backend as? PostgresBackend else { return }
            let killer = PostgresClient(configuration: .init(host: backend.configuration.host, port: backend.configuration.port,
                                                             username: backend.configuration.user, password: backend.configuration.password,
                                                             database: backend.configuration.database, tls: .disable))
            let runner = Task { await killer.run() }
            defer { runner.cancel() }
            try await killer.query("""
                SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity
                WHERE pid <> pg_backend_pid() AND application_name = \(name) AND datname = current_database()
                """)
        }, close: { backend in (backend as? PostgresBackend)?.shutdown() })
    }

    @Test("a fixed sequence through live subscriptions: subscribes, a replacement, cancels, the clock over two months with a crash and cut connections")
    func subscriptionScenario() async throws {
        let counts = try await Differential.run(steps: Differential.subscriptionSteps, subjects: [.memory(), Self.sqlite(), Self.postgres()])
        #expect(counts.steps == Differential.subscriptionSteps.count, "\(counts)")
        // cus_a: metered (replaced), ent, metered-max; cus_b: metered-max (canceled). Closed: cus_a's
        // first metered period (cut at the replacement), ent's November and December periods, and
        // metered-max's first periods of cus_a and cus_b (their ends + 1h passed by the last ticks).
        #expect(counts.subscriptions == 4 && counts.endedSubscriptions == 2 && counts.closedPeriods >= 4, "\(counts)")
    }

    @Test("a fixed sequence through period close on the three backends: closes, crashes, cut connections, late runs adjusted")
    func closeScenario() async throws {
        let counts = try await Differential.run(steps: Differential.closeSteps, subjects: [.memory(), Self.sqlite(), Self.postgres()])
        #expect(counts.steps == Differential.closeSteps.count, "\(counts)")
        // Three periods closed by closeDue (cus_a's ent and metered, cus_b's ent); exe_3 credits back
        // shortfall and exe_5 (failed) changes the SLA credit of cus_a's ent period; exe_4 and exe_6 adjust theirs.
        #expect(counts.closedPeriods == 3 && counts.adjustments >= 3, "\(counts)")
    }

    @Test("random sequences with faults and cut connections: every answer and every snapshot equal after each step", .timeLimit(.minutes(5)))
    func differential() async throws {
        let total = Differential.Counts.Total()
        await propertyCheck(count: Self.runs, input: Gen.int(in: 0...Int.max).array(of: 10...40)) { words in
            total.add(try await Differential.run(words, subjects: [.memory(), Self.sqlite(), Self.postgres()]))
        }
        let counts = total.value
        #expect(counts.applied >= counts.steps / 3 && counts.faults >= Self.runs, "\(counts)")
    }
}
}
