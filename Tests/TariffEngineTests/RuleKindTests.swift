import Tariff
import Testing

/// The `when:` conditions of `discount`, with instants worked out by hand.
@Suite("Rule conditions")
struct RuleConditionTests {
    static func charge(_ when: String, at instant: String, meters: [String: Int64] = ["cpu_ms": 1000]) throws -> Money {
        // per_call fee 1.00, 50% off while the condition holds.
        let plan = TestCatalog.plan("p", model: "per_call", "  fee: 1.00", extra: """
        rules:
          - kind: discount
            percent: 50%
            when: \(when)
        """)
        let catalog = try #require(TestCatalog.compile(["p.yaml": plan]))
        let handle = try #require(catalog.plan(id: "p", version: 1))
        let endedAt = try #require(Timestamp(dateOrTimestamp: instant))
        return catalog.price(handle, ExecutionInput(meters: TestCatalog.meters(catalog, meters), endedAt: endedAt), state: .empty).charge
    }

    static let half = Money(micros: 500_000), full = Money(micros: 1_000_000)

    @Test("hours wrap past midnight, read at the rule's UTC offset")
    func hours() throws {
        let night = #"{ hours: { from: 22, to: 6 }, utc_offset: "+01:00" }"#
        #expect(try Self.charge(night, at: "2026-11-30T21:30:00Z") == Self.half)   // 22:30 local
        #expect(try Self.charge(night, at: "2026-11-30T20:59:59Z") == Self.full)   // 21:59 local
        #expect(try Self.charge(night, at: "2026-11-30T04:59:59Z") == Self.half)   // 05:59 local
        #expect(try Self.charge(night, at: "2026-11-30T05:00:00Z") == Self.full)   // 06:00 local
    }

    @Test("weekdays at an offset: Sunday 23:30 UTC is Monday in +01:00")
    func weekdays() throws {
        let weekend = #"{ weekday: [sat, sun], utc_offset: "+01:00" }"#
        #expect(try Self.charge(weekend, at: "2026-11-29T22:30:00Z") == Self.half)  // Sunday 23:30 local
        #expect(try Self.charge(weekend, at: "2026-11-29T23:30:00Z") == Self.full)  // Monday 00:30 local
        #expect(try Self.charge("{ weekday: [mon] }", at: "2026-11-30T00:00:00Z") == Self.half) // 2026-11-30 is a Monday
    }

    @Test("date ranges are half-open; meter thresholds are inclusive")
    func datesAndMeters() throws {
        let december = "{ dates: { from: 2026-12-01, to: 2027-01-01 } }"
        #expect(try Self.charge(december, at: "2026-11-30T23:59:59.999Z") == Self.full)
        #expect(try Self.charge(december, at: "2026-12-01T00:00:00Z") == Self.half)
        #expect(try Self.charge(december, at: "2027-01-01T00:00:00Z") == Self.full)
        let heavy = "{ meter: { name: cpu_ms, at_least: 1000 } }"
        #expect(try Self.charge(heavy, at: "2026-11-30", meters: ["cpu_ms": 1000]) == Self.half)
        #expect(try Self.charge(heavy, at: "2026-11-30", meters: ["cpu_ms": 999]) == Self.full)
        // Both must hold.
        let both = "{ meter: { name: cpu_ms, at_least: 1000 }, weekday: [sun] }"
        #expect(try Self.charge(both, at: "2026-11-30", meters: ["cpu_ms": 5000]) == Self.full)
        #expect(try Self.charge(both, at: "2026-11-29", meters: ["cpu_ms": 5000]) == Self.half)
    }
}

/// A per-call quote is exact only while no rule reads what the run measures.
@Suite("Quote exactness with rules")
struct QuoteExactnessTests {
    static func isExact(_ rules: String) throws -> Bool {
        let plan = TestCatalog.plan("p", model: "per_call", "  fee: 0.01", extra: rules)
        let catalog = try #require(TestCatalog.compile(["p.yaml": plan]))
        let at = try #require(Timestamp(dateOrTimestamp: "2026-11-30"))
        return try catalog.quote(QuoteRequest(planID: "p", at: at, meters: [("inference_calls", MeterValue(micros: 3_000_000))])).isExact
    }

    @Test func rulesThatReadTheRunMakeAPerCallQuoteAnEstimate() throws {
        #expect(try Self.isExact(""))
        // Constant or period-state rules keep the price known before the run.
        // (free_executions reads the period state: a per_call plan keeps none, so it is a check error there.)
        #expect(try Self.isExact("rules:\n  - kind: minimum_charge\n    amount: 0.02\n"))
        // A surcharge per inference call, a meter threshold or a time condition depend on the run.
        #expect(try !Self.isExact("rules:\n  - kind: surcharge\n    meter: inference_calls\n    per_unit: 0.01\n"))
        #expect(try !Self.isExact("rules:\n  - kind: discount\n    percent: 10%\n    when: { meter: { name: inference_calls, at_least: 10 } }\n"))
        #expect(try !Self.isExact("rules:\n  - kind: discount\n    percent: 10%\n    when: { weekday: [sat] }\n"))
    }
}

/// plans.md: "A rule whose meaning needs a period (free_executions, or any rule reading the period
/// state) on a plan that has none (per_call) is a check error with a fix, never a silent every-call-free".
@Suite("Rules that need a period")
struct RuleNeedsPeriodTests {
    static func compile(model: String, _ section: String, rules: String) -> CatalogCompilation {
        let plan = TestCatalog.plan("p", model: model, section, extra: rules)
        return CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                               CatalogSource(path: "rules/rules.yaml", text: TestCatalog.rules, kind: .rules)])
    }

    @Test("free_executions on a per_call plan is refused at the rule, with a fix")
    func perCallFreeExecutions() throws {
        // Lines: 1 plan, 2 agent, 3 creator, 4 currency, 5 model, 6 per_call:, 7 fee, 8 rules:,
        // 9 minimum_charge (column 5: after "  - "), 10 amount, 11 free_executions, 12 count.
        let compilation = Self.compile(model: "per_call", "  fee: 0.02",
                                       rules: "rules:\n  - kind: minimum_charge\n    amount: 0.01\n  - kind: free_executions\n    count: 3\n")
        #expect(compilation.catalog == nil)
        #expect(compilation.diagnostics.map { "\($0.severity.rawValue) \($0.code.rawValue) \($0.location)" } == ["error rule-needs-period plans/p.yaml:11:5"])
        let diagnostic = try #require(compilation.diagnostics.first)
        #expect(diagnostic.message.contains("free_executions") && diagnostic.message.contains("per_call"))
        #expect(diagnostic.fix?.isEmpty == false)
    }

    @Test("the same rule on a subscription compiles and frees exactly the first N executions of the period")
    func subscriptionFreeExecutions() throws {
        // 0.10 per CU beyond an allowance of 0: every CU is billed; the first 2 executions are free.
        let compilation = Self.compile(model: "subscription", "  period: month\n  fee: 0\n  allowance: 0\n  overage: 0.10",
                                       rules: "rules:\n  - kind: free_executions\n    count: 2\n")
        #expect(compilation.diagnostics.filter { $0.severity == .error }.isEmpty, "\(compilation.diagnostics)")
        let catalog = try #require(compilation.catalog)
        let handle = try #require(catalog.plan(id: "p", version: 1))
        let meters = TestCatalog.meters(catalog, ["cpu_ms": 3_000])  // 3 CU: 0.30 when billed
        var charges: [Money] = []
        var state = PeriodState.empty
        for _ in 0..<4 {
            let result = catalog.price(handle, ExecutionInput(meters: meters, endedAt: Timestamp(rfc3339: "2026-11-30T12:00:00Z")!), state: state)
            charges.append(result.charge)
            state = result.state
        }
        // Executions 1 and 2 free, the 3rd (N + 1) and 4th at 3 x 0.10.
        #expect(charges == [.zero, .zero, TestCatalog.money("0.30"), TestCatalog.money("0.30")])
    }
}
