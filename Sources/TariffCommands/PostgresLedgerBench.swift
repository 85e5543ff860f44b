import Foundation
import Tariff
import TariffPostgres
import TariffSettlement

/// `tariff bench ledger-postgres`: durable reserve -> settle lifecycles per second against a
/// PostgreSQL ledger with 16 concurrent workers, on many consumers and on one hot consumer, each
/// printed beside pgbench on the same server with the same client count (performance.md):
/// `pgbench -b tpcb-like` for many consumers, a one-row `UPDATE` script for the hot consumer
/// (a lifecycle is two commits on that row, so 40% of pgbench's rate is 80% of its commits).
struct PostgresLedgerBench {
    let url: String
    let workers = 16
    let seconds: Int

    struct Figures {
        var manyConsumers: Double
        var hotConsumer: Double
        var pgbenchTPCB: Double
        var pgbenchOneRow: Double
        var hotAvailable: Money
    }

    func run(catalog: CompiledCatalog) throws -> [BenchmarkResult] {
        var figures = try runBlocking { [self] in try await measure(catalog: catalog) }
        // pgbench from this (the main) thread: it times -T with SIGALRM, and a child inherits its
        // parent thread's signal mask; the concurrency pool's threads block SIGALRM, so a pgbench
        // started from one of them never stops.
        progress("ledger-postgres: pgbench on the same server...")
        (figures.pgbenchTPCB, figures.pgbenchOneRow) = try pgbench(try PostgresConfiguration(url: url))
        let manyTarget = Int(figures.pgbenchTPCB / 2), hotTarget = Int(figures.pgbenchOneRow * 0.4)
        print("ledger-postgres: \(workers) workers, \(seconds) s each; pgbench tpcb-like \(Int(figures.pgbenchTPCB)) tps, one-row update \(Int(figures.pgbenchOneRow)) tps "
              + "(same server, \(workers) clients); hot consumer's available at the end \(figures.hotAvailable) (never negative: the CHECK and the conditional update)")
        return [
            BenchmarkResult(name: "ledger-postgres", unit: "lifecycles/s", value: Int(figures.manyConsumers), target: manyTarget, higherIsBetter: true,
                            allocationsPerExecution: nil, workload: "many consumers; target = half of pgbench tpcb-like (\(Int(figures.pgbenchTPCB)) tps)",
                            extraRequirementMet: true),
            BenchmarkResult(name: "ledger-postgres-hot", unit: "lifecycles/s", value: Int(figures.hotConsumer), target: hotTarget, higherIsBetter: true,
                            allocationsPerExecution: nil, workload: "one hot consumer; target = 40% of pgbench one-row update (\(Int(figures.pgbenchOneRow)) tps)",
                            extraRequirementMet: figures.hotAvailable >= .zero),
        ]
    }

    private func measure(catalog: CompiledCatalog) async throws -> Figures {
        let at = Timestamp(rfc3339: "2026-11-02T10:00:00Z")!
        guard let plan = catalog.plan(id: "research-payg", at: at) ?? catalog.plan(id: "ping", at: at) else {
            throw SettlementError(.invalidInput, "the catalog has neither research-payg nor ping: the benchmark settles a per-call plan")
        }
        let base = try PostgresConfiguration(url: url)
        var settings = base
        settings.poolSize = workers
        settings.schema = "bench_\(UInt64(Date().timeIntervalSince1970 * 1000))"
        let backend = try await PostgresBackend(configuration: settings)
        defer { backend.shutdown() }
        let settlement = Settlement(backend: backend, catalog: catalog, clock: SystemClock())
        progress("ledger-postgres: many consumers (\(workers) workers x 64 consumers)...")
        let many = try await lifecycles(settlement, plan: plan, consumers: { worker, index in "cus_\(worker)_\(index % 64)" }, fund: (0..<workers).flatMap { w in (0..<64).map { "cus_\(w)_\($0)" } })
        progress("ledger-postgres: \(Int(many)) lifecycles/s; one hot consumer...")
        let hot = try await lifecycles(settlement, plan: plan, consumers: { _, _ in "cus_hot" }, fund: ["cus_hot"])
        let hotAvailable = try await settlement.balance(consumer: "cus_hot").available
        progress("ledger-postgres: \(Int(hot)) lifecycles/s")
        return Figures(manyConsumers: many, hotConsumer: hot, pgbenchTPCB: 0, pgbenchOneRow: 0, hotAvailable: hotAvailable)
    }

    /// Runs `workers` tasks for `seconds`, each doing reserve -> settle on the consumer it is given.
    private func lifecycles(_ settlement: Settlement, plan: PlanHandle, consumers: @escaping @Sendable (Int, Int) -> String, fund: [String]) async throws -> Double {
        for consumer in fund {
            _ = try await settlement.purchase(consumer: consumer, amount: Money(micros: 1_000_000 * 1_000_000), idempotencyKey: "bench-\(consumer)")
        }
        let run = UUID().uuidString.prefix(8)
        let deadline = ContinuousClock.now + .seconds(seconds)
        let started = ContinuousClock.now
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline {
                        let execution = "exe_\(run)_\(worker)_\(done)"
                        _ = try await settlement.reserve(ReservationRequest(execution: execution, consumer: consumers(worker, done), plan: plan))
                        _ = try await settlement.settle(SettlementRequest(execution: execution, meters: MeterReadings(), endedAt: Timestamp(rfc3339: "2026-11-02T10:00:00Z")!))
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// pgbench on the same server: its own database (`tariff_pgbench`), scale = client count (so
    /// tpcb-like's branch rows are not the bottleneck), then tpcb-like and a one-row update.
    private func pgbench(_ settings: PostgresConfiguration) throws -> (Double, Double) {
        let binary = ["/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else { throw SettlementError(.invalidInput, "pgbench is not installed (postgresql-15 or postgresql-contrib)") }
        let server = "postgresql://\(settings.user)@\(settings.host):\(settings.port)"
        let ssl = "?sslmode=\(settings.tls == .verifyFull ? "verify-full" : settings.tls.rawValue)"
        var environment = ProcessInfo.processInfo.environment
        if let password = settings.password { environment["PGPASSWORD"] = password }
        _ = try? shell("/usr/lib/postgresql/15/bin/psql", [server + "/\(settings.database)" + ssl, "-qc", "CREATE DATABASE tariff_pgbench"], environment)
        let database = server + "/tariff_pgbench" + ssl
        // Initialised once per server (scale \(workers): 1.6 million accounts), reused by later runs.
        let initialised = (try? shell("/usr/lib/postgresql/15/bin/psql", [database, "-Atc", "SELECT count(*) FROM pgbench_branches"], environment))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == "\(workers)"
        if !initialised { _ = try shell(binary, ["-i", "-q", "-s", "\(workers)", database], environment) }
        // Under timeout(1) with SIGKILL as well: a pgbench that cannot see its own alarm must not outlive the benchmark.
        let limit = ["--signal=KILL", "\(seconds + 120)", binary]
        let tpcb = try shell("/usr/bin/timeout", limit + ["-n", "-b", "tpcb-like", "-c", "\(workers)", "-j", "2", "-T", "\(seconds)", database], environment)
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-one-row-\(UUID().uuidString).sql")
        try "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1;\n".write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let oneRow = try shell("/usr/bin/timeout", limit + ["-n", "-f", script.path, "-c", "\(workers)", "-j", "2", "-T", "\(seconds)", database], environment)
        return (try Self.tps(tpcb), try Self.tps(oneRow))
    }

    static func tps(_ output: String) throws -> Double {
        // "tps = 1234.567890 (without initial connection time)"
        for line in output.split(separator: "\n") where line.hasPrefix("tps = ") {
            if let value = Double(line.dropFirst(6).prefix { $0 != " " }) { return value }
        }
        throw SettlementError(.storage, "pgbench printed no tps line: \(output.suffix(300))")
    }

    private func shell(_ path: String, _ arguments: [String], _ environment: [String: String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw SettlementError(.storage, "\(URL(fileURLWithPath: path).lastPathComponent) failed: \(text.suffix(300))") }
        return text
    }

    private func progress(_ text: String) { printError(text) }
}
