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
    /// The reorder stage's bounds (tests make them tiny to exercise the runs on disk).
    public var reorder: ReorderLimits = .standard
    /// Threads that parse the trace's lines (the reader takes them back in order); below 2, the
    /// reader parses alone. The default is `defaultParseThreads`.
    public var parseThreads = SimulationOptions.defaultParseThreads
    /// One parse thread per core when there are several, else none; `TARIFF_PARSE_THREADS`
    /// overrides it (0 or 1: the reader parses alone), to measure one against the other.
    public static let defaultParseThreads: Int = {
        if let text = ProcessInfo.processInfo.environment["TARIFF_PARSE_THREADS"], let count = Int(text), count >= 0 {
            return min(count, 64)
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return cores >= 2 ? min(cores, 8) : 0
    }()
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
/// Events are streamed through the reorder stage (`ReorderBuffer`): memory holds the consumers'
/// state, the ids seen and a bounded buffer of events, never the trace. A trace in time order, or
/// nearly (delivery order), is read once. When an event arrives later than the buffer reaches,
/// the run goes on reading to gather every such line into sorted runs on disk, then reads the
/// trace a second time, leaving those lines out and merging the runs back in: the events are then
/// processed exactly in `(time, line)` order, as a full sort would give. Standard input is first
/// copied to a temporary file (it may need to be read twice).
public enum Simulator {
    /// Runs the simulation. `progress` is called with the lines read so far, every 65,536 lines.
    public static func run(trace path: String, catalog: CompiledCatalog, options: SimulationOptions,
                           progress: ((Int) -> Void)? = nil) throws(SimulationError) -> SimulationReport {
        let currency = try runCurrency(catalog, options)
        let failuresBefore = catalog.externalRuleFailures()
        let source = try TraceSource(path)
        var outcome = try pass(source.path, catalog: catalog, options: options, currency: currency, reading: .first, progress: progress)
        if case .late(let late) = outcome {
            outcome = try pass(source.path, catalog: catalog, options: options, currency: currency, reading: .merge(late), progress: progress)
        }
        guard case .report(var report) = outcome else { throw SimulationError("the trace could not be ordered") }
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

    private enum PassOutcome {
        case report(SimulationReport)
        /// Some lines came too late for the buffer: they are in runs, for a second pass.
        case late(LateLines)
    }

    /// One pass over the trace: a report, or the late lines gathered for a second pass.
    private static func pass(_ path: String, catalog: CompiledCatalog, options: SimulationOptions, currency: Currency?, reading readingPass: ReadPass,
                             progress: ((Int) -> Void)?) throws(SimulationError) -> PassOutcome {
        var startEntities = TraceEntities()
        // A second pass reads events the first one released, with agent indexes of its table: the
        // catalog's agents must keep theirs (interned from a `Set`, whose order differs per instance).
        if case .merge(let late) = readingPass, let tail = late.tail { startEntities.agents = tail.agents }
        var processor = BillingProcessor(catalog: catalog, sink: SimulationSink(catalog: catalog, from: options.from, to: options.to, currency: currency),
                                         entities: startEntities, currency: currency)
        // The reader interns agents into its own copy of the tables (holding the catalog's agents
        // at the indexes the processor knows); the processor gets it back at the end.
        let entities = processor.entities
        let reading: ReadingOutcome
        // Two stages on two cores: this thread prices what a reader thread parses and orders,
        // through a bounded queue of event batches (so memory does not grow with the trace).
        let pipe = EventPipe()
        let box = ReadingBox()
        let settings = ReadSettings(path: path, meterNames: catalog.meterNames, strict: options.strict,
                                    maxSpanNanoseconds: options.maxSpanNanoseconds, limits: options.reorder, interning: true,
                                    parseThreads: options.parseThreads)
        let thread = Thread {
            box.outcome = readOrdered(settings, entities: entities, pass: readingPass, spare: { pipe.spare() }) { batch in pipe.put(&batch) }
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
                guard let base = events.baseAddress else { return }
                for chunk in stride(from: 0, to: events.count, by: 256) {
                    let end = min(chunk + 256, events.count)
                    processor.prepare(UnsafeMutableBufferPointer(start: base + chunk, count: end - chunk))
                    // By pointer: `events[index]` handed on by value was copied for every event.
                    for index in chunk..<end { processor.process(resolved: UnsafePointer(base + index)) }
                }
            }
            if let last = batch.last, last.line - processedLines >= 65_536 {
                processedLines = last.line
                progress?(processedLines)
            }
            pipe.giveBack(&batch)
        }
        box.done.wait()
        guard let outcome = box.outcome else { throw SimulationError("the trace reader stopped") }
        reading = outcome
        if let failure = reading.failure { throw failure }
        if let late = reading.late, case .first = readingPass { return .late(late) }
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
        return .report(report)
    }

    /// What reading a trace gave: the entity tables, the rejections, the lines, or why it stopped.
    struct ReadingOutcome: @unchecked Sendable {
        var entities: TraceEntities
        var rejections: [Rejection] = []
        /// Rejected lines past `SimulationReport.maximumListed` (counted, not kept).
        var rejectionsUnlisted = 0
        var lines = 0
        /// The lines that came later than the buffer reached (first and gathering passes).
        var late: LateLines?
        var failure: SimulationError?

        mutating func reject(_ rejection: Rejection) {
            if rejections.count < SimulationReport.maximumListed { rejections.append(rejection) } else { rejectionsUnlisted += 1 }
        }
    }

    /// Which pass over the trace a reading is.
    enum ReadPass: @unchecked Sendable {
        /// Hands on released events in order until one comes too late for the buffer; from then on
        /// hands on nothing and gathers the late lines (a second pass follows).
        case first
        /// Hands on nothing, gathers the late lines (the ledger applies nothing before the order is known).
        case gather
        /// The second pass: the late lines are skipped and their runs merged back in.
        case merge(LateLines)
    }

    struct ReadSettings: @unchecked Sendable {
        var path: String
        var meterNames: [String]
        var strict: Bool
        var maxSpanNanoseconds: Int64
        var limits: ReorderLimits
        /// Agents interned and ids hashed by the reader (simulate), or names kept (the ledger replay).
        var interning: Bool
        /// Parse threads beside the reader (`SimulationOptions.parseThreads`); below 2, none.
        var parseThreads: Int = SimulationOptions.defaultParseThreads
        /// Lines a parse thread takes at a time (tests make it tiny to cut chunks everywhere).
        var chunkLines: Int = ParseChunk.standardLines
    }

    /// Reads and parses the trace through the reorder stage, handing released events on in
    /// `(time, line)` order, in batches of 4,096. With `parseThreads` of 2 or more, lines are
    /// parsed in chunks on that many worker threads and taken back in order (`ParseChunk`): the
    /// events, rejections and line numbers are those of the sequential parse.
    ///
    /// `deliver` may take the batch's storage (`EventPipe.put` does, leaving it empty), so that the
    /// taker holds the only reference: a batch still referenced here when the pricing thread
    /// changed it in place was copied whole (a megabyte; 6% of the run's samples). `spare`, when
    /// given, hands back an emptied batch array to fill next (the pricing thread's spent batches:
    /// their capacity is reused rather than a megabyte allocated per batch).
    ///
    /// The nested functions below capture only plain values and the reader's own state: no
    /// closure is formed per event (one that captured `settings` copied it, with its strings and
    /// arrays, for every event), and the reorder buffer is pushed and drained without callbacks.
    static func readOrdered(_ settings: ReadSettings, entities: TraceEntities, pass: ReadPass,
                            spare: (() -> [TraceEvent]?)? = nil, deliver: (inout [TraceEvent]) -> Void) -> ReadingOutcome {
        let strict = settings.strict
        let interning = settings.interning
        let limits = settings.limits
        let batchEvents = 4_096
        var parser = TraceParser(meterNames: settings.meterNames, maxSpanNanoseconds: settings.maxSpanNanoseconds)
        var outcome = ReadingOutcome(entities: entities)
        var batch: [TraceEvent] = []
        batch.reserveCapacity(batchEvents)
        var parsed: [TraceEvent] = []
        parsed.reserveCapacity(1)
        var buffer = ReorderBuffer(capacity: limits.bufferEvents)
        var delivering: Bool
        var merger: LateMerger?
        var skipping: TemporaryFileReader?
        var nextSkipped: Int?
        var lateSeen = 0
        // The first pass: what it releases after its first late line (`ReleasedTail`).
        var recording: ReleasedTail?
        // The second pass after such a first pass: the trace is read up to that line, then this.
        var readingTail: ReleasedTail?
        // The runs' lines are parsed again as read the first time (their span was checked then).
        var reparser = TraceParser(meterNames: settings.meterNames, maxSpanNanoseconds: settings.maxSpanNanoseconds)
        reparser.checksSpan = false
        let workers = settings.parseThreads >= 2 ? ParseWorkers(count: settings.parseThreads) : nil
        defer { workers?.stop() }
        var pool = ChunkPool(meterNames: settings.meterNames, maxSpanNanoseconds: settings.maxSpanNanoseconds, interning: settings.interning,
                             lines: settings.chunkLines)
        /// Chunks of the trace's lines submitted to the workers, oldest first (parallel only).
        var submitted: [ParseChunk] = []
        let parallel = workers != nil
        // The next chunk's lines, gathered in the reader's own arrays (see `ChunkLines`).
        var gathering = ChunkLines(maximumLines: parallel ? settings.chunkLines : 1)
        // Enough chunks in hand to keep every worker busy while the oldest is taken back (each
        // is some 1 MiB with its events: memory stays a few MiB).
        let submittedLimit = settings.parseThreads + 2
        var parsedRuns: ParsedRuns?
        switch pass {
        case .first: delivering = true
        case .gather: delivering = false
        case .merge(let late):
            delivering = true
            if let tail = late.tail {
                readingTail = tail
                // The events in the tail carry agent indexes of the first pass's table.
                outcome.entities.agents = tail.agents
            }
            skipping = TemporaryFileReader(late.lineNumbers)
            do throws(ReorderError) {
                let runs = try LateMerger(runs: late.runs, bufferBytes: 1 << 16)
                if let workers {
                    parsedRuns = ParsedRuns(merger: runs, workers: workers, pool: pool, depth: submittedLimit)
                } else {
                    merger = runs
                }
                nextSkipped = try skipping?.read(Int64.self).map { Int($0) }
            } catch {
                outcome.failure = SimulationError(error.description)
                return outcome
            }
        }
        func flushIfFull() {
            if batch.count >= batchEvents {
                deliver(&batch)
                if batch.capacity >= batchEvents {
                    batch.removeAll(keepingCapacity: true)
                } else {
                    batch = spare?() ?? []
                    batch.reserveCapacity(batchEvents)
                }
            }
        }
        /// Appends the run records that sort before `key` (all of them for nil), parsed again.
        func mergeRuns(before key: EventKey?) throws(ReorderError) {
            if let parsedRuns {
                while let head = try parsedRuns.head(), key.map({ head < $0 }) ?? true {
                    batch.append(try parsedRuns.next(agents: &outcome.entities.agents))
                    flushIfFull()
                }
                return
            }
            guard merger != nil else { return }
            while let head = merger?.head, key.map({ head < $0 }) ?? true {
                let parsedAgain = try merger?.take { (recordKey, bytes) throws(ReorderError) -> TraceParser.Outcome in
                    interning
                        ? reparser.parse(bytes, line: recordKey.line, interning: &outcome.entities, appendingTo: &batch)
                        : reparser.parse(bytes, line: recordKey.line, appendingTo: &batch)
                }
                guard case .event = parsedAgain else {
                    throw ReorderError(description: "line \(head.line), read again from its run, is no longer an event")
                }
                flushIfFull()
            }
        }
        var mergeFailure: ReorderError?
        func release(_ event: TraceEvent) {
            guard delivering else {
                if let recording, mergeFailure == nil {
                    do throws(ReorderError) { try event.write(to: recording.events) } catch { mergeFailure = error }
                }
                return
            }
            guard mergeFailure == nil else { return }
            if merger != nil || parsedRuns != nil {
                do throws(ReorderError) { try mergeRuns(before: EventKey(time: event.time.nanosecondsSinceEpoch, line: event.line)) } catch {
                    mergeFailure = error
                    return
                }
            }
            batch.append(event)
            flushIfFull()
        }
        /// A rejected line (in file order); false when the run stops at it (`--strict`).
        func reject(_ reason: String, line: Int) -> Bool {
            if strict {
                outcome.failure = SimulationError("line \(line): \(reason) (--strict)")
                return false
            }
            outcome.reject(Rejection(line: line, reason: reason))
            return true
        }
        let overlongReason = "the line is longer than \(LineReader.maximumLineBytes) bytes"
        /// An accepted event (in file order) the buffer `accepts`: into it, the earliest out when
        /// it is full. False when reading must stop.
        func push(_ event: TraceEvent) -> Bool {
            buffer.push(event)
            if buffer.isOverCapacity, let earliest = buffer.takeEarliest() { release(earliest) }
            if let mergeFailure {
                outcome.failure = SimulationError(mergeFailure.description)
                return false
            }
            return true
        }
        /// An accepted event later than the buffer reaches (`buffer.accepts` said no): its line to
        /// a run on disk; nothing more is handed on. False when reading must stop.
        func spill(_ key: EventKey, bytes: UnsafeBufferPointer<UInt8>) -> Bool {
            if case .merge = pass {
                outcome.failure = SimulationError("the trace changed while it was read: line \(key.line) is out of order now")
                return false
            }
            delivering = false
            do throws(ReorderError) {
                if outcome.late == nil {
                    outcome.late = try LateLines(limits: limits)
                    if case .first = pass {
                        recording = try ReleasedTail(firstLateLine: key.line)
                        outcome.late?.tail = recording
                    }
                }
                try outcome.late?.add(key, line: bytes)
            } catch {
                outcome.failure = SimulationError(error.description)
                return false
            }
            return true
        }
        /// Takes a parsed chunk's lines in order, as the sequential reader does each line.
        func take(_ chunk: ParseChunk) -> Bool {
            var parsed = chunk.takeParsed()
            defer { chunk.giveBack(&parsed) }
            for index in parsed.lines.indices {
                let line = parsed.lines[index]
                switch parsed.outcomes[index] {
                case .overlong:
                    guard reject(overlongReason, line: line.number) else { return false }
                case .blank:
                    continue
                case .rejected(let reason):
                    guard reject(reason, line: line.number) else { return false }
                case .event:
                    // The agent is interned before the span check, as `TraceParser.parse` does.
                    let event = parsed.takeEvent(agents: &outcome.entities.agents)
                    if let reason = parser.checkSpan(time: event.time, line: line.number) {
                        guard reject(reason, line: line.number) else { return false }
                        continue
                    }
                    let key = EventKey(time: event.time.nanosecondsSinceEpoch, line: line.number)
                    if buffer.accepts(key) {
                        guard push(event) else { return false }
                    } else {
                        guard parsed.withBytes(of: line, { spill(key, bytes: $0) }) else { return false }
                    }
                }
            }
            return true
        }
        /// Submits the chunk being filled; takes back the oldest chunks beyond `keeping` submitted.
        func submit(keeping: Int) -> Bool {
            if !gathering.isEmpty, let workers {
                let chunk = pool.take()
                chunk.load(&gathering)
                workers.submit(chunk)
                submitted.append(chunk)
            }
            while submitted.count > keeping {
                let oldest = submitted.removeFirst()
                let going = take(oldest)
                pool.give(oldest)
                guard going else { return false }
            }
            return true
        }
        do throws(TraceReadError) {
            outcome.lines = try LineReader.forEachLine(path: settings.path) { bytes, line in
                // The rest was released by the first pass and kept (`ReleasedTail`).
                if let readingTail, line >= readingTail.firstLateLine { return false }
                if line == nextSkipped {
                    // A late line of the first pass: its run brings it back in order.
                    lateSeen += 1
                    do throws(ReorderError) { nextSkipped = try skipping?.read(Int64.self).map { Int($0) } } catch {
                        outcome.failure = SimulationError(error.description)
                        return false
                    }
                    return true
                }
                if parallel {
                    gathering.append(bytes, number: line)
                    return gathering.isFull ? submit(keeping: submittedLimit) : true
                }
                guard let bytes else { return reject(overlongReason, line: line) }
                let result = interning
                    ? parser.parse(bytes, line: line, interning: &outcome.entities, appendingTo: &parsed)
                    : parser.parse(bytes, line: line, appendingTo: &parsed)
                switch result {
                case .blank:
                    return true
                case .rejected(let reason):
                    return reject(reason, line: line)
                case .event:
                    guard let event = parsed.popLast() else { return true }
                    let key = EventKey(time: event.time.nanosecondsSinceEpoch, line: line)
                    return buffer.accepts(key) ? push(event) : spill(key, bytes: bytes)
                }
            }
        } catch {
            outcome.failure = SimulationError(error.description)
        }
        // The chunks still with the workers, in order.
        if outcome.failure == nil && parallel { _ = submit(keeping: 0) }
        guard outcome.failure == nil else { return outcome }
        do throws(ReorderError) {
            if let readingTail {
                // The buffer holds what the first pass went on to release, in its file: read from
                // there (the first pass's reading of the rest of the trace stands, too).
                buffer = ReorderBuffer(capacity: 1)
                var reader = TemporaryFileReader(readingTail.events, bufferBytes: 1 << 20)
                while mergeFailure == nil, let event = try TraceEvent.read(from: &reader) { release(event) }
                outcome.rejections = readingTail.rejections
                outcome.rejectionsUnlisted = readingTail.rejectionsUnlisted
                outcome.lines = readingTail.lines
            } else {
                while let earliest = buffer.takeEarliest() { release(earliest) }
            }
            if let mergeFailure { throw mergeFailure }
            // Every late line sorts before some released event, so the runs are empty by now;
            // merged to their end all the same (a run is never left unread).
            if delivering { try mergeRuns(before: nil) }
            try outcome.late?.finish()
            if let recording {
                try recording.events.finishWriting()
                recording.rejections = outcome.rejections
                recording.rejectionsUnlisted = outcome.rejectionsUnlisted
                recording.lines = outcome.lines
                recording.agents = outcome.entities.agents
            }
        } catch {
            outcome.failure = SimulationError(error.description)
            return outcome
        }
        if case .merge(let late) = pass, readingTail == nil, lateSeen != late.count || nextSkipped != nil {
            outcome.failure = SimulationError("the trace changed while it was read: \(late.count) lines came late the first time, \(lateSeen) now")
            return outcome
        }
        if !batch.isEmpty && delivering { deliver(&batch) }
        return outcome
    }
}

/// The trace's file: the path itself, or for standard input (`-`) a temporary copy, removed when
/// this is released (the reorder stage may read the trace twice).
final class TraceSource {
    let path: String
    private let temporary: Bool

    init(_ path: String) throws(SimulationError) {
        guard path == "-" else {
            self.path = path
            temporary = false
            return
        }
        var template = Array((FileManager.default.temporaryDirectory.path + "/tariff-stdin-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw SimulationError("cannot create a temporary file for standard input in \(FileManager.default.temporaryDirectory.path): \(String(cString: strerror(errno)))")
        }
        let name = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(descriptor) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = chunk.withUnsafeMutableBytes { Foundation.read(STDIN_FILENO, $0.baseAddress!, $0.count) }
            if read < 0 && errno == EINTR { continue }
            guard read >= 0 else {
                unlink(name)
                throw SimulationError("cannot read standard input: \(String(cString: strerror(errno)))")
            }
            if read == 0 { break }
            var offset = 0
            while offset < read {
                let written = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, read - offset) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    unlink(name)
                    throw SimulationError("cannot copy standard input to \(name): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        self.path = name
        temporary = true
    }

    deinit { if temporary { unlink(path) } }
}

/// A bounded queue of event batches between the reader thread and the pricing thread. Spent
/// batches come back emptied (`giveBack`, `spare`), so their storage (a megabyte each) is reused
/// rather than allocated by the reader and freed by the pricing thread for every 4,096 events.
final class EventPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches: [[TraceEvent]] = []
    private var spares: [[TraceEvent]] = []
    private var finished = false
    /// At most this many batches wait: the reader pauses rather than buffer the trace.
    private let capacity = 8

    /// Takes the batch (left empty), under the lock: the taker then holds its only reference.
    func put(_ batch: inout [TraceEvent]) {
        condition.lock()
        while batches.count >= capacity { condition.wait() }
        batches.append(batch)
        batch = []
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

    /// Hands back a batch taken and processed: emptied here, kept for the reader (a few at most).
    func giveBack(_ batch: inout [TraceEvent]) {
        batch.removeAll(keepingCapacity: true)
        condition.lock()
        if spares.count < 4 { spares.append(batch) }
        condition.unlock()
        batch = []
    }

    /// An emptied batch handed back, if any.
    func spare() -> [TraceEvent]? {
        condition.lock()
        defer { condition.unlock() }
        return spares.popLast()
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
