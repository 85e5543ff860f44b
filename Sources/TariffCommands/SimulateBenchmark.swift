import Foundation
import Tariff
import TariffSimulation

/// `tariff bench simulate` (performance.md): `tariff simulate` end to end, in a child process,
/// on a generated 1,000,000-event trace (10,000 consumers, 200 agents, 30 days), then on 4,000,000
/// events to show that peak memory does not follow the trace's size.
struct SimulateBenchmark {
    var seed: UInt64
    var repetitions: Int

    func run() throws -> BenchmarkResult {
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
        var rates: [Double] = []
        var memory: [(events: Int, megabytes: Int, seconds: Double)] = []
        for events in [1_000_000, 4_000_000] {
            let trace = directory.appendingPathComponent("trace-\(events).jsonl")
            try Self.write(trace: trace, events: events, catalog: catalog, seed: seed)
            let runs = events == 1_000_000 ? repetitions : 1
            for _ in 0..<runs {
                let (seconds, kilobytes) = try Self.simulate(plans: plans.path, rules: rules.path, trace: trace.path)
                if events == 1_000_000 { rates.append(Double(events) / seconds) }
                memory.append((events, kilobytes / 1024, seconds))
            }
            try? FileManager.default.removeItem(at: trace)
        }
        let peak1M = memory.filter { $0.events == 1_000_000 }.map(\.megabytes).max() ?? 0
        let peak4M = memory.filter { $0.events == 4_000_000 }.map(\.megabytes).max() ?? 0
        let seconds4M = memory.first { $0.events == 4_000_000 }?.seconds ?? 0
        var result = BenchmarkResult(
            name: "simulate", unit: "events/s", value: Int(BenchCommand.median(rates)), target: 1_000_000, higherIsBetter: true,
            allocationsPerExecution: nil,
            workload: "tariff simulate end to end (child process, JSON output) on a generated trace: 1,000,000 events, 10,000 consumers, 200 agents, 30 days; \(repetitions) runs, median; then 4,000,000 events once. Peak memory: \(peak1M) MiB at 1M, \(peak4M) MiB at 4M (\(String(format: "%.1f", seconds4M)) s)",
            extraRequirementMet: true)
        result.extra = [("peak_memory_mib_1m", .integer(Int64(peak1M))), ("peak_memory_mib_4m", .integer(Int64(peak4M)))]
        return result
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

    static func write(trace: URL, events: Int, catalog: CompiledCatalog, seed: UInt64) throws {
        // Through the checked writer: a full temporary disk is an error, not a trap (issue 12).
        let writer: OutputWriter
        do throws(OutputError) { writer = try OutputWriter(path: trace.path) } catch { throw InputError(error.description) }
        let start = Timestamp(dateOrTimestamp: "2026-11-02") ?? Timestamp(nanosecondsSinceEpoch: 0)
        var failure: OutputError?
        _ = try TraceGenerator(events: events, consumers: 10_000, days: 30, start: start, seed: seed).generate(for: catalog) { chunk in
            guard failure == nil else { return }
            do throws(OutputError) { try writer.write(chunk) } catch { failure = error }
        }
        do throws(OutputError) {
            if let failure { throw failure }
            try writer.commit()
        } catch { throw InputError(error.description) }
    }

    /// Runs `tariff simulate` as a child process; returns its wall time and peak resident memory.
    static func simulate(plans: String, rules: String, trace: String) throws -> (seconds: Double, kilobytes: Int) {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).path
        let arguments = [executable, "simulate", "--plans", plans, "--rules", rules, "--usage", trace, "--format", "json"]
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
        guard status == 0 else { throw InputError("tariff simulate failed in the benchmark (status \(status))") }
        return (seconds, peakKilobytes)
    }
}
