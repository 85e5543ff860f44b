import PropertyBased
import Tariff
import Testing

/// The graph verifier (issue 15): every invariant the evaluator relies on is checked whoever
/// produced the graph, and a violation is a diagnostic naming the plugin, never a trap.
@Suite("Graph verifier")
struct GraphVerifierTests {
    /// A valid one-plan catalog definition to break: a subscription (period: month) with an allowance.
    static func base() throws -> CatalogDefinition {
        let plan = TestCatalog.plan("p", model: "subscription", "  period: month\n  fee: 10\n  allowance: 100\n  overage: 0.01")
        return try #require(TestCatalog.compile(["p.yaml": plan])).definition
    }

    /// The diagnostics of a definition the engine refuses (none: it accepted it).
    static func violations(_ definition: CatalogDefinition) -> [Diagnostic] {
        do {
            _ = try CompiledCatalog(definition)
            return []
        } catch {
            return error.diagnostics
        }
    }

    static func node(_ operation: RuleOperation, plugin: String = "evil") -> RuleNode {
        RuleNode(rule: plugin, operation: operation, location: TariffCore.SourceLocation(file: "plans/p.yaml", line: 9, column: 3), plugin: plugin)
    }

    /// Replaces plan 0's pipeline (phases inferred: trailing guardrails).
    static func withPipeline(_ nodes: [RuleNode], _ change: (inout PlanDefinition) -> Void = { _ in }) throws -> CatalogDefinition {
        var definition = try base()
        definition.plans[0].executionNodes = nodes
        definition.plans[0].phases = PipelinePhases(inferredFrom: nodes)
        change(&definition.plans[0])
        return definition
    }

    @Test("the shipped sample catalog passes the verifier")
    func sampleCatalogIsValid() throws {
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let compilation = CatalogLoader.compile(plansDirectory: "/\(root)/plans", rulesDirectory: "/\(root)/rules")
        let catalog = try #require(compilation.catalog)
        #expect(GraphVerifier.verify(catalog.definition).isEmpty)
    }

    @Test("a meter index past the readings is refused, naming the plugin")
    func meterOutOfRange() throws {
        let definition = try Self.withPipeline([Self.node(.perExecutionFee(PlanMoney(picos: 0))),
                                           Self.node(.meterSurcharge(meter: MeterIndex(rawValue: 15), pricePerUnit: PlanMoney(picos: 1)))])
        let found = Self.violations(definition)
        #expect(found.map { $0.code } == ["invalid-graph"])
        #expect(found.first?.message.contains("plugin 'evil'") == true)
        #expect(found.first?.location == TariffCore.SourceLocation(file: "plans/p.yaml", line: 9, column: 3))
        // A weighted meter past the table, in the metering itself.
        var other = try Self.base()
        other.plans[0].metering.weights.append(.init(meter: MeterIndex(rawValue: 40), weight: MeterWeight(nanos: 1), location: other.plans[0].metering.location))
        #expect(Self.violations(other).map(\.code) == ["invalid-graph"])
    }

    @Test("five chained percent-offs (scale past the powers-of-ten table) are refused; four are priced")
    func scaleBounded() throws {
        let off = Self.node(.percentOff(Percent(partsPerMillion: 100_000)))
        let fee = Self.node(.perExecutionFee(PlanMoney(picos: 1_000_000_000_000)))
        let overage = Self.node(.allowanceOverage(allowance: ComputeUnits(millis: 0), overagePerUnit: PlanMoney(picos: 1_000_000_000_000)))
        // A fee (12 decimals) then 4 x 6 = 36 decimal places: within 44. 1.00 x 0.9^4 = 0.6561.
        let four = try Self.withPipeline([fee, off, off, off, off])
        #expect(Self.violations(four).isEmpty)
        let catalog = try CompiledCatalog(four)
        let result = catalog.price(catalog.allPlans[0], ExecutionInput(meters: MeterReadings()), state: PeriodState.empty)
        #expect(result.charge == TestCatalog.money("0.6561"))
        // An overage price (15 decimals) then five: 45.
        let five = try Self.withPipeline([overage, off, off, off, off, off])
        #expect(Self.violations(five).map { $0.code } == ["invalid-graph"])
        // A rounding between them resets the scale.
        let rounded = try Self.withPipeline([overage, off, off, off, Self.node(.roundHalfEven), off, off])
        #expect(Self.violations(rounded).isEmpty)
    }

    @Test("tiers out of order, an open tier in the middle, a percent above 100% are refused")
    func valuesChecked() throws {
        let tiers = try Self.withPipeline([Self.node(.graduatedTiers([PriceTier(upTo: ComputeUnits(millis: 5_000), price: PlanMoney(picos: 1)),
                                                                 PriceTier(upTo: ComputeUnits(millis: 1_000), price: PlanMoney(picos: 1)),
                                                                 PriceTier(upTo: nil, price: PlanMoney(picos: 1))]))])
        #expect(Self.violations(tiers).map(\.code) == ["invalid-graph"])
        let open = try Self.withPipeline([Self.node(.graduatedTiers([PriceTier(upTo: nil, price: PlanMoney(picos: 1)),
                                                                PriceTier(upTo: ComputeUnits(millis: 1_000), price: PlanMoney(picos: 1))]))])
        #expect(!Self.violations(open).isEmpty)
        let percent = try Self.withPipeline([Self.node(.perExecutionFee(PlanMoney(picos: 10))), Self.node(.percentOff(Percent(partsPerMillion: 2_000_000)))])
        #expect(Self.violations(percent).map(\.code) == ["invalid-graph"])
        let negative = try Self.withPipeline([Self.node(.perExecutionFee(PlanMoney(picos: -1)))])
        #expect(Self.violations(negative).map(\.code) == ["invalid-graph"])
    }

    @Test("a zero metering precision is refused (it would divide by zero)")
    func precisionPositive() throws {
        var definition = try Self.base()
        definition.plans[0].metering.precision = ComputeUnits(millis: 0)
        #expect(Self.violations(definition).map(\.code) == ["invalid-graph"])
    }

    @Test("a period-scoped operation on a plan without a period is refused with graph-needs-period")
    func periodScoped() throws {
        let free = try Self.withPipeline([Self.node(.perExecutionFee(PlanMoney(picos: 1_000_000))), Self.node(.freeExecutions(count: 3), plugin: "free_executions")]) {
            $0.period = nil
            $0.periodNodes = []
        }
        let found = Self.violations(free)
        #expect(found.map { $0.code } == ["graph-needs-period"])
        #expect(found.first?.message.contains("plugin 'free_executions'") == true)
        // A period fee on a plan without a period, too.
        var fee = try Self.base()
        fee.plans[0].period = nil
        #expect(Self.violations(fee).contains { $0.code == "graph-needs-period" })
    }

    @Test("a step after the guardrails, a guardrail before them, an empty pipeline, a period operation in it are refused")
    func phases() throws {
        let cap = Self.node(.capPerExecution(PlanMoney(picos: 1_000_000)))
        let fee = Self.node(.perExecutionFee(PlanMoney(picos: 5_000_000)))
        let surcharge = Self.node(.minimumCharge(PlanMoney(picos: 9_000_000)))
        // Phases inferred from [fee, cap, minimum]: the cap is not trailing, so it sits before the
        // guardrails phase; written as guardrails from 1, the minimum sits after them.
        #expect(!Self.violations(try Self.withPipeline([fee, cap, surcharge])).isEmpty)
        #expect(!Self.violations(try Self.withPipeline([fee, cap, surcharge]) { $0.phases = PipelinePhases(rulesStart: 1, guardrailsStart: 1) }).isEmpty)
        #expect(Self.violations(try Self.withPipeline([fee, surcharge, cap])).isEmpty)
        #expect(Self.violations(try Self.withPipeline([])).map(\.code) == ["invalid-graph"])
        #expect(!Self.violations(try Self.withPipeline([fee, Self.node(.periodFee(PlanMoney(picos: 1)))])).isEmpty)
        #expect(!Self.violations(try Self.withPipeline([fee, Self.node(.spendCap(PlanMoney(picos: 1))), cap])).isEmpty)
    }

    /// A rule kind that lowers to nothing and says nothing.
    struct SilentRule: RuleKindPlugin {
        let kind = "silent"
        let returnsEmpty: Bool
        func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? { returnsEmpty ? [] : nil }
    }

    /// A model that refuses without a diagnostic.
    struct SilentModel: BillingModelPlugin {
        let name = "silent_model"
        func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
            _ = section.optional("fee", .money)
            return nil
        }
    }

    @Test("a plugin that refuses a lowering without a diagnostic is reported, not a silently dropped plan or rule")
    func silentRefusal() throws {
        for returnsEmpty in [false, true] {
            var registry = ShippedPlugins.registry
            registry.register(ruleKind: SilentRule(returnsEmpty: returnsEmpty))
            let plan = TestCatalog.plan("p", model: "per_call", "  fee: 0.01", extra: "rules:\n  - kind: silent\n")
            let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                                              CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules)], plugins: registry)
            #expect(compilation.catalog == nil)
            #expect(compilation.diagnostics.map(\.code) == ["plugin-silent-refusal"])
            #expect(compilation.diagnostics.first?.location == TariffCore.SourceLocation(file: "plans/p.yaml", line: 9, column: 11))
        }
        var registry = ShippedPlugins.registry
        registry.register(model: SilentModel())
        let plan = TestCatalog.plan("p", model: "silent_model", "  fee: 0.01")
        let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                                          CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules)], plugins: registry)
        #expect(compilation.catalog == nil)
        #expect(compilation.diagnostics.map(\.code) == ["plugin-silent-refusal"])
    }

    @Test("free_executions on a per_call plan does not compile (every call would be free)")
    func freeExecutionsOnPerCall() throws {
        let plan = TestCatalog.plan("p", model: "per_call", "  fee: 0.01", extra: "rules:\n  - kind: free_executions\n    count: 2\n")
        let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                                          CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules)])
        #expect(compilation.catalog == nil)
        #expect(compilation.errorCount == 1)
    }
}

/// Fuzzed graphs: random, also invalid, plugin output lowered through the verifier and the
/// evaluator. Every input either prices (charge >= 0, lines adding up to it) or is refused with
/// diagnostics; nothing traps (a trap would end the test process).
@Suite("Fuzzed rule graphs")
struct FuzzedGraphTests {
    /// Values at and around every boundary the engine cares about.
    static let picks: [Int128] = [0, 1, -1, 999_999, 1_000_000, 12_345_678, 1_000_000_000_000, 10_000_000_000_000_000,
                                  PlanMoney.maximumWholeUnits * 1_000_000_000_000, PlanMoney.maximumWholeUnits * 1_000_000_000_000 + 1,
                                  Int128(Int64.max), Int128.max / 2, -Int128(Int64.max)]

    /// Decodes genes into one operation (any operation, any payload, valid or not).
    static func operation(_ genes: inout [Int]) -> RuleOperation {
        func next() -> Int { genes.isEmpty ? 0 : genes.removeFirst() }
        func pick() -> Int128 { picks[Int(next().magnitude % UInt(picks.count))] }
        func small() -> Int { next() % 40 - 4 }
        func money() -> PlanMoney { PlanMoney(picos: pick()) }
        func percent() -> Percent { Percent(partsPerMillion: [0, 1, 500_000, 1_000_000, 1_000_001, -5, Int64.max][Int(next().magnitude % 7)]) }
        func units() -> ComputeUnits { ComputeUnits(millis: Int64(truncatingIfNeeded: pick())) }
        func condition(depth: Int) -> ExecutionCondition {
            switch next().magnitude % 6 {
            case 0: .weekdays(mask: UInt8(truncatingIfNeeded: next()), clock: .utcOffset(seconds: Int64(small()) * 3_600))
            case 1: .hours(fromHour: small(), toHour: small(), clock: .utc)
            case 2: .dateRange(from: Timestamp(nanosecondsSinceEpoch: Int64(truncatingIfNeeded: pick())), to: nil)
            case 3: .meterAtLeast(meter: MeterIndex(rawValue: small()), threshold: MeterValue(micros: Int64(truncatingIfNeeded: pick())))
            case 4 where depth < 3: .all([condition(depth: depth + 1), condition(depth: depth + 1)])
            default: .all([])
            }
        }
        switch next().magnitude % 14 {
        case 0: return .perExecutionFee(money())
        case 1: return .allowanceOverage(allowance: units(), overagePerUnit: money())
        case 2:
            let count = next().magnitude % 4
            return .graduatedTiers((0..<count).map { _ in PriceTier(upTo: next() % 3 == 0 ? nil : units(), price: money()) })
        case 3: return .percentOff(percent())
        case 4: return .roundHalfEven
        case 5: return .capPerExecution(money())
        case 6: return .spendCap(money())
        case 7: return .conditionalPercentOff(percent(), condition(depth: 0))
        case 8: return .minimumCharge(money())
        case 9: return .meterSurcharge(meter: MeterIndex(rawValue: small()), pricePerUnit: money())
        case 10: return .freeExecutions(count: Int64(small()))
        case 11: return .periodFee(money())
        case 12: return .commitmentShortfall(money())
        default: return .slaCredit(promised: percent(), bands: [SLABand(below: percent(), credit: percent())])
        }
    }

    /// A definition from genes: plan 0 of the base catalog with a random pipeline, period,
    /// metering and phases.
    static func definition(_ genes: [Int]) throws -> CatalogDefinition {
        var genes = genes
        var definition = try GraphVerifierTests.base()
        var plan = definition.plans[0]
        func next() -> Int { genes.isEmpty ? 0 : genes.removeFirst() }
        plan.period = next() % 3 == 0 ? nil : .month
        plan.metering.precision = ComputeUnits(millis: [1, 0, -1, 1_000, 7][Int(next().magnitude % 5)])
        if next() % 4 == 0 {
            plan.metering.weights.append(.init(meter: MeterIndex(rawValue: next() % 20), weight: MeterWeight(nanos: Int64(next() % 2_000_000_000_000_000)),
                                               location: plan.metering.location))
        }
        let count = Int(next().magnitude % 9)
        plan.executionNodes = (0..<count).map { _ in GraphVerifierTests.node(operation(&genes)) }
        plan.periodNodes = next() % 3 == 0 ? [GraphVerifierTests.node(operation(&genes))] : plan.periodNodes
        plan.phases = next() % 4 == 0 ? PipelinePhases(rulesStart: next() % 10, guardrailsStart: next() % 10) : PipelinePhases(inferredFrom: plan.executionNodes)
        plan.quoteIsExact = next() % 5 == 0
        definition.plans[0] = plan
        return definition
    }

    @Test("property: random plugin output either prices or is refused with diagnostics, never a trap")
    func randomGraphs() async throws {
        let executions = Gen.int(in: 0...Int(MeterValue.maximumWholeUnits * 1_000_000))
        await propertyCheck(count: 2_000, input: Gen.int(in: Int.min...Int.max).array(of: 10...80), executions, Gen.int(in: 0...Int(Int64.max)), Gen.bool) {
            genes, reading, used, failed in
            guard let definition = try? Self.definition(genes) else { return }
            let catalog: CompiledCatalog
            do throws(InvalidCatalogGraph) {
                catalog = try CompiledCatalog(definition)
            } catch {
                #expect(!error.diagnostics.isEmpty)
                #expect(error.diagnostics.allSatisfy { $0.severity == .error && $0.message.contains("plugin '") })
                return
            }
            var readings = MeterReadings()
            for meter in 0..<MeterReadings.capacity { readings[MeterIndex(rawValue: meter)] = MeterValue(micros: Int64(reading) / Int64(meter + 1)) }
            let state = PeriodState(usedComputeUnits: ComputeUnits(millis: Int64(used)), usageCharges: Money(micros: Int64(used / 3)), executions: Int64(used % 5))
            let handle = catalog.allPlans[0]
            let endedAt = Timestamp(nanosecondsSinceEpoch: Int64(used % 4_000_000_000_000_000_000))
            let result = catalog.price(handle, ExecutionInput(meters: readings, failed: failed, endedAt: endedAt), state: state)
            #expect(result.charge.micros >= 0)
            if result.refusal == nil {
                #expect(result.lines.reduce(Int64(0)) { $0 &+ $1.amount.micros } == result.charge.micros)
            }
            _ = catalog.explain(handle, ExecutionInput(meters: readings, endedAt: endedAt), state: state)
            _ = catalog.periodStartLines(handle)
            _ = catalog.periodEndLines(handle, state: state, fees: Money(micros: Int64(used % 1_000_000_000)))
        }
    }

    /// A rule kind whose nodes come from genes: random output through the whole compiler.
    struct FuzzRule: RuleKindPlugin {
        let kind = "fuzz"
        let nodes: [RuleNode]
        func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? { nodes.isEmpty ? nil : nodes }
    }

    @Test("property: random rule-kind output through the compiler compiles and prices, or is refused with diagnostics")
    func randomRuleKinds() async throws {
        await propertyCheck(count: 500, input: Gen.int(in: Int.min...Int.max).array(of: 4...40), Gen.bool) { genes, perCall in
            var genes = genes
            let nodes = (0..<(genes.count / 8)).map { _ in GraphVerifierTests.node(Self.operation(&genes), plugin: "fuzz") }
            var registry = ShippedPlugins.registry
            registry.register(ruleKind: FuzzRule(nodes: nodes))
            let plan = perCall
                ? TestCatalog.plan("p", model: "per_call", "  fee: 0.01", extra: "rules:\n  - kind: fuzz\n")
                : TestCatalog.plan("p", model: "enterprise", "  period: month\n  fee: 1\n  usage:\n    - price: 0.01\n  guardrails: { max_cost_per_execution: 0.05, spend_cap: 100 }",
                                   extra: "rules:\n  - kind: fuzz\n")
            let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/p.yaml", text: plan, kind: .plan),
                                                              CatalogSource(path: "rules/r.yaml", text: TestCatalog.rules, kind: .rules)], plugins: registry)
            guard let catalog = compilation.catalog else {
                #expect(compilation.errorCount > 0)
                return
            }
            let result = catalog.price(catalog.allPlans[0], ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 123_456, "inference_calls": 7])), state: .empty)
            #expect(result.charge.micros >= 0)
            // The guardrails run last: whatever the rules add, the cap holds.
            if !perCall { #expect(result.charge <= TestCatalog.money("0.05")) }
        }
    }
}
