import Tariff
import Testing

@Suite("Library")
struct LibraryTests {
    @Test("hot reload swaps in a catalog that compiles and keeps the old one otherwise")
    func hotReload() throws {
        let first = try #require(TestCatalog.compile(["p.yaml": TestCatalog.plan("p", model: "per_call", "  fee: 0.02")]))
        let store = CatalogStore(first)
        let old = store.catalog
        // A broken catalog: reported, not swapped in.
        let broken = store.reload {
            CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: "plan: p\nmodel: per_cal\n", kind: .plan)])
        }
        #expect(broken.errorCount > 0)
        #expect(store.catalog === old)
        // A good one replaces it; the old object still prices for whoever holds it.
        store.reload {
            CatalogLoader.compile(sources: [
                CatalogSource(path: "plans/p.yaml", text: TestCatalog.plan("p", model: "per_call", "  fee: 0.03"), kind: .plan),
                CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules),
            ])
        }
        let new = store.catalog
        #expect(new !== old)
        let execution = ExecutionInput(meters: MeterReadings())
        #expect(new.price(try #require(new.plan(id: "p", version: 1)), execution, state: .empty).charge == TestCatalog.money("0.03"))
        #expect(old.price(try #require(old.plan(id: "p", version: 1)), execution, state: .empty).charge == TestCatalog.money("0.02"))
    }

    @Test("quote by name: unweighed meters are warnings, unknown plans errors with a suggestion")
    func quote() throws {
        let catalog = try #require(TestCatalog.compile(["p.yaml": TestCatalog.plan("research-payg", model: "per_call", "  fee: 0.02")]))
        let at = try #require(Timestamp(dateOrTimestamp: "2026-11-30"))
        let quote = try catalog.quote(QuoteRequest(planID: "research-payg", at: at, meters: [("cpu_ms", MeterValue(micros: 1_000_000_000)), ("gpu_s", MeterValue(micros: 1))]))
        #expect(quote.result.charge == TestCatalog.money("0.02"))
        #expect(quote.isExact)
        #expect(quote.reservation == TestCatalog.money("0.02"))
        #expect(quote.result.computeUnits == TestCatalog.units("1"))
        #expect(quote.warnings.count == 1)
        #expect(throws: QuoteError.unknownPlan("research-pyag", suggestion: "research-payg")) {
            try catalog.quote(QuoteRequest(planID: "research-pyag", at: at))
        }
    }

    @Test("the default-plan rule: the agent's only per_call plan, or the one marked default")
    func defaults() throws {
        let catalog = try #require(TestCatalog.compile([
            "a.yaml": TestCatalog.plan("only", agent: "agt_a", model: "per_call", "  fee: 0.01"),
            "b1.yaml": TestCatalog.plan("b-main", agent: "agt_b", model: "per_call", "  fee: 0.01", extra: "default: true"),
            "b2.yaml": TestCatalog.plan("b-other", agent: "agt_b", model: "per_call", "  fee: 0.02"),
        ]))
        let now = try #require(Timestamp(dateOrTimestamp: "2026-11-30"))
        #expect(catalog.defaultPlan(agent: "agt_a", at: now).map { catalog.plan($0).id } == "only")
        #expect(catalog.defaultPlan(agent: "agt_b", at: now).map { catalog.plan($0).id } == "b-main")
        #expect(catalog.defaultPlan(agent: "agt_c", at: now) == nil)
    }
}
