import Tariff
import Testing

/// Builds small in-memory catalogs for the engine tests (the rules of plans.md's examples).
enum TestCatalog {
    static let rules = """
    metering:
      standard:
        weights: { cpu_ms: 0.001, memory_mb_s: 0.0001, network_kb: 0.0005, inference_calls: 0.5 }
        precision: 0.001
    splits:
      standard: { creator: 80%, platform: 15%, processing: 5% }
    """

    /// Compiles `plans` (file name -> YAML) with the standard rules; records a test issue on errors.
    static func compile(_ plans: [String: String], rules: String = rules, sourceLocation: SourceLocation = #_sourceLocation) -> CompiledCatalog? {
        var sources = plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules))
        let compilation = CatalogLoader.compile(sources: sources)
        if compilation.catalog == nil {
            Issue.record("catalog did not compile: \(compilation.diagnostics.map(\.description))", sourceLocation: sourceLocation)
        }
        return compilation.catalog
    }

    static func plan(_ id: String, agent: String = "agt_test", model: String, _ section: String, extra: String = "") -> String {
        """
        plan: \(id)
        agent: \(agent)
        creator: acct_test
        currency: USD
        model: \(model)
        \(model):
        \(section)
        \(extra)
        """
    }

    /// Readings by meter name.
    static func meters(_ catalog: CompiledCatalog, _ values: [String: Int64]) -> MeterReadings {
        var readings = MeterReadings()
        for (name, whole) in values {
            if let meter = catalog.meter(named: name) { readings[meter] = MeterValue(micros: whole * 1_000_000) }
        }
        return readings
    }

    static func money(_ text: String) -> Money {
        (try? Money(parsing: Substring(text), allowNegative: true)) ?? Money(micros: Int64.min)
    }

    static func units(_ text: String) -> ComputeUnits {
        (try? ComputeUnits(parsing: Substring(text))) ?? ComputeUnits(millis: -1)
    }
}

typealias SourceLocation = Testing.SourceLocation
