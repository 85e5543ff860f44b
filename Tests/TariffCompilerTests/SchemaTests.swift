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

    /// The option tables of docs/plan-authoring.md are exactly what the declarations render, one
    /// block for every shipped model and rule kind (refresh: tools/plugin_docs.py).
    @Test func theGuideTablesAreTheDeclarations() throws {
        let guide = try String(contentsOf: SourceCodes.packageRoot.appendingPathComponent("docs/plan-authoring.md"), encoding: .utf8)
        let schemas = ShippedPlugins.registry.models.map { ("model \($0.name)", $0.sectionSchema) }
            + ShippedPlugins.registry.ruleKinds.map { ("rule \($0.kind)", $0.optionsSchema) }
        for (marker, schema) in schemas {
            let schema = try #require(schema, "\(marker) declares no options")
            let begin = try #require(guide.range(of: OptionsReference.begin(marker) + "\n"), "docs/plan-authoring.md has no block for \(marker)")
            let end = try #require(guide.range(of: "\n" + OptionsReference.end, range: begin.upperBound..<guide.endIndex))
            #expect(String(guide[begin.upperBound..<end.lowerBound]) == OptionsReference.markdown(schema),
                    "the \(marker) table differs from its declarations: run tools/plugin_docs.py")
        }
    }

    /// Every declared default and example is a value of the option's own type: the reader applies
    /// the default as written, and the guide shows the example.
    @Test func everyDefaultAndExampleReadsWithItsType() throws {
        let schemas = ShippedPlugins.registry.models.compactMap(\.sectionSchema) + ShippedPlugins.registry.ruleKinds.compactMap(\.optionsSchema)
        for schema in schemas { #expect(schema.declarationProblems().isEmpty, "\(schema.declarationProblems())") }
        // And the check itself sees a bad one (an example of the wrong type, a default its type refuses).
        let bad = OptionsSchema("bad", declaring: [
            PluginOption("fee", .money, "x", example: "15%"),
            PluginOption("flag", .boolean, "x", default: "yes"),
            OptionSchema("nested", .mapping(OptionsSchema("n", declaring: [PluginOption("count", .integer(in: 1...3), "x", example: "4")])), "x"),
        ])
        #expect(bad.declarationProblems().count == 3)
        #expect(bad.declarationProblems().last?.hasPrefix("nested > count:") == true)
    }

    /// A declared default is what the reader gives for an option left out, at the mapping's
    /// position; written, the option reads as written; written wrong, it reads as absent (reported).
    @Test func theReaderAppliesTheDeclaredDefault() throws {
        let option = PluginOption("period", .oneOf(["week", "month"]), "How often.", default: "month")
        let location = SourceLocation(file: "p.yaml", line: 3, column: 1)
        let empty = MappingReader(pairs: [], location: location, context: "s", diagnostics: DiagnosticSink())
        let defaulted = try #require(empty.read(option))
        #expect(defaulted.value == "month")
        #expect(defaulted.keyLocation == location)
        let written = YAMLPair(key: "period", keyLocation: location, value: YAMLNode(kind: .scalar("week", plain: true), location: location))
        #expect(MappingReader(pairs: [written], location: location, context: "s", diagnostics: DiagnosticSink()).value(option) == "week")
        let wrong = YAMLPair(key: "period", keyLocation: location, value: YAMLNode(kind: .scalar("mnth", plain: true), location: location))
        let diagnostics = DiagnosticSink()
        #expect(MappingReader(pairs: [wrong], location: location, context: "s", diagnostics: diagnostics).read(option) == nil)
        #expect(diagnostics.diagnostics.map(\.code) == ["invalid-value"])
        // Required: `missing-key`, never a default.
        let required = PluginOption("fee", .money, required: true, "x", example: "0.02")
        let sink = DiagnosticSink()
        #expect(MappingReader(pairs: [], location: location, context: "s", diagnostics: sink).read(required) == nil)
        #expect(sink.diagnostics.map(\.code) == ["missing-key"])
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
