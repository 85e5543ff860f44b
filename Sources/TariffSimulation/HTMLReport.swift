import Tariff

/// A self-contained HTML report of a simulation (cli.md `--report`): inline CSS and SVG only, so
/// nothing is fetched when it is viewed. Charts: revenue by day, by plan, by party; the biggest
/// movers of a comparison; the payout calendar. Every figure carries a `data-` attribute with the
/// exact decimal the JSON output has, so tests (and tools) can check the page against the JSON.
public struct HTMLReport {
    public var report: SimulationReport
    public var comparison: Comparison?

    public init(report: SimulationReport, comparison: Comparison?) {
        self.report = report
        self.comparison = comparison
    }

    public func render() -> String {
        var body = ""
        body += "<h1>Tariff simulation</h1>\n"
        body += "<p class=\"window\">\(escape(report.currency?.code ?? "")) &middot; [\(escape(report.from?.description ?? "-")), \(escape(report.to?.description ?? "-")))"
        body += " &middot; \(report.linesRead) lines, \(report.priced) executions priced, \(report.refused) refused, \(report.duplicates) duplicates, \(max(report.rejectedTotal, report.rejected.count)) rejected lines</p>\n"
        body += "<section><h2>Totals</h2><table class=\"totals\">"
        for (name, amount) in [("charged", report.totals.charged), ("purchased", report.totals.purchased), ("creator", report.totals.creator),
                               ("platform", report.totals.platform), ("processing", report.totals.processing)] {
            body += "<tr><th>\(name)</th><td class=\"amount\" data-total=\"\(name)\">\(amount)</td></tr>"
        }
        body += "</table></section>\n"
        body += section("Revenue by day", barChart(report.days.map { ($0.day.description, $0.charged, "day") }, vertical: true))
        body += section("Revenue by plan", barChart(report.plans.map { ("\($0.plan) v\($0.version)", $0.charged, "plan") }, vertical: false))
        body += section("Revenue by party", barChart([("creator", report.totals.creator, "party"), ("platform", report.totals.platform, "party"),
                                                      ("processing", report.totals.processing, "party")], vertical: false))
        if let comparison {
            var movers = "<p>charged \(comparison.old.totals.charged) &rarr; <span data-compare-total=\"charged\">\(comparison.new.totals.charged)</span></p>"
            movers += "<table><tr><th>consumer</th><th>old</th><th>new</th><th>difference</th></tr>"
            for row in comparison.consumers.prefix(15) {
                movers += "<tr><td>\(escape(row.key))</td><td class=\"amount\">\(row.old)</td><td class=\"amount\">\(row.new)</td><td class=\"amount\" data-mover=\"\(escape(row.key))\">\(row.difference)</td></tr>"
            }
            movers += "</table>"
            movers += barChart(comparison.plans.prefix(15).map { ("\($0.key) v\($0.version ?? 0)", $0.difference, "mover") }, vertical: false)
            body += section("Biggest movers", movers)
        }
        var calendar = "<table class=\"payouts\"><tr><th>pay date</th><th>creator</th><th>week</th><th>earnings</th><th>paid</th><th>carried</th></tr>"
        for row in report.payouts.sorted(by: { ($0.week.payDate, $0.creator) < ($1.week.payDate, $1.creator) }) {
            calendar += "<tr><td>\(row.week.payDate)</td><td>\(escape(row.creator))</td><td>\(row.week.weekStart)</td><td class=\"amount\">\(row.earnings)</td>"
            calendar += "<td class=\"amount\" data-payout=\"\(escape(row.creator))|\(row.week.weekStart)\">\(row.amount)</td><td class=\"amount\">\(row.carried)</td></tr>"
        }
        calendar += "</table>"
        body += section("Payout calendar", calendar)
        return HTMLCharts.document(title: "Tariff simulation", style: ".window { color: #5a6170; }", body: body)
    }

    private func section(_ title: String, _ content: String) -> String { HTMLCharts.section(title, content) }

    private func barChart(_ values: [(label: String, amount: Money, kind: String)], vertical: Bool) -> String {
        HTMLCharts.barChart(values, vertical: vertical)
    }

    private func barChart(_ values: [(label: String, amount: MoneySum, kind: String)], vertical: Bool) -> String {
        HTMLCharts.barChart(values, vertical: vertical)
    }

    private func escape(_ text: String) -> String { HTMLCharts.escape(text) }
}
