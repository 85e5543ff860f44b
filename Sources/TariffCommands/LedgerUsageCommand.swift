import ArgumentParser
import Tariff
import TariffSettlement

/// `tariff ledger usage [--period 30d] [--group-by agent] [--consumer ID]` ->
/// `{"data":[{"agent":"agt_abc123","compute_units":"4280.000","cost":"21.400000","executions":142}]}`
struct LedgerUsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "usage", abstract: "Compute units, cost and executions over a recent period, grouped.")

    @OptionGroup var options: LedgerOptions

    @Option(help: "How far back from now: 30d, 7d, 24h (whole days or hours).")
    var period: String = "30d"

    @Option(help: "agent, consumer, plan or day.")
    var groupBy: String = "agent"

    @Option(help: "Only this consumer's usage.")
    var consumer: String?

    func validate() throws {
        if Settlement.usagePeriod(period) == nil {
            throw ValidationError("--period is a whole number of days or hours, at most 3650d (87600h), e.g. 30d, 7d or 24h; not '\(SafeText.escaping(period))'")
        }
        if UsageGrouping(rawValue: groupBy) == nil { throw ValidationError("--group-by is agent, consumer, plan or day, not '\(groupBy)'") }
    }

    func run() throws {
        let settlement = try ledgerStep { [options] in try await options.settlement(readOnly: true) }
        let period = Settlement.usagePeriod(period)!, grouping = UsageGrouping(rawValue: groupBy)!, consumer = consumer
        let rows = try ledgerStep { try await settlement.usage(period: period, groupBy: grouping, consumer: consumer) }
        switch options.format {
        case .json:
            print(JSON.object([("data", .array(rows.map { row in
                .object([(grouping.rawValue, .string(row.key)), ("compute_units", .string(row.computeUnits.description)),
                         ("cost", .string(row.cost.description)), ("executions", .integer(row.executions))])
            }))]).rendered)
        case .text:
            var lines = [[grouping.rawValue, "compute_units", "cost", "executions"]]
            for row in rows { lines.append([row.key, row.computeUnits.description, row.cost.description, String(row.executions)]) }
            print(table(lines))
        }
    }
}
