import Foundation
import PropertyBased
import Tariff
import Testing

/// No catalog text, however malformed, may crash the compiler: it answers with diagnostics.
@Suite("Robustness")
struct RobustnessTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var samplePlans: [String] {
        let plans = root.appendingPathComponent("plans")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: plans.path)) ?? []
        return names.sorted().compactMap { try? String(contentsOf: plans.appendingPathComponent($0), encoding: .utf8) }
    }

    static let rules = (try? String(contentsOf: root.appendingPathComponent("rules/metering.yaml"), encoding: .utf8)) ?? ""

    @Test("deep nesting is a diagnostic, not a stack overflow")
    func deepNesting() {
        for text in [String(repeating: "[", count: 200_000), "plan: " + String(repeating: "{a: ", count: 100_000), String(repeating: "- ", count: 50_000) + "x"] {
            let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/deep.yaml", text: text, kind: .plan)])
            #expect(compilation.errorCount > 0)
        }
    }

    @Test("property: mutated and truncated plan files never trap")
    func mutations() async {
        let plans = Self.samplePlans
        guard !plans.isEmpty else { Issue.record("no sample plans"); return }
        let alphabet = Array(" \n\t:-[]{}#&*!|>'\"%.,0123456789eE_abcxyz\u{00e9}\u{1F600}")
        await propertyCheck(count: 300, input: Gen.int(in: 0...(plans.count - 1)), Gen.int(in: 0...10_000), Gen.int(in: 0...(alphabet.count - 1)),
                            Gen.int(in: 0...2)) { planIndex, position, character, operation in
            var text = Array(plans[planIndex])
            let index = position % max(1, text.count)
            switch operation {
            case 0: text.insert(alphabet[character], at: index)
            case 1: if !text.isEmpty { text.remove(at: index) }
            default: text = Array(text.prefix(index))
            }
            let compilation = CatalogLoader.compile(sources: [
                CatalogSource(path: "plans/p.yaml", text: String(text), kind: .plan),
                CatalogSource(path: "rules/metering.yaml", text: Self.rules, kind: .rules),
            ])
            // Either it compiles or it says why, at a real position.
            if compilation.catalog == nil {
                #expect(compilation.errorCount > 0)
                for diagnostic in compilation.diagnostics { #expect(diagnostic.location.line >= 1 && diagnostic.location.column >= 1) }
            }
        }
    }
}

@Suite("Robustness of the pricing API")
struct PricingAPIRobustnessTests {
    @Test("a handle from another catalog, a stray meter index and a negative period state never trap")
    func misuse() throws {
        let small = try #require(TestCatalog.compile(["p.yaml": TestCatalog.plan("p", model: "per_call", "  fee: 0.02")]))
        let large = try #require(TestCatalog.compile([
            "a.yaml": TestCatalog.plan("a", agent: "agt_a", model: "per_call", "  fee: 0.01"),
            "b.yaml": TestCatalog.plan("b", agent: "agt_b", model: "per_call", "  fee: 0.01"),
            "c.yaml": TestCatalog.plan("c", agent: "agt_c", model: "subscription", "  period: month\n  fee: 1\n  allowance: 10\n  overage: 0.5"),
        ]))
        let foreign = try #require(large.plan(id: "p", version: 1) ?? large.plan(id: "c", version: 1))
        var meters = MeterReadings()
        meters[MeterIndex(rawValue: 99)] = MeterValue(micros: 5)
        meters[MeterIndex(rawValue: -1)] = MeterValue(micros: 5)
        #expect(meters[MeterIndex(rawValue: 99)] == .zero)
        let stray = small.price(foreign, ExecutionInput(meters: meters), state: .empty)
        #expect(stray.refusal == .noPlan)
        #expect(small.explain(foreign, ExecutionInput(meters: meters), state: .empty).result.refusal == .noPlan)
        // A negative period state reads as zero: 1 CU beyond a 10 CU allowance is not charged.
        let subscription = try #require(large.plan(id: "c", version: 1))
        let negative = PeriodState(usedComputeUnits: ComputeUnits(millis: Int64.min), usageCharges: Money(micros: Int64.min))
        let result = large.price(subscription, ExecutionInput(meters: TestCatalog.meters(large, ["cpu_ms": 1000])), state: negative)
        #expect(result.charge == .zero)
    }
}

/// A third-party model that lowers to too many pricing steps.
private struct ManyStepsModel: BillingModelPlugin {
    let name = "many_steps"
    func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        guard let fee = section.required("fee", .money) else { return nil }
        let steps = (0..<25).map { _ in RuleNode(rule: "fee", operation: .perExecutionFee(fee.value), location: fee.keyLocation, plugin: name) }
        return ModelLowering(period: nil, billFailed: false, executionNodes: steps)
    }
}

@Suite("Execution node limit")
struct ExecutionNodeLimitTests {
    @Test("a plan never has more pricing steps than an execution has inline lines")
    func limit() {
        #expect(ChargeLines.capacity == CatalogLimits.maximumExecutionNodes)
        var registry = ShippedPlugins.registry
        registry.register(model: ManyStepsModel())
        let plan = "plan: p\nagent: agt_p\ncreator: acct_p\ncurrency: USD\nmodel: many_steps\nmany_steps:\n  fee: 0.01\n"
        let compilation = CatalogLoader.compile(sources: [
            CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
            CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules),
        ], plugins: registry)
        #expect(compilation.catalog == nil)
        #expect(compilation.diagnostics.map { "\($0.code) \($0.location.line):\($0.location.column)" } == ["limit-exceeded 5:1"])
    }
}
