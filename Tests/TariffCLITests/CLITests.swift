import Foundation
import Testing

/// Runs the built `tariff` executable as a user would, checking outputs and exit codes of cli.md.
@Suite("tariff command line")
struct CLITests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `tariff` binary next to the test bundle (SwiftPM builds every product before testing).
    static var executable: URL? {
        // TARIFF_TEST_EXECUTABLE runs the suites against another build (an older one, to see a
        // regression test fail before its fix).
        if let other = ProcessInfo.processInfo.environment["TARIFF_TEST_EXECUTABLE"], !other.isEmpty { return URL(fileURLWithPath: other) }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tariff"),
            repositoryRoot.appendingPathComponent(".build/debug/tariff"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Run {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ arguments: [String], in directory: URL = repositoryRoot, standardOutput: FileHandle? = nil,
                    environment: [String: String]? = nil) throws -> Run {
        let process = Process()
        process.executableURL = try #require(executable, "the tariff executable is not built")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe(), error = Pipe()
        process.standardOutput = standardOutput ?? output
        process.standardError = error
        // Nothing on standard input: `--usage -` reads an empty trace rather than waiting.
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Standard error is read on its own thread: a long output on one pipe cannot block the other.
        let errorBox = DataBox()
        let reader = Thread { errorBox.data = error.fileHandleForReading.readDataToEndOfFile(); errorBox.done.signal() }
        reader.start()
        let outputData = standardOutput == nil ? output.fileHandleForReading.readDataToEndOfFile() : Data()
        errorBox.done.wait()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), error: String(decoding: errorBox.data, as: UTF8.self))
    }

    final class DataBox: @unchecked Sendable {
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }

    /// A throwaway catalog folder with `plans/` and `rules/`.
    static func catalog(plans: [String: String], rules: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-cli-\(UUID().uuidString)")
        for (folder, files) in [("plans", plans), ("rules", rules)] {
            let directory = root.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (name, text) in files { try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        }
        return root
    }

    static let rules = ["metering.yaml": "metering:\n  standard:\n    weights: { cpu_ms: 0.001, inference_calls: 0.5 }\n",
                        "splits.yaml": "splits:\n  standard: { creator: 80%, platform: 15%, processing: 5% }\n"]

    @Test("quote prints cli.md's example exactly")
    func quoteExample() throws {
        let run = try Self.run(["quote", "--plan", "research-pro", "--meter", "cpu_ms=1200", "--meter", "inference_calls=3",
                                "--period-usage", "9998", "--at", "2026-11-30T00:00:00Z", "--format", "json"])
        #expect(run.status == 0)
        let expected = #"{"plan":"research-pro","version":2,"currency":"USD","model":"subscription","compute_units":"2.700","charge":"0.003500","split":{"creator":"0.002800","platform":"0.000525","processing":"0.000175"},"lines":[{"rule":"overage","amount":"0.003500","source":"plans/research-pro.yaml:15:3"}],"refused":null,"priority":null,"support":null"#
        #expect(run.output.hasPrefix(expected))
    }

    @Test("quote: version 1 by date, a refused execution, enterprise priority and support")
    func quoteVariants() throws {
        let v1 = try Self.run(["quote", "--plan", "research-pro", "--at", "2026-10-15", "--meter", "cpu_ms=1000", "--period-usage", "7000", "--format", "json"])
        #expect(v1.output.contains(#""version":1"#))
        #expect(v1.output.contains(#""charge":"0.006000""#))
        let refused = try Self.run(["quote", "--plan", "research-enterprise", "--meter", "cpu_ms=1000", "--period-spend", "20000", "--format", "json"])
        #expect(refused.status == 0)
        #expect(refused.output.contains(#""charge":"0.000000","split":{"creator":"0.000000","platform":"0.000000","processing":"0.000000"},"lines":[],"refused":"spend_cap","priority":"high","support":"dedicated""#))
        let explained = try Self.run(["quote", "--plan", "research-pro", "--meter", "cpu_ms=1200", "--explain"])
        #expect(explained.output.contains("allowance_overage"))
        #expect(explained.output.contains("plans/research-pro.yaml:15:3"))
        #expect(explained.output.contains("rules/metering.yaml"))
    }

    @Test("quote: a meter the plan does not weigh is a warning on standard error")
    func unweighedMeter() throws {
        let run = try Self.run(["quote", "--plan", "research-payg", "--meter", "gpu_seconds=3"])
        #expect(run.status == 0)
        #expect(run.error.contains("warning: meter 'gpu_seconds'"))
    }

    @Test("bad invocations and inputs exit 2 with a message, never a crash", arguments: [
        ["quote", "--plan", "research-pro", "--meter", "cpu_ms=1e3"],
        ["quote", "--plan", "research-pro", "--meter", "cpu_ms=-5"],
        ["quote", "--plan", "research-pro", "--meter", "cpu_ms"],
        ["quote", "--plan", "reserch-pro"],
        ["quote", "--plan", "research-pro", "--version", "9"],
        ["quote", "--plan", "research-pro", "--at", "yesterday"],
        ["quote", "--plan", "research-pro", "--status", "crashed"],
        ["quote", "--plan", "research-pro", "--period-spend", "0.0000001"],
        ["quote"],
        ["graph", "--plan", "nope"],
        ["frobnicate"],
        ["check", "--plans", "/nonexistent/plans", "--format", "xml"],
    ])
    func badInput(arguments: [String]) throws {
        let run = try Self.run(arguments)
        #expect(run.status == 2)
        #expect(!run.error.isEmpty)
    }

    @Test("check: the sample catalog is clean; a misspelt key is reported at its position with a did-you-mean")
    func check() throws {
        let clean = try Self.run(["check"])
        #expect(clean.status == 0)
        #expect(clean.output.contains("0 error(s), 0 warning(s)"))
        let plan = """
        plan: pro
        agent: agt_research
        creator: acct_1
        currency: USD
        model: subscription
        # the section below
        # holds the settings
        subscription:
          period: month
          fee: 49.00
          allowance: 10000
          overage: 0.005
          alowance: 5
        """
        let root = try Self.catalog(plans: ["pro.yaml": plan], rules: Self.rules)
        let text = try Self.run(["check"], in: root)
        #expect(text.status == 1)
        #expect(text.output.contains("plans/pro.yaml:13:3: error[unknown-key]: unknown key 'alowance'; did you mean 'allowance'?"))
        let json = try Self.run(["check", "--format", "json"], in: root)
        #expect(json.status == 1)
        #expect(json.output.contains(#"{"file":"plans/pro.yaml","line":13,"column":3,"severity":"error","code":"unknown-key","message":"unknown key 'alowance'; did you mean 'allowance'?""#))
        #expect(json.output.contains(#""plans":1,"errors":1,"warnings":0}"#))
        // A path argument: the catalog folder.
        let byPath = try Self.run(["check", root.path])
        #expect(byPath.status == 1)
    }

    @Test("test: runs every plan's tests with a summary line; a failing test exits 1 with expected and actual")
    func planTests() throws {
        let passing = try Self.run(["test"])
        #expect(passing.status == 0)
        #expect(passing.output.contains(" passed, 0 failed"))
        let plan = """
        plan: payg
        agent: agt_x
        creator: acct_1
        currency: USD
        model: per_call
        per_call:
          fee: 0.02
        tests:
          - name: wrong expectation
            execution: { meters: { cpu_ms: 1000 } }
            expect: { charge: 0.03 }
        """
        let root = try Self.catalog(plans: ["payg.yaml": plan], rules: Self.rules)
        let failing = try Self.run(["test"], in: root)
        #expect(failing.status == 1)
        #expect(failing.output.contains("plans/payg.yaml:9:5: test 'wrong expectation'"))
        #expect(failing.output.contains("charge: expected 0.030000, actual 0.020000"))
        #expect(failing.output.contains("0 passed, 1 failed"))
    }

    @Test("graph: dot, mermaid and json")
    func graph() throws {
        let dot = try Self.run(["graph", "--plan", "research-enterprise", "--format", "dot"])
        #expect(dot.status == 0)
        #expect(dot.output.hasPrefix("digraph \"research-enterprise@1\""))
        #expect(dot.output.contains("graduated_tiers"))
        let mermaid = try Self.run(["graph", "--plan", "research-pro", "--format", "mermaid"])
        #expect(mermaid.output.hasPrefix("flowchart LR"))
        let json = try Self.run(["graph", "--plan", "research-pro", "--version", "2", "--format", "json"])
        #expect(json.output.contains(#""kind":"allowance_overage","rule":"overage""#))
        #expect(json.output.contains(#""source":"plans/research-pro.yaml:15:3""#))
    }

    @Test("--help and --version")
    func help() throws {
        let help = try Self.run(["--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("quote"))
        #expect(try Self.run(["--version"]).status == 0)
        #expect(try Self.run(["quote", "--help"]).output.contains("--period-usage"))
    }
}
