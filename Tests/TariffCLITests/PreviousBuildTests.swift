import Foundation
import Testing

/// Issue 13: "Byte-identical output against the previous build on sorted traces (the README's
/// traces and `samples/usage.jsonl`)". The expected outputs in `Tests/SimulateExpected/` were
/// written by a build from before the reorder stage (commit 347d644, whose simulation sources are
/// those of the build that ran; see its README), not by this code: every build since must print
/// them byte for byte, with the reader parsing alone and with parse threads.
@Suite("simulate against the previous build")
struct PreviousBuildTests {
    static let expected = CLITests.repositoryRoot.appendingPathComponent("Tests/SimulateExpected")

    static func expected(_ name: String) throws -> String {
        try String(contentsOf: expected.appendingPathComponent(name), encoding: .utf8)
    }

    /// The outputs with the reader parsing alone (0) and with 2 and 3 parse threads.
    static let parseThreads = ["0", "2", "3"]

    @Test("samples/usage.jsonl: the JSON report, the text report and a window are byte-identical to the previous build's")
    func samples() throws {
        for threads in Self.parseThreads {
            let environment = ["TARIFF_PARSE_THREADS": threads]
            let json = try CLITests.run(["simulate", "--usage", "samples/usage.jsonl", "--format", "json"], environment: environment)
            #expect(json.status == 0, "\(json.error)")
            #expect(json.output == (try Self.expected("samples.json")), "\(threads) parse threads")
            let text = try CLITests.run(["simulate", "--usage", "samples/usage.jsonl"], environment: environment)
            #expect(text.output == (try Self.expected("samples.txt")), "\(threads) parse threads")
            let window = try CLITests.run(["simulate", "--usage", "samples/usage.jsonl", "--from", "2026-11-10", "--to", "2026-11-24", "--format", "json"],
                                          environment: environment)
            #expect(window.output == (try Self.expected("samples-window.json")), "\(threads) parse threads")
        }
    }

    @Test("a generated 20,000-event trace (the README's generate command, sorted): the same trace as the previous build wrote, the same report")
    func generated() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("previous-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let generate = try CLITests.run(["generate", "--events", "20000", "--consumers", "100", "--seed", "5", "--output", path])
        #expect(generate.status == 0, "\(generate.error)")
        // The previous build wrote exactly these bytes: its output's length and 64-bit FNV-1a hash.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let digest = "\(bytes.count) " + String(hash, radix: 16).leftPadded(to: 16)
        #expect(digest == (try Self.expected("generated-20000.fnv")).trimmingCharacters(in: .whitespacesAndNewlines))
        for threads in Self.parseThreads {
            let run = try CLITests.run(["simulate", "--usage", path, "--format", "json"], environment: ["TARIFF_PARSE_THREADS": threads])
            #expect(run.status == 0, "\(run.error)")
            #expect(run.output == (try Self.expected("generated-20000.json")), "\(threads) parse threads")
        }
    }
}

private extension String {
    func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
