import ArgumentParser
import Foundation
import Tariff
import TariffSimulation

/// `tariff generate`: a realistic usage trace for the catalog, from a seed: in time order, in
/// delivery order (`--delivery-delay`, `--late-fraction`, `--late-max`) or shuffled.
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

    @Option(name: .customLong("delivery-delay"), help: "Write each line at its time plus a random 0 to SECONDS delay (delivery order), e.g. 3 or 0.5.")
    var deliveryDelay: String?

    @Option(name: .customLong("late-fraction"), help: "The fraction of events (0 to 1, e.g. 0.01) written up to --late-max later still.")
    var lateFraction: String?

    @Option(name: .customLong("late-max"), help: "How much later the late events may be written (90s, 15m, 36h, 2d).")
    var lateMax: String?

    @Flag(help: "Write the lines in a random order (from the seed).")
    var shuffle = false

    /// A decimal number of units with up to `digits` fractional digits, in units of 10^-digits, or nil.
    static func scaled(_ text: String, digits: Int) -> Int64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCII), whole.allSatisfy(\.isNumber),
              let wholeValue = Int64(whole) else { return nil }
        var fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= digits, fraction.allSatisfy({ $0.isASCII && $0.isNumber }), parts.count == 1 || !fraction.isEmpty else { return nil }
        fraction += String(repeating: "0", count: digits - fraction.count)
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let (scaledWhole, overflow) = wholeValue.multipliedReportingOverflow(by: scale)
        guard !overflow, let fractionValue = Int64(fraction.isEmpty ? "0" : fraction) else { return nil }
        let (sum, overflow2) = scaledWhole.addingReportingOverflow(fractionValue)
        return overflow2 ? nil : sum
    }

    /// The delivery options, read and checked.
    func delivery() throws -> (delayNanoseconds: Int64, lateMillionths: Int, lateMaxNanoseconds: Int64) {
        var delay: Int64 = 0
        if let deliveryDelay {
            guard let value = Self.scaled(deliveryDelay, digits: 9), value <= 365 * 86_400 * 1_000_000_000 else {
                throw ValidationError("--delivery-delay '\(deliveryDelay)' must be a number of seconds from 0 to 31536000 (up to 9 decimals)")
            }
            delay = value
        }
        var millionths = 0
        if let lateFraction {
            guard let value = Self.scaled(lateFraction, digits: 6), value <= 1_000_000 else {
                throw ValidationError("--late-fraction '\(lateFraction)' must be a fraction from 0 to 1 (up to 6 decimals)")
            }
            millionths = Int(value)
        }
        var lateMaxNanoseconds: Int64 = 0
        if let lateMax {
            guard let value = SimulationOptions.span(lateMax), value <= 3_650 * 86_400 * 1_000_000_000 else {
                throw ValidationError("--late-max '\(lateMax)' must be a duration such as 90s, 15m, 36h or 2d (at most 3650d)")
            }
            lateMaxNanoseconds = value
        }
        guard (lateFraction == nil) == (lateMax == nil) else {
            throw ValidationError("--late-fraction and --late-max go together")
        }
        return (delay, millionths, lateMaxNanoseconds)
    }

    func validate() throws {
        guard (1...100_000_000).contains(events) else { throw ValidationError("--events must be 1...100000000") }
        guard (1...10_000_000).contains(consumers) else { throw ValidationError("--consumers must be 1...10000000") }
        guard (1...3_650).contains(days) else { throw ValidationError("--days must be 1...3650") }
        guard Timestamp(dateOrTimestamp: start) != nil else { throw ValidationError("--start '\(start)' is not a date or an RFC 3339 timestamp") }
        _ = try delivery()
    }

    func run() throws {
        try stopping {
            let catalog = try self.catalog.load()
            var generator = TraceGenerator(events: events, consumers: consumers, days: days,
                                           start: Timestamp(dateOrTimestamp: start) ?? Timestamp(nanosecondsSinceEpoch: 0), seed: seed)
            let delivery = try delivery()
            generator.deliveryDelayNanoseconds = delivery.delayNanoseconds
            generator.lateMillionths = delivery.lateMillionths
            generator.lateMaxNanoseconds = delivery.lateMaxNanoseconds
            generator.shuffle = shuffle
            // One checked writer: a full disk or `> /dev/full` stops with exit 2 (it trapped), and
            // `--output /dev/null` writes to the device rather than replacing it.
            let writer: OutputWriter
            do throws(OutputError) {
                if let output { writer = try OutputWriter(path: output) } else { writer = StandardOutput.writer }
            } catch { throw InputError(error.description) }
            var failure: OutputError?
            do throws(SimulationError) {
                _ = try generator.generate(for: catalog) { chunk in
                    guard failure == nil else { return }
                    do throws(OutputError) { try writer.write(chunk) } catch { failure = error }
                }
            } catch { throw InputError(error.description) }
            do throws(OutputError) {
                if let failure { throw failure }
                try writer.commit()
            } catch { throw InputError(error.description) }
        }
    }
}
