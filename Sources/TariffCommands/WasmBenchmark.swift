import Foundation
import Tariff

/// `tariff bench price-wasm`: the batch API pricing a subscription plan with one WebAssembly rule
/// (the loyalty_discount of examples/wasm, written here with its declaration into a temporary
/// catalog), so any `tariff` measures it without the repository.
struct WasmBenchmark {
    var executions: Int
    var repetitions: Int
    var seed: UInt64

    static let module = """
        (module
          (memory (export "memory") 1 1)
          (func (export "tariff_rule_v1") (param $ptr i32) (param $count i32) (result i64)
            (local $charge i64)
            (local $percent i64)
            (if (i32.ne (local.get $count) (i32.const 10)) (then (return (i64.const -2))))
            (local.set $charge (i64.load (local.get $ptr)))
            (if (i64.lt_s (i64.load offset=40 (local.get $ptr)) (i64.load offset=72 (local.get $ptr))) (then (return (local.get $charge))))
            (if (i64.lt_s (i64.load offset=56 (local.get $ptr)) (i64.const 1000000)) (then (return (local.get $charge))))
            (local.set $percent (i64.load offset=64 (local.get $ptr)))
            (i64.sub (local.get $charge)
              (i64.add (i64.mul (i64.div_u (local.get $charge) (i64.const 1000000)) (local.get $percent))
                       (i64.div_u (i64.mul (i64.rem_u (local.get $charge) (i64.const 1000000)) (local.get $percent)) (i64.const 1000000))))))
        """

    static let plugins = """
        plugins:
          - kind: loyalty_discount
            wasm: loyalty.wat
            period: true
            meters: [inference_calls]
            options: { percent: percent, after_executions: integer }
        """

    static let plan = """
        plan: loyal
        agent: agt_loyal
        creator: acct_loyal
        currency: USD
        model: subscription
        subscription: { period: month, fee: 10.00, allowance: 1000, overage: 0.01 }
        rules:
          - kind: loyalty_discount
            percent: 20%
            after_executions: 100
        """

    func run() throws -> BenchmarkResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-bench-wasm-\(ProcessInfo.processInfo.processIdentifier)")
        let plans = directory.appendingPathComponent("plans"), rules = directory.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: plans, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text) in Workload.rulesFiles { try text.write(to: rules.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try Self.plugins.write(to: rules.appendingPathComponent("plugins.yaml"), atomically: true, encoding: .utf8)
        try Self.module.write(to: rules.appendingPathComponent("loyalty.wat"), atomically: true, encoding: .utf8)
        try Self.plan.write(to: plans.appendingPathComponent("loyal.yaml"), atomically: true, encoding: .utf8)
        let compilation = CatalogLoader.compile(plansDirectory: plans.path, rulesDirectory: rules.path)
        guard let catalog = compilation.catalog, let handle = catalog.plan(id: "loyal", version: 1),
              let cpu = catalog.meter(named: "cpu_ms"), let calls = catalog.meter(named: "inference_calls") else {
            throw InputError("the price-wasm catalog did not compile: \(compilation.diagnostics.first?.description ?? "?")")
        }
        // Readings and period states from a seeded generator: about half the executions are past
        // the 100th of their period, and most make inference calls, so both branches run.
        var random = SplitMix(seed: seed)
        var items: [BatchItem] = []
        items.reserveCapacity(executions)
        for _ in 0..<executions {
            var readings = MeterReadings()
            readings[cpu] = MeterValue(micros: Int64(random.next() % 5_000) * 1_000_000)
            readings[calls] = MeterValue(micros: Int64(random.next() % 4) * 1_000_000)
            let state = PeriodState(usedComputeUnits: ComputeUnits(millis: Int64(random.next() % 2_000_000)), executions: Int64(random.next() % 200))
            items.append(BatchItem(plan: handle, execution: ExecutionInput(meters: readings), state: state))
        }
        var results = [BatchResult](repeating: BatchResult(), count: executions)
        let measured = BenchCommand.measure(items, repetitions: repetitions) { BenchCommand.priceBatch(catalog, $0, into: &results) }
        blackHole(results.reduce(Int64(0)) { $0 &+ $1.charge.micros })
        let failures = catalog.externalRuleFailures().reduce(0) { $0 + $1.count }
        guard failures == 0 else { throw InputError("the benchmark's WebAssembly rule failed \(failures) time(s)") }
        return BenchmarkResult(
            name: "price-wasm", unit: "executions/s", value: measured.rate, target: 500_000, higherIsBetter: true,
            allocationsPerExecution: measured.allocationsPerExecution,
            workload: "\(executions) executions of a subscription plan with one WebAssembly rule (loyalty_discount, WasmKit's interpreter, fuel metered), seed \(seed), 1 warm-up, \(repetitions) repetitions, one core",
            extraRequirementMet: true)
    }
}

/// A small seeded generator (SplitMix64): the same workload for the same seed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
