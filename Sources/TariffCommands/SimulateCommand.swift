import ArgumentParser
import Foundation
import Tariff
import TariffSimulation

/// `tariff simulate`: prices a usage trace against the catalog, with no ledger.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Price a usage trace (JSON Lines, '-' for standard input, .gz accepted) with no ledger."
    )

    @OptionGroup var catalog: CatalogOptions

    @Option(help: "The usage trace.")
    var usage: String

    @Option(help: "Report from this instant (RFC 3339 or a date; default: the first event).")
    var from: String?

    @Option(help: "Report until this instant, exclusive (default: just after the last event).")
    var to: String?

    @Option(help: "The currency to report, when the catalog has several.")
    var currency: String?

    @Option(help: "A second catalog folder (with plans/ and rules/) to compare against.")
    var compare: String?

    @Option(help: "Write a self-contained HTML report to this file.")
    var report: String?

    @Flag(help: "Stop at the first rejected line (exit 2).")
    var strict = false

    @Option(name: .customLong("max-span"), help: ArgumentHelp("Reject events farther than this from the first event, either way (usage.md): 90s, 15m, 36h, 400d.", valueName: "DURATION"))
    var maxSpan: String = "400d"

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    /// `--max-span` in nanoseconds.
    var maxSpanNanoseconds: Int64 { SimulationOptions.span(maxSpan) ?? SimulationOptions.defaultMaxSpanNanoseconds }

    func validate() throws {
        guard SimulationOptions.span(maxSpan) != nil else {
            throw ValidationError("--max-span is a positive whole number and a unit (s, m, h, d), e.g. 400d or 36h; not '\(SafeText.escaping(maxSpan))'")
        }
    }

    func run() throws {
        try stopping {
            let catalog = try self.catalog.load()
            var options = SimulationOptions(strict: strict, maxSpanNanoseconds: maxSpanNanoseconds)
            if let from { options.from = try Self.instant(from, "--from") }
            if let to { options.to = try Self.instant(to, "--to") }
            if let from = options.from, let to = options.to, to <= from { throw InputError("--to must be after --from") }
            if let currency {
                guard let code = Currency(code: currency) else { throw InputError("--currency '\(currency)' is not an ISO 4217 code") }
                options.currency = code
            }
            let progress = ProgressLine(label: "simulating")
            let result: SimulationReport
            do throws(SimulationError) {
                result = try Simulator.run(trace: usage, catalog: catalog, options: options, progress: progress.update)
            } catch { throw InputError(error.description) }
            var comparison: Comparison?
            if let compare {
                let otherCatalog = try CatalogOptions.load(plans: compare + "/plans", rules: compare + "/rules")
                do throws(SimulationError) {
                    let otherResult = try Simulator.run(trace: usage, catalog: otherCatalog, options: options, progress: progress.update)
                    comparison = Comparison(old: result, new: otherResult)
                } catch { throw InputError("--compare: \(error.description)") }
            }
            progress.finish()
            for warning in result.warnings.prefix(20) { printError("warning: line \(warning.line): \(warning.message)") }
            let warningCount = max(result.warningsTotal, result.warnings.count)
            if warningCount > 20 { printError("warning: ... \(warningCount - 20) more warnings (see --format json)") }
            if let report {
                let html = HTMLReport(report: result, comparison: comparison).render()
                do throws(OutputError) {
                    // A regular file is replaced whole (temporary file + rename); a device or FIFO
                    // (`--report /dev/null`) is written in place, never turned into a regular file.
                    let writer = try OutputWriter(path: report, name: "the report '\(SafeText.escaping(report))'")
                    try writer.write(html)
                    try writer.commit()
                } catch { throw InputError(error.description) }
            }
            switch format {
            case .json:
                var json = result.json
                if let comparison, case .object(var fields) = json {
                    fields.append(("compare", comparison.json))
                    json = .object(fields)
                }
                print(json.rendered)
            case .text:
                print(SimulationText.render(result, comparison: comparison))
            }
        }
    }

    static func instant(_ text: String, _ flag: String) throws -> Timestamp {
        guard let value = Timestamp(dateOrTimestamp: text) else { throw InputError("\(flag) '\(text)' is not an RFC 3339 timestamp or a date") }
        return value
    }
}

/// A progress line on standard error, only when it is a terminal (cli.md).
final class ProgressLine: @unchecked Sendable {
    let label: String
    let enabled = isatty(STDERR_FILENO) != 0
    let start = ContinuousClock.now
    var shown = false

    init(label: String) { self.label = label }

    func update(_ lines: Int) {
        guard enabled else { return }
        let seconds = BenchCommand.seconds(ContinuousClock.now - start)
        let rate = seconds > 0 ? Int(Double(lines) / seconds) : 0
        let bar = String(repeating: "=", count: min(30, lines / 65_536 % 31)) + ">"
        try? StandardOutput.errors.write("\r\(label) [\(bar.padding(toLength: 31, withPad: " ", startingAt: 0))] \(lines) lines, \(rate) lines/s   ")
        shown = true
    }

    func finish() {
        if shown { try? StandardOutput.errors.write("\r\u{1B}[K") }
    }
}
