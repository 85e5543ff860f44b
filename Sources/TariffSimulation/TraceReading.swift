import Tariff

/// A whole trace read into memory in processing order, for `tariff ledger replay` (which applies
/// each decision of the billing processor to a ledger, one step at a time).
public struct TraceReading: Sendable {
    /// Accepted events, sorted by `(time, line)` (the sort is stable: ties keep trace order).
    public var events: [TraceEvent]
    /// The first `SimulationReport.maximumListed` rejected lines; `rejectionsUnlisted` counts the rest.
    public var rejections: [Rejection]
    public var rejectionsUnlisted = 0
    /// Every line of the trace, blank ones included (usage.md).
    public var lines: Int
}

extension TraceReading {
    mutating func reject(_ rejection: Rejection) {
        if rejections.count < SimulationReport.maximumListed { rejections.append(rejection) } else { rejectionsUnlisted += 1 }
    }
}

extension Simulator {
    /// Reads and orders a trace (`-` for standard input, `.gz` accepted).
    /// - throws: `SimulationError` when the file cannot be read, or at the first rejection with `strict`.
    public static func readTrace(_ path: String, catalog: CompiledCatalog, strict: Bool = false,
                                 maxSpanNanoseconds: Int64 = SimulationOptions.defaultMaxSpanNanoseconds) throws(SimulationError) -> TraceReading {
        var parser = TraceParser(meterNames: catalog.meterNames, maxSpanNanoseconds: maxSpanNanoseconds)
        var reading = TraceReading(events: [], rejections: [], lines: 0)
        var failure: SimulationError?
        do throws(TraceReadError) {
            reading.lines = try LineReader.forEachLine(path: path) { bytes, line in
                guard let bytes else {
                    let reason = "the line is longer than \(LineReader.maximumLineBytes) bytes"
                    if strict { failure = SimulationError("line \(line): \(reason) (--strict)"); return false }
                    reading.reject(Rejection(line: line, reason: reason))
                    return true
                }
                switch parser.parse(bytes, line: line, appendingTo: &reading.events) {
                case .blank: return true
                case .rejected(let reason):
                    if strict { failure = SimulationError("line \(line): \(reason) (--strict)"); return false }
                    reading.reject(Rejection(line: line, reason: reason))
                    return true
                case .event:
                    return true
                }
            }
        } catch {
            throw SimulationError(error.description)
        }
        if let failure { throw failure }
        reading.events.sort { ($0.time, $0.line) < ($1.time, $1.line) }
        return reading
    }

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
