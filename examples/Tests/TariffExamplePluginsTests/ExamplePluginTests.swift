import Foundation
import Tariff
import TariffExamplePlugins
import Testing

/// The third-party example (examples/Sources/TariffExamplePlugins), compiled and priced like the shipped
/// plugins. Amounts are worked out by hand in the comments.
@Suite("Example plugins: prepaid_bundle and cap_per_execution")
struct ExamplePluginTests {
    /// The examples package (examples/): its catalog and its sources.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var registry: PluginRegistry {
        var registry = ShippedPlugins.registry
        ExamplePlugins.register(into: &registry)
        return registry
    }

    static let rules = """
        metering:
          standard:
            weights: { cpu_ms: 0.001, inference_calls: 0.5 }
        splits:
          standard: { creator: 80%, platform: 15%, processing: 5% }

        """

    /// A bundle plan with the section body `section` (indented by two spaces) and optional extra lines.
    static func bundle(_ section: String, currency: String = "USD", extra: String = "") -> String {
        "plan: bundle\nagent: agt_demo\ncreator: acct_demo\ncurrency: \(currency)\nmodel: prepaid_bundle\nprepaid_bundle:\n\(section)\n\(extra)"
    }

    static func compile(_ plan: String, registry: PluginRegistry = registry) -> CatalogCompilation {
        CatalogLoader.compile(sources: [CatalogSource(path: "plans/bundle.yaml", text: plan, kind: .plan),
                                        CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules)], plugins: registry)
    }

    static func summary(_ compilation: CatalogCompilation) -> [String] {
        compilation.diagnostics.map { "\($0.severity.rawValue) \($0.code) \($0.location)" }
    }

    static func price(_ catalog: CompiledCatalog, cpuMilliseconds: Int64, periodUsage: String) throws -> PricingResult {
        let handle = try #require(catalog.plan(id: "bundle", version: 1))
        var meters = MeterReadings()
        meters[try #require(catalog.meter(named: "cpu_ms"))] = MeterValue(micros: cpuMilliseconds * 1_000_000)
        let usage = try ComputeUnits(parsing: Substring(periodUsage))
        return catalog.price(handle, ExecutionInput(meters: meters), state: PeriodState(usedComputeUnits: usage))
    }

    @Test("the examples/ catalog compiles cleanly with the example plugins, and all its plan tests pass")
    func examplesCatalog() throws {
        let folder = Self.packageRoot.path
        let compilation = CatalogLoader.compile(plansDirectory: folder + "/plans", rulesDirectory: folder + "/rules", plugins: Self.registry)
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let catalog = try #require(compilation.catalog)
        let outcomes = PlanTestRunner.run(catalog)
        #expect(outcomes.count == 6)
        #expect(outcomes.allSatisfy { $0.passed }, "\(outcomes.filter { !$0.passed }.map { ($0.name, $0.mismatches.map(\.field)) })")
        // Without the plugins, the same catalog names an unknown model and an unknown rule kind.
        let shipped = CatalogLoader.compile(plansDirectory: folder + "/plans", rulesDirectory: folder + "/rules")
        #expect(Set(shipped.diagnostics.map(\.code.rawValue)) == ["unknown-model", "unknown-rule-kind"])
    }

    @Test("a bundle prices like an allowance: free inside, the fallback rate past it, the price at each period start")
    func bundlePricing() throws {
        let catalog = try #require(Self.compile(Self.bundle("  price: 25.00\n  units: 5000\n  fallback: 0.006")).catalog)
        // 4990 used + 20 CU: 10 inside, 10 past at 0.006 = 0.06.
        #expect(try Self.price(catalog, cpuMilliseconds: 20_000, periodUsage: "4990").charge == Money(micros: 60_000))
        // 1000 used + 20 CU: all inside.
        #expect(try Self.price(catalog, cpuMilliseconds: 20_000, periodUsage: "1000").charge == .zero)
        let handle = try #require(catalog.plan(id: "bundle", version: 1))
        #expect(catalog.plan(handle).period == .month)   // the default period
        #expect(catalog.periodStartLines(handle).map(\.amount) == [Money(micros: 25_000_000)])
        #expect(catalog.plan(handle).executionNodes.first?.plugin == "prepaid_bundle")
    }

    @Test("without fallback, past the bundle costs the bundle's own rate, rounded up to 12 decimals")
    func defaultFallback() throws {
        // 10.00 / 3 CU = 3.333... -> 3.333333333334 per CU (rounded up, never below the bundle's rate).
        let compilation = Self.compile(Self.bundle("  price: 10.00\n  units: 3\n  period: week"))
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let catalog = try #require(compilation.catalog)
        let node = try #require(catalog.definition.plans.first?.executionNodes.first)
        #expect(node.operation == .allowanceOverage(allowance: ComputeUnits(millis: 3_000), overagePerUnit: PlanMoney(picos: 3_333_333_333_334)))
        // 3 CU past the bundle: 3 x 3.333333333334 = 10.000000000002 -> 10.000000 (half-even to micro-units).
        #expect(try Self.price(catalog, cpuMilliseconds: 3_000, periodUsage: "3").charge == Money(micros: 10_000_000))
        #expect(catalog.definition.plans.first?.period == .week)
    }

    @Test("the bundle's options are checked at their positions, with the core's codes")
    func bundleDiagnostics() throws {
        // The section is lines 7-9 ("  price", "  units"/"  unts", "  fallback"); values at column 10 (price) or 10 (units).
        let misspelt = Self.compile(Self.bundle("  price: 25.00\n  unts: 5000"))
        #expect(Self.summary(misspelt) == ["error unknown-key plans/bundle.yaml:8:3"])
        #expect(misspelt.diagnostics.first?.message == "unknown key 'unts'; did you mean 'units'?")
        #expect(Self.summary(Self.compile(Self.bundle("  price: 25.00\n  units: 0"))) == ["error invalid-value plans/bundle.yaml:8:10"])
        #expect(Self.summary(Self.compile(Self.bundle("  price: 25.00\n  units: 5000\n  period: monthly"))) == ["error invalid-value plans/bundle.yaml:9:11"])
        #expect(Self.summary(Self.compile(Self.bundle("  units: 5000"))) == ["error missing-key plans/bundle.yaml:6:1"])
        #expect(Self.summary(Self.compile(Self.bundle("  price: 2.5e1\n  units: 5000"))) == ["error exponent-number plans/bundle.yaml:7:10"])
        // The core's reviewer checks, under the bundle's own names: 25.00 / 5000 = 0.005 per CU.
        let cheap = Self.compile(Self.bundle("  price: 25.00\n  units: 5000\n  fallback: 0.004"))
        #expect(Self.summary(cheap) == ["warning cheap-overage plans/bundle.yaml:9:13"])
        #expect(cheap.diagnostics.first?.message == "the fallback 0.004 per CU is cheaper than the included units' own price (price 25 / units 5000 CU = 0.005 per CU): usage beyond the units costs less than usage inside it")
        let yen = Self.compile(Self.bundle("  price: 2500.5\n  units: 5000", currency: "JPY"))
        #expect(Self.summary(yen) == ["warning sub-minor-unit plans/bundle.yaml:7:10"])
        // A section for another model is unused; the bundle without its plugin is an unknown model.
        #expect(Self.summary(Self.compile(Self.bundle("  price: 25.00\n  units: 5000", extra: "per_call:\n  fee: 1\n")))
                == ["error unused-section plans/bundle.yaml:9:1"])
        #expect(Self.summary(Self.compile(Self.bundle("  price: 25.00\n  units: 5000"), registry: ShippedPlugins.registry))
                == ["error unknown-model plans/bundle.yaml:5:8"])
    }

    @Test("cap_per_execution caps any model's charge, after the rules before it")
    func capRule() throws {
        let plan = """
            plan: bundle
            agent: agt_demo
            creator: acct_demo
            currency: USD
            model: per_call
            per_call:
              fee: 0.01
            rules:
              - kind: surcharge
                meter: inference_calls
                per_unit: 0.01
              - kind: cap_per_execution
                amount: "0.2500005"

            """
        let catalog = try #require(Self.compile(plan).catalog)
        let handle = try #require(catalog.plan(id: "bundle", version: 1))
        func charge(calls: Int64) throws -> Money {
            var meters = MeterReadings()
            meters[try #require(catalog.meter(named: "inference_calls"))] = MeterValue(micros: calls * 1_000_000)
            return catalog.price(handle, ExecutionInput(meters: meters), state: .empty).charge
        }
        #expect(try charge(calls: 3) == Money(micros: 40_000))      // 0.01 + 3 x 0.01 = 0.04, under the cap
        // 0.01 + 100 x 0.01 = 1.01 -> the cap 0.2500005 -> half-even to micro-units: 0.250000 (the 5 is a tie, 0 is even).
        #expect(try charge(calls: 100) == Money(micros: 250_000))
        let zero = Self.compile(plan.replacingOccurrences(of: "amount: \"0.2500005\"", with: "amount: 0"))
        #expect(Self.summary(zero) == ["error invalid-value plans/bundle.yaml:13:13"])
        let misspelt = Self.compile(plan.replacingOccurrences(of: "amount:", with: "amout:"))
        #expect(Self.summary(misspelt) == ["error unknown-key plans/bundle.yaml:13:5"])
    }

    @Test("the plugins' schemas list exactly the options they read")
    func schemasMatchTheReaders() throws {
        let diagnostics = DiagnosticSink()
        let context = PlanLoweringContext(planID: "p", currency: Currency(code: "USD"), meterNames: ["cpu_ms"])
        let location = SourceLocation(file: "p.yaml", line: 1, column: 1)
        let section = MappingReader(pairs: [], location: location, context: "s", diagnostics: diagnostics)
        _ = PrepaidBundleModel().lower(section, context: context)
        #expect(section.knownKeys.sorted() == (PrepaidBundleModel().sectionSchema?.names ?? []).sorted())
        let options = MappingReader(pairs: [], location: location, context: "r", diagnostics: diagnostics)
        _ = CapPerExecutionRule().lower(options, context: context)
        #expect(options.knownKeys.sorted() == (CapPerExecutionRule().optionsSchema?.names ?? []).sorted())
        let schema = CatalogSchema.make(registry: Self.registry)
        #expect(schema["$defs"]?["model_prepaid_bundle"]?["properties"]?["units"] != nil)
        #expect(schema["$defs"]?["rule_cap_per_execution"]?["properties"]?["amount"] != nil)
    }

    @Test("the options are declared once: defaults and examples read with their types, the reference renders them")
    func optionsAreDeclaredOnce() throws {
        #expect(PrepaidBundleModel.Options.schema.declarationProblems().isEmpty)
        #expect(CapPerExecutionRule.Options.schema.declarationProblems().isEmpty)
        // The declared default is the one applied: a bundle without `period` is monthly.
        #expect(PrepaidBundleModel.Options.period.defaultValue == "month")
        let reference = OptionsReference.markdown(registry: Self.registry)
        #expect(reference.contains("<!-- options: model prepaid_bundle -->"))
        #expect(reference.contains("| `units` | compute units | required | `5000` | Compute units the price buys, per period (more than 0; unused units expire). |"))
        #expect(reference.contains("| `fallback` | money | price / units, rounded up to 12 decimals |  | Price per compute unit past the bundle. |"))
    }

    @Test("the example uses the public API only: it imports TariffCompiler and TariffCore, nothing @testable")
    func publicAPIOnly() throws {
        let folder = Self.packageRoot.appendingPathComponent("Sources/TariffExamplePlugins")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".swift") }
        #expect(!files.isEmpty)
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            let imports = text.split(separator: "\n").filter { $0.hasPrefix("import ") || $0.contains("@testable") || $0.contains("@_spi") }
            #expect(Set(imports.map(String.init)).isSubset(of: ["import TariffCompiler", "import TariffCore"]), "\(file): \(imports)")
        }
    }
}
