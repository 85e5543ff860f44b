import ArgumentParser
import Foundation
import Tariff
import TariffSettlement

/// `tariff ledger close [--at TIMESTAMP]`: closes every period due at that instant (cli.md).
struct LedgerCloseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close",
        abstract: "Close every billing period due now (its end plus late_usage_grace): charge its shortfall and SLA credit.")

    @OptionGroup var options: LedgerOptions

    @Option(help: ArgumentHelp("Close the periods due at this instant (RFC 3339 or a date; default: now).", valueName: "TIMESTAMP"))
    var at: String?

    func run() throws {
        var instant: Timestamp?
        if let at {
            guard let parsed = Timestamp(dateOrTimestamp: at) else {
                printError("error: invalid_input: --at '\(SafeText.escaping(at))' is not an RFC 3339 timestamp or a date")
                throw ExitCode(2)
            }
            instant = parsed
        }
        let settlement = try ledgerStep { [options] in try await options.settlement(needsCatalog: true) }
        let closed = try ledgerStep { [instant] in try await settlement.closeDuePeriods(at: instant) }
        switch options.format {
        case .json:
            print(JSON.object([("currency", .string(settlement.currency.code)), ("closed", .array(closed.map { record in
                .object([("consumer", .string(record.consumer)), ("plan", .string(record.plan)), ("version", .integer(Int64(record.version))),
                         ("period_start", .string(record.start.rfc3339)), ("period_end", .string(record.end.rfc3339)),
                         ("closed_at", record.closedAt.map { .string($0.rfc3339) } ?? .null),
                         ("shortfall", .string(record.shortfall.description)), ("sla_credit", .string(record.slaCredit.description))])
            }))]).rendered)
        case .text:
            guard !closed.isEmpty else {
                print("no period is due")
                return
            }
            var rows = [["consumer", "plan", "period_start", "period_end", "shortfall", "sla_credit"]]
            for record in closed {
                rows.append([SafeText.escaping(record.consumer), SafeText.escaping(record.plan), record.start.rfc3339, record.end.rfc3339,
                             record.shortfall.description, record.slaCredit.description])
            }
            print(table(rows))
        }
    }
}
