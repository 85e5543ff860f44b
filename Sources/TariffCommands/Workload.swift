import Tariff

/// Deterministic workloads for `tariff bench` (SplitMix64: the same seed gives the same workload).
enum Workload {
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: UInt64) -> Int64 { Int64(next() % max(bound, 1)) }
    }

    /// A mix of per-call, subscription and enterprise executions on the sample catalog's plans
    /// (any catalog works: it takes one plan of each model it finds).
    static func executions(_ catalog: CompiledCatalog, count: Int, seed: UInt64) throws -> [BatchItem] {
        var handles: [PlanHandle] = []
        for model in ["per_call", "subscription", "enterprise"] {
            if let id = catalog.planIDs.first(where: { id in catalog.versions(of: id).contains { catalog.plan($0).model == model } }),
               let handle = catalog.versions(of: id).last {
                handles.append(handle)
            }
        }
        guard !handles.isEmpty else { throw InputError("the catalog has no plan to benchmark") }
        var random = Random(state: seed)
        let meterCount = catalog.meterNames.count
        var items: [BatchItem] = []
        items.reserveCapacity(count)
        for index in 0..<count {
            var readings = MeterReadings()
            for meter in 0..<min(meterCount, 4) {
                readings[MeterIndex(rawValue: meter)] = MeterValue(micros: random.below(5_000) * 1_000_000)
            }
            let state = PeriodState(usedComputeUnits: ComputeUnits(millis: random.below(3_000_000) * 1_000),
                                    usageCharges: Money(micros: random.below(10_000) * 1_000_000), executions: random.below(100))
            let execution = ExecutionInput(meters: readings, failed: random.below(50) == 0,
                                           endedAt: Timestamp(nanosecondsSinceEpoch: 1_790_000_000_000_000_000 + random.below(2_592_000) * 1_000_000_000))
            items.append(BatchItem(plan: handles[index % handles.count], execution: execution, state: state))
        }
        return items
    }

    static let rulesFiles: [(String, String)] = [
        ("metering.yaml", """
        metering:
          standard:
            weights: { cpu_ms: 0.001, memory_mb_s: 0.0001, network_kb: 0.0005, inference_calls: 0.5 }
            precision: 0.001
        """),
        ("splits.yaml", """
        splits:
          standard: { creator: 80%, platform: 15%, processing: 5% }
        """),
    ]

    /// One generated plan file: the three models in turn, with tiers and rules.
    static func planFile(index: Int, seed: UInt64) -> String {
        var random = Random(state: seed &+ UInt64(index))
        let header = """
        plan: generated-\(index)
        agent: agt_generated_\(index)
        creator: acct_generated_\(index % 50)
        currency: USD

        """
        switch index % 3 {
        case 0:
            return header + """
            model: per_call
            per_call:
              fee: 0.0\(random.below(9) + 1)
            """
        case 1:
            return header + """
            model: subscription
            subscription:
              period: month
              fee: \(random.below(100) + 1).00
              allowance: \(random.below(10_000) + 100)
              overage: 0.00\(random.below(9) + 1)
            rules:
              - kind: discount
                percent: 10%
                when: { weekday: [sat, sun] }
              - kind: minimum_charge
                amount: 0.001
            """
        default:
            return header + """
            model: enterprise
            enterprise:
              period: month
              fee: 2000.00
              usage:
                - up_to: 500000
                  price: 0
                - up_to: 2000000
                  price: 0.004
                - price: 0.003
              discount: \(random.below(20))%
              commitment: 5000.00
              sla:
                availability: 99.9%
                credits:
                  - below: 99.9%
                    credit: 10%
              guardrails:
                max_cost_per_execution: 5.00
                spend_cap: 20000.00
            """
        }
    }
}
