import Foundation
import PropertyBased
import Tariff
import TariffSimulation
import Testing

/// Random and truncated lines never crash the reader, and every line is counted exactly once.
@Suite("Trace robustness")
struct TraceRobustnessTests {
    typealias F = SimulationFixture

    @Test("property: random and truncated lines: no crash, exact counts")
    func fuzz() async throws {
        let catalog = try #require(F.catalog())
        let alphabet = Array(#"{}[]":,.-+eE0123456789abcxyz \t\"\\u"#.utf8) + [0x00, 0xFF, 0xC3, 0xA9, 0x80]
        await propertyCheck(count: 60, input: Gen.int(in: 1...60), Gen.int(in: 0...Int(UInt32.max))) { lineCount, seed in
            var random = SplitMix(state: UInt64(seed))
            var lines: [[UInt8]] = []
            var expectedRejected: [Int] = []
            var expectedPriced = 0
            for index in 0..<lineCount {
                let valid = Array(F.execution("exe_\(index)", "cus_\(index % 5)", "agt_p", ended: "2026-11-03T00:00:\(String(format: "%02d", index % 60))Z", cpuMilliseconds: index).utf8)
                switch random.next() % 3 {
                case 0:
                    lines.append(valid)
                    expectedPriced += 1
                case 1:
                    // Truncated before its closing brace: never valid JSON.
                    lines.append(Array(valid.prefix(Int(random.next() % UInt64(valid.count - 1)))))
                    if lines.last?.allSatisfy({ $0 == 0x20 }) ?? true { lines[lines.count - 1] = [UInt8(ascii: "x")] }
                    expectedRejected.append(index + 1)
                default:
                    // Random bytes, starting with a byte that cannot begin a JSON object.
                    var bytes: [UInt8] = [UInt8(ascii: "#")]
                    for _ in 0..<(random.next() % 80) {
                        let byte = alphabet[Int(random.next() % UInt64(alphabet.count))]
                        if byte != 0x0A && byte != 0x0D { bytes.append(byte) }
                    }
                    lines.append(bytes)
                    expectedRejected.append(index + 1)
                }
            }
            var data = Data()
            for line in lines { data.append(contentsOf: line); data.append(0x0A) }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID().uuidString).jsonl").path
            #expect(FileManager.default.createFile(atPath: path, contents: data))
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
                #expect(report.linesRead == lineCount)
                #expect(report.rejected.map(\.line) == expectedRejected)
                #expect(report.priced == expectedPriced)
                F.checkInvariants(report)
            } catch {
                Issue.record("the run stopped: \(error)")
            }
        }
    }

    @Test("a line longer than the limit is rejected and the next line is still read")
    func overlong() throws {
        let catalog = try #require(F.catalog())
        let long = #"{"type":"purchase","pad":""# + String(repeating: "a", count: LineReader.maximumLineBytes + 10) + #""}"#
        let path = try F.trace([long, F.execution("exe_1", "cus_1", "agt_p", ended: "2026-11-03T00:00:00Z", cpuMilliseconds: 1)])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect(report.linesRead == 2)
        #expect(report.rejected.map(\.line) == [1])
        #expect(report.priced == 1)
    }

    @Test("JSON numbers are read exactly, exponents included")
    func exactNumbers() throws {
        let catalog = try #require(F.catalog())
        // 1.5e3 ms = 1500 ms exactly; a meter of 0.0000001 has too many digits and is rejected.
        let path = try F.trace([
            #"{"type":"execution","id":"a","consumer":"c","agent":"agt_p","started_at":"2026-11-03T00:00:00Z","ended_at":"2026-11-03T00:00:00Z","status":"succeeded","meters":{"cpu_ms":1.5e3}}"#,
            #"{"type":"execution","id":"b","consumer":"c","agent":"agt_p","started_at":"2026-11-03T00:00:00Z","ended_at":"2026-11-03T00:00:00Z","status":"succeeded","meters":{"cpu_ms":0.0000001}}"#,
        ])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect(report.consumers.first?.computeUnits == ComputeUnits(millis: 1_500))
        #expect(report.rejected.map(\.line) == [2])
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
