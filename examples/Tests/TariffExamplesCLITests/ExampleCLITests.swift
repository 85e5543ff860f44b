import Foundation
import Testing

/// The third party's own `tariff` (examples/Sources/tariff-examples: the command line library with
/// the example plugins registered), run as a user would, from the repository's root.
@Suite("tariff-examples")
struct ExampleCLITests {
    /// The repository (the examples package is its `examples/` folder).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repositoryRoot.appendingPathComponent("Tests/SchemaFixtures")

    /// The `tariff-examples` binary next to the test bundle (SwiftPM builds every product before testing).
    static var executable: URL? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tariff-examples"),
            repositoryRoot.appendingPathComponent("examples/.build/debug/tariff-examples"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Run {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ arguments: [String], executable: URL? = executable) throws -> Run {
        let process = Process()
        process.executableURL = try #require(executable, "the tariff-examples executable is not built")
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), error: String(decoding: errorData, as: UTF8.self))
    }

    static func shell(_ arguments: [String]) -> Run? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        guard (try? process.run()) != nil else { return nil }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), error: String(decoding: errorData, as: UTF8.self))
    }

    static let validatorAvailable: Bool = shell(["python3", "-c", "import jsonschema, yaml"])?.status == 0

    @Test("the program's schema has the example's model and rule kind")
    func pluginsInTheSchema() throws {
        let run = try Self.run(["schema"])
        #expect(run.status == 0)
        #expect(run.output.contains("\"model_prepaid_bundle\""))
        #expect(run.output.contains("\"rule_cap_per_execution\""))
    }

    @Test("the examples validate against the program's schema",
          .enabled(if: validatorAvailable, "python3 with jsonschema and PyYAML is not installed (pip install jsonschema pyyaml)"))
    func examplesValidate() throws {
        let schema = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-examples-schema-\(UUID().uuidString).json")
        try Self.run(["schema"]).output.write(to: schema, atomically: true, encoding: .utf8)
        let folder = Self.repositoryRoot.appendingPathComponent("examples")
        let files = try ["plans", "rules"].flatMap { sub in
            try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(sub).path).filter { $0.hasSuffix(".yaml") }
                .map { folder.appendingPathComponent(sub).appendingPathComponent($0).path }
        }
        let run = try #require(Self.shell(["python3", Self.fixtures.appendingPathComponent("validate.py").path, schema.path] + files))
        #expect(run.status == 0, "validate.py: \(run.error)")
        for line in run.output.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect((object["text"] as? [String])?.isEmpty == true && (object["typed"] as? [String])?.isEmpty == true, "\(line)")
        }
        #expect(run.output.split(separator: "\n").count == files.count)
    }

    @Test("check and test the examples/ catalog with the example plugins")
    func checkAndTest() throws {
        let check = try Self.run(["check", "examples"])
        #expect(check.status == 0)
        #expect(check.output.contains("3 plan file(s): 0 error(s), 0 warning(s)"))
        let test = try Self.run(["test", "examples"])
        #expect(test.status == 0)
        #expect(test.output.contains("6 passed, 0 failed"))
        // The shipped `tariff` (built by the Tariff package, next to this one's dependencies) does
        // not know them: unknown model and rule kind, exit 1.
        let shipped = Self.repositoryRoot.appendingPathComponent(".build/debug/tariff")
        if FileManager.default.isExecutableFile(atPath: shipped.path) {
            let without = try Self.run(["check", "examples"], executable: shipped)
            #expect(without.status == 1)
            #expect(without.output.contains("error[unknown-model]: unknown model 'prepaid_bundle'"))
        }
    }

    @Test("quote prices a prepaid_bundle plan: 1.7 CU past the bundle x 0.006 = 0.0102")
    func quoteBundle() throws {
        let run = try Self.run(["quote", "--plans", "examples/plans", "--rules", "examples/rules",
                                    "--plan", "research-bundle", "--meter", "cpu_ms=1200", "--meter", "inference_calls=3",
                                    "--period-usage", "4999", "--at", "2026-12-01", "--format", "json", "--explain"])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.hasPrefix(#"{"plan":"research-bundle","version":1,"currency":"USD","model":"prepaid_bundle","compute_units":"2.700","charge":"0.010200","split":{"creator":"0.008160","platform":"0.001530","processing":"0.000510"},"lines":[{"rule":"fallback","amount":"0.010200","source":"examples/plans/research-bundle.yaml:12:3"}]"#))
        #expect(run.output.contains(#""kind":"cap_per_execution","rule":"cap_per_execution","source":"examples/plans/research-bundle.yaml:15:5""#))
    }

    @Test("quote: the cap rule on a per-call plan, line by line; a surcharge makes the quote an estimate")
    func quoteCap() throws {
        let run = try Self.run(["quote", "--plans", "examples/plans", "--rules", "examples/rules",
                                    "--plan", "translate-payg", "--meter", "inference_calls=100", "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        // 0.01 fee, + 100 x 0.01 surcharge = 1.01, capped at 0.25: lines 0.01, +1.00, -0.76.
        #expect(run.output.contains(#""charge":"0.250000""#))
        #expect(run.output.contains(#""lines":[{"rule":"fee","amount":"0.010000","source":"examples/plans/translate-payg.yaml:9:3"},{"rule":"surcharge","amount":"1.000000","source":"examples/plans/translate-payg.yaml:13:5"},{"rule":"cap_per_execution","amount":"-0.760000","source":"examples/plans/translate-payg.yaml:15:5"}]"#))
        #expect(run.output.contains(#""exact":false"#))
        let graph = try Self.run(["graph", "--plans", "examples/plans", "--rules", "examples/rules",
                                      "--plan", "research-bundle", "--format", "json"])
        #expect(graph.output.contains(#""kind":"allowance_overage","rule":"fallback""#))
        #expect(graph.output.contains(#""kind":"period_fee","rule":"bundle""#))
    }
}
