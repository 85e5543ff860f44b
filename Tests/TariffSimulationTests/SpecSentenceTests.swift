import Foundation
import Tariff
import TariffSimulation
import Testing

/// Sentences of plans.md that had no test: each scenario is worked out by hand in its comments.
@Suite("Spec sentences")
struct SpecSentenceTests {
    typealias F = SimulationFixture

    static func catalog(_ plans: [String: String], rules: String = F.rules) throws -> CompiledCatalog {
        var sources = plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules))
        let compilation = CatalogLoader.compile(sources: sources)
        return try #require(compilation.catalog, "\(compilation.diagnostics)")
    }

    /// "The version that prices an execution is the one with the latest effective at or before the
    /// start of the billing period the execution falls in. A subscription keeps that version for the
    /// whole period; the next period picks again."
    @Test("a subscription keeps its plan version for the whole period across an effective date")
    func versionKeptForThePeriod() throws {
        let v1 = """
            plan: pro
            agent: agt_a
            creator: acct_a
            currency: USD
            model: subscription
            subscription: { period: month, fee: 10.00, allowance: 0, overage: 0.01 }
            """
        let v2 = """
            plan: pro
            version: 2
            effective: 2026-11-15
            agent: agt_a
            creator: acct_a
            currency: USD
            model: subscription
            subscription: { period: month, fee: 20.00, allowance: 0, overage: 0.02 }
            """
        let catalog = try Self.catalog(["pro-1.yaml": v1, "pro-2.yaml": v2])
        let report = try Simulator.run(trace: try F.trace([
            F.event("subscribe", "2026-11-01T00:00:00Z", "cus_1", plan: "pro"),                           // period 1 starts before v2: v1, fee 10.00
            F.execution("exe_1", "cus_1", "agt_a", ended: "2026-11-14T23:59:59Z", cpuMilliseconds: 100_000), // 100 CU x 0.01 (v1) = 1.00
            F.execution("exe_2", "cus_1", "agt_a", ended: "2026-11-20T00:00:00Z", cpuMilliseconds: 100_000), // after v2's effective date, same period: v1, 1.00
            F.execution("exe_3", "cus_1", "agt_a", ended: "2026-12-01T00:00:00Z", cpuMilliseconds: 100_000), // period 2 (Dec 1, after Nov 15): v2 fee 20.00, then 100 x 0.02 = 2.00
        ]), catalog: catalog, options: SimulationOptions())
        #expect(report.rejected.isEmpty && report.priced == 3)
        #expect(report.plans == [
            SimulationReport.PlanRow(plan: "pro", version: 1, charged: F.money("12.00"), fees: F.money("10.00"), usage: F.money("2.00")),
            SimulationReport.PlanRow(plan: "pro", version: 2, charged: F.money("22.00"), fees: F.money("20.00"), usage: F.money("2.00")),
        ])
        #expect(report.totals.charged == F.money("34.00"))
    }

    /// "A subscription replaced by a subscription to another plan of the same agent ends at that
    /// instant: for an enterprise subscription the current period is closed there, and its period-end
    /// lines are computed over the shortened period against the full commitment."
    @Test("an enterprise subscription replaced mid-period is closed there against the full commitment")
    func enterpriseReplacedMidPeriod() throws {
        var plans = F.plans
        plans["ent-b.yaml"] = """
            plan: ent-b
            agent: agt_e
            creator: acct_e
            currency: USD
            model: enterprise
            enterprise:
              period: month
              fee: 50.00
              usage:
                - price: 0.02
            """
        let catalog = try Self.catalog(plans)
        let report = try Simulator.run(trace: try F.trace([
            F.event("subscribe", "2026-11-01T00:00:00Z", "cus_1", plan: "ent"),                                         // fee 100.00
            F.execution("exe_1", "cus_1", "agt_e", ended: "2026-11-05T00:00:00Z", cpuMilliseconds: 1_000_000),             // 1,000 CU x 0.01 = 10.00
            F.execution("exe_2", "cus_1", "agt_e", ended: "2026-11-06T00:00:00Z", cpuMilliseconds: 1_000, status: "failed"), // free; availability 1/2
            // Replaced on Nov 16: ent's period [Nov 1, Dec 1) closes here. Against the full commitment
            // of 200.00: shortfall 200 - (100 + 10) = 90.00 (a commitment prorated to the 15 days, 100.00,
            // would leave none); availability 50% < 99%: credit -10% x (100 + 10 + 90) = -20.00.
            F.event("subscribe", "2026-11-16T00:00:00Z", "cus_1", plan: "ent-b"),                                       // fee 50.00
            F.execution("exe_3", "cus_1", "agt_e", ended: "2026-11-20T00:00:00Z", cpuMilliseconds: 500_000),               // ent-b: 500 x 0.02 = 10.00
        ]), catalog: catalog, options: SimulationOptions())
        #expect(report.rejected.isEmpty)
        #expect(report.plans == [
            SimulationReport.PlanRow(plan: "ent", version: 1, charged: F.money("180.00"), fees: F.money("100.00"), usage: F.money("10.00"),
                                     shortfall: F.money("90.00"), slaCredits: F.money("-20.00")),
            SimulationReport.PlanRow(plan: "ent-b", version: 1, charged: F.money("60.00"), fees: F.money("50.00"), usage: F.money("10.00")),
        ])
        // The period-end lines are dated at the replacement, Nov 16.
        #expect(report.days.first { $0.day.description == "2026-11-16" }?.charged == F.money("120.00"))  // 90 - 20 + ent-b's fee 50
        F.checkInvariants(report)
    }
}
