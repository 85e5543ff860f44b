import Foundation
import Tariff
import TariffSimulation
import Testing

/// One behaviour for a meter reading the plan's metering does not weigh (plans.md, "Rule plugins":
/// every place that prices one execution treats a meter reading the same way): it adds nothing,
/// quote and simulate warn and price alike, and a plan test with it is a check error.
@Suite("Unweighed meter readings")
struct MeterReadingAgreementTests {
    static let rules = """
    metering:
      standard:
        weights: { cpu_ms: 0.001, inference_calls: 0.5 }
      light:
        weights: { cpu_ms: 0.001 }
    splits:
      standard: { creator: 80%, platform: 15%, processing: 5% }
    """

    static func compile(_ plan: String) -> CatalogCompilation {
        CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                        CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules)])
    }

    static let plan = """
    plan: p
    agent: agt_p
    creator: acct_p
    currency: USD
    metering: light
    model: per_call
    per_call: { fee: 0.01 }
    rules:
      - kind: discount
        percent: 50%
        when: { meter: { name: cpu_ms, at_least: 1000 } }

    """

    @Test("quote and simulate price an unweighed reading alike (it adds nothing) and both warn")
    func quoteAndSimulateAgree() throws {
        let catalog = try #require(Self.compile(Self.plan).catalog)
        // 2,000 ms of CPU = 2 CU; 0.01 halved by the discount = 0.005; 3 inference calls weigh nothing here.
        let quote = try catalog.quote(QuoteRequest(planID: "p", at: SimulationFixture.at("2026-11-30T10:00:00Z"),
                                                   meters: [("cpu_ms", MeterValue(micros: 2_000_000_000)), ("inference_calls", MeterValue(micros: 3_000_000))]))
        #expect(quote.result.charge == SimulationFixture.money("0.005"))
        #expect(quote.result.computeUnits == ComputeUnits(millis: 2_000))
        #expect(quote.warnings.count == 1)
        let path = try SimulationFixture.trace([
            #"{"type":"execution","id":"e1","consumer":"c","agent":"agt_p","started_at":"2026-11-30T10:00:00Z","ended_at":"2026-11-30T10:00:00Z","status":"succeeded","meters":{"cpu_ms":2000,"inference_calls":3}}"#,
        ])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect(report.totals.charged == quote.result.charge)
        #expect(report.warnings.count == 1)
    }

    @Test("a plan test reporting an unweighed meter is a check error; a rule reading one does not compile")
    func testAndRule() throws {
        let withTest = Self.plan + """
        tests:
          - name: unweighed
            execution: { meters: { cpu_ms: 2000, inference_calls: 3 } }
            expect: { charge: 0.005 }

        """
        #expect(Self.compile(withTest).diagnostics.map(\.code) == ["unknown-meter"])
        // Before issue 15 this compiled, and quote (which drops the reading) and simulate (which
        // passed it to the rule) charged 0.01 and 0.005.
        let ruleOnUnweighed = Self.plan.replacingOccurrences(of: "name: cpu_ms, at_least: 1000", with: "name: inference_calls, at_least: 1")
        #expect(Self.compile(ruleOnUnweighed).diagnostics.map(\.code) == ["unweighed-meter"])
    }
}
