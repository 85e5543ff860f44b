import Foundation
import Tariff

/// A trace handed on in processing order, in batches, for `tariff ledger replay` (which applies
/// each decision of the billing processor to a ledger, and so must know the order before it
/// applies anything): a first pass gathers the lines that come later than the reorder buffer
/// reaches into sorted runs on disk; a second pass, on a thread of its own, reads the trace again
/// through the buffer and merges the runs back in, handing batches through a bounded queue.
/// Memory holds the buffer and a few batches, never the trace.
public final class OrderedTrace: @unchecked Sendable {
    /// The first `SimulationReport.maximumListed` rejected lines; `rejectionsUnlisted` counts the rest.
    public private(set) var rejections: [Rejection] = []
    public private(set) var rejectionsUnlisted = 0
    /// Every line of the trace, blank ones included (usage.md).
    public private(set) var lines = 0
    /// The lines that came later than the buffer reached (merged back from runs on disk).
    public let lateLines: Int

    private let pipe = EventPipe()
    private let box = ReadingBox()
    private let source: TraceSource

    /// Reads the trace once (`-` for standard input, `.gz` accepted) and starts handing it on.
    /// - throws: `SimulationError` when the file cannot be read, or at the first rejection with `strict`.
    public init(path: String, catalog: CompiledCatalog, strict: Bool = false,
                maxSpanNanoseconds: Int64 = SimulationOptions.defaultMaxSpanNanoseconds, limits: ReorderLimits = .standard,
                parseThreads: Int = SimulationOptions.defaultParseThreads) throws(SimulationError) {
        source = try TraceSource(path)
        let settings = Simulator.ReadSettings(path: source.path, meterNames: catalog.meterNames, strict: strict,
                                              maxSpanNanoseconds: maxSpanNanoseconds, limits: limits, interning: false,
                                              parseThreads: parseThreads)
        let first = Simulator.readOrdered(settings, entities: TraceEntities(), pass: .gather) { _ in }
        if let failure = first.failure { throw failure }
        lateLines = first.late?.count ?? 0
        let pass: Simulator.ReadPass
        if let late = first.late { pass = .merge(late) } else { pass = .merge(try Self.noLateLines(limits)) }
        let (pipe, box) = (self.pipe, self.box)
        let thread = Thread {
            box.outcome = Simulator.readOrdered(settings, entities: TraceEntities(), pass: pass) { batch in pipe.put(&batch) }
            pipe.finish()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    private static func noLateLines(_ limits: ReorderLimits) throws(SimulationError) -> LateLines {
        do throws(ReorderError) {
            let late = try LateLines(limits: limits)
            try late.finish()
            return late
        } catch { throw SimulationError(error.description) }
    }

    /// The next events in processing order; nil at the end. Waits for the reader (off the caller's
    /// thread when called from a task: the wait runs on a dispatch queue).
    public func next() async -> [TraceEvent]? {
        let pipe = self.pipe
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: pipe.take()) }
        }
    }

    /// Once `next` gave nil: the rejections and line count of the trace, or why reading stopped.
    public func finish() throws(SimulationError) {
        box.done.wait()
        box.done.signal()
        guard let outcome = box.outcome else { throw SimulationError("the trace reader stopped") }
        if let failure = outcome.failure { throw failure }
        rejections = outcome.rejections
        rejectionsUnlisted = outcome.rejectionsUnlisted
        lines = outcome.lines
    }

    deinit {
        // A replay that stopped early: let the reader run to its end (it only drops batches).
        while pipe.take() != nil {}
        box.done.wait()
    }
}

extension Simulator {
    /// The currency a run reports in (cli.md `--currency`): the one asked for, else the catalog's only one.
    /// - throws: when the catalog has several currencies and none is asked for, or none of its plans is in the one asked for.
    public static func currency(of catalog: CompiledCatalog, requested: Currency?) throws(SimulationError) -> Currency? {
        try runCurrency(catalog, SimulationOptions(currency: requested))
    }
}

extension Simulator {
    /// What one trace line parses to, for tools and fuzzers: nil for a blank line, else the event
    /// or the rejection `simulate` would report (usage.md, "Bad input"). Never traps.
    public static func parseLine(_ bytes: UnsafeBufferPointer<UInt8>, meterNames: [String], line: Int = 1) -> Result<TraceEvent, Rejection>? {
        var parser = TraceParser(meterNames: meterNames)
        var events: [TraceEvent] = []
        var entities = TraceEntities()
        switch parser.parse(bytes, line: line, interning: &entities, appendingTo: &events) {
        case .blank: return nil
        case .rejected(let reason): return .failure(Rejection(line: line, reason: reason))
        case .event:
            guard var event = events.last else { return nil }
            event.resolve(in: &entities)
            return .success(event)
        }
    }
}
