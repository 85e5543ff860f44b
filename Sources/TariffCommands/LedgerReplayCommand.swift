import ArgumentParser
import Foundation
import Tariff
import TariffReplay
import TariffSettlement
import TariffSimulation

/// `tariff ledger replay --usage FILE`: every event of a trace through the full lifecycle; prints
/// simulate's summary plus the final balances.
struct LedgerReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a usage trace through the ledger: purchases, reserve -> meter -> settle, fees, period ends.",
        discussion: "Executions the balance cannot hold are refused (insufficient_credits). A replay stopped at any point and run again ends in the same ledger.")

    @OptionGroup var options: LedgerOptions

    @Option(help: "The usage trace (JSON Lines, '-' for standard input, .gz accepted).")
    var usage: String

    @Option(help: "Report from this instant (RFC 3339 or a date; default: the first event).")
    var from: String?

    @Option(help: "Report until this instant, exclusive (default: just after the last event).")
    var to: String?

    @Flag(help: "Stop at the first rejected line (exit 2).")
    var strict = false

    @Option(name: .customLong("max-span"), help: ArgumentHelp("Reject events farther than this from the first event, either way (usage.md): 90s, 15m, 36h, 400d.", valueName: "DURATION"))
    var maxSpan: String = "400d"

    @Option(help: ArgumentHelp("Apply only this share of the consumers, K of N (1/4 ... 4/4), to run N replays of one trace at once against one shared ledger.",
                               valueName: "K/N"))
    var shard: String?

    func validate() throws {
        if let shard, ReplayShard(shard) == nil { throw ValidationError("--shard is K/N with 1 <= K <= N <= 1024, e.g. 2/4; not '\(SafeText.escaping(shard))'") }
        guard SimulationOptions.span(maxSpan) != nil else {
            throw ValidationError("--max-span is a positive whole number and a unit (s, m, h, d), e.g. 400d or 36h; not '\(SafeText.escaping(maxSpan))'")
        }
    }

    /// `--max-span` in nanoseconds.
    var maxSpanNanoseconds: Int64 { SimulationOptions.span(maxSpan) ?? SimulationOptions.defaultMaxSpanNanoseconds }

    func run() throws {
        var simulationOptions = SimulationOptions(strict: strict, maxSpanNanoseconds: maxSpanNanoseconds)
        try stopping {
            if let from { simulationOptions.from = try SimulateCommand.instant(from, "--from") }
            if let to { simulationOptions.to = try SimulateCommand.instant(to, "--to") }
            if let from = simulationOptions.from, let to = simulationOptions.to, to <= from { throw InputError("--to must be after --from") }
            simulationOptions.currency = options.currency.flatMap(Currency.init(code:))
        }
        let catalog = try catalogOrExit()
        let backend = try ledgerStep { [options] in try await options.backend() }
        let progress = ProgressLine(label: "replaying")
        let shard = self.shard.flatMap(ReplayShard.init)
        let report = try ledgerStep { [usage, simulationOptions] in
            try await LedgerReplay.run(trace: usage, catalog: catalog, backend: backend, options: simulationOptions, shard: shard) { progress.update($0) }
        }
        progress.finish()
        let simulation = report.simulation
        for warning in simulation.warnings.prefix(20) { printError("warning: line \(warning.line): \(warning.message)") }
        let warningCount = max(simulation.warningsTotal, simulation.warnings.count)
        if warningCount > 20 { printError("warning: ... \(warningCount - 20) more warnings (see --format json)") }
        switch options.format {
        case .json:
            var json = simulation.json
            if case .object(var fields) = json {
                fields.append(("ledger", .object([
                    ("currency", .string(backend.currency.code)),
                    ("refused_insufficient_credits", .integer(Int64(report.refusedForCredits))),
                    ("uncollected", .string(report.uncollected.description)),
                    ("balances", .array(report.balances.map { balance in
                        .object([("consumer", .string(balance.consumer)), ("currency", .string(balance.currency.code)),
                                 ("available", .string(balance.available.description)), ("reserved", .string(balance.reserved.description))])
                    })),
                ])))
                json = .object(fields)
            }
            print(json.rendered)
        case .text:
            print(SimulationText.render(simulation, comparison: nil))
            print("\nledger (\(backend.currency.code)): \(report.refusedForCredits) executions refused for insufficient credits, \(report.uncollected) uncollected")
            var rows = [["consumer", "available", "reserved"]]
            for balance in report.balances { rows.append([balance.consumer, balance.available.description, balance.reserved.description]) }
            print(table(rows, indent: "  "))
        }
    }

    private func catalogOrExit() throws -> CompiledCatalog {
        try options.catalog.load()
    }
}
