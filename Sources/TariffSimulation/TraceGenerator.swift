import Foundation
import Tariff

/// Writes realistic, time-ordered usage traces for a catalog from a seed (`tariff generate`):
/// purchases up front, subscriptions to the catalog's subscription and enterprise plans,
/// executions with varied meters, about 2% failures and 0.1% at-least-once repeats.
public struct TraceGenerator {
    public var events: Int
    public var consumers: Int
    public var days: Int
    public var start: Timestamp
    public var seed: UInt64

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
    public func generate(for catalog: CompiledCatalog, write: (String) -> Void) -> Int {
        var random = Random(state: seed)
        let agents = Array(Set(catalog.definition.plans.map(\.agent))).sorted()
        let subscribable = catalog.planIDs.filter { id in catalog.versions(of: id).contains { catalog.plan($0).period != nil } }
        let meterNames = catalog.meterNames
        let spanNanoseconds = Int64(max(days, 1)) * 86_400 * 1_000_000_000
        var buffer = ""
        buffer.reserveCapacity(1 << 20)
        var written = 0
        func emit(_ line: String) {
            buffer += line
            buffer += "\n"
            written += 1
            if buffer.utf8.count >= 1 << 20 {
                write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        func time(_ nanoseconds: Int64) -> String { (start.adding(nanoseconds: nanoseconds) ?? start).rfc3339 }
        let consumerCount = max(1, min(consumers, events))
        // Purchases in the first hour, then one consumer in ten subscribes: written in time order.
        let purchases = min(consumerCount, events / 4)
        for consumer in 0..<purchases {
            emit(#"{"type":"purchase","at":"\#(time(Int64(consumer) * 1_000_000))","consumer":"cus_\#(consumer)","amount":"\#(100 + random.below(900)).00"}"#)
        }
        if !subscribable.isEmpty {
            for consumer in stride(from: 0, to: purchases, by: 10) where written < events / 3 {
                let plan = subscribable[random.below(subscribable.count)]
                emit(#"{"type":"subscribe","at":"\#(time(3_600_000_000_000 + Int64(consumer) * 1_000_000))","consumer":"cus_\#(consumer)","plan":"\#(plan)"}"#)
            }
        }
        let executions = max(0, events - written)
        let firstExecution: Int64 = 7_200_000_000_000
        let step = max(1, (spanNanoseconds - firstExecution) / Int64(max(executions, 1)))
        var previousLine = ""
        for index in 0..<executions {
            if index > 0 && random.below(1_000) == 0 && !previousLine.isEmpty {
                emit(previousLine)   // an at-least-once repeat of the previous execution
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
            emit(line)
            previousLine = line
        }
        if !buffer.isEmpty { write(buffer) }
        return written
    }
}
