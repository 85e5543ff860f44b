import ArgumentParser
import Foundation
import Tariff
import TariffSimulation

/// `tariff generate`: a realistic, time-ordered usage trace for the catalog, from a seed.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a generated usage trace for the catalog (JSON Lines) to standard output or --output."
    )

    @OptionGroup var catalog: CatalogOptions

    @Option(help: "Number of trace lines.")
    var events: Int = 10_000

    @Option(help: "Number of consumers.")
    var consumers: Int = 200

    @Option(help: "Days the executions span.")
    var days: Int = 30

    @Option(help: "When the trace starts (a date or RFC 3339).")
    var start: String = "2026-11-02"

    @Option(help: "Seed of the generator (the same seed gives the same trace).")
    var seed: UInt64 = 1

    @Option(help: "The file to write (default: standard output).")
    var output: String?

    func validate() throws {
        guard (1...100_000_000).contains(events) else { throw ValidationError("--events must be 1...100000000") }
        guard (1...10_000_000).contains(consumers) else { throw ValidationError("--consumers must be 1...10000000") }
        guard (1...3_650).contains(days) else { throw ValidationError("--days must be 1...3650") }
        guard Timestamp(dateOrTimestamp: start) != nil else { throw ValidationError("--start '\(start)' is not a date or an RFC 3339 timestamp") }
    }

    func run() throws {
        try stopping {
            let catalog = try self.catalog.load()
            let generator = TraceGenerator(events: events, consumers: consumers, days: days,
                                           start: Timestamp(dateOrTimestamp: start) ?? Timestamp(nanosecondsSinceEpoch: 0), seed: seed)
            // One checked writer: a full disk or `> /dev/full` stops with exit 2 (it trapped), and
            // `--output /dev/null` writes to the device rather than replacing it.
            let writer: OutputWriter
            do throws(OutputError) {
                if let output { writer = try OutputWriter(path: output) } else { writer = StandardOutput.writer }
            } catch { throw InputError(error.description) }
            var failure: OutputError?
            _ = generator.generate(for: catalog) { chunk in
                guard failure == nil else { return }
                do throws(OutputError) { try writer.write(chunk) } catch { failure = error }
            }
            do throws(OutputError) {
                if let failure { throw failure }
                try writer.commit()
            } catch { throw InputError(error.description) }
        }
    }
}
