import Foundation
import Tariff
import TariffSimulation

/// `tariff bench simulate` (performance.md): `tariff simulate` end to end, in a child process,
/// on generated traces (10,000 consumers, 200 agents, 30 days) written four ways: sorted; in
/// delivery order (each line at its `ended_at` plus a random 0-3 s); delivery order with 1% of the
/// events up to 2 days late; shuffled. 1,000,000 events (`repetitions` runs, median), then
/// 4,000,000 (one run): throughput, and peak memory, which must not follow the trace's size.
struct SimulateBenchmark {
    var seed: UInt64
    var repetitions: Int
    /// 1,000,000 and 4,000,000 in `tariff bench`; smaller in tests.
    var sizes = [1_000_000, 4_000_000]

    /// A way of writing the trace, with its throughput target (performance.md).
    struct Order: Sendable {
        var name: String
        var description: String
        var target: Int
        var configure: @Sendable (inout TraceGenerator) -> Void
    }

    static let orders: [Order] = [
        Order(name: "simulate", description: "sorted", target: 1_000_000) { _ in },
        Order(name: "simulate-delivery", description: "delivery order (ended_at + 0-3 s)", target: 1_000_000) {
            $0.deliveryDelayNanoseconds = 3_000_000_000
        },
        Order(name: "simulate-late", description: "delivery order, 1% of events up to 2 days late", target: 700_000) {
            $0.deliveryDelayNanoseconds = 3_000_000_000
            $0.lateMillionths = 10_000
            $0.lateMaxNanoseconds = 2 * 86_400 * 1_000_000_000
        },
        Order(name: "simulate-shuffled", description: "shuffled", target: 400_000) { $0.shuffle = true },
    ]

    /// Peak memory every run must stay under (performance.md).
    static let memoryLimitMebibytes = 128

    func run() throws -> [BenchmarkResult] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-bench-simulate-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let plans = directory.appendingPathComponent("plans"), rules = directory.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: plans, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
        for (name, text) in Workload.rulesFiles { try text.write(to: rules.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        // 200 agents: each has a default per-call plan; one in four also a subscription, one in ten an enterprise plan.
        for agent in 0..<200 {
            for (name, text) in Self.plans(agent) {
                try text.write(to: plans.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
        }
        let catalog = try CatalogOptions.load(plans: plans.path, rules: rules.path)
        var results: [BenchmarkResult] = []
        for order in Self.orders {
            var rates: [Double] = []
            var runs: [(events: Int, megabytes: Int, seconds: Double)] = []
            for events in sizes {
                let trace = directory.appendingPathComponent("trace-\(order.name)-\(events).jsonl")
                try Self.write(trace: trace, events: events, catalog: catalog, seed: seed, order: order)
                let count = events == sizes.first ? repetitions : 1
                for _ in 0..<count {
                    let (seconds, kilobytes) = try Self.simulate(plans: plans.path, rules: rules.path, trace: trace.path)
                    if events == sizes.first { rates.append(Double(events) / seconds) }
                    runs.append((events, kilobytes / 1024, seconds))
                }
                try? FileManager.default.removeItem(at: trace)
            }
            let small = sizes.first ?? 0, large = sizes.last ?? 0
            let peakSmall = runs.filter { $0.events == small }.map(\.megabytes).max() ?? 0
            let peakLarge = runs.filter { $0.events == large }.map(\.megabytes).max() ?? 0
            let secondsLarge = runs.first { $0.events == large }?.seconds ?? 0
            let rateLarge = secondsLarge > 0 ? Int(Double(large) / secondsLarge) : 0
            let withinMemory = max(peakSmall, peakLarge) <= Self.memoryLimitMebibytes
            var result = BenchmarkResult(
                name: order.name, unit: "events/s", value: Int(BenchCommand.median(rates)), target: order.target, higherIsBetter: true,
                allocationsPerExecution: nil,
                workload: "tariff simulate end to end (child process, JSON output) on a generated trace, \(order.description): \(small) events, 10,000 consumers, 200 agents, 30 days; \(repetitions) runs, median; then \(large) events once (\(rateLarge) events/s). Peak memory: \(peakSmall) MiB at \(small), \(peakLarge) MiB at \(large) (limit \(Self.memoryLimitMebibytes) MiB)",
                extraRequirementMet: withinMemory)
            result.extraShortfall = "peak memory \(max(peakSmall, peakLarge)) MiB, over \(Self.memoryLimitMebibytes) MiB"
            result.extra = [("peak_memory_mib_1m", .integer(Int64(peakSmall))), ("peak_memory_mib_4m", .integer(Int64(peakLarge))),
                            ("events_per_second_4m", .integer(Int64(rateLarge)))]
            results.append(result)
        }
        return results
    }

    static func plans(_ agent: Int) -> [(String, String)] {
        let header = "agent: agt_\(agent)\ncreator: acct_creator_\(agent % 40)\ncurrency: USD\n"
        var files = [("payg-\(agent).yaml", "plan: payg-\(agent)\n" + header + "model: per_call\nper_call:\n  fee: 0.0\(agent % 9 + 1)\n")]
        if agent % 4 == 0 {
            files.append(("pro-\(agent).yaml", "plan: pro-\(agent)\n" + header
                + "model: subscription\nsubscription: { period: month, fee: 49.00, allowance: 10000, overage: 0.005 }\n"))
        }
        if agent % 10 == 0 {
            files.append(("ent-\(agent).yaml", "plan: ent-\(agent)\n" + header + """
                model: enterprise
                enterprise:
                  period: month
                  fee: 2000.00
                  usage: [{ up_to: 500000, price: 0 }, { price: 0.004 }]
                  discount: 10%
                  commitment: 5000.00
                  guardrails: { max_cost_per_execution: 5.00, spend_cap: 20000.00 }

                """))
        }
        return files
    }

    static func write(trace: URL, events: Int, catalog: CompiledCatalog, seed: UInt64, order: Order) throws {
        // Through the checked writer: a full temporary disk is an error, not a trap (issue 12).
        let writer: OutputWriter
        do throws(OutputError) { writer = try OutputWriter(path: trace.path) } catch { throw InputError(error.description) }
        let start = Timestamp(dateOrTimestamp: "2026-11-02") ?? Timestamp(nanosecondsSinceEpoch: 0)
        var failure: OutputError?
        var generator = TraceGenerator(events: events, consumers: 10_000, days: 30, start: start, seed: seed)
        order.configure(&generator)
        do throws(SimulationError) {
            _ = try generator.generate(for: catalog) { chunk in
                guard failure == nil else { return }
                do throws(OutputError) { try writer.write(chunk) } catch { failure = error }
            }
        } catch { throw InputError(error.description) }
        do throws(OutputError) {
            if let failure { throw failure }
            try writer.commit()
        } catch { throw InputError(error.description) }
    }

    /// Runs `tariff simulate` as a child process; returns its wall time and peak resident memory.
    static func simulate(plans: String, rules: String, trace: String) throws -> (seconds: Double, kilobytes: Int) {
        try spawn(["simulate", "--plans", plans, "--rules", rules, "--usage", trace, "--format", "json"])
    }

    /// Runs this `tariff` executable with `tail` as a child process (standard output to /dev/null);
    /// returns its wall time and peak resident memory.
    static func spawn(_ tail: [String]) throws -> (seconds: Double, kilobytes: Int) {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).path
        let arguments = [executable] + tail
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let start = ContinuousClock.now
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw InputError("cannot run \(executable): error \(spawned)") }
        // Peak memory is read from the child's own /proc status (VmHWM, its high-water mark),
        // polled until it exits: wait4's ru_maxrss would count the benchmark process itself,
        // since a spawned child's accounting starts from its parent's memory.
        var status: Int32 = 0
        var peakKilobytes = 0
        while true {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kilobytes = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") {
                peakKilobytes = max(peakKilobytes, kilobytes)
            }
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid || done < 0 { break }
            usleep(2_000)
        }
        let seconds = BenchCommand.seconds(ContinuousClock.now - start)
        guard status == 0 else { throw InputError("tariff \(tail.first ?? "") failed in the benchmark (status \(status))") }
        return (seconds, peakKilobytes)
    }
}
