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

/// usage.md: "Events may come in any order; the engine orders them by their time, ties by line
/// number", and a repeated execution id is priced once. Fuzzed traces with purchases, subscribes,
/// cancels (some with nothing to cancel), executions of every model and repeated ids, written once
/// in time order and once shuffled, must give the same report; the counts are known by construction.
@Suite("Unsorted traces")
struct UnsortedTraceTests {
    typealias F = SimulationFixture

    /// A random trace: (instant in seconds from 2026-11-01, line) pairs with distinct instants, except
    /// exact repeats of an execution line (the same instant: identical either way round).
    static func events(seed: Int, count: Int) -> (lines: [(second: Int, text: String)], executions: Int, repeats: Int) {
        var random = SplitMix(state: UInt64(seed))
        var used = Set<Int>()
        func instant() -> Int {
            while true {
                let second = Int(random.next() % (75 * 86_400))
                if used.insert(second).inserted { return second }
            }
        }
        func text(_ second: Int) -> String {
            // From 2026-11-01T00:00:00Z, whole seconds (Timestamp prints RFC 3339 in UTC).
            Timestamp(nanosecondsSinceEpoch: (1_793_491_200 + Int64(second)) * 1_000_000_000).rfc3339
        }
        let consumers = ["cus_0", "cus_1", "cus_2"], plans = ["pro", "pro-plus", "ent", "capped"], agents = ["agt_a", "agt_e", "agt_c", "agt_p"]
        var lines: [(second: Int, text: String)] = []
        var executionLines: [(second: Int, id: String, consumer: String, agent: String)] = []
        var executions = 0, repeats = 0
        for index in 0..<count {
            let consumer = consumers[Int(random.next() % 3)], second = instant()
            switch random.next() % 20 {
            case 0...2:
                lines.append((second, #"{"type":"purchase","at":"\#(text(second))","consumer":"\#(consumer)","amount":"\#(Int(random.next() % 50) + 1).00"}"#))
            case 3...5:
                lines.append((second, F.event("subscribe", text(second), consumer, plan: plans[Int(random.next() % 4)])))
            case 6...7:
                lines.append((second, F.event("cancel", text(second), consumer, plan: plans[Int(random.next() % 4)])))
            default:
                let agent = agents[Int(random.next() % 4)]
                let id = "exe_\(index)"
                lines.append((second, F.execution(id, consumer, agent, ended: text(second), cpuMilliseconds: Int(random.next() % 300_000),
                                                  status: random.next() % 10 == 0 ? "failed" : "succeeded")))
                executionLines.append((second, id, consumer, agent))
                executions += 1
            }
        }
        // Repeats of about one execution in eight: an exact copy, or the same id later with other meters.
        for original in executionLines where random.next() % 8 == 0 {
            if random.next() % 2 == 0, let line = lines.first(where: { $0.second == original.second }) {
                lines.append(line)
            } else {
                let second = instant()
                lines.append((second, F.execution(original.id, original.consumer, original.agent, ended: text(second), cpuMilliseconds: 7)))
            }
            executions += 1
            repeats += 1
        }
        return (lines, executions, repeats)
    }

    @Test("property: a shuffled trace gives the report of the same trace in time order")
    func shuffled() async throws {
        let catalog = try #require(F.catalog())
        // 15 traces (each simulated twice): enough orders to matter, cheap enough to keep the suite short.
        await propertyCheck(count: 15, input: Gen.int(in: 0...Int(UInt32.max)), Gen.int(in: 20...90)) { seed, count in
            let generated = Self.events(seed: seed, count: count)
            var random = SplitMix(state: UInt64(seed) ^ 0xA5A5)
            var shuffled = generated.lines
            shuffled.shuffle(using: &random)
            let sorted = generated.lines.enumerated().sorted { ($0.element.second, $0.offset) < ($1.element.second, $1.offset) }.map(\.element)
            #expect(shuffled.map(\.second) != sorted.map(\.second) || generated.lines.count < 3, "seed \(seed): the shuffle left the trace in order")
            do {
                let inOrder = try Simulator.run(trace: try F.trace(sorted.map(\.text)), catalog: catalog, options: SimulationOptions())
                let anyOrder = try Simulator.run(trace: try F.trace(shuffled.map(\.text)), catalog: catalog, options: SimulationOptions())
                // Every execution line is priced, refused or a repeat; the repeats are exactly those written.
                #expect(inOrder.duplicates == generated.repeats, "seed \(seed)")
                #expect(inOrder.priced + inOrder.refused + inOrder.duplicates == generated.executions, "seed \(seed)")
                #expect(anyOrder.totals == inOrder.totals, "seed \(seed)")
                #expect(anyOrder.consumers == inOrder.consumers && anyOrder.agents == inOrder.agents && anyOrder.plans == inOrder.plans, "seed \(seed)")
                #expect(anyOrder.days == inOrder.days && anyOrder.payouts == inOrder.payouts, "seed \(seed)")
                #expect(anyOrder.priced == inOrder.priced && anyOrder.refused == inOrder.refused && anyOrder.duplicates == inOrder.duplicates, "seed \(seed)")
                #expect(anyOrder.rejected.map(\.reason).sorted() == inOrder.rejected.map(\.reason).sorted(), "seed \(seed)")
                #expect(anyOrder.warnings.count == inOrder.warnings.count, "seed \(seed)")
                F.checkInvariants(anyOrder)
            } catch {
                Issue.record("seed \(seed): the run stopped: \(error)")
            }
        }
    }
}
extension SplitMix: RandomNumberGenerator {}
