import Foundation
import PropertyBased
import Tariff
@testable import TariffSimulation
import Testing

/// Issue 13: "Both cores: where parsing bounds the run, parse in parallel and keep the order
/// exact." Lines parsed by worker threads in chunks and taken back in order must give exactly
/// what the reader parsing alone gives: the same events (every field, agents interned at the same
/// indexes), the same rejections with the same line numbers, the same late lines, the same
/// `--strict` failure, and the byte-identical `--format json` report.
@Suite("Parallel parsing")
struct ParallelParsingTests {
    typealias F = SimulationFixture

    /// Every stored field of an event (its reflection), so two events compare field by field.
    static func fields(_ event: TraceEvent) -> String { String(reflecting: event) }

    /// Bad lines of every kind the parser rejects, and lines it skips, that a trace gets sprinkled with.
    static let badLines = [
        "not json",
        "",
        "   ",
        #"{"type":"execution"}"#,
        #"{"type":"bogus","at":"2026-11-02T00:00:00Z","consumer":"cus_0"}"#,
        #"{"type":"purchase","at":"2026-11-02T00:00:00Z","consumer":"cus_0","amount":"1.001"}"#,
        #"{"type":"purchase","type":"purchase"}"#,
        #"{"type":"subscribe","at":"2026-13-02T00:00:00Z","consumer":"cus_0","plan":"pro"}"#,
        // Beyond --max-span of the first event (2026-11): rejected by the span check, in file order.
        #"{"type":"purchase","at":"2031-01-01T00:00:00Z","consumer":"cus_0","amount":"5.00"}"#,
        #"{"type":"execution","id":"exe_far","consumer":"cus_1","agent":"agt_far","started_at":"2019-01-01T00:00:00Z","ended_at":"2019-01-01T00:00:00Z","status":"succeeded","meters":{"cpu_ms":1}}"#,
        // Accepted oddities: an agent no plan knows, an unknown meter, non-ASCII ids, CRLF, an offset.
        #"{"type":"execution","id":"exe_odd","consumer":"c\u00fcs_9","agent":"agt_new","started_at":"2026-11-03T00:00:00Z","ended_at":"2026-11-03T00:00:01Z","status":"succeeded","meters":{"cpu_ms":5,"gpu_s":2}}"# + "\r",
        #"{"type":"execution","id":"exe_ü","consumer":"cüs_8","agent":"agt_ø","started_at":"2026-11-04T01:00:00+01:00","ended_at":"2026-11-04T01:00:00+01:00","status":"failed","meters":{}}"#,
    ]

    /// A generated trace in some disorder, with bad lines sprinkled in (a fixed mix per seed).
    static func trace(seed: Int, count: Int, overlong: Bool = false) -> [String] {
        let generated = UnsortedTraceTests.events(seed: seed, count: count)
        var random = SplitMix(state: UInt64(seed) ^ 0xC0FFEE)
        var lines = generated.lines.map(\.text)
        // Nearly sorted with some lines far out of place, or shuffled.
        if random.next() % 2 == 0 { lines.shuffle(using: &random) }
        // Never before the first line: the first event in file order is the reference of the
        // span check, and a far one there would reject the rest (allowed, but not a useful test).
        for index in 0..<max(2, count / 6) {
            let bad = index == 0 ? "not json" : badLines[Int(random.next() % UInt64(badLines.count))]
            lines.insert(bad, at: 1 + Int(random.next() % UInt64(lines.count)))
        }
        if overlong {
            // Twice the limit: the reader's buffer holds a line a little over it whole (a longer
            // one is always cut and rejected as too long).
            lines.insert(#"{"type":"purchase","padding":""# + String(repeating: "x", count: 2 * LineReader.maximumLineBytes + 10) + #""}"#,
                         at: lines.count / 2)
        }
        return lines
    }

    /// What one reading gave: the events handed on, in order, and the reading's outcome.
    struct Reading: Equatable {
        var events: [String] = []
        var rejections: [Rejection] = []
        var rejectionsUnlisted = 0
        var lines = 0
        var late = 0
        var agents: [String] = []
        var failure: String?
    }

    /// Reads the trace as `simulate` does (first pass, then the merge pass when lines came late),
    /// or as `ledger replay` does (gathering pass, then the merge pass), with `threads` parse threads.
    static func read(_ path: String, catalog: CompiledCatalog, threads: Int, chunkLines: Int, limits: ReorderLimits,
                     interning: Bool, strict: Bool = false) -> Reading {
        let settings = Simulator.ReadSettings(path: path, meterNames: catalog.meterNames, strict: strict,
                                              maxSpanNanoseconds: 400 * 86_400 * 1_000_000_000, limits: limits,
                                              interning: interning, parseThreads: threads, chunkLines: chunkLines)
        var reading = Reading()
        var first = Simulator.readOrdered(settings, entities: TraceEntities(), pass: interning ? .first : .gather) { batch in
            reading.events += batch.map(fields)
        }
        if first.failure == nil, let late = first.late {
            reading.late = late.count
            reading.events = []
            first = Simulator.readOrdered(settings, entities: TraceEntities(), pass: .merge(late)) { batch in
                reading.events += batch.map(fields)
            }
        } else if first.failure == nil, !interning {
            // The ledger's gathering pass hands nothing on: its merge pass does, with no runs.
            let none = try? LateLines(limits: limits)
            try? none?.finish()
            if let none {
                first = Simulator.readOrdered(settings, entities: TraceEntities(), pass: .merge(none)) { batch in
                    reading.events += batch.map(fields)
                }
            }
        }
        reading.rejections = first.rejections
        reading.rejectionsUnlisted = first.rejectionsUnlisted
        reading.lines = first.lines
        reading.agents = first.entities.agents.names
        reading.failure = first.failure?.description
        return reading
    }

    @Test("property: parsed on 2 or 3 threads in chunks of 1 to 9 lines, a trace with bad lines gives the sequential parse's events, rejections and line numbers")
    func sameAsSequential() async throws {
        let catalog = try #require(F.catalog())
        await propertyCheck(count: 20, input: Gen.int(in: 0...Int(UInt32.max)), Gen.int(in: 20...120)) { seed, count in
            var random = SplitMix(state: UInt64(seed) ^ 0xFACE)
            let lines = Self.trace(seed: seed, count: count)
            do {
                let path = try F.trace(lines)
                defer { try? FileManager.default.removeItem(atPath: path) }
                for limits in [ReorderLimits.standard,
                               ReorderLimits(bufferEvents: Int(random.next() % 6) + 1, runBytes: Int(random.next() % 1_500) + 1, mergeFanIn: 2)] {
                    for interning in [true, false] {
                        let sequential = Self.read(path, catalog: catalog, threads: 0, chunkLines: 2_048, limits: limits, interning: interning)
                        #expect(sequential.failure == nil, "seed \(seed)")
                        #expect(!sequential.rejections.isEmpty && !sequential.events.isEmpty, "seed \(seed)")
                        for threads in [2, 3] {
                            let chunkLines = Int(random.next() % 9) + 1
                            let parallel = Self.read(path, catalog: catalog, threads: threads, chunkLines: chunkLines, limits: limits, interning: interning)
                            #expect(parallel == sequential, "seed \(seed), \(threads) threads, chunks of \(chunkLines) lines, \(limits), interning \(interning)")
                        }
                    }
                }
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
    }

    @Test("a line over the length limit, and --strict stopping at the first bad line, are the same in parallel")
    func overlongAndStrict() throws {
        let catalog = try #require(F.catalog())
        let lines = Self.trace(seed: 7, count: 60, overlong: true)
        let path = try F.trace(lines)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tiny = ReorderLimits(bufferEvents: 3, runBytes: 200, mergeFanIn: 2)
        for limits in [ReorderLimits.standard, tiny] {
            let sequential = Self.read(path, catalog: catalog, threads: 0, chunkLines: 2_048, limits: limits, interning: true)
            // The long line is rejected with its own number, counted among the lines.
            let longLine = try #require(lines.firstIndex { $0.utf8.count > LineReader.maximumLineBytes }) + 1
            #expect(sequential.rejections.contains { $0.line == longLine && $0.reason == "the line is longer than \(LineReader.maximumLineBytes) bytes" })
            #expect(sequential.lines == lines.count)
            for chunkLines in [1, 4, 2_048] {
                #expect(Self.read(path, catalog: catalog, threads: 2, chunkLines: chunkLines, limits: limits, interning: true) == sequential)
            }
            let strict = Self.read(path, catalog: catalog, threads: 0, chunkLines: 2_048, limits: limits, interning: true, strict: true)
            let firstBad = try #require(sequential.rejections.first)
            #expect(strict.failure == "line \(firstBad.line): \(firstBad.reason) (--strict)")
            for chunkLines in [1, 5, 2_048] {
                #expect(Self.read(path, catalog: catalog, threads: 2, chunkLines: chunkLines, limits: limits, interning: true, strict: true).failure == strict.failure)
            }
        }
    }

    @Test("property: simulate's --format json report is byte-identical with and without parse threads, late lines and windows included")
    func sameReport() async throws {
        let catalog = try #require(F.catalog())
        await propertyCheck(count: 15, input: Gen.int(in: 0...Int(UInt32.max)), Gen.int(in: 30...150)) { seed, count in
            var random = SplitMix(state: UInt64(seed) ^ 0xBEEF)
            do {
                let path = try F.trace(Self.trace(seed: seed, count: count))
                defer { try? FileManager.default.removeItem(atPath: path) }
                var options = SimulationOptions()
                if random.next() % 2 == 0 {
                    options.from = Timestamp(nanosecondsSinceEpoch: (1_793_491_200 + 10 * 86_400) * 1_000_000_000)
                    options.to = Timestamp(nanosecondsSinceEpoch: (1_793_491_200 + 50 * 86_400) * 1_000_000_000)
                }
                if random.next() % 2 == 0 {
                    options.reorder = ReorderLimits(bufferEvents: Int(random.next() % 8) + 1, runBytes: Int(random.next() % 2_000) + 1, mergeFanIn: 3)
                }
                options.parseThreads = 0
                let sequential = try Simulator.run(trace: path, catalog: catalog, options: options).json.rendered
                for threads in [2, 3] {
                    options.parseThreads = threads
                    let parallel = try Simulator.run(trace: path, catalog: catalog, options: options).json.rendered
                    #expect(parallel == sequential, "seed \(seed), \(threads) threads")
                }
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
    }

    @Test("a generated 30,000-event trace in delivery order with late lines: the same report in parallel, in chunks of the standard size")
    func generatedTrace() throws {
        let catalog = try #require(F.catalog())
        var generator = TraceGenerator(events: 30_000, consumers: 300, days: 40, start: F.at("2026-11-01"), seed: 11)
        generator.deliveryDelayNanoseconds = 3_000_000_000
        generator.lateMillionths = 20_000
        generator.lateMaxNanoseconds = 2 * 86_400 * 1_000_000_000
        var text = ""
        _ = try generator.generate(for: catalog) { text += $0 }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parallel-\(UUID().uuidString).jsonl").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = SimulationOptions()
        // A buffer of 64 events: the 2% late lines go to runs on disk and come back in the merge pass.
        options.reorder = ReorderLimits(bufferEvents: 64, runBytes: 64 << 10, mergeFanIn: 4)
        options.parseThreads = 0
        let sequential = try Simulator.run(trace: path, catalog: catalog, options: options)
        #expect(sequential.linesRead >= 30_000)
        options.parseThreads = 2
        let parallel = try Simulator.run(trace: path, catalog: catalog, options: options)
        #expect(parallel.json.rendered == sequential.json.rendered)
        let reading = Self.read(path, catalog: catalog, threads: 2, chunkLines: 2_048, limits: options.reorder, interning: true)
        #expect(reading.late > 0)
        #expect(reading == Self.read(path, catalog: catalog, threads: 0, chunkLines: 2_048, limits: options.reorder, interning: true))
    }
}
