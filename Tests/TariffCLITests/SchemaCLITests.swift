import Foundation
import Tariff
import Testing

/// `tariff schema` checked with a real JSON Schema validator (Python's jsonschema, draft 2020-12),
/// run through Tests/SchemaFixtures/validate.py: the sample catalog, the examples and the "good"
/// fixtures validate; every "bad" fixture does not, and `tariff check` rejects it too.
@Suite("tariff schema")
struct SchemaCLITests {
    static let root = CLITests.repositoryRoot
    static let fixtures = root.appendingPathComponent("Tests/SchemaFixtures")

    /// Runs a command through `/usr/bin/env` (so `python3` is found on PATH).
    static func shell(_ arguments: [String]) -> (status: Int32, output: String, error: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = root
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        do { try process.run() } catch { return nil }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    /// python3 with jsonschema and PyYAML: without them the validator tests are skipped (reported as such).
    static let validatorAvailable: Bool = shell(["python3", "-c", "import jsonschema, yaml"])?.status == 0

    static func yamlFiles(_ folder: String) -> [String] {
        let directory = root.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted().map { "\(folder)/\($0)" }
    }

    /// Writes `tariff schema [arguments]` to a temporary file.
    static func schemaFile(_ arguments: [String] = []) throws -> URL {
        let run = try CLITests.run(["schema"] + arguments)
        #expect(run.status == 0, "\(run.error)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-schema-\(UUID().uuidString).json")
        try run.output.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    struct Result {
        var text: [String]
        var typed: [String]
    }

    /// File -> the validator's errors in both loading modes (see validate.py).
    static func validate(_ files: [String], schema: URL) throws -> [String: Result] {
        let run = try #require(shell(["python3", fixtures.appendingPathComponent("validate.py").path, schema.path] + files))
        #expect(run.status == 0, "validate.py: \(run.error)")
        var results: [String: Result] = [:]
        for line in run.output.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let file = try #require(object["file"] as? String)
            results[file] = Result(text: object["text"] as? [String] ?? ["?"], typed: object["typed"] as? [String] ?? ["?"])
        }
        #expect(results.count == files.count)
        return results
    }

    @Test("the committed schema/tariff.schema.json is what `tariff schema` prints")
    func committedCopy() throws {
        let printed = try CLITests.run(["schema"]).output
        let committed = try String(contentsOf: Self.root.appendingPathComponent("schema/tariff.schema.json"), encoding: .utf8)
        #expect(printed == committed, "regenerate it: swift run tariff schema > schema/tariff.schema.json")
        #expect(printed.hasPrefix("{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\""))
    }

    @Test("the sample catalog, the compiler's valid fixture and the good fixtures validate",
          .enabled(if: validatorAvailable, "python3 with jsonschema and PyYAML is not installed (pip install jsonschema pyyaml)"))
    func goodFilesValidate() throws {
        let schema = try Self.schemaFile()
        let files = Self.yamlFiles("plans") + Self.yamlFiles("rules") + Self.yamlFiles("Tests/SchemaFixtures/good/plans")
            + Self.yamlFiles("Tests/SchemaFixtures/good/rules") + Self.yamlFiles("Tests/TariffCompilerTests/Fixtures/valid/plans")
            + Self.yamlFiles("Tests/TariffCompilerTests/Fixtures/valid/rules")
        #expect(files.count >= 14)
        for (file, result) in try Self.validate(files, schema: schema) {
            #expect(result.text.isEmpty, "\(file) (as text): \(result.text)")
            #expect(result.typed.isEmpty, "\(file) (typed): \(result.typed)")
        }
    }

    @Test("every bad fixture fails validation, and `tariff check` reports the code its first line names",
          .enabled(if: validatorAvailable, "python3 with jsonschema and PyYAML is not installed (pip install jsonschema pyyaml)"))
    func badFilesDoNotValidate() throws {
        let files = Self.yamlFiles("Tests/SchemaFixtures/bad")
        #expect(files.count >= 20)
        let results = try Self.validate(files, schema: try Self.schemaFile())
        let goodRules = try Self.yamlFiles("Tests/SchemaFixtures/good/rules").map {
            CatalogSource(path: $0, text: try String(contentsOf: Self.root.appendingPathComponent($0), encoding: .utf8), kind: .rules)
        }
        let goodPlan = try Self.yamlFiles("Tests/SchemaFixtures/good/plans").prefix(1).map {
            CatalogSource(path: $0, text: try String(contentsOf: Self.root.appendingPathComponent($0), encoding: .utf8), kind: .plan)
        }
        for file in files {
            let text = try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8)
            let firstLine = text.prefix { $0 != "\n" }
            let result = try #require(results[file])
            #expect(!result.text.isEmpty, "\(file) validates as text")
            // A number an editor reads as a float has no digits left to count: those say so on their first line.
            if !firstLine.contains("(typed: valid") { #expect(!result.typed.isEmpty, "\(file) validates typed") }
            // The first line names the code `tariff check` gives the same mistake.
            let code = String(firstLine.dropFirst(2).prefix { $0 != ":" })
            let isRules = file.split(separator: "/").last?.hasPrefix("rules-") == true
            let sources = isRules ? goodPlan + [CatalogSource(path: "rules/bad.yaml", text: text, kind: .rules)]
                : [CatalogSource(path: "plans/bad.yaml", text: text, kind: .plan)] + goodRules
            let compilation = CatalogLoader.compile(sources: sources)
            #expect(compilation.diagnostics.contains { $0.severity == .error && $0.code.rawValue == code },
                    "\(file): expected \(code), got \(compilation.diagnostics.map(\.description))")
        }
    }
}
