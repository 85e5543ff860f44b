import Foundation
import Tariff

/// Lines of a trace handed to a parse worker, and what the worker made of them.
///
/// Parsing is most of the reader's time, and each line parses on its own, so chunks of lines are
/// parsed on the other cores while one thread (the reader) takes the chunks back in the order it
/// cut them and does, in file order, all that depends on order: the `--max-span` check, the
/// interning of agents, the reorder stage. Line numbers, rejections and events are thus exactly
/// those of the sequential parse (`ParallelParsingTests`). A chunk is reused once taken back, so
/// its arrays keep their capacity: no allocation per line.
final class ParseChunk: @unchecked Sendable {
    struct Line {
        /// The line's number in the trace.
        var number: Int
        var start: Int
        /// -1 for a line longer than `LineReader.maximumLineBytes` (its bytes are not kept).
        var length: Int
        /// The time of a run's record (its key with `number`); unused for the trace's own lines.
        var time: Int64
    }

    enum Outcome {
        case event
        case blank
        case rejected(String)
        case overlong
    }

    /// The lines' bytes, end to end.
    private(set) var bytes: [UInt8] = []
    private(set) var lines: [Line] = []
    /// One per line, in line order; an `.event`'s event is the next of `events`.
    private(set) var outcomes: [Outcome] = []
    private(set) var events: [TraceEvent] = []
    /// The agents the worker interned (chunk-local indexes), and their indexes in the run's table,
    /// given on first use (-1 before): in the order the sequential reader would intern them.
    private var agents = InternTable()
    private var agentIndexes: [Int32] = []
    /// A parser of the chunk's own (its date cache is per thread); it never checks the span.
    private var parser: TraceParser
    private let interning: Bool
    private let done = DispatchSemaphore(value: 0)
    private var parsed = false
    /// The taker's position: the next line and the next event.
    private(set) var cursor = 0
    private var eventCursor = 0

    /// Lines and bytes at which a chunk is full (a line longer than the rest still goes in whole):
    /// a few milliseconds of parsing, so handing a chunk over costs little beside it.
    static let standardLines = 2_048
    static let maximumBytes = 1 << 19
    private let maximumLines: Int

    init(meterNames: [String], maxSpanNanoseconds: Int64, interning: Bool, lines maximumLines: Int = ParseChunk.standardLines) {
        parser = TraceParser(meterNames: meterNames, maxSpanNanoseconds: maxSpanNanoseconds)
        parser.checksSpan = false
        self.interning = interning
        self.maximumLines = max(1, maximumLines)
        bytes.reserveCapacity(Self.maximumBytes + 4_096)
        lines.reserveCapacity(self.maximumLines)
        outcomes.reserveCapacity(self.maximumLines)
        events.reserveCapacity(self.maximumLines)
    }

    var isFull: Bool { lines.count >= maximumLines || bytes.count >= Self.maximumBytes }
    var isEmpty: Bool { lines.isEmpty }
    var isTaken: Bool { cursor >= lines.count }

    /// Adds a line (nil: longer than the limit) before the chunk is submitted.
    func append(_ line: UnsafeBufferPointer<UInt8>?, number: Int, time: Int64 = 0) {
        guard let line else {
            lines.append(Line(number: number, start: bytes.count, length: -1, time: time))
            return
        }
        lines.append(Line(number: number, start: bytes.count, length: line.count, time: time))
        bytes.append(contentsOf: line)
    }

    /// On a worker: parses every line.
    func parse() {
        var entities = TraceEntities()
        // The arrays and the parser are moved out of the object for the loop (and back after):
        // a stored property of a class changed in place is checked for exclusive access at run
        // time, which cost more per line than the appends themselves.
        var events: [TraceEvent] = [], outcomes: [Outcome] = []
        swap(&events, &self.events)
        swap(&outcomes, &self.outcomes)
        var parser = self.parser
        let interning = self.interning
        bytes.withUnsafeBufferPointer { all in
            for line in lines {
                guard line.length >= 0 else {
                    outcomes.append(.overlong)
                    continue
                }
                let text = UnsafeBufferPointer(rebasing: all[line.start..<line.start + line.length])
                let result = interning
                    ? parser.parse(text, line: line.number, interning: &entities, appendingTo: &events)
                    : parser.parse(text, line: line.number, appendingTo: &events)
                switch result {
                case .event: outcomes.append(.event)
                case .blank: outcomes.append(.blank)
                case .rejected(let reason): outcomes.append(.rejected(reason))
                }
            }
        }
        swap(&events, &self.events)
        swap(&outcomes, &self.outcomes)
        self.parser = parser
        agents = entities.agents
        agentIndexes = [Int32](repeating: -1, count: agents.count)
        done.signal()
    }

    /// On the taker: waits until the worker has parsed the chunk.
    func waitUntilParsed() {
        guard !parsed else { return }
        done.wait()
        parsed = true
    }

    /// The next line's number, bytes (nil when too long) and outcome; its event, if any, is
    /// taken with `takeEvent`. The chunk must be parsed.
    func nextLine() -> (line: Line, outcome: Outcome) {
        let index = cursor
        cursor += 1
        return (lines[index], outcomes[index])
    }

    /// The bytes of a line of this chunk (valid during the call).
    func withBytes<R>(of line: Line, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        bytes.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[line.start..<line.start + max(0, line.length)])) }
    }

    /// The event of the line `nextLine` just gave (its outcome was `.event`), its agent interned
    /// in `table` (the run's) when the chunk interns.
    func takeEvent(agents table: inout InternTable) -> TraceEvent {
        var event = events[eventCursor]
        eventCursor += 1
        ChunkAgents.rename(&event, interning: interning, chunkAgents: agents, indexes: &agentIndexes, runAgents: &table)
        return event
    }

    /// Takes the lines the reader gathered (`ChunkLines`), before the chunk is submitted; the
    /// reader gets the chunk's emptied arrays back to gather the next chunk in (no copy).
    func load(_ input: inout ChunkLines) {
        swap(&bytes, &input.bytes)
        swap(&lines, &input.lines)
        input.bytes.removeAll(keepingCapacity: true)
        input.lines.removeAll(keepingCapacity: true)
    }

    /// On the taker: waits until the chunk is parsed and moves what the worker made out of it,
    /// to be walked as plain arrays (`giveBack` returns them). Reading the chunk object line by
    /// line cost a retain and run-time exclusivity checks per line.
    func takeParsed() -> ParsedChunk {
        waitUntilParsed()
        var parsed = ParsedChunk(interning: interning)
        exchangeArrays(with: &parsed)
        cursor = parsed.lines.count
        return parsed
    }

    /// Returns the arrays `takeParsed` moved out (their capacity is kept for the next chunk).
    func giveBack(_ parsed: inout ParsedChunk) { exchangeArrays(with: &parsed) }

    /// Swaps every array the worker fills with `parsed`'s: out of the chunk, or back into it.
    private func exchangeArrays(with parsed: inout ParsedChunk) {
        swap(&parsed.bytes, &bytes)
        swap(&parsed.lines, &lines)
        swap(&parsed.outcomes, &outcomes)
        swap(&parsed.events, &events)
        swap(&parsed.agents, &agents)
        swap(&parsed.agentIndexes, &agentIndexes)
    }

    /// Empties the chunk for reuse (its arrays keep their capacity).
    func reset() {
        bytes.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
        outcomes.removeAll(keepingCapacity: true)
        events.removeAll(keepingCapacity: true)
        parsed = false
        cursor = 0
        eventCursor = 0
    }
}

/// The lines the reader gathers for the next chunk, in plain arrays of its own (`ParseChunk.load`).
struct ChunkLines {
    var bytes: [UInt8] = []
    var lines: [ParseChunk.Line] = []
    let maximumLines: Int

    init(maximumLines: Int) {
        self.maximumLines = max(1, maximumLines)
        bytes.reserveCapacity(ParseChunk.maximumBytes + 4_096)
        lines.reserveCapacity(self.maximumLines)
    }

    var isEmpty: Bool { lines.isEmpty }
    var isFull: Bool { lines.count >= maximumLines || bytes.count >= ParseChunk.maximumBytes }

    /// Adds a line (nil: longer than the limit), as `ParseChunk.append` does.
    mutating func append(_ line: UnsafeBufferPointer<UInt8>?, number: Int) {
        guard let line else {
            lines.append(ParseChunk.Line(number: number, start: bytes.count, length: -1, time: 0))
            return
        }
        lines.append(ParseChunk.Line(number: number, start: bytes.count, length: line.count, time: 0))
        bytes.append(contentsOf: line)
    }
}

/// A parsed chunk's arrays, moved out for the taker (`ParseChunk.takeParsed`).
struct ParsedChunk {
    var bytes: [UInt8] = []
    var lines: [ParseChunk.Line] = []
    var outcomes: [ParseChunk.Outcome] = []
    var events: [TraceEvent] = []
    var agents = InternTable()
    var agentIndexes: [Int32] = []
    let interning: Bool
    private var eventCursor = 0

    init(interning: Bool) { self.interning = interning }

    /// The next event (in line order), its agent interned in `table`, as `ParseChunk.takeEvent`.
    mutating func takeEvent(agents table: inout InternTable) -> TraceEvent {
        var event = events[eventCursor]
        eventCursor += 1
        ChunkAgents.rename(&event, interning: interning, chunkAgents: agents, indexes: &agentIndexes, runAgents: &table)
        return event
    }

    /// The bytes of one of its lines (valid during the call).
    func withBytes<R>(of line: ParseChunk.Line, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        bytes.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[line.start..<line.start + max(0, line.length)])) }
    }
}

/// Threads that parse chunks, first submitted first; they end with `stop`.
final class ParseWorkers: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [ParseChunk] = []
    private var first = 0
    private var stopped = false

    init(count: Int) {
        for _ in 0..<max(1, count) {
            let thread = Thread { [self] in work() }
            thread.stackSize = 8 << 20   // the JSON scanner recurses (64 levels at most)
            thread.start()
        }
    }

    func submit(_ chunk: ParseChunk) {
        condition.lock()
        jobs.append(chunk)
        condition.signal()
        condition.unlock()
    }

    /// The workers finish the chunk in hand and end; chunks not started are left unparsed (the
    /// reader stopped: nothing waits for them).
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while first == jobs.count && !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            let chunk = jobs[first]
            first += 1
            if first == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                first = 0
            }
            condition.unlock()
            chunk.parse()
        }
    }
}

/// Chunks given back, for reuse (the reader's own: not shared).
struct ChunkPool {
    let meterNames: [String]
    let maxSpanNanoseconds: Int64
    let interning: Bool
    let lines: Int
    private var free: [ParseChunk] = []

    init(meterNames: [String], maxSpanNanoseconds: Int64, interning: Bool, lines: Int) {
        self.meterNames = meterNames
        self.maxSpanNanoseconds = maxSpanNanoseconds
        self.interning = interning
        self.lines = lines
    }

    mutating func take() -> ParseChunk {
        free.popLast() ?? ParseChunk(meterNames: meterNames, maxSpanNanoseconds: maxSpanNanoseconds, interning: interning, lines: lines)
    }

    mutating func give(_ chunk: ParseChunk) {
        chunk.reset()
        free.append(chunk)
    }
}

/// The late lines of the runs on disk, merged in `(time, line)` order and parsed ahead by the
/// workers, a few chunks at a time (the merge pass of a shuffled trace parses almost every line
/// here). Keys are known before parsing (the runs store them), so `head` never waits.
final class ParsedRuns {
    private var merger: LateMerger
    private let workers: ParseWorkers
    private var pool: ChunkPool
    /// Chunks submitted, oldest first.
    private var queue: [ParseChunk] = []
    private let depth: Int

    init(merger: LateMerger, workers: ParseWorkers, pool: ChunkPool, depth: Int) {
        self.merger = merger
        self.workers = workers
        self.pool = pool
        self.depth = max(1, depth)
    }

    /// The key of the next record; nil when the runs are done.
    func head() throws(ReorderError) -> EventKey? {
        try refill()
        guard let chunk = queue.first else { return nil }
        let line = chunk.lines[chunk.cursor]
        return EventKey(time: line.time, line: line.number)
    }

    /// The next record's event (`head` gave its key), its agent interned in `agents`.
    func next(agents: inout InternTable) throws(ReorderError) -> TraceEvent {
        guard let chunk = queue.first else { throw ReorderError(description: "the runs ended early") }
        chunk.waitUntilParsed()
        let (line, outcome) = chunk.nextLine()
        guard case .event = outcome else {
            throw ReorderError(description: "line \(line.number), read again from its run, is no longer an event")
        }
        let event = chunk.takeEvent(agents: &agents)
        if chunk.isTaken {
            queue.removeFirst()
            pool.give(chunk)
        }
        return event
    }

    /// Keeps `depth` chunks submitted while the runs have records.
    private func refill() throws(ReorderError) {
        while queue.count < depth && merger.head != nil {
            let chunk = pool.take()
            while !chunk.isFull, try merger.take({ (key, bytes) throws(ReorderError) -> Bool in
                chunk.append(bytes, number: key.line, time: key.time)
                return true
            }) != nil {}
            workers.submit(chunk)
            queue.append(chunk)
        }
    }
}

/// A chunk is parsed with an agent table of its own (workers run in parallel); its events are
/// taken back in line order, and each execution's agent renamed into the run's table then.
enum ChunkAgents {
    /// `event`'s agent, an index into `chunkAgents`, becomes its index in `runAgents` (interned
    /// there the first time the chunk names it; `indexes` remembers the chunk's renames, -1 unknown).
    @inline(__always)
    static func rename(_ event: inout TraceEvent, interning: Bool, chunkAgents: InternTable, indexes: inout [Int32], runAgents: inout InternTable) {
        guard interning && event.kind == .execution && event.subject >= 0 else { return }
        let local = Int(event.subject)
        if indexes[local] < 0 { indexes[local] = runAgents.intern(chunkAgents[event.subject]) }
        event.subject = indexes[local]
    }
}
