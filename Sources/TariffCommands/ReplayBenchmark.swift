import Foundation
import Tariff
import TariffSimulation
import TariffSQLite

/// `tariff bench replay` (performance.md): `tariff ledger replay` of a delivery-order trace (each
/// line at its `ended_at` plus 0-3 s) into the durable SQLite ledger, in a child process: events
/// per second, peak memory at two sizes (it must not follow the trace), and `verify` after each.
struct ReplayBenchmark {
    var seed: UInt64
    /// Events of the smaller trace; the larger has twice as many.
    var events: Int

    func run() throws -> BenchmarkResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-bench-replay-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let plans = directory.appendingPathComponent("plans"), rules = directory.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: plans, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
        for (name, text) in Workload.rulesFiles { try text.write(to: rules.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        for agent in 0..<200 {
            for (name, text) in SimulateBenchmark.plans(agent) {
                try text.write(to: plans.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
        }
        let catalog = try CatalogOptions.load(plans: plans.path, rules: rules.path)
        guard let delivery = SimulateBenchmark.orders.first(where: { $0.name == "simulate-delivery" }) else { throw InputError("no delivery order") }
        var runs: [(events: Int, seconds: Double, megabytes: Int, verified: Bool)] = []
        for size in [events, 2 * events] {
            let trace = directory.appendingPathComponent("trace-\(size).jsonl")
            try SimulateBenchmark.write(trace: trace, events: size, catalog: catalog, seed: seed, order: delivery)
            let ledger = "sqlite:" + directory.appendingPathComponent("ledger-\(size).sqlite").path
            let (seconds, kilobytes) = try SimulateBenchmark.spawn(["ledger", "replay", "--ledger", ledger, "--plans", plans.path, "--rules", rules.path,
                                                                    "--usage", trace.path, "--currency", "USD", "--format", "json"])
            let verified = (try? SimulateBenchmark.spawn(["ledger", "verify", "--ledger", ledger])) != nil
            runs.append((size, seconds, kilobytes / 1024, verified))
        }
        let rate = runs.first.map { Double($0.events) / $0.seconds } ?? 0
        let verified = runs.allSatisfy(\.verified)
        let memory = runs.map { "\($0.megabytes) MiB at \($0.events)" }.joined(separator: ", ")
        // Flat: twice the events may add no more than the SQLite writer's page cache can still
        // fill (16 MiB, its bound), nothing per event.
        let growth = (runs.last?.megabytes ?? 0) - (runs.first?.megabytes ?? 0)
        let flat = growth <= SQLiteBackend.writerCacheKibibytes / 1_024
        var result = BenchmarkResult(
            name: "replay", unit: "events/s", value: Int(rate), target: 20_000, higherIsBetter: true, allocationsPerExecution: nil,
            workload: "tariff ledger replay (child process) of a generated delivery-order trace (ended_at + 0-3 s; 10,000 consumers, 200 agents, 30 days) into a new SQLite ledger (WAL, synchronous=FULL): \(events) events, then \(2 * events) (\(Int(Double(runs.last?.events ?? 0) / (runs.last?.seconds ?? 1))) events/s); peak memory \(memory) (\(flat ? "flat" : "NOT flat"): at most \(SQLiteBackend.writerCacheKibibytes / 1_024) MiB more at twice the events); verify \(verified ? "passed" : "FAILED") after each",
            extraRequirementMet: verified && flat)
        result.extraShortfall = verified ? "peak memory grew \(growth) MiB at twice the events" : "verify failed after the replay"
        result.extra = runs.map { ("peak_memory_mib_\($0.events)", JSON.integer(Int64($0.megabytes))) }
        return result
    }
}
