import ArgumentParser
import CAllocationCounter
import Foundation
import Tariff

/// `tariff bench [NAME ...]`: generates its own workload from a seed, runs each benchmark and
/// prints a table or JSON (performance.md). Figures are medians of the repetitions.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run Tariff's benchmarks (price, price-explain, price-wasm, compile, simulate, replay, ledger-sqlite) on a generated workload.",
        discussion: "Build with -c release for meaningful figures. Compare ratios measured in one run, not absolute numbers across runs."
    )

    static let available = ["price", "price-explain", "price-wasm", "compile", "simulate", "replay", "ledger-sqlite", "ledger-postgres", "serve"]

    @OptionGroup var catalog: CatalogOptions

    @Argument(help: "Benchmarks to run: price, price-explain, price-wasm, compile, simulate, replay, ledger-sqlite (default: all).")
    var names: [String] = []

    @Option(help: "Executions per repetition of the price benchmark.")
    var executions: Int = 1_000_000

    @Option(help: "Lifecycles per repetition of the ledger-sqlite benchmark.")
    var lifecycles: Int = 100_000

    @Option(help: "Repetitions (the median is reported).")
    var repetitions: Int = 5

    @Option(help: "Seed of the generated workload.")
    var seed: UInt64 = 42

    @Option(help: "ledger-postgres: the server (default: $TARIFF_TEST_POSTGRES_URL); a new schema is made for each run.")
    var postgres: String?

    @Option(help: "serve: client connections (keep-alive).")
    var connections: Int = 64

    @Option(help: "ledger-postgres and serve: seconds each measurement runs.")
    var seconds: Int = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        for name in names where !Self.available.contains(name) {
            throw ValidationError("unknown benchmark '\(name)'; available: \(Self.available.joined(separator: ", "))")
        }
        if executions < 1 || executions > 50_000_000 { throw ValidationError("--executions must be 1...50000000") }
        if lifecycles < 1 || lifecycles > 10_000_000 { throw ValidationError("--lifecycles must be 1...10000000") }
        if repetitions < 1 || repetitions > 100 { throw ValidationError("--repetitions must be 1...100") }
        if connections < 1 || connections > 1_024 { throw ValidationError("--connections must be 1...1024") }
        if seconds < 1 || seconds > 600 { throw ValidationError("--seconds must be 1...600") }
    }

    func run() throws {
        // ledger-postgres needs a server: part of "all" only when one is named.
        let postgresURL = postgres ?? ProcessInfo.processInfo.environment["TARIFF_TEST_POSTGRES_URL"]
        // serve starts a server and a load generator: only when named.
        let selected = names.isEmpty ? Self.available.filter { ($0 != "ledger-postgres" || postgresURL != nil) && $0 != "serve" } : names
        var results: [BenchmarkResult] = []
        try stopping {
            let catalog = try self.catalog.load()
            for name in selected {
                switch name {
                case "price": results.append(try pricing(catalog, explain: false))
                case "price-explain": results.append(try pricing(catalog, explain: true))
                case "price-wasm": results.append(try WasmBenchmark(executions: max(1, executions / 5), repetitions: repetitions, seed: seed).run())
                case "simulate": results.append(contentsOf: try SimulateBenchmark(seed: seed, repetitions: min(repetitions, 3)).run())
                case "replay": results.append(try ReplayBenchmark(seed: seed, events: 50_000).run())
                case "ledger-sqlite": results.append(try LedgerBench.sqlite(catalog, lifecycles: lifecycles, repetitions: repetitions, seed: seed))
                case "ledger-postgres":
                    guard let postgresURL else { throw ValidationError("ledger-postgres needs --postgres URL (or TARIFF_TEST_POSTGRES_URL)") }
                    results += try PostgresLedgerBench(url: postgresURL, seconds: seconds).run(catalog: catalog)
                case "serve":
                    results += try ServeBench.run(catalog, plans: self.catalog.plans, rules: self.catalog.rules, connections: connections, seconds: seconds,
                                                  ledgerLifecycles: lifecycles)
                default: results.append(try compiling())
                }
            }
        }
        switch format {
        case .json:
            print(JSON.object([
                ("machine", .string(Self.machine)), ("build", .string(Self.build)),
                ("benchmarks", .array(results.map(\.json))),
            ]).rendered)
        case .text:
            var rows = [["benchmark", "value", "unit", "target", "met", "allocations/execution", "workload"]]
            for result in results {
                rows.append([result.name, String(result.value), result.unit, result.targetText, result.met ? "yes" : "NO (\(result.shortfall))",
                             result.allocationsPerExecution.map { String(format: "%.4f", $0) } ?? "-", result.workload])
            }
            print("machine: \(Self.machine), build: \(Self.build)")
            print(table(rows))
        }
    }

    // MARK: Benchmarks

    private func pricing(_ catalog: CompiledCatalog, explain: Bool) throws -> BenchmarkResult {
        let count = explain ? max(1, executions / 5) : executions
        let items = try Workload.executions(catalog, count: count, seed: seed)
        var results = [BatchResult](repeating: BatchResult(), count: count)
        let measured = Self.measure(items, repetitions: repetitions) { items in
            if explain {
                var checksum: Int64 = 0
                for item in items {
                    let explained = catalog.explain(item.plan, item.execution, state: item.state)
                    checksum &+= explained.result.charge.micros &+ Int64(explained.explanation.steps.count)
                }
                blackHole(checksum)
            } else {
                Self.priceBatch(catalog, items, into: &results)
            }
        }
        blackHole(results.reduce(Int64(0)) { $0 &+ $1.charge.micros })
        return BenchmarkResult(
            name: explain ? "price-explain" : "price", unit: "executions/s", value: measured.rate, target: explain ? 200_000 : 5_000_000,
            higherIsBetter: true, allocationsPerExecution: measured.allocationsPerExecution,
            workload: "\(count) executions (per_call, subscription, enterprise mix, seed \(seed)), 1 warm-up, \(repetitions) repetitions, one core",
            extraRequirementMet: explain || measured.allocationsPerExecution == 0)
    }

    /// Prices `items` through the batch API into `results` (made once, outside the measured runs).
    static func priceBatch(_ catalog: CompiledCatalog, _ items: [BatchItem], into results: inout [BatchResult]) {
        items.withUnsafeBufferPointer { input in
            results.withUnsafeMutableBufferPointer { output in catalog.price(batch: input, into: output) }
        }
    }

    /// Runs `body` over `items` once to warm up, then `repetitions` times: the median rate
    /// (executions per second) and the heap allocations per execution while it ran.
    static func measure(_ items: [BatchItem], repetitions: Int, _ body: ([BatchItem]) -> Void) -> (rate: Int, allocationsPerExecution: Double) {
        var rates: [Double] = []
        var allocations: UInt64 = 0
        // Counted only while these loops run (the counter costs every allocation of the process).
        tariff_allocation_counting(1)
        defer { tariff_allocation_counting(0) }
        for repetition in 0...repetitions {
            let allocationsBefore = tariff_allocation_count()
            let start = ContinuousClock.now
            body(items)
            let elapsed = ContinuousClock.now - start
            let allocationsDuring = tariff_allocation_count() - allocationsBefore
            guard repetition > 0 else { continue }
            allocations += allocationsDuring
            rates.append(Double(items.count) / seconds(elapsed))
        }
        return (Int(median(rates)), Double(allocations) / Double(max(1, items.count * repetitions)))
    }

    private func compiling() throws -> BenchmarkResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-bench-\(ProcessInfo.processInfo.processIdentifier)")
        let plans = directory.appendingPathComponent("plans"), rules = directory.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: plans, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text) in Workload.rulesFiles { try text.write(to: rules.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        for index in 0..<1_000 {
            try Workload.planFile(index: index, seed: seed).write(to: plans.appendingPathComponent(String(format: "plan-%04d.yaml", index)), atomically: true, encoding: .utf8)
        }
        var durations: [Double] = []
        for repetition in 0...repetitions {
            let start = ContinuousClock.now
            let compilation = CatalogLoader.compile(plansDirectory: plans.path, rulesDirectory: rules.path)
            let elapsed = Self.seconds(ContinuousClock.now - start)
            guard compilation.catalog != nil, compilation.planFiles == 1_000 else {
                throw InputError("the generated catalog did not compile: \(compilation.diagnostics.first?.description ?? "?")")
            }
            if repetition > 0 { durations.append(elapsed) }
        }
        let milliseconds = Int(Self.median(durations) * 1000)
        return BenchmarkResult(name: "compile", unit: "ms", value: milliseconds, target: 1_000, higherIsBetter: false, allocationsPerExecution: nil,
                               workload: "1000 generated plan files (all three models, tiers, rules) read from disk, compiled and checked; 1 warm-up, \(repetitions) repetitions",
                               extraRequirementMet: true)
    }

    // MARK: Helpers

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static var build: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }

    static var machine: String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}

/// Keeps a value alive so the optimiser cannot drop the work that produced it.
@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

struct BenchmarkResult {
    var name: String
    var unit: String
    var value: Int
    var target: Int
    var higherIsBetter: Bool
    var allocationsPerExecution: Double?
    var workload: String
    var extraRequirementMet: Bool
    /// Extra figures (peak memory of runs of different sizes).
    var extra: [(String, JSON)] = []
    /// What falls short when `extraRequirementMet` is false.
    var extraShortfall = "allocates on the hot path"

    var met: Bool { (higherIsBetter ? value >= target : value <= target) && extraRequirementMet }
    var targetText: String { (higherIsBetter ? ">= " : "<= ") + String(target) }
    var shortfall: String {
        if !extraRequirementMet { return extraShortfall }
        let ratio = higherIsBetter ? Double(value) / Double(target) : Double(target) / Double(max(value, 1))
        return String(format: "%.0f%% of target", ratio * 100)
    }

    var json: JSON {
        var fields: [(String, JSON)] = [
            ("name", .string(name)), ("unit", .string(unit)), ("value", .integer(Int64(value))), ("target", .integer(Int64(target))),
            ("met", .bool(met)),
        ]
        if let allocationsPerExecution {
            // A count per execution: 0 when nothing allocates, else a ratio (not money: a float is fine here).
            fields.append(("allocations_per_execution", allocationsPerExecution == 0 ? .integer(0) : .number(String(format: "%.4f", allocationsPerExecution))))
        }
        fields.append(("workload", .string(workload)))
        fields += extra
        return .object(fields)
    }
}
