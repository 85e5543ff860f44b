import Foundation
import PropertyBased
import Tariff
@testable import TariffSimulation
import Testing

/// usage.md: "Events may come in any order; the engine orders them by their time, ties by line
/// number." The reorder stage (a bounded buffer, late lines spilled to sorted runs on disk and
/// merged back) must give exactly what a full sort gives, whatever the disorder and the bounds.
@Suite("Reorder stage")
struct ReorderTests {
    typealias F = SimulationFixture

    /// The report as `--format json` prints it, line numbers aside: they follow the file, so the
    /// rejected lines and warnings are compared by their text, in a fixed order.
    static func json(_ report: SimulationReport) -> String {
        var report = report
        report.rejected = report.rejected.map { Rejection(line: 0, reason: $0.reason) }.sorted { $0.reason < $1.reason }
        report.warnings = report.warnings.map { TraceWarning(line: 0, message: $0.message) }.sorted { $0.message < $1.message }
        return report.json.rendered
    }

    @Test("property: any permutation of the lines, with buffers of 1 to 8 events and runs of a few lines, gives the byte-identical report")
    func permutations() async throws {
        let catalog = try #require(F.catalog())
        await propertyCheck(count: 25, input: Gen.int(in: 0...Int(UInt32.max)), Gen.int(in: 30...120)) { seed, count in
            let generated = UnsortedTraceTests.events(seed: seed, count: count)
            var random = SplitMix(state: UInt64(seed) ^ 0x5EED)
            let sorted = generated.lines.enumerated().sorted { ($0.element.second, $0.offset) < ($1.element.second, $1.offset) }.map(\.element)
            // Three orders: fully shuffled; nearly sorted (neighbours swapped) with a few lines
            // moved far later (late delivery); and reversed.
            var shuffled = sorted
            shuffled.shuffle(using: &random)
            var delivered = sorted
            for index in stride(from: 0, to: delivered.count - 1, by: 2) where random.next() % 2 == 0 { delivered.swapAt(index, index + 1) }
            for _ in 0..<3 where delivered.count > 4 {
                let moved = delivered.remove(at: Int(random.next() % UInt64(delivered.count / 2)))
                delivered.append(moved)
            }
            let orders = [shuffled, delivered, Array(sorted.reversed())]
            // A window inside the trace half the time (what is reported changes, never what is priced).
            var options = SimulationOptions()
            if random.next() % 2 == 0 {
                options.from = Timestamp(nanosecondsSinceEpoch: (1_793_491_200 + 10 * 86_400) * 1_000_000_000)
                options.to = Timestamp(nanosecondsSinceEpoch: (1_793_491_200 + 50 * 86_400) * 1_000_000_000)
            }
            do {
                let expected = try Simulator.run(trace: try F.trace(sorted.map(\.text)), catalog: catalog, options: options)
                #expect(expected.priced + expected.refused + expected.duplicates == generated.executions || options.from != nil, "seed \(seed)")
                for (position, order) in orders.enumerated() {
                    var tiny = options
                    tiny.reorder = ReorderLimits(bufferEvents: Int(random.next() % 8) + 1, runBytes: Int(random.next() % 2_000) + 1,
                                                 mergeFanIn: Int(random.next() % 3) + 2)
                    let path = try F.trace(order.map(\.text))
                    let report = try Simulator.run(trace: path, catalog: catalog, options: tiny)
                    #expect(Self.json(report) == Self.json(expected), "seed \(seed), order \(position), limits \(tiny.reorder)")
                    // The standard bounds (the whole trace fits the buffer) agree as well.
                    let standard = try Simulator.run(trace: path, catalog: catalog, options: options)
                    #expect(Self.json(standard) == Self.json(expected), "seed \(seed), order \(position), standard limits")
                }
            } catch {
                Issue.record("seed \(seed): the run stopped: \(error)")
            }
        }
    }

    @Test("the buffer releases in (time, line) order and refuses only what sorts before its last release")
    func buffer() {
        var buffer = ReorderBuffer(capacity: 3)
        var released: [Int] = []
        var late: [Int] = []
        // (second, line): lines 1-7.
        let events = [(10, 1), (5, 2), (20, 3), (7, 4), (1, 5), (30, 6), (25, 7)]
        for (second, line) in events {
            let event = TraceEvent(line: line, time: Timestamp(nanosecondsSinceEpoch: Int64(second) * 1_000_000_000), kind: .purchase,
                                   consumer: 0, subject: 0)
            if buffer.accepts(EventKey(time: event.time.nanosecondsSinceEpoch, line: line)) {
                buffer.push(event) { released.append($0.line) }
            } else {
                late.append(line)
            }
        }
        while buffer.count > 0 { buffer.releaseEarliest { released.append($0.line) } }
        // Line 4 makes four events: the earliest, line 2 (5 s), is released. Line 5 (1 s) sorts
        // before it: late. Line 6 releases line 4 (7 s), line 7 releases line 1 (10 s); the end
        // drains line 3 (20 s), line 7 (25 s), line 6 (30 s).
        #expect(late == [5])
        #expect(released == [2, 4, 1, 3, 7, 6])
    }

    @Test("property: the buffer (a sorted ring and a heap) refuses and releases exactly as a sorted array of the same capacity, in any disorder")
    func bufferAgainstSortedArray() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...Int(UInt32.max)), Gen.int(in: 1...40)) { seed, capacity in
            var random = SplitMix(state: UInt64(seed))
            // Nearly sorted (each time a few steps back at random), with some far-back stragglers,
            // or shuffled: both the ring's slide and the heap are exercised.
            let shuffled = random.next() % 3 == 0
            var times: [Int64] = (0..<400).map { Int64($0) * 10 - Int64(random.next() % 40) - (random.next() % 25 == 0 ? Int64(random.next() % 2_000) : 0) }
            if shuffled { times.shuffle(using: &random) }
            var buffer = ReorderBuffer(capacity: capacity)
            var released: [EventKey] = [], refused: [EventKey] = []
            // The reference: a sorted array; over capacity, its first is released.
            var reference: [EventKey] = [], referenceReleased: [EventKey] = [], referenceRefused: [EventKey] = []
            var referenceWatermark: EventKey?
            for (index, time) in times.enumerated() {
                let key = EventKey(time: time, line: index + 1)
                if buffer.accepts(key) {
                    buffer.push(TraceEvent(line: key.line, time: Timestamp(nanosecondsSinceEpoch: time), kind: .purchase, consumer: 0, subject: 0)) {
                        released.append(EventKey(time: $0.time.nanosecondsSinceEpoch, line: $0.line))
                    }
                } else {
                    refused.append(key)
                }
                if let watermark = referenceWatermark, key < watermark {
                    referenceRefused.append(key)
                } else {
                    reference.insert(key, at: reference.firstIndex { key < $0 } ?? reference.count)
                    if reference.count > capacity {
                        let first = reference.removeFirst()
                        referenceWatermark = first
                        referenceReleased.append(first)
                    }
                }
                #expect(buffer.earliest == reference.first, "seed \(seed)")
            }
            while buffer.count > 0 { buffer.releaseEarliest { released.append(EventKey(time: $0.time.nanosecondsSinceEpoch, line: $0.line)) } }
            referenceReleased += reference
            #expect(released == referenceReleased, "seed \(seed), capacity \(capacity)")
            #expect(refused == referenceRefused, "seed \(seed), capacity \(capacity)")
        }
    }

    @Test("late lines spilled to runs of one line each, merged three at a time, come back sorted and whole")
    func runs() throws {
        let late = try LateLines(limits: ReorderLimits(bufferEvents: 1, runBytes: 1, mergeFanIn: 3))
        var random = SplitMix(state: 42)
        var keys: [EventKey] = []
        for line in 1...200 {
            let key = EventKey(time: Int64(random.next() % 50), line: line)
            keys.append(key)
            let text = Array("line \(line) at \(key.time)".utf8)
            try text.withUnsafeBufferPointer { try late.add(key, line: $0) }
        }
        try late.finish()
        #expect(late.runs.count <= 3)
        var merger = try LateMerger(runs: late.runs, bufferBytes: 16)
        var seen: [EventKey] = []
        while let text = try merger.take({ key, bytes in
            seen.append(key)
            return String(decoding: bytes, as: UTF8.self)
        }) {
            #expect(text == "line \(seen.last!.line) at \(seen.last!.time)")
        }
        #expect(seen == keys.sorted())
        // The line numbers, in file order, for the second pass to skip.
        var reader = TemporaryFileReader(late.lineNumbers, bufferBytes: 24)
        var lines: [Int] = []
        while let line = try reader.read(Int64.self) { lines.append(Int(line)) }
        #expect(lines == Array(1...200))
    }
}
