import Tariff
import TariffSettlement

/// The portal's pages (service.md, "The portal"): self-contained HTML with inline CSS and SVG
/// (`HTMLCharts`, as the simulation report), nothing fetched when viewed. Every figure is printed
/// as the library answered it, the same values the API's JSON prints, and carries a `data-`
/// attribute naming it, so a test (or a tool) can check the page against the API.
enum PortalPages {
    /// What a consumer's page shows, read through the calls the API answers from.
    struct Consumer: Sendable {
        var balance: Balance
        /// `usage(period: 30d, groupBy: .agent)`, as `GET /v1/usage`.
        var usage: [UsageRow]
        /// Priced executions of the last 30 days, newest first.
        var executions: [ChargeRecord]
        /// Purchases paid through the rail, newest first.
        var purchases: [PurchaseRecord]
        var now: Timestamp
    }

    /// What a creator's page shows.
    struct Creator: Sendable {
        var creator: String
        var currency: Currency
        /// Oldest first, the current week last.
        var weeks: [CreatorPayoutWeek]
        var now: Timestamp
    }

    static func consumer(_ page: Consumer) -> String {
        let balance = page.balance
        var body = "<h1>Credits of <span data-consumer>\(escape(balance.consumer))</span></h1>\n"
        body += "<p class=\"note\">\(escape(balance.currency.code)) &middot; as of \(page.now.rfc3339) &middot; read-only</p>\n"
        body += "<section><h2>Balance</h2><table class=\"totals\">"
        body += "<tr><th>available</th><td class=\"amount\" data-balance=\"available\">\(balance.available)</td></tr>"
        body += "<tr><th>reserved</th><td class=\"amount\" data-balance=\"reserved\">\(balance.reserved)</td></tr></table></section>\n"

        var usage = HTMLCharts.barChart(page.usage.map { ($0.key, $0.cost, "agent") }, vertical: false, empty: "No usage in the last 30 days.")
        if !page.usage.isEmpty {
            usage += "<table class=\"usage\"><tr><th>agent</th><th>executions</th><th>compute units</th><th>cost</th></tr>"
            for row in page.usage {
                let agent = escape(row.key)
                usage += "<tr><td>\(agent)</td><td class=\"amount\" data-usage-executions=\"\(agent)\">\(row.executions)</td>"
                usage += "<td class=\"amount\" data-usage-units=\"\(agent)\">\(row.computeUnits)</td>"
                usage += "<td class=\"amount\" data-usage-cost=\"\(agent)\">\(row.cost)</td></tr>"
            }
            usage += "</table>"
        }
        body += section("Usage by agent, last 30 days", usage)

        var executions = ""
        if page.executions.isEmpty {
            executions = "<p>No executions in the last 30 days.</p>"
        } else {
            executions = "<table class=\"executions\"><tr><th>ended</th><th>execution</th><th>agent</th><th>plan</th><th>status</th><th>compute units</th><th>charged</th></tr>"
            for line in page.executions {
                let id = escape(line.execution ?? "")
                executions += "<tr><td>\(line.datedAt.rfc3339)</td><td>\(id)</td><td>\(escape(line.agent))</td><td>\(escape(line.plan)) v\(line.version)</td>"
                executions += "<td>\(line.failed ? "failed" : "succeeded")</td><td class=\"amount\" data-execution-units=\"\(id)\">\(line.computeUnits)</td>"
                executions += "<td class=\"amount\" data-execution-charged=\"\(id)\">\(line.charged)</td></tr>"
            }
            executions += "</table>"
        }
        body += section("Recent executions", executions)

        var purchases = ""
        if page.purchases.isEmpty {
            purchases = "<p>No purchases.</p>"
        } else {
            purchases = "<table class=\"purchases\"><tr><th>date</th><th>status</th><th>amount</th></tr>"
            for (index, purchase) in page.purchases.enumerated() {
                purchases += "<tr><td>\(purchase.createdAt.rfc3339)</td><td data-purchase-status=\"\(index)\">\(purchase.state)</td>"
                purchases += "<td class=\"amount\" data-purchase-amount=\"\(index)\">\(purchase.amount)</td></tr>"
            }
            purchases += "</table>"
        }
        body += section("Purchases", purchases)
        return document(title: "Credits", body: body)
    }

    /// The calendar's words for a payout row: paid, upcoming (due or being sent), failed; carried
    /// (below the minimum, owed later) and held (a reversed transfer) as they are.
    static func calendarStatus(_ status: PayoutLine.Status) -> String {
        switch status {
        case .paid: "paid"
        case .due, .recorded: "upcoming"
        case .failed: "failed"
        case .carried: "carried"
        case .held: "held"
        }
    }

    static func creator(_ page: Creator) -> String {
        var body = "<h1>Earnings of <span data-creator>\(escape(page.creator))</span></h1>\n"
        body += "<p class=\"note\">\(escape(page.currency.code)) &middot; as of \(page.now.rfc3339) &middot; read-only</p>\n"
        let bars = page.weeks.map { ($0.week.weekStart.description, $0.line?.earnings ?? .zero, "week") }
        body += section("Earnings by week", HTMLCharts.barChart(bars, vertical: true, empty: "No weeks."))
        var calendar = "<table class=\"payouts\"><tr><th>week</th><th>pay date</th><th>earnings</th><th>payout</th><th>carried</th><th>status</th></tr>"
        var rows = 0
        for week in page.weeks.reversed() {
            guard let line = week.line else { continue }
            rows += 1
            let key = line.weekStart.description
            let inProgress = week.week.contains(page.now) ? " (week in progress)" : ""
            calendar += "<tr class=\"\(calendarStatus(line.status))\"><td>\(key)</td><td>\(line.payDate)</td>"
            calendar += "<td class=\"amount\" data-earnings=\"\(key)\">\(line.earnings)</td><td class=\"amount\" data-payout=\"\(key)\">\(line.amount)</td>"
            calendar += "<td class=\"amount\" data-carried=\"\(key)\">\(line.carried)</td>"
            calendar += "<td data-status=\"\(key)\" data-api-status=\"\(line.status.rawValue)\">\(calendarStatus(line.status))\(inProgress)"
            if let failure = line.failure { calendar += ": \(escape(failure))" }
            calendar += "</td></tr>"
        }
        calendar += "</table>"
        body += section("Payout calendar", rows == 0 ? "<p>No payouts in these weeks.</p>" : calendar)
        return document(title: "Earnings", body: body)
    }

    /// The one page every refused link gets (malformed, altered, unknown, expired or revoked
    /// alike): it names nothing of the ledger.
    static let notFound = document(title: "Link not valid", body: "<h1>This link is not valid</h1>\n<p>It may have expired or been revoked. Ask for a new one.</p>\n")

    /// The page when the ledger cannot be read.
    static let unavailable = document(title: "Unavailable", body: "<h1>Try again shortly</h1>\n<p>The page cannot be shown right now.</p>\n")

    private static func section(_ title: String, _ content: String) -> String { HTMLCharts.section(title, content) }

    private static func escape(_ text: String) -> String { HTMLCharts.escape(text) }

    /// Never indexed (a link holds a token); muted notes, failed and upcoming payouts.
    private static func document(title: String, body: String) -> String {
        HTMLCharts.document(title: title, head: "<meta name=\"robots\" content=\"noindex\">\n",
                            style: ".note { color: #5a6170; }\ntr.failed td { color: #b3361f; } tr.upcoming td { color: #5a6170; }", body: body)
    }
}
