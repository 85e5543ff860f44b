import Foundation
import Tariff
import Testing

/// The defects of issue 15, each with a test that failed before its fix. Amounts worked out by hand.
@Suite("Issue 15 defects")
struct PluginDefectTests {
    static func at(_ text: String) throws -> Timestamp { try #require(Timestamp(dateOrTimestamp: text)) }

    @Test("a surcharge or minimum_charge never exceeds max_cost_per_execution: the guardrails run after the rules")
    func guardrailsLast() throws {
        // 1 CU at 0.01 = 0.01; surcharge 1.00 per inference call (2 calls: +2.00 = 2.01); cap 0.05.
        let plan = TestCatalog.plan("e", model: "enterprise", """
          period: month
          fee: 0
          usage:
            - price: 0.01
          guardrails: { max_cost_per_execution: 0.05, spend_cap: 100 }
        """, extra: "rules:\n  - kind: surcharge\n    meter: inference_calls\n    per_unit: 1.00\n  - kind: minimum_charge\n    amount: 0.50\n")
        let catalog = try #require(TestCatalog.compile(["e.yaml": plan]))
        let handle = try #require(catalog.plan(id: "e", version: 1))
        let definition = catalog.plan(handle)
        #expect(definition.executionNodes.map(\.operation.kindName).suffix(2) == ["cap_per_execution", "spend_cap"])
        #expect(definition.phases.phase(of: definition.executionNodes.count - 1) == .guardrails)
        // cpu 0 ms, 2 inference calls = 1 CU (0.5 per call).
        let result = catalog.price(handle, ExecutionInput(meters: TestCatalog.meters(catalog, ["inference_calls": 2])), state: .empty)
        #expect(result.charge == TestCatalog.money("0.05"))
        // The minimum (0.50) alone would also exceed the cap: 0.05 still.
        let quiet = catalog.price(handle, ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1_000])), state: .empty)
        #expect(quiet.charge == TestCatalog.money("0.05"))
    }

    @Test("a cap with more than 6 decimals is never exceeded after rounding (0.0000135 bills 0.000013, not 0.000014)")
    func fineCap() throws {
        // 1 CU at 0.0000137 per CU = 0.0000137 exact, capped at 0.0000135.
        let plan = TestCatalog.plan("e", model: "enterprise", """
          period: month
          fee: 0
          usage:
            - price: 0.0000137
          guardrails: { max_cost_per_execution: 0.0000135 }
        """)
        let catalog = try #require(TestCatalog.compile(["e.yaml": plan]))
        let handle = try #require(catalog.plan(id: "e", version: 1))
        let result = catalog.price(handle, ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1_000])), state: .empty)
        #expect(result.charge == TestCatalog.money("0.000013"))
        // A spend cap finer than micro-units likewise: 0.0000205 with 0.000007 spent leaves 0.000013.
        let spend = TestCatalog.plan("s", agent: "agt_s", model: "enterprise", """
          period: month
          fee: 0
          usage:
            - price: 0.0001
          guardrails: { spend_cap: 0.0000205 }
        """)
        let second = try #require(TestCatalog.compile(["s.yaml": spend]))
        let spendHandle = try #require(second.plan(id: "s", version: 1))
        let capped = second.price(spendHandle, ExecutionInput(meters: TestCatalog.meters(second, ["cpu_ms": 1_000])),
                                  state: PeriodState(usageCharges: Money(micros: 7)))
        #expect(capped.charge == TestCatalog.money("0.000013"))
    }

    @Test("hours: {from: 0, to: 24} is the whole day; the same hour twice is still empty")
    func wholeDay() throws {
        let plan = TestCatalog.plan("p", model: "per_call", "  fee: 1.00", extra: "rules:\n  - kind: discount\n    percent: 50%\n    when: { hours: { from: 0, to: 24 } }\n")
        let catalog = try #require(TestCatalog.compile(["p.yaml": plan]))
        let handle = try #require(catalog.plan(id: "p", version: 1))
        for time in ["2026-11-30T00:00:00Z", "2026-11-30T12:30:00Z", "2026-11-30T23:59:59Z"] {
            #expect(catalog.price(handle, ExecutionInput(meters: MeterReadings(), endedAt: try Self.at(time)), state: .empty).charge == TestCatalog.money("0.50"))
        }
        let empty = TestCatalog.plan("p", model: "per_call", "  fee: 1.00", extra: "rules:\n  - kind: discount\n    percent: 50%\n    when: { hours: { from: 5, to: 5 } }\n")
        let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: empty, kind: .plan),
                                                          CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules)])
        #expect(compilation.diagnostics.map(\.code) == ["invalid-value"])
    }

    @Test("a PlanHandle of another catalog is refused, not priced as this catalog's plan with the same index")
    func foreignHandle() throws {
        let cheap = try #require(TestCatalog.compile(["a.yaml": TestCatalog.plan("a", model: "per_call", "  fee: 0.01")]))
        let dear = try #require(TestCatalog.compile(["a.yaml": TestCatalog.plan("a", model: "per_call", "  fee: 9.00")]))
        let cheapHandle = try #require(cheap.plan(id: "a", version: 1))
        #expect(!dear.contains(cheapHandle))
        let result = dear.price(cheapHandle, ExecutionInput(meters: MeterReadings()), state: .empty)
        #expect(result.refusal == .noPlan)
        #expect(result.charge == .zero)
        let batch = dear.price(batch: [BatchItem(plan: cheapHandle, execution: ExecutionInput(meters: MeterReadings()), state: .empty)])
        #expect(batch.first?.refusal == .noPlan)
        #expect(dear.periodStartLines(cheapHandle).isEmpty)
        #expect(cheap.price(cheapHandle, ExecutionInput(meters: MeterReadings()), state: .empty).charge == TestCatalog.money("0.01"))
    }

    @Test("CatalogStore.reload keeps the newest successful compile, never an older one that finished later")
    func reloadOrder() throws {
        func catalog(fee: String) throws -> CatalogCompilation {
            var sources = [CatalogSource(path: "plans/a.yaml", text: TestCatalog.plan("a", model: "per_call", "  fee: \(fee)"), kind: .plan)]
            sources.append(CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules))
            return CatalogLoader.compile(sources: sources)
        }
        let store = CatalogStore(try #require(try catalog(fee: "1.00").catalog))
        let older = try catalog(fee: "2.00"), newer = try catalog(fee: "3.00")
        let olderStarted = DispatchSemaphore(value: 0), newerDone = DispatchSemaphore(value: 0), olderDone = DispatchSemaphore(value: 0)
        // The older reload starts first and finishes last.
        Thread.detachNewThread {
            store.reload {
                olderStarted.signal()
                newerDone.wait()
                return older
            }
            olderDone.signal()
        }
        olderStarted.wait()
        store.reload { newer }
        newerDone.signal()
        olderDone.wait()
        let handle = try #require(store.catalog.plan(id: "a", version: 1))
        #expect(store.catalog.price(handle, ExecutionInput(meters: MeterReadings()), state: .empty).charge == TestCatalog.money("3.00"))
        // A later reload still replaces it.
        store.reload { older }
        let again = try #require(store.catalog.plan(id: "a", version: 1))
        #expect(store.catalog.price(again, ExecutionInput(meters: MeterReadings()), state: .empty).charge == TestCatalog.money("2.00"))
    }

    @Test("a rule reading a meter the plan's metering does not weigh does not compile (quote and simulate would disagree)")
    func ruleOnUnweighedMeter() throws {
        let rules = """
        metering:
          standard:
            weights: { cpu_ms: 0.001, inference_calls: 0.5 }
          light:
            weights: { cpu_ms: 0.001 }
        splits:
          standard: { creator: 80%, platform: 15%, processing: 5% }
        """
        let plan = TestCatalog.plan("p", model: "per_call", "  fee: 0.01", extra: "metering: light\nrules:\n  - kind: surcharge\n    meter: inference_calls\n    per_unit: 1.00\n")
        let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                                          CatalogSource(path: "rules/r.yaml", text: rules, kind: .rules)])
        #expect(compilation.catalog == nil)
        #expect(compilation.diagnostics.map(\.code) == ["unweighed-meter"])
        // Weighing it (even at 0) makes it a reading the plan reads everywhere.
        let fixed = rules.replacingOccurrences(of: "weights: { cpu_ms: 0.001 }", with: "weights: { cpu_ms: 0.001, inference_calls: 0 }")
        let ok = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                                 CatalogSource(path: "rules/r.yaml", text: fixed, kind: .rules)])
        let catalog = try #require(ok.catalog)
        let quote = try catalog.quote(QuoteRequest(planID: "p", at: try Self.at("2026-11-30"), meters: [("inference_calls", MeterValue(micros: 2_000_000))]))
        #expect(quote.result.charge == TestCatalog.money("2.01"))
        #expect(quote.warnings.isEmpty)
    }
}
