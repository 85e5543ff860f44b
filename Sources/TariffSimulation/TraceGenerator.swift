import Foundation
import Tariff

/// Writes realistic usage traces for a catalog from a seed (`tariff generate`): purchases up
/// front, subscriptions to the catalog's subscription and enterprise plans, executions with varied
/// meters, about 2% failures and 0.1% at-least-once repeats. In time order by default; or in
/// delivery order, as producers write them: each line at its time plus a random delay, some much
/// later; or shuffled. The same seed gives the same events whatever the order asked for.
public struct TraceGenerator {
    public var events: Int
    public var consumers: Int
    public var days: Int
    public var start: Timestamp
    public var seed: UInt64
    /// Each line is written at its time (`at`, `ended_at`) plus a random 0...this delay.
    public var deliveryDelayNanoseconds: Int64 = 0
    /// This many events in a million are written up to `lateMaxNanoseconds` later still.
    public var lateMillionths: Int = 0
    public var lateMaxNanoseconds: Int64 = 0
    /// Lines in a random order (seeded): every permutation equally likely.
    public var shuffle = false

    public init(events: Int, consumers: Int = 1_000, days: Int = 30, start: Timestamp, seed: UInt64 = 1) {
        self.events = events
        self.consumers = consumers
        self.days = days
        self.start = start
        self.seed = seed
    }

    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    }

    /// Writes the trace to `write` in chunks (a file handle, standard output). Returns lines written.
    @discardableResult
    /// - throws: when a shuffled trace's temporary files cannot be written or read back.
    public func generate(for catalog: CompiledCatalog, write: (String) -> Void) throws(SimulationError) -> Int {
        var random = Random(state: seed)
        let agents = Array(Set(catalog.definition.plans.map(\.agent))).sorted()
        let subscribable = catalog.planIDs.filter { id in catalog.versions(of: id).contains { catalog.plan($0).period != nil } }
        let meterNames = catalog.meterNames
        let spanNanoseconds = Int64(max(days, 1)) * 86_400 * 1_000_000_000
        var buffer = ""
        buffer.reserveCapacity(1 << 20)
        var written = 0
        func output(_ line: String) {
            buffer += line
            buffer += "\n"
            if buffer.utf8.count >= 1 << 20 {
                write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        // Delivery order: lines wait in a heap on (position, sequence) until no line still to
        // come can be written before them (times only grow, and a position is never before its time).
        var delivery = Random(state: seed ^ 0xDE11_7E5A_11CE_0001)
        var pending = MinHeap<(position: Int64, sequence: Int, line: String)>(by: { ($0.position, $0.sequence) < ($1.position, $1.sequence) })
        var shuffler = shuffle ? LineShuffler(seed: seed ^ 0x5AFF_1E00_5EED_0002) : nil
        let delayed = deliveryDelayNanoseconds > 0 || (lateMillionths > 0 && lateMaxNanoseconds > 0)
        func emit(_ line: String, at nanoseconds: Int64) {
            written += 1
            if shuffler != nil {
                shuffler?.add(line)
                return
            }
            guard delayed else { return output(line) }
            while let first = pending.peek, first.position <= nanoseconds {
                pending.pop()
                output(first.line)
            }
            var position = nanoseconds
            if deliveryDelayNanoseconds > 0 { position &+= Int64(delivery.next() % UInt64(deliveryDelayNanoseconds &+ 1)) }
            if lateMillionths > 0 && lateMaxNanoseconds > 0 && delivery.below(1_000_000) < lateMillionths {
                position &+= Int64(delivery.next() % UInt64(lateMaxNanoseconds &+ 1))
            }
            pending.push((position, written, line))
        }
        func time(_ nanoseconds: Int64) -> String { (start.adding(nanoseconds: nanoseconds) ?? start).rfc3339 }
        let consumerCount = max(1, min(consumers, events))
        // Purchases in the first hour, then one consumer in ten subscribes: written in time order.
        let purchases = min(consumerCount, events / 4)
        for consumer in 0..<purchases {
            emit(#"{"type":"purchase","at":"\#(time(Int64(consumer) * 1_000_000))","consumer":"cus_\#(consumer)","amount":"\#(100 + random.below(900)).00"}"#,
                 at: Int64(consumer) * 1_000_000)
        }
        if !subscribable.isEmpty {
            for consumer in stride(from: 0, to: purchases, by: 10) where written < events / 3 {
                let plan = subscribable[random.below(subscribable.count)]
                emit(#"{"type":"subscribe","at":"\#(time(3_600_000_000_000 + Int64(consumer) * 1_000_000))","consumer":"cus_\#(consumer)","plan":"\#(plan)"}"#,
                     at: 3_600_000_000_000 + Int64(consumer) * 1_000_000)
            }
        }
        let executions = max(0, events - written)
        let firstExecution: Int64 = 7_200_000_000_000
        let step = max(1, (spanNanoseconds - firstExecution) / Int64(max(executions, 1)))
        var previousLine = ""
        var previousEnded: Int64 = 0
        for index in 0..<executions {
            if index > 0 && random.below(1_000) == 0 && !previousLine.isEmpty {
                emit(previousLine, at: previousEnded)   // an at-least-once repeat of the previous execution
                continue
            }
            let ended = firstExecution + Int64(index) * step
            let duration = Int64(random.below(5_000) + 50) * 1_000_000
            let consumer = random.below(consumerCount)
            let agent = agents.isEmpty ? "agt_none" : agents[random.below(agents.count)]
            var meters: [String] = []
            for (position, name) in meterNames.prefix(4).enumerated() {
                let value: Int
                switch position {
                case 0: value = random.below(20_000)
                case 1: value = random.below(50_000)
                case 2: value = random.below(2_000)
                default: value = random.below(8)
                }
                meters.append(#""\#(name)":\#(value)"#)
            }
            let status = random.below(50) == 0 ? "failed" : "succeeded"
            let line = #"{"type":"execution","id":"exe_\#(index)","consumer":"cus_\#(consumer)","agent":"\#(agent)","started_at":"\#(time(ended - duration))","ended_at":"\#(time(ended))","status":"\#(status)","meters":{\#(meters.joined(separator: ","))}}"#
            emit(line, at: ended)
            previousLine = line
            previousEnded = ended
        }
        while let first = pending.pop() { output(first.line) }
        do throws(ReorderError) { try shuffler?.finish(output) } catch { throw SimulationError(error.description) }
        if !buffer.isEmpty { write(buffer) }
        return written
    }
}

/// A uniform random permutation of many lines in bounded memory: each line goes to one of 64
/// temporary files at random, then each file is read back, shuffled in memory (Fisher-Yates) and
/// written out. A random bucket then a uniform order inside it makes every permutation equally
/// likely; memory holds one bucket (a 64th of the trace), not the trace.
struct LineShuffler {
    private var random: TraceGenerator.Random
    private var buckets: [TemporaryFile?]
    private var memory: [[String]]
    /// The first failure to write a bucket (reported by `finish`: no line is ever dropped silently).
    private var failure: ReorderError?
    private static let bucketCount = 64
    /// Lines kept in memory per bucket before they go to its file.
    private static let bucketLines = 1_024

    init(seed: UInt64) {
        random = TraceGenerator.Random(state: seed)
        buckets = [TemporaryFile?](repeating: nil, count: Self.bucketCount)
        memory = [[String]](repeating: [], count: Self.bucketCount)
    }

    mutating func add(_ line: String) {
        let bucket = random.below(Self.bucketCount)
        memory[bucket].append(line)
        if memory[bucket].count >= Self.bucketLines && failure == nil {
            do throws(ReorderError) {
                if buckets[bucket] == nil { buckets[bucket] = try TemporaryFile(prefix: "tariff-shuffle") }
                var text = memory[bucket].joined(separator: "\n")
                text += "\n"
                let file = buckets[bucket]
                let failure = text.withUTF8 { bytes -> ReorderError? in
                    do throws(ReorderError) {
                        try file?.append(UnsafeRawBufferPointer(bytes))
                        return nil
                    } catch { return error }
                }
                if let failure { throw failure }
                memory[bucket].removeAll(keepingCapacity: true)
            } catch {
                self.failure = error
            }
        }
    }

    mutating func finish(_ output: (String) -> Void) throws(ReorderError) {
        if let failure { throw failure }
        for bucket in 0..<Self.bucketCount {
            var lines: [String] = []
            if let file = buckets[bucket] {
                let bytes = try file.contents()
                lines = bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
                buckets[bucket] = nil
            }
            lines += memory[bucket]
            memory[bucket] = []
            // Fisher-Yates.
            if lines.count > 1 {
                for index in stride(from: lines.count - 1, to: 0, by: -1) {
                    lines.swapAt(index, random.below(index + 1))
                }
            }
            lines.forEach(output)
        }
    }
}
