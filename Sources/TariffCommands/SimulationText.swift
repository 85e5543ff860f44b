import Tariff
import TariffSimulation

/// The text form of a simulation, for people: aligned tables, the biggest rows first where lists are long.
enum SimulationText {
    static let rowsShown = 20

    static func render(_ report: SimulationReport, comparison: Comparison?) -> String {
        var sections: [String] = []
        sections.append(table([
            ["currency", report.currency?.code ?? "-"],
            ["window", "[\(report.from?.description ?? "-"), \(report.to?.description ?? "-"))"],
            ["lines read", String(report.linesRead)],
            ["rejected lines", String(max(report.rejectedTotal, report.rejected.count))],
            ["warnings", String(max(report.warningsTotal, report.warnings.count))],
            ["executions", "\(report.priced) priced, \(report.refused) refused, \(report.duplicates) duplicate"],
            ["charged", report.totals.charged.description],
            ["purchased", report.totals.purchased.description],
            ["creator / platform / processing", "\(report.totals.creator) / \(report.totals.platform) / \(report.totals.processing)"],
        ]))
        sections.append("plans\n" + table([["plan", "version", "charged", "fees", "usage", "shortfall", "sla credits"]] + report.plans.map {
            [$0.plan, String($0.version), $0.charged.description, $0.fees.description, $0.usage.description, $0.shortfall.description, $0.slaCredits.description]
        }, indent: "  "))
        let agents = report.agents.sorted { $0.charged > $1.charged }
        sections.append("agents" + more(agents.count) + "\n" + table([["agent", "creator", "charged", "compute units", "executions"]] + agents.prefix(rowsShown).map {
            [$0.agent, $0.creator, $0.charged.description, $0.computeUnits.description, String($0.executions)]
        }, indent: "  "))
        let consumers = report.consumers.sorted { $0.charged > $1.charged }
        sections.append("consumers" + more(consumers.count) + "\n" + table([["consumer", "charged", "compute units", "executions", "refused"]] + consumers.prefix(rowsShown).map {
            [$0.consumer, $0.charged.description, $0.computeUnits.description, String($0.executions), String($0.refused)]
        }, indent: "  "))
        sections.append("payouts" + more(report.payouts.count) + "\n" + table([["creator", "week", "pay date", "earnings", "paid", "carried"]] + report.payouts.prefix(rowsShown).map {
            [$0.creator, $0.week.weekStart.description, $0.week.payDate.description, $0.earnings.description, $0.amount.description, $0.carried.description]
        }, indent: "  "))
        if !report.rejected.isEmpty {
            sections.append("rejected lines" + more(max(report.rejectedTotal, report.rejected.count)) + "\n" + report.rejected.prefix(rowsShown).map { "  line \($0.line): \($0.reason)" }.joined(separator: "\n"))
        }
        if let comparison {
            let difference = MoneySum(comparison.new.totals.charged) - MoneySum(comparison.old.totals.charged)
            var text = "compare: charged \(comparison.old.totals.charged) -> \(comparison.new.totals.charged) (\(signed(difference)))\n"
            for (title, rows) in [("plans", comparison.plans), ("agents", comparison.agents), ("consumers", comparison.consumers)] {
                text += "  biggest changes by \(title)\n" + table([["", "old", "new", "difference"]] + rows.prefix(10).map {
                    [$0.key + ($0.version.map { " v\($0)" } ?? ""), $0.old.description, $0.new.description, signed($0.difference)]
                }, indent: "    ") + "\n"
            }
            sections.append(text)
        }
        return sections.joined(separator: "\n\n")
    }

    static func more(_ count: Int) -> String { count > rowsShown ? " (top \(rowsShown) of \(count); --format json lists all)" : "" }

    static func signed(_ money: MoneySum) -> String { money.micros > 0 ? "+\(money)" : money.description }
}
