import Foundation
import Tariff
import TariffReplay
import TariffSettlement
import TariffSettlementTesting
import TariffSimulation
import Testing

/// The example WebAssembly rule kind (examples/wasm: loyalty_discount, 20% off an execution with
/// an inference call once 100 executions ran in the period) priced identically by quote, the plan
/// tests, simulate and the ledger replay, on every backend.
@Suite("WebAssembly rule through every pricing path")
struct WasmPricingAgreementTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func catalog() throws -> CompiledCatalog {
        let folder = root.appendingPathComponent("examples/wasm")
        let compilation = CatalogLoader.compile(plansDirectory: folder.appendingPathComponent("plans").path,
                                                rulesDirectory: folder.appendingPathComponent("rules").path)
        return try #require(compilation.catalog, "\(compilation.diagnostics)")
    }

    /// 102 executions of 2,000 ms of CPU and one inference call (2.5 CU at 0.01 = 0.025 each); the
    /// 101st and 102nd have 100 and 101 executions before them: 20% off, 0.02 each. An unweighed
    /// meter (network_kb is weighed; none here) does not arise. Total: fee 10.00 + 100 x 0.025 +
    /// 2 x 0.02 = 12.54.
    static func trace() throws -> String {
        var lines = [#"{"type":"purchase","at":"2026-11-01T08:00:00Z","consumer":"cus_1","amount":"100.00"}"#,
                     #"{"type":"subscribe","at":"2026-11-01T09:00:00Z","consumer":"cus_1","plan":"translate-loyal"}"#]
        for index in 0..<102 {
            let minute = String(format: "%02d", index % 60), hour = String(format: "%02d", 10 + index / 60)
            lines.append(#"{"type":"execution","id":"e\#(index)","consumer":"cus_1","agent":"agt_translate_loyal","started_at":"2026-11-02T\#(hour):\#(minute):00Z","ended_at":"2026-11-02T\#(hour):\#(minute):00Z","status":"succeeded","meters":{"cpu_ms":2000,"inference_calls":1}}"#)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-trace-\(UUID().uuidString).jsonl").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("quote and the plan tests")
    func quoteAndTests() throws {
        let catalog = try Self.catalog()
        let at = try #require(Timestamp(dateOrTimestamp: "2026-11-02"))
        let meters: [(name: String, value: MeterValue)] = [("cpu_ms", MeterValue(micros: 2_000_000_000)), ("inference_calls", MeterValue(micros: 1_000_000))]
        #expect(try catalog.quote(QuoteRequest(planID: "translate-loyal", at: at, meters: meters, periodExecutions: 99)).result.charge == Money(micros: 25_000))
        #expect(try catalog.quote(QuoteRequest(planID: "translate-loyal", at: at, meters: meters, periodExecutions: 100)).result.charge == Money(micros: 20_000))
        let outcomes = PlanTestRunner.run(catalog).filter { $0.plan == "translate-loyal" }
        #expect(outcomes.count == 4)
        #expect(outcomes.allSatisfy { $0.passed })
    }

    @Test("simulate and the ledger replay charge the same 12.54", arguments: BackendFactory.all)
    func simulateAndLedger(_ factory: BackendFactory) async throws {
        let catalog = try Self.catalog()
        let trace = try Self.trace()
        let simulated = try Simulator.run(trace: trace, catalog: catalog, options: SimulationOptions())
        #expect(simulated.totals.charged == Money(micros: 12_540_000))
        #expect(simulated.priced == 102)
        #expect(simulated.warnings.isEmpty)
        let backend = try await factory.makeBackend(TestLedger.usd)
        let replayed = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: backend, options: SimulationOptions())
        #expect(replayed.simulation.totals.charged == Money(micros: 12_540_000))
        #expect(replayed.balances.first { $0.consumer == "cus_1" }?.available == Money(micros: 87_460_000))
    }

    @Test("a module that traps on every call: simulate and replay price the charge before it, say so once, and go on", arguments: BackendFactory.all)
    func failingModule(_ factory: BackendFactory) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-failing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("plans"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("rules"), withIntermediateDirectories: true)
        let examples = Self.root.appendingPathComponent("examples/wasm")
        for file in ["rules/metering.yaml", "rules/splits.yaml", "rules/plugins.yaml", "plans/translate-loyal.yaml"] {
            var text = try String(contentsOf: examples.appendingPathComponent(file), encoding: .utf8)
            // The plan's own tests expect the discount: dropped here.
            if file.hasPrefix("plans/") { text = String(text[..<text.range(of: "tests:")!.lowerBound]) }
            try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("rules/plugins"), withIntermediateDirectories: true)
        // The other module of rules/plugins.yaml, unchanged (its per-call plan is not copied).
        try FileManager.default.copyItem(at: examples.appendingPathComponent("rules/plugins/inference_minimum.wat"),
                                         to: folder.appendingPathComponent("rules/plugins/inference_minimum.wat"))
        try #"(module (memory (export "memory") 1) (func (export "tariff_rule_v1") (param i32 i32) (result i64) (unreachable)))"#
            .write(to: folder.appendingPathComponent("rules/plugins/loyalty.wat"), atomically: true, encoding: .utf8)
        let compilation = CatalogLoader.compile(plansDirectory: folder.appendingPathComponent("plans").path, rulesDirectory: folder.appendingPathComponent("rules").path)
        let catalog = try #require(compilation.catalog, "\(compilation.diagnostics)")
        let trace = try Self.trace()
        // Every execution keeps the charge before the rule: 10.00 + 102 x 0.025 = 12.55.
        let simulated = try Simulator.run(trace: trace, catalog: catalog, options: SimulationOptions())
        #expect(simulated.totals.charged == Money(micros: 12_550_000))
        #expect(simulated.warnings.map(\.message) == ["plugin 'loyalty_discount' failed 102 time(s) and was skipped for those executions (their charge is the one before it); last: it trapped: unreachable"]
                || simulated.warnings.first?.message.hasPrefix("plugin 'loyalty_discount' failed 102 time(s)") == true, "\(simulated.warnings)")
        let backend = try await factory.makeBackend(TestLedger.usd)
        let replayed = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: backend, options: SimulationOptions())
        #expect(replayed.simulation.totals.charged == Money(micros: 12_550_000))
        #expect(replayed.simulation.warnings.contains { $0.message.hasPrefix("plugin 'loyalty_discount' failed") })
    }
}
