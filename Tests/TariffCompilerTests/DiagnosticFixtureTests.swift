import Foundation
import Tariff
import Testing

/// The diagnostic fixtures: `Fixtures/<code>/` (and variants `Fixtures/<code>.<variant>/`) each hold a
/// small catalog, `plans/` and `rules/`, made from one valid catalog (`Fixtures/valid/`) by exactly
/// one mistake, and `expected.txt`: the diagnostics it must produce, one a line, as
/// `severity code file:line:column` with the file relative to the fixture folder.
enum DiagnosticFixtures {
    static let root: URL = {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            fatalError("the Fixtures resource folder is missing from the test bundle")
        }
        return url
    }()

    /// Every fixture folder, sorted.
    static let names: [String] = {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return entries.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }()

    /// The code a fixture is for: its folder name up to the first `.` (`unknown-key.section` -> `unknown-key`).
    static func code(of fixture: String) -> String {
        String(fixture.prefix { $0 != "." })
    }

    static func expectedLines(of fixture: String) throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent(fixture).appendingPathComponent("expected.txt"), encoding: .utf8)
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Compiles a fixture from disk, as `tariff check` does, and renders its diagnostics like expected.txt.
    static func actualLines(of fixture: String) -> [String] {
        let folder = root.appendingPathComponent(fixture).path
        let compilation = CatalogLoader.compile(plansDirectory: folder + "/plans", rulesDirectory: folder + "/rules")
        return compilation.diagnostics.map { render($0, relativeTo: folder) }
    }

    static func render(_ diagnostic: Diagnostic, relativeTo folder: String = "") -> String {
        var file = diagnostic.location.file
        let prefix = folder.isEmpty ? "" : folder + "/"
        if !prefix.isEmpty, file.hasPrefix(prefix) { file.removeFirst(prefix.count) }
        return "\(diagnostic.severity.rawValue) \(diagnostic.code.rawValue) \(file):\(diagnostic.location.line):\(diagnostic.location.column)"
    }
}

/// Every diagnostic code the compiler emits (see docs/diagnostics.md).
let allDiagnosticCodes: [String] = [
    "yaml-syntax", "duplicate-key", "yaml-alias", "yaml-too-deep", "file-too-large", "wrong-type", "unknown-key",
    "missing-key", "unknown-model", "unknown-rule-kind", "invalid-number", "exponent-number", "negative-amount",
    "too-many-digits", "out-of-range", "invalid-percent", "percent-range", "invalid-integer", "invalid-value",
    "invalid-id", "invalid-date", "unknown-currency", "tiers-not-increasing", "tiers-open-last", "split-sum",
    "unknown-metering", "unknown-split", "unknown-meter", "unknown-timezone", "duplicate-name", "duplicate-plan",
    "duplicate-effective", "version-mismatch", "default-mismatch", "default-not-per-call", "duplicate-default",
    "unreachable-plan", "spend-cap-below-execution-cap", "rule-needs-period", "unused-section", "limit-exceeded", "io-error", "empty-catalog",
    // The pricing reviewer's lint (warnings).
    "cheap-overage", "sub-minor-unit", "full-discount", "unreachable-band", "unreachable-rule", "overlapping-discounts",
    // The graph verifier and the plugins' contract.
    "unweighed-meter", "graph-needs-period", "invalid-graph", "plugin-silent-refusal", "invalid-plugin",
]

/// A mistake that is generated rather than stored (a file over 1 MiB, a limit of a hundred entries).
struct GeneratedCase: CustomTestStringConvertible, Sendable {
    var name: String
    var code: String
    var sources: @Sendable () -> [CatalogSource]
    var expected: [String]
    /// The plugins it compiles with: a graph only a faulty plugin produces needs that plugin.
    var registry: PluginRegistry = ShippedPlugins.registry
    var testDescription: String { name }
}

/// Faulty plugins, for the codes of the graph verifier (the shipped plugins cannot produce them).
enum FaultyPlugins {
    /// Lowers to a surcharge on meter #15 (the catalog has 2 meters).
    struct PastTheMeters: RuleKindPlugin {
        let kind = "past_the_meters"
        func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
            [RuleNode(rule: kind, operation: .meterSurcharge(meter: MeterIndex(rawValue: 15), pricePerUnit: PlanMoney(picos: 1)), location: options.location, plugin: kind)]
        }
    }
    /// Lowers to nothing and says nothing.
    struct Silent: RuleKindPlugin {
        let kind = "silent"
        func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? { nil }
    }
    /// A model without a period that still caps the period's spend.
    struct FlatWithSpendCap: BillingModelPlugin {
        let name = "flat"
        func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
            guard let fee = section.required("fee", .money) else { return nil }
            return ModelLowering(period: nil, billFailed: false, executionNodes: [
                RuleNode(rule: "fee", operation: .perExecutionFee(fee.value), location: fee.keyLocation, plugin: name),
                RuleNode(rule: "cap", operation: .spendCap(PlanMoney(picos: 1_000_000_000_000)), location: fee.keyLocation, plugin: name),
            ])
        }
    }
    static func registry(_ configure: (inout PluginRegistry) -> Void) -> PluginRegistry {
        var registry = ShippedPlugins.registry
        configure(&registry)
        return registry
    }
}

/// A minimal valid catalog in memory (the same as Fixtures/valid), for the generated cases.
enum MinimalCatalog {
    static let metering = """
        metering:
          standard:
            weights:
              cpu_ms: 0.001
              inference_calls: 0.5
            precision: 0.001

        """
    static let splits = """
        splits:
          standard:
            creator: 80%
            platform: 15%
            processing: 5%

        """
    static let plan = """
        plan: pro
        agent: agt_demo
        creator: acct_demo
        currency: USD
        model: subscription
        subscription:
          period: month
          fee: 49.00
          allowance: 10000
          overage: 0.005

        """

    static func sources(plan: String = plan, metering: String = metering, extra: [CatalogSource] = []) -> [CatalogSource] {
        [CatalogSource(path: "plans/pro.yaml", text: plan, kind: .plan),
         CatalogSource(path: "rules/metering.yaml", text: metering, kind: .rules),
         CatalogSource(path: "rules/splits.yaml", text: splits, kind: .rules)] + extra
    }
}

let generatedCases: [GeneratedCase] = [
    GeneratedCase(name: "file-too-large: a plan over 1 MiB", code: "file-too-large",
                  sources: { MinimalCatalog.sources(plan: MinimalCatalog.plan + String(repeating: "# padding to make the file too large\n", count: 30_000)) },
                  expected: ["error file-too-large plans/pro.yaml:1:1"]),
    GeneratedCase(name: "yaml-too-deep: 40 nested mappings", code: "yaml-too-deep",
                  sources: {
                      // Key i is on line i + 1 at column 2i + 1; the mapping at depth 32 is k31's value: line 33, column 65.
                      let text = (0..<40).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n")
                          + "\n" + String(repeating: "  ", count: 40) + "end\n"
                      return MinimalCatalog.sources(extra: [CatalogSource(path: "rules/deep.yaml", text: text, kind: .rules)])
                  },
                  expected: ["error yaml-too-deep rules/deep.yaml:33:65"]),
    GeneratedCase(name: "limit-exceeded: 17 rules in a plan", code: "limit-exceeded",
                  sources: {
                      let rules = String(repeating: "  - kind: minimum_charge\n    amount: 0.01\n", count: 17)
                      return MinimalCatalog.sources(plan: MinimalCatalog.plan + "rules:\n" + rules)
                  },
                  expected: ["error limit-exceeded plans/pro.yaml:11:1"]),
    GeneratedCase(name: "limit-exceeded: 65 usage tiers", code: "limit-exceeded",
                  sources: {
                      let tiers = (1...64).map { "    - up_to: \($0 * 1000)\n      price: 0.001\n" }.joined() + "    - price: 0.001\n"
                      let plan = "plan: corp\nagent: agt_demo\ncreator: acct_demo\ncurrency: USD\nmodel: enterprise\nenterprise:\n  period: month\n  fee: 100\n  usage:\n" + tiers
                      return MinimalCatalog.sources(plan: plan)
                  },
                  expected: ["error limit-exceeded plans/pro.yaml:9:3"]),
    GeneratedCase(name: "limit-exceeded: 17 meters", code: "limit-exceeded",
                  sources: {
                      // cpu_ms and inference_calls are on lines 4-5; meters m1...m15 follow, so m15 (the 17th) is on line 20.
                      let extra = (1...15).map { "      m\($0): 0.001\n" }.joined()
                      let metering = "metering:\n  standard:\n    weights:\n      cpu_ms: 0.001\n      inference_calls: 0.5\n" + extra
                      return MinimalCatalog.sources(metering: metering)
                  },
                  expected: ["error limit-exceeded rules/metering.yaml:20:7"]),
    // The graph verifier. `rules:` is line 11; its first entry's `kind` is at 12:5, its value at 12:11.
    GeneratedCase(name: "unweighed-meter: a surcharge on a meter only another metering weighs", code: "unweighed-meter",
                  sources: {
                      let metering = MinimalCatalog.metering + "  other:\n    weights:\n      m2: 0.001\n"
                      return MinimalCatalog.sources(plan: MinimalCatalog.plan + "rules:\n  - kind: surcharge\n    meter: m2\n    per_unit: 0.01\n", metering: metering)
                  },
                  expected: ["error unweighed-meter plans/pro.yaml:14:5"]),
    GeneratedCase(name: "invalid-graph: a rule kind lowering to a meter past the catalog's", code: "invalid-graph",
                  sources: { MinimalCatalog.sources(plan: MinimalCatalog.plan + "rules:\n  - kind: past_the_meters\n") },
                  expected: ["error invalid-graph plans/pro.yaml:12:5"],
                  registry: FaultyPlugins.registry { $0.register(ruleKind: FaultyPlugins.PastTheMeters()) }),
    GeneratedCase(name: "plugin-silent-refusal: a rule kind returning nil without a diagnostic", code: "plugin-silent-refusal",
                  sources: { MinimalCatalog.sources(plan: MinimalCatalog.plan + "rules:\n  - kind: silent\n") },
                  expected: ["error plugin-silent-refusal plans/pro.yaml:12:11"],
                  registry: FaultyPlugins.registry { $0.register(ruleKind: FaultyPlugins.Silent()) }),
    GeneratedCase(name: "invalid-plugin: a WebAssembly rule kind whose module cannot be read", code: "invalid-plugin",
                  sources: { MinimalCatalog.sources(extra: [CatalogSource(path: "rules/plugins.yaml", text: "plugins:\n  - kind: probe\n    wasm: absent-module.wasm\n", kind: .rules)]) },
                  expected: ["error invalid-plugin rules/plugins.yaml:3:11"]),
    // `fee:` of the flat section is line 7, column 3.
    GeneratedCase(name: "graph-needs-period: a model without a period lowering a spend cap", code: "graph-needs-period",
                  sources: { MinimalCatalog.sources(plan: "plan: pro\nagent: agt_demo\ncreator: acct_demo\ncurrency: USD\nmodel: flat\nflat:\n  fee: 0.01\n") },
                  expected: ["error graph-needs-period plans/pro.yaml:7:3"],
                  registry: FaultyPlugins.registry { $0.register(model: FaultyPlugins.FlatWithSpendCap()) }),
]

@Suite struct DiagnosticFixtureTests {
    @Test func fixturesAreFound() {
        #expect(DiagnosticFixtures.names.contains("valid"))
        #expect(DiagnosticFixtures.names.count >= 40)
    }

    @Test(arguments: DiagnosticFixtures.names)
    func fixture(_ name: String) throws {
        let expected = try DiagnosticFixtures.expectedLines(of: name)
        let actual = DiagnosticFixtures.actualLines(of: name)
        #expect(actual == expected, "fixture \(name)")
    }

    /// One mistake makes one diagnostic, not a cascade: every fixture expects exactly one, of its own code.
    @Test(arguments: DiagnosticFixtures.names.filter { $0 != "valid" })
    func oneMistakeOneDiagnostic(_ name: String) throws {
        let expected = try DiagnosticFixtures.expectedLines(of: name)
        #expect(expected.count == 1, "fixture \(name) expects \(expected.count) diagnostics")
        let code = DiagnosticFixtures.code(of: name)
        #expect(expected.allSatisfy { $0.split(separator: " ").dropFirst().first.map(String.init) == code }, "fixture \(name): \(expected)")
    }

    @Test func theValidCatalogHasNoDiagnostics() {
        #expect(DiagnosticFixtures.actualLines(of: "valid").isEmpty)
        #expect(CatalogLoader.compile(sources: MinimalCatalog.sources()).diagnostics.isEmpty)
    }

    @Test(arguments: generatedCases)
    func generated(_ testCase: GeneratedCase) {
        let compilation = CatalogLoader.compile(sources: testCase.sources(), plugins: testCase.registry)
        #expect(compilation.diagnostics.map { DiagnosticFixtures.render($0) } == testCase.expected)
        #expect(compilation.catalog == nil)
    }

    /// libyaml's own nesting bound (1000 levels) is the same mistake as the compiler's 32.
    @Test func nestingPastLibYAMLsLimitIsTooDeep() {
        let text = String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000) + "\n"
        let compilation = CatalogLoader.compile(sources: MinimalCatalog.sources(extra: [CatalogSource(path: "rules/deep.yaml", text: text, kind: .rules)]))
        #expect(compilation.diagnostics.map(\.code.rawValue) == ["yaml-too-deep"])
    }

    @Test func aMissingPlansFolderIsAnIOError() {
        let compilation = CatalogLoader.compile(plansDirectory: "/nonexistent/tariff/plans", rulesDirectory: "/nonexistent/tariff/rules")
        #expect(compilation.diagnostics.map { DiagnosticFixtures.render($0) } == ["error io-error /nonexistent/tariff/plans:1:1"])
        #expect(compilation.catalog == nil)
    }

    /// Every code has a fixture or a generated case, so a new code cannot ship untested.
    @Test(arguments: allDiagnosticCodes)
    func everyCodeIsCovered(_ code: String) {
        let fixtures = DiagnosticFixtures.names.filter { DiagnosticFixtures.code(of: $0) == code }
        let generated = generatedCases.filter { $0.code == code }
        #expect(!fixtures.isEmpty || !generated.isEmpty, "no fixture (Fixtures/\(code)/) and no generated case for '\(code)'")
    }

    /// The codes written in the compiler's sources are all in the list above (and so all covered):
    /// adding a code to the compiler without a fixture fails here.
    @Test func everyCodeInTheSourcesIsListed() throws {
        let codes = try SourceCodes.diagnosticCodes()
        #expect(codes.count >= 30, "found only \(codes.sorted()) in the sources")
        let unlisted = codes.subtracting(allDiagnosticCodes)
        #expect(unlisted.isEmpty, "codes without a fixture: \(unlisted.sorted()); add Fixtures/<code>/ and list them in allDiagnosticCodes")
        let unused = Set(allDiagnosticCodes).subtracting(codes)
        #expect(unused.isEmpty, "listed codes the sources no longer emit: \(unused.sorted())")
    }

    /// docs/plan-authoring.md links every code to its section of docs/diagnostics.md.
    @Test func everyCodeIsLinkedFromThePlanAuthorsGuide() throws {
        let guide = try String(contentsOf: SourceCodes.packageRoot.appendingPathComponent("docs/plan-authoring.md"), encoding: .utf8)
        let missing = allDiagnosticCodes.filter { !guide.contains("[`\($0)`](diagnostics.md#\($0))") }
        #expect(missing.isEmpty, "docs/plan-authoring.md does not link \(missing)")
    }

    /// docs/diagnostics.md has a section for every code.
    @Test func everyCodeIsDocumented() throws {
        let docs = try String(contentsOf: SourceCodes.packageRoot.appendingPathComponent("docs/diagnostics.md"), encoding: .utf8)
        let missing = allDiagnosticCodes.filter { !docs.contains("### `\($0)`") }
        #expect(missing.isEmpty, "docs/diagnostics.md has no section for \(missing)")
    }
}

/// Reads the diagnostic codes out of the compiler's sources: the kebab-case string literals on
/// lines that report a diagnostic (`.error("code"`, `.warning("code"`, `Diagnostic(.error, "code"`) or
/// map to a code (`case ...: "code"` in a `DiagnosticCode` switch).
enum SourceCodes {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func diagnosticCodes() throws -> Set<String> {
        let folders = ["Sources/TariffGraph", "Sources/TariffCompiler", "Sources/TariffModels", "Sources/Tariff"]
        let literal = /"([a-z0-9]+(?:-[a-z0-9]+)+)"/
        let reporting = /\.(?:error|warning)\(\s*"|Diagnostic\(\s*\.(?:error|warning)\s*,\s*"|DiagnosticCode|^\s*(?:case\b[^:]*|default)\s*:\s*"/
        var codes: Set<String> = []
        for folder in folders {
            let directory = packageRoot.appendingPathComponent(folder)
            guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in enumerator where url.pathExtension == "swift" {
                let text = try String(contentsOf: url, encoding: .utf8)
                for line in text.split(separator: "\n") where line.contains(reporting) {
                    for match in line.matches(of: literal) { codes.insert(String(match.1)) }
                }
            }
        }
        return codes.subtracting(Compiler.stageNames)
    }
}
