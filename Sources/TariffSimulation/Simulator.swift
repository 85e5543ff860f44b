import Tariff

/// Options of a simulation run (cli.md, `tariff simulate`).
public struct SimulationOptions: Sendable {
    public var from: Timestamp?
    public var to: Timestamp?
    /// Required when the catalog has several currencies.
    public var currency: Currency?
    /// The first rejected line stops the run.
    public var strict: Bool
    public init(from: Timestamp? = nil, to: Timestamp? = nil, currency: Currency? = nil, strict: Bool = false) {
        self.from = from
        self.to = to
        self.currency = currency
        self.strict = strict
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
        var outcome = try pass(path, catalog: catalog, options: options, currency: currency, buffered: path == "-", progress: progress)
        if outcome == nil {
            outcome = try pass(path, catalog: catalog, options: options, currency: currency, buffered: true, progress: progress)
        }
        guard var report = outcome else { throw SimulationError("the trace could not be ordered") }
        report.currency = currency
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
        let parser = TraceParser(meterNames: catalog.meterNames)
        var processor = BillingProcessor(catalog: catalog, sink: SimulationSink(catalog: catalog, from: options.from, to: options.to),
                                         currency: currency)
        var events: [TraceEvent] = []
        var rejections: [Rejection] = []
        var lastTime: Timestamp?
        var outOfOrder = false
        var strictFailure: Rejection?
        let lines: Int
        do throws(TraceReadError) {
            lines = try LineReader.forEachLine(path: path) { bytes, line in
                if line & 0xFFFF == 0 { progress?(line) }
                guard let bytes else {
                    let rejection = Rejection(line: line, reason: "the line is longer than \(LineReader.maximumLineBytes) bytes")
                    if options.strict { strictFailure = rejection; return false }
                    rejections.append(rejection)
                    return true
                }
                switch parser.parse(bytes, line: line, entities: &processor.entities) {
                case .blank:
                    return true
                case .rejected(let reason):
                    let rejection = Rejection(line: line, reason: reason)
                    if options.strict { strictFailure = rejection; return false }
                    rejections.append(rejection)
                    return true
                case .event(let event):
                    if buffered {
                        events.append(event)
                        return true
                    }
                    if let lastTime, event.time < lastTime {
                        outOfOrder = true
                        return false
                    }
                    lastTime = event.time
                    processor.process(event)
                    return true
                }
            }
        } catch {
            throw SimulationError(error.description)
        }
        if let strictFailure { throw SimulationError("line \(strictFailure.line): \(strictFailure.reason) (--strict)") }
        if outOfOrder { return nil }
        if buffered {
            // Ties in time keep trace order: the sort is stable by (time, line).
            events.sort { ($0.time, $0.line) < ($1.time, $1.line) }
            for event in events { processor.process(event) }
        }
        let from = options.from ?? processor.firstEventTime
        let to = options.to ?? processor.lastEventTime.flatMap { $0.adding(nanoseconds: 1) }
        processor.finish(through: options.to ?? processor.lastEventTime ?? Timestamp(nanosecondsSinceEpoch: .min))
        var sink = processor.sink
        sink.entities = processor.entities
        for rejection in rejections { sink.rejected(rejection) }
        var report = sink.finished()
        report.linesRead = lines
        report.from = from
        report.to = to
        return report
    }
}
