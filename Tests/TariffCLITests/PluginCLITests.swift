import Foundation
import Testing

/// The third-party example plugins through the `tariff` executable (`--plugins examples`).
@Suite("tariff --plugins examples")
struct PluginCLITests {
    @Test("--plugins examples adds the example's model and rule kind")
    func pluginsInTheSchema() throws {
        let run = try CLITests.run(["schema", "--plugins", "examples"])
        #expect(run.status == 0)
        #expect(run.output.contains("\"model_prepaid_bundle\""))
        #expect(run.output.contains("\"rule_cap_per_execution\""))
        #expect(!(try CLITests.run(["schema"]).output.contains("prepaid_bundle")))
    }

    @Test("the examples validate against the schema with their plugins, not without",
          .enabled(if: SchemaCLITests.validatorAvailable, "python3 with jsonschema and PyYAML is not installed (pip install jsonschema pyyaml)"))
    func examplesValidate() throws {
        let files = SchemaCLITests.yamlFiles("examples/plans") + SchemaCLITests.yamlFiles("examples/rules")
        for (file, result) in try SchemaCLITests.validate(files, schema: try SchemaCLITests.schemaFile(["--plugins", "examples"])) {
            #expect(result.text.isEmpty && result.typed.isEmpty, "\(file): \(result.text) \(result.typed)")
        }
        let shipped = try SchemaCLITests.validate(SchemaCLITests.yamlFiles("examples/plans"), schema: try SchemaCLITests.schemaFile())
        #expect(shipped.values.allSatisfy { !$0.text.isEmpty })
    }

    @Test("check and test the examples/ catalog with the example plugins")
    func checkAndTest() throws {
        let check = try CLITests.run(["check", "--plugins", "examples", "examples"])
        #expect(check.status == 0)
        #expect(check.output.contains("3 plan file(s): 0 error(s), 0 warning(s)"))
        let test = try CLITests.run(["test", "--plugins", "examples", "examples"])
        #expect(test.status == 0)
        #expect(test.output.contains("6 passed, 0 failed"))
        // Without the plugins: unknown model and rule kind, exit 1.
        let without = try CLITests.run(["check", "examples"])
        #expect(without.status == 1)
        #expect(without.output.contains("error[unknown-model]: unknown model 'prepaid_bundle'"))
        #expect(try CLITests.run(["check", "--plugins", "nonsense"]).status == 2)
    }

    @Test("quote prices a prepaid_bundle plan: 1.7 CU past the bundle x 0.006 = 0.0102")
    func quoteBundle() throws {
        let run = try CLITests.run(["quote", "--plugins", "examples", "--plans", "examples/plans", "--rules", "examples/rules",
                                    "--plan", "research-bundle", "--meter", "cpu_ms=1200", "--meter", "inference_calls=3",
                                    "--period-usage", "4999", "--at", "2026-12-01", "--format", "json", "--explain"])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.hasPrefix(#"{"plan":"research-bundle","version":1,"currency":"USD","model":"prepaid_bundle","compute_units":"2.700","charge":"0.010200","split":{"creator":"0.008160","platform":"0.001530","processing":"0.000510"},"lines":[{"rule":"fallback","amount":"0.010200","source":"examples/plans/research-bundle.yaml:12:3"}]"#))
        #expect(run.output.contains(#""kind":"cap_per_execution","rule":"cap_per_execution","source":"examples/plans/research-bundle.yaml:15:5""#))
    }

    @Test("quote: the cap rule on a per-call plan, line by line; a surcharge makes the quote an estimate")
    func quoteCap() throws {
        let run = try CLITests.run(["quote", "--plugins", "examples", "--plans", "examples/plans", "--rules", "examples/rules",
                                    "--plan", "translate-payg", "--meter", "inference_calls=100", "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        // 0.01 fee, + 100 x 0.01 surcharge = 1.01, capped at 0.25: lines 0.01, +1.00, -0.76.
        #expect(run.output.contains(#""charge":"0.250000""#))
        #expect(run.output.contains(#""lines":[{"rule":"fee","amount":"0.010000","source":"examples/plans/translate-payg.yaml:9:3"},{"rule":"surcharge","amount":"1.000000","source":"examples/plans/translate-payg.yaml:13:5"},{"rule":"cap_per_execution","amount":"-0.760000","source":"examples/plans/translate-payg.yaml:15:5"}]"#))
        #expect(run.output.contains(#""exact":false"#))
        let graph = try CLITests.run(["graph", "--plugins", "examples", "--plans", "examples/plans", "--rules", "examples/rules",
                                      "--plan", "research-bundle", "--format", "json"])
        #expect(graph.output.contains(#""kind":"allowance_overage","rule":"fallback""#))
        #expect(graph.output.contains(#""kind":"period_fee","rule":"bundle""#))
    }
}
