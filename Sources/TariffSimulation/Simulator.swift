import Foundation
import Tariff

/// Options of a simulation run (cli.md, `tariff simulate`).
public struct SimulationOptions: Sendable {
    public var from: Timestamp?
    public var to: Timestamp?
    /// Required when the catalog has several currencies.
    public var currency: Currency?
    /// The first rejected line stops the run.
    public var strict: Bool
    /// `--max-span` (usage.md): events strictly farther than this from the first accepted event
    /// (file order), either way, are rejected. 400 days by default.
    public var maxSpanNanoseconds: Int64
    public static let defaultMaxSpanNanoseconds: Int64 = TraceParser.defaultMaxSpanNanoseconds
    public init(from: Timestamp? = nil, to: Timestamp? = nil, currency: Currency? = nil, strict: Bool = false,
                maxSpanNanoseconds: Int64 = SimulationOptions.defaultMaxSpanNanoseconds) {
        self.from = from
        self.to = to
        self.currency = currency
        self.strict = strict
        self.maxSpanNanoseconds = maxSpanNanoseconds
    }

    /// Reads `--max-span`: a whole number and a unit, `90s`, `15m`, `36h`, `400d` (cli.md).
    /// nil for anything else (zero, a sign, another unit, beyond the representable range).
    public static func span(_ text: String) -> Int64? {
        guard let unit = text.last, let count = Int64(text.dropLast()), count > 0, text.first != "+" else { return nil }
        let size: Int64
        switch unit {
        case "s": size = 1_000_000_000
        case "m": size = 60 * 1_000_000_000
        case "h": size = 3_600 * 1_000_000_000
        case "d": size = 86_400 * 1_000_000_000
        default: return nil
        }
        let (value, overflow) = count.multipliedReportingOverflow(by: size)
        return overflow ? nil : value
    }
}

/// Why a simulation stopped (exit 2 in the CLI).
public struct SimulationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Replays a usage trace against a catalog with no ledger.
///
/// A trace in time order (what producers write, and what `tariff generate` writes) is streamed:
/// memory holds the consumers' state and the ids seen, not the events. A trace found out of
/// order is read again into memory and sorted by `(time, line)` (stdin is always buffered).
public enum Simulator {
    /// Runs the simulation. `progress` is called with the lines read so far, every 65,536 lines.
    public static func run(trace path: String, catalog: CompiledCatalog, options: SimulationOptions,
                           progress: ((Int) -> Void)? = nil) throws(SimulationError) -> SimulationReport {
        let currency = try runCurrency(catalog, options)
        let failuresBefore = catalog.externalRuleFailures()
        var outcome = try pass(path, catalog: catalog, options: options, currency: currency, buffered: path == "-", progress: progress)
        if outcome == nil {
            outcome = try pass(path, catalog: catalog, options: options, currency: currency, buffered: true, progress: progress)
        }
        guard var report = outcome else { throw SimulationError("the trace could not be ordered") }
        report.currency = currency
        // A WebAssembly rule that failed was skipped for those executions: said once per plugin.
        report.warnings += catalog.externalRuleWarnings(since: failuresBefore).map { TraceWarning(line: 0, message: $0) }
        return report
    }

    static func runCurrency(_ catalog: CompiledCatalog, _ options: SimulationOptions) throws(SimulationError) -> Currency? {
        let currencies = catalog.definition.currencies
        if let currency = options.currency {
            guard currencies.contains(currency) else {
                throw SimulationError("no plan of the catalog is in \(currency.code) (currencies: \(currencies.map(\.code).joined(separator: ", ")))")
            }
            return currency
        }
        if currencies.count > 1 {
            throw SimulationError("the catalog has several currencies (\(currencies.map(\.code).joined(separator: ", "))): pass --currency CODE")
        }
        return currencies.first
    }

    /// One pass over the trace; nil when streaming met an event out of order (read again, buffered).
    private static func pass(_ path: String, catalog: CompiledCatalog, options: SimulationOptions, currency: Currency?, buffered: Bool,
                             progress: ((Int) -> Void)?) throws(SimulationError) -> SimulationReport? {
        var processor = BillingProcessor(catalog: catalog, sink: SimulationSink(catalog: catalog, from: options.from, to: options.to),
                                         entities: TraceEntities(), currency: currency)
        // The reader interns agents into its own copy of the tables (holding the catalog's agents
        // at the indexes the processor knows); the processor gets it back at the end.
        let entities = processor.entities
        let reading: ReadingOutcome
        if buffered {
            // Read everything, then sort by (time, line): the sort is stable, so ties keep trace order.
            var events: [TraceEvent] = []
            reading = read(path, catalog: catalog, options: options, entities: entities, stopWhenOutOfOrder: false) { batch in
                events.append(contentsOf: batch)
            }
            if let failure = reading.failure { throw failure }
            events.sort { ($0.time, $0.line) < ($1.time, $1.line) }
            for event in events { processor.process(event) }
        } else {
            // Two stages on two cores: this thread prices what a reader thread parses, through a
            // bounded queue of event batches (so memory does not grow with the trace).
            let pipe = EventPipe()
            let box = ReadingBox()
            let thread = Thread {
                box.outcome = read(path, catalog: catalog, options: options, entities: entities, stopWhenOutOfOrder: true) { batch in
                    pipe.put(batch)
                }
                pipe.finish()
            }
            thread.stackSize = 8 << 20
            thread.start()
            var processedLines = 0
            while var batch = pipe.take() {
                // A few hundred events at a time: first their names are interned and the id-table
                // slots they will probe loaded, in tight loops whose cache misses overlap (where
                // each event waited for memory in turn), then they are processed.
                batch.withUnsafeMutableBufferPointer { events in
                    for chunk in stride(from: 0, to: events.count, by: 256) {
                        let end = min(chunk + 256, events.count)
                        processor.prepare(UnsafeMutableBufferPointer(rebasing: events[chunk..<end]))
                        for index in chunk..<end { processor.process(resolved: events[index]) }
                    }
                }
                if let last = batch.last, last.line - processedLines >= 65_536 {
                    processedLines = last.line
                    progress?(processedLines)
                }
            }
            box.done.wait()
            guard let outcome = box.outcome else { throw SimulationError("the trace reader stopped") }
            reading = outcome
            if let failure = reading.failure { throw failure }
            if reading.outOfOrder { return nil }
        }
        // Agents were interned by the reader; consumers and plans by the processor.
        processor.entities.agents = reading.entities.agents
        let from = options.from ?? processor.firstEventTime
        let to = options.to ?? processor.lastEventTime.flatMap { $0.adding(nanoseconds: 1) }
        processor.finish(through: options.to ?? processor.lastEventTime ?? Timestamp(nanosecondsSinceEpoch: .min))
        var sink = processor.sink
        sink.entities = processor.entities
        for rejection in reading.rejections { sink.rejected(rejection) }
        sink.rejectedUnlisted(reading.rejectionsUnlisted)
        var report: SimulationReport
        do throws(AmountOverflow) { report = try sink.finished() } catch { throw SimulationError(error.description) }
        report.linesRead = reading.lines
        report.from = from
        report.to = to
        return report
    }

    /// What reading a trace gave: the entity tables, the rejections, the lines, or why it stopped.
    struct ReadingOutcome: @unchecked Sendable {
        var entities: TraceEntities
        var rejections: [Rejection] = []
        /// Rejected lines past `SimulationReport.maximumListed` (counted, not kept).
        var rejectionsUnlisted = 0
        var lines = 0
        var outOfOrder = false
        var failure: SimulationError?

        mutating func reject(_ rejection: Rejection) {
            if rejections.count < SimulationReport.maximumListed { rejections.append(rejection) } else { rejectionsUnlisted += 1 }
        }
    }

    /// Reads and parses the trace, handing events on in batches of 4,096.

    private static func read(_ path: String, catalog: CompiledCatalog, options: SimulationOptions, entities: TraceEntities,
                             stopWhenOutOfOrder: Bool, deliver: ([TraceEvent]) -> Void) -> ReadingOutcome {
        var parser = TraceParser(meterNames: catalog.meterNames, maxSpanNanoseconds: options.maxSpanNanoseconds)
        var outcome = ReadingOutcome(entities: entities)
        var batch: [TraceEvent] = []
        batch.reserveCapacity(4_096)
        var lastTime: Timestamp?
        do throws(TraceReadError) {
            outcome.lines = try LineReader.forEachLine(path: path) { bytes, line in
                guard let bytes else {
                    let rejection = Rejection(line: line, reason: "the line is longer than \(LineReader.maximumLineBytes) bytes")
                    if options.strict { outcome.failure = SimulationError("line \(line): \(rejection.reason) (--strict)"); return false }
                    outcome.reject(rejection)
                    return true
                }
                switch parser.parse(bytes, line: line, interning: &outcome.entities, appendingTo: &batch) {
                case .blank:
                    return true
                case .rejected(let reason):
                    if options.strict { outcome.failure = SimulationError("line \(line): \(reason) (--strict)"); return false }
                    outcome.reject(Rejection(line: line, reason: reason))
                    return true
                case .event:
                    // The parser appended the event to the batch (the batch is then never delivered
                    // when the event is out of order).
                    if stopWhenOutOfOrder, let time = batch.last?.time {
                        if let lastTime, time < lastTime {
                            outcome.outOfOrder = true
                            return false
                        }
                        lastTime = time
                    }
                    if batch.count == 4_096 {
                        deliver(batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                    return true
                }
            }
        } catch {
            outcome.failure = SimulationError(error.description)
        }
        if !batch.isEmpty && !outcome.outOfOrder { deliver(batch) }
        return outcome
    }
}

/// A bounded queue of event batches between the reader thread and the pricing thread.
final class EventPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches: [[TraceEvent]] = []
    private var finished = false
    /// At most this many batches wait: the reader pauses rather than buffer the trace.
    private let capacity = 8

    func put(_ batch: [TraceEvent]) {
        condition.lock()
        while batches.count >= capacity { condition.wait() }
        batches.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    func take() -> [TraceEvent]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        guard !batches.isEmpty else { return nil }
        let batch = batches.removeFirst()
        condition.broadcast()
        return batch
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}

/// The reader thread's outcome, handed back once it is done.
final class ReadingBox: @unchecked Sendable {
    var outcome: Simulator.ReadingOutcome? {
        didSet { done.signal() }
    }
    let done = DispatchSemaphore(value: 0)
}
