import Tariff
import Testing

/// Pricing semantics of plans.md, each expectation worked out by hand in the comments.
@Suite("Pricing")
struct PricingTests {
    let subscription = TestCatalog.plan("research-pro", model: "subscription", """
      period: month
      fee: 49.00
      allowance: 10000
      overage: 0.005
    """)

    @Test("cli.md's quote example: 2.700 CU, 0.003500, split 0.002800 / 0.000525 / 0.000175")
    func quoteExample() throws {
        let catalog = try #require(TestCatalog.compile(["pro.yaml": subscription]))
        let plan = try #require(catalog.plan(id: "research-pro", version: 1))
        // cpu 1200 ms x 0.001 = 1.2 CU; 3 inference calls x 0.5 = 1.5 CU; total 2.7 CU.
        // used 9998: covered = min(2.7, 10000 - 9998) = 2; overage 0.7 x 0.005 = 0.0035.
        let result = catalog.price(plan, ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1200, "inference_calls": 3])),
                                   state: PeriodState(usedComputeUnits: TestCatalog.units("9998")))
        #expect(result.computeUnits == TestCatalog.units("2.7"))
        #expect(result.charge == TestCatalog.money("0.0035"))
        #expect(result.split == SplitShares(creator: TestCatalog.money("0.0028"), platform: TestCatalog.money("0.000525"), processing: TestCatalog.money("0.000175")))
        #expect(result.lines.count == 1)
        #expect(result.lines.first?.amount == TestCatalog.money("0.0035"))
        #expect(result.state.usedComputeUnits == TestCatalog.units("10000.7"))
        #expect(result.state.usageCharges == TestCatalog.money("0.0035"))
    }

    @Test("the allowance boundary crossed inside one execution")
    func allowanceBoundary() throws {
        let catalog = try #require(TestCatalog.compile(["pro.yaml": subscription]))
        let plan = try #require(catalog.plan(id: "research-pro", version: 1))
        // used 9999.5, cu 2.7: covered 0.5, overage 2.2 x 0.005 = 0.011.
        let crossing = catalog.price(plan, ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1200, "inference_calls": 3])),
                                     state: PeriodState(usedComputeUnits: TestCatalog.units("9999.5")))
        #expect(crossing.charge == TestCatalog.money("0.011"))
        // Exactly at the allowance: all 2.7 CU are overage, 0.0135.
        let beyond = catalog.price(plan, ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1200, "inference_calls": 3])),
                                   state: PeriodState(usedComputeUnits: TestCatalog.units("10000")))
        #expect(beyond.charge == TestCatalog.money("0.0135"))
        // Ending exactly at the allowance: free.
        let inside = catalog.price(plan, ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1200, "inference_calls": 3])),
                                   state: PeriodState(usedComputeUnits: TestCatalog.units("9997.3")))
        #expect(inside.charge == .zero)
        #expect(inside.lines.count == 1)
    }

    @Test("graduated tiers crossed inside one execution, then discount, then the caps")
    func tiers() throws {
        let enterprise = TestCatalog.plan("ent", model: "enterprise", """
          period: month
          fee: 2000.00
          usage:
            - up_to: 500000
              price: 0
            - up_to: 2000000
              price: 0.004
            - price: 0.003
          discount: 10%
        """)
        let capped = TestCatalog.plan("ent-capped", agent: "agt_other", model: "enterprise", """
          period: month
          fee: 2000.00
          usage:
            - up_to: 500000
              price: 0
            - up_to: 2000000
              price: 0.004
            - price: 0.003
          discount: 10%
          guardrails:
            max_cost_per_execution: 5.00
            spend_cap: 20000.00
        """)
        let catalog = try #require(TestCatalog.compile(["ent.yaml": enterprise, "capped.yaml": capped]))
        let plan = try #require(catalog.plan(id: "ent", version: 1))
        let cappedPlan = try #require(catalog.plan(id: "ent-capped", version: 1))
        // used 499,000, cu 1,600,000 (1.6e9 cpu ms): 1,000 CU free, 1,500,000 at 0.004 = 6,000,
        // 99,000 at 0.003 = 297; 6,297 less 10% = 5,667.30.
        let big = ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1_600_000_000]))
        let state = PeriodState(usedComputeUnits: TestCatalog.units("499000"))
        let result = catalog.price(plan, big, state: state)
        #expect(result.computeUnits == TestCatalog.units("1600000"))
        #expect(result.charge == TestCatalog.money("5667.3"))
        // The lines: usage 6297.000000, discount -629.700000.
        #expect(result.lines.map(\.amount) == [TestCatalog.money("6297"), TestCatalog.money("-629.7")])
        // With the per-execution cap: min(5667.30, 5.00) = 5.00.
        #expect(catalog.price(cappedPlan, big, state: state).charge == TestCatalog.money("5"))
        // The spend cap leaves 2.00 of the period: min(5.00, 20000 - 19998) = 2.00.
        let nearCap = PeriodState(usedComputeUnits: TestCatalog.units("499000"), usageCharges: TestCatalog.money("19998"))
        #expect(catalog.price(cappedPlan, big, state: nearCap).charge == TestCatalog.money("2"))
        // Reached: refused, not charged, nothing consumed.
        let reached = PeriodState(usedComputeUnits: TestCatalog.units("499000"), usageCharges: TestCatalog.money("20000"))
        let refused = catalog.price(cappedPlan, big, state: reached)
        #expect(refused.refusal == .spendCap)
        #expect(refused.charge == .zero)
        #expect(refused.split == .zero)
        #expect(refused.state == reached)
        // A free failed execution is never refused.
        var failed = big
        failed.failed = true
        #expect(catalog.price(cappedPlan, failed, state: reached).refusal == nil)
    }

    @Test("half-even rounding of exact amounts to micro-units", arguments: [
        ("0.0000125", "0.000012"),   // tie: 12.5 micros -> 12 (even)
        ("0.0000135", "0.000014"),   // tie: 13.5 -> 14 (even)
        ("0.0000125001", "0.000013"), // just above the tie
        ("0.00000125", "0.000001"),  // 1.25 -> 1
        ("0.0000005", "0"),          // tie: 0.5 -> 0 (even)
        ("0.0000015", "0.000002"),   // tie: 1.5 -> 2 (even)
    ])
    func halfEven(fee: String, line: String) throws {
        let catalog = try #require(TestCatalog.compile(["p.yaml": TestCatalog.plan("p", model: "per_call", "  fee: \"\(fee)\"")]))
        let plan = try #require(catalog.plan(id: "p", version: 1))
        #expect(catalog.price(plan, ExecutionInput(meters: MeterReadings()), state: .empty).charge == TestCatalog.money(line))
    }

    @Test("failed executions are free and consume nothing unless bill_failed")
    func failedExecutions() throws {
        let billed = TestCatalog.plan("billed", agent: "agt_b", model: "subscription", """
          period: month
          fee: 49.00
          allowance: 0
          overage: 0.005
          bill_failed: true
        """)
        let catalog = try #require(TestCatalog.compile(["pro.yaml": subscription, "billed.yaml": billed]))
        let plan = try #require(catalog.plan(id: "research-pro", version: 1))
        let execution = ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 5000]), failed: true)
        let state = PeriodState(usedComputeUnits: TestCatalog.units("20000"), usageCharges: TestCatalog.money("3"), executions: 7, succeeded: 7)
        let free = catalog.price(plan, execution, state: state)
        #expect(free.charge == .zero)
        #expect(free.computeUnits == TestCatalog.units("5"))
        #expect(free.state.usedComputeUnits == state.usedComputeUnits)
        #expect(free.state.usageCharges == state.usageCharges)
        #expect(free.state.executions == 7)
        #expect(free.state.failed == 1)
        // bill_failed: 5 CU x 0.005 = 0.025, consumed.
        let billedPlan = try #require(catalog.plan(id: "billed", version: 1))
        let charged = catalog.price(billedPlan, execution, state: .empty)
        #expect(charged.charge == TestCatalog.money("0.025"))
        #expect(charged.state.usedComputeUnits == TestCatalog.units("5"))
    }

    @Test("the version in effect: latest effective at or before the instant")
    func versions() throws {
        let v1 = subscription + "\nversion: 1\neffective: 2026-01-01\n"
        let v2 = TestCatalog.plan("research-pro", model: "subscription", """
          period: month
          fee: 59.00
          allowance: 20000
          overage: 0.004
        """, extra: "version: 2\neffective: 2026-11-01T00:00:00Z")
        let catalog = try #require(TestCatalog.compile(["v1.yaml": v1, "v2.yaml": v2]))
        func version(at text: String) -> Int? {
            Timestamp(dateOrTimestamp: text).flatMap { catalog.plan(id: "research-pro", at: $0) }.map { catalog.plan($0).version }
        }
        #expect(version(at: "2025-12-31T23:59:59.999Z") == nil)
        #expect(version(at: "2026-01-01") == 1)
        #expect(version(at: "2026-10-31T23:59:59.999999999Z") == 1)
        #expect(version(at: "2026-11-01T00:00:00Z") == 2)
        #expect(version(at: "2027-06-01") == 2)
    }

    @Test("period lines: the commitment shortfall, then the SLA credit over fee + usage + shortfall")
    func periodLines() throws {
        let enterprise = TestCatalog.plan("ent", model: "enterprise", """
          period: month
          fee: 2000.00
          usage:
            - price: 0.004
          commitment: 5000.00
          sla:
            availability: 99.9%
            credits:
              - below: 99.9%
                credit: 10%
              - below: 99.0%
                credit: 25%
        """)
        let catalog = try #require(TestCatalog.compile(["ent.yaml": enterprise]))
        let plan = try #require(catalog.plan(id: "ent", version: 1))
        let fee = try #require(catalog.periodStartLines(plan).first)
        #expect(fee.amount == TestCatalog.money("2000"))
        #expect(fee.split.creator == TestCatalog.money("1600"))
        // usage 1000: shortfall 5000 - 3000 = 2000; availability 990/1000 = 99.0%: under 99.9% only
        // (not strictly under 99.0%): credit 10% of (2000 + 1000 + 2000) = 500.
        let state = PeriodState(usageCharges: TestCatalog.money("1000"), succeeded: 990, failed: 10)
        let lines = catalog.periodEndLines(plan, state: state, fees: fee.amount)
        #expect(lines.map(\.kind) == [.shortfall, .slaCredit])
        #expect(lines.map(\.amount) == [TestCatalog.money("2000"), TestCatalog.money("-500")])
        #expect(lines[1].split == SplitShares(creator: TestCatalog.money("-400"), platform: TestCatalog.money("-75"), processing: TestCatalog.money("-25")))
        // 98.5%: under both bands; the one with the lowest `below` (99.0%, 25%) wins: -1250.
        let worse = PeriodState(usageCharges: TestCatalog.money("1000"), succeeded: 985, failed: 15)
        #expect(catalog.periodEndLines(plan, state: worse, fees: fee.amount).last?.amount == TestCatalog.money("-1250"))
        // No executions: 100% available, no credit; usage above the commitment: no shortfall line.
        let busy = PeriodState(usageCharges: TestCatalog.money("3000"))
        #expect(catalog.periodEndLines(plan, state: busy, fees: fee.amount).isEmpty)
    }

    @Test("batch pricing equals pricing one at a time")
    func batch() throws {
        let catalog = try #require(TestCatalog.compile(["pro.yaml": subscription]))
        let plan = try #require(catalog.plan(id: "research-pro", version: 1))
        let items = (0..<100).map { index in
            BatchItem(plan: plan, execution: ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": Int64(index * 37)])),
                      state: PeriodState(usedComputeUnits: ComputeUnits(millis: Int64(index) * 150_000)))
        }
        let results = catalog.price(batch: items)
        for (item, batched) in zip(items, results) {
            let single = catalog.price(item.plan, item.execution, state: item.state)
            #expect(batched.charge == single.charge && batched.split == single.split && batched.state == single.state)
        }
        // An explained execution prices exactly as the fast path.
        let explained = catalog.explain(plan, items[99].execution, state: items[99].state)
        #expect(explained.result.charge == results[99].charge)
        #expect(explained.explanation.steps.first?.kind == "metering")
        #expect(explained.explanation.steps.last?.kind == "split")
    }
}

/// plans.md: "cu = ceil_to(precision, sum(weight[m] * meter[m])). precision defaults to 0.001 and
/// must be a positive multiple of 0.001." A precision other than 0.001, worked by hand.
@Suite("Compute unit precision")
struct ComputeUnitPrecisionTests {
    static func computeUnits(precision: String, meters: [String: Int64]) throws -> (ComputeUnits, Money) {
        let rules = """
        metering:
          standard:
            weights: { cpu_ms: 0.001, memory_mb_s: 0.0001, network_kb: 0.0005, inference_calls: 0.5 }
            precision: \(precision)
        splits:
          standard: { creator: 80%, platform: 15%, processing: 5% }
        """
        // 1.00 per CU beyond nothing: the charge shows the rounded CU.
        let plan = TestCatalog.plan("p", model: "subscription", "  period: month\n  fee: 0\n  allowance: 0\n  overage: 1.00")
        let catalog = try #require(TestCatalog.compile(["p.yaml": plan], rules: rules))
        let result = catalog.price(try #require(catalog.plan(id: "p", version: 1)), ExecutionInput(meters: TestCatalog.meters(catalog, meters)), state: .empty)
        return (result.computeUnits, result.charge)
    }

    @Test("rounded up to 0.25 and to 0.01, never down; an exact multiple stays")
    func precisions() throws {
        // 1,001 ms x 0.001 = 1.001 CU: up to 1.25 at 0.25, 1.01 at 0.01 (1.001 at the default 0.001).
        #expect(try Self.computeUnits(precision: "0.25", meters: ["cpu_ms": 1_001]) == (TestCatalog.units("1.25"), TestCatalog.money("1.25")))
        #expect(try Self.computeUnits(precision: "0.01", meters: ["cpu_ms": 1_001]) == (TestCatalog.units("1.01"), TestCatalog.money("1.01")))
        #expect(try Self.computeUnits(precision: "0.001", meters: ["cpu_ms": 1_001]) == (TestCatalog.units("1.001"), TestCatalog.money("1.001")))
        // 1,000 ms = 1 CU exactly: stays 1 at 0.25.
        #expect(try Self.computeUnits(precision: "0.25", meters: ["cpu_ms": 1_000]) == (TestCatalog.units("1"), TestCatalog.money("1.00")))
        // 3 KB x 0.0005 = 0.0015 CU + 1 call x 0.5: 0.5015, up to 0.51 at 0.01 and 1 at 0.5 (weights finer than the precision).
        #expect(try Self.computeUnits(precision: "0.01", meters: ["network_kb": 3, "inference_calls": 1]) == (TestCatalog.units("0.51"), TestCatalog.money("0.51")))
        #expect(try Self.computeUnits(precision: "0.5", meters: ["network_kb": 3, "inference_calls": 1]) == (TestCatalog.units("1"), TestCatalog.money("1.00")))
        // Nothing measured is 0 at any precision.
        #expect(try Self.computeUnits(precision: "2", meters: [:]) == (ComputeUnits.zero, Money.zero))
        // 2.5 CU at precision 2: up to 4.
        #expect(try Self.computeUnits(precision: "2", meters: ["cpu_ms": 2_500]) == (TestCatalog.units("4"), TestCatalog.money("4.00")))
    }
}
