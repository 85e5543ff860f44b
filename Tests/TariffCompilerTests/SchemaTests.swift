import Foundation
import Tariff
import Testing

/// `tariff schema`'s Swift description: in step with what the plugins read, and valid JSON.
@Suite struct SchemaTests {
    static let context = PlanLoweringContext(planID: "p", currency: Currency(code: "USD"), meterNames: ["cpu_ms"])

    /// The keys a plugin asks its mapping for, lowering an empty one (every shipped plugin reads all
    /// of its options before it gives up on missing ones).
    static func keysRead(_ lower: (MappingReader) -> Void) -> [String] {
        let reader = MappingReader(pairs: [], location: SourceLocation(file: "p.yaml", line: 1, column: 1), context: "s", diagnostics: DiagnosticSink())
        lower(reader)
        return reader.knownKeys.sorted()
    }

    @Test(arguments: ShippedPlugins.registry.models.map(\.name))
    func everyModelOptionIsInTheSchema(_ name: String) throws {
        let model = try #require(ShippedPlugins.registry.model(named: name))
        let schema = try #require(model.sectionSchema, "\(name) gives no schema")
        #expect(Self.keysRead { _ = model.lower($0, context: Self.context) } == schema.names.sorted())
    }

    @Test(arguments: ShippedPlugins.registry.ruleKinds.map(\.kind))
    func everyRuleOptionIsInTheSchema(_ kind: String) throws {
        let rule = try #require(ShippedPlugins.registry.ruleKind(named: kind))
        let schema = try #require(rule.optionsSchema, "\(kind) gives no schema")
        #expect(Self.keysRead { _ = rule.lower($0, context: Self.context) } == schema.names.sorted())
    }

    /// docs/plan-authoring.md has a table row for every option of every shipped model and rule kind.
    @Test func everyOptionIsInThePlanAuthorsGuide() throws {
        let guide = try String(contentsOf: SourceCodes.packageRoot.appendingPathComponent("docs/plan-authoring.md"), encoding: .utf8)
        let names = ShippedPlugins.registry.models.flatMap { $0.sectionSchema?.names ?? [] }
            + ShippedPlugins.registry.ruleKinds.flatMap { $0.optionsSchema?.names ?? [] }
        let missing = Set(names).filter { !guide.contains("| `\($0)` |") }
        #expect(missing.isEmpty, "docs/plan-authoring.md has no row for \(missing.sorted())")
    }

    @Test func theSchemaIsJSONWithEveryPluginAndValueType() throws {
        let text = CatalogSchema.make(registry: ShippedPlugins.registry).rendered()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        let definitions = try #require(object["$defs"] as? [String: Any])
        for name in ["plan_file", "rules_file", "money", "percent", "model_per_call", "model_subscription", "model_enterprise",
                     "rule_discount", "rule_minimum_charge", "rule_surcharge", "rule_free_executions"] {
            #expect(definitions[name] != nil, "no $defs/\(name)")
        }
        // The committed copy (what editors point at) is exactly what the shipped registry renders.
        let committed = try String(contentsOf: SourceCodes.packageRoot.appendingPathComponent("schema/tariff.schema.json"), encoding: .utf8)
        // `tariff schema` prints it with one newline at the end.
        #expect(text + "\n" == committed, "regenerate it: swift run tariff schema > schema/tariff.schema.json")
    }

    @Test func aPluginWithoutASchemaGetsAnOpenSection() throws {
        struct Bare: BillingModelPlugin {
            let name = "bare"
            func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? { nil }
        }
        var registry = ShippedPlugins.registry
        registry.register(model: Bare())
        let section = try #require(CatalogSchema.make(registry: registry)["$defs"]?["model_bare"])
        #expect(section["type"] == "object")
        #expect(section["additionalProperties"] == nil)
    }

    @Test func stringsAreEscaped() {
        let value: SchemaValue = ["a\"b": "line\nbreak \\ tab\t\u{1}"]
        #expect(value.rendered() == "{\n  \"a\\\"b\": \"line\\nbreak \\\\ tab\\t\\u0001\"\n}")
    }

    @Test func smallIntegerRangesAreSpelledOutInThePattern() throws {
        let pattern = try #require(OptionType.integer(0...23).schema["pattern"])
        guard case .string(let text) = pattern else { Issue.record("no pattern"); return }
        let regex = try Regex(text)
        for accepted in ["0", "9", "23", "+5", "05", "23.0"] { #expect(accepted.wholeMatch(of: regex) != nil, "\(accepted)") }
        for refused in ["24", "25", "-1", "2.5", "x"] { #expect(refused.wholeMatch(of: regex) == nil, "\(refused)") }
    }
}
