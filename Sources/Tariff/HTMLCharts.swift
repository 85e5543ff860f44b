/// The pieces of a self-contained HTML page with charts: text escaping and bar charts in inline
/// SVG, nothing fetched when the page is viewed. Shared by the simulation report (`simulate
/// --report`) and the portal pages of `tariff serve`. Every bar carries a `data-KIND` attribute
/// naming it and a `data-amount` with the exact decimal, so tests (and tools) can check a page
/// against the JSON it was drawn from; bar lengths are display only, in integers.
public enum HTMLCharts {
    /// A bar chart of amounts: vertical bars (labels under them, their last five characters), or
    /// horizontal rows (label, bar, amount).
    public static func barChart(_ values: [(label: String, amount: Money, kind: String)], vertical: Bool,
                                empty: String = "(nothing in the window)") -> String {
        barChart(values.map { ($0.label, MoneySum($0.amount), $0.kind) }, vertical: vertical, empty: empty)
    }

    /// Bars of exact amounts (a comparison's differences may lie beyond `Money`).
    public static func barChart(_ values: [(label: String, amount: MoneySum, kind: String)], vertical: Bool,
                                empty: String = "(nothing in the window)") -> String {
        guard !values.isEmpty else { return "<p>\(escape(empty))</p>" }
        let largest = max(1, values.map { $0.amount.micros.magnitude }.max() ?? 1)
        var svg = ""
        if vertical {
            let barWidth = 22, height = 160, width = values.count * (barWidth + 6) + 20
            svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height + 70)\" role=\"img\">"
            for (index, value) in values.enumerated() {
                let length = Int(UInt128(height) * UInt128(value.amount.micros.magnitude) / UInt128(largest))
                let x = 10 + index * (barWidth + 6)
                svg += "<rect class=\"bar\(value.amount.micros < 0 ? " negative" : "")\" x=\"\(x)\" y=\"\(height - length)\" width=\"\(barWidth)\" height=\"\(length)\" data-\(value.kind)=\"\(escape(value.label))\" data-amount=\"\(value.amount)\"><title>\(escape(value.label)): \(value.amount)</title></rect>"
                svg += "<text x=\"\(x + barWidth / 2)\" y=\"\(height + 12)\" transform=\"rotate(60 \(x + barWidth / 2) \(height + 12))\">\(escape(String(value.label.suffix(5))))</text>"
            }
        } else {
            let rowHeight = 22, width = 720
            svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(values.count * rowHeight + 10)\" role=\"img\">"
            for (index, value) in values.enumerated() {
                let length = Int(UInt128(420) * UInt128(value.amount.micros.magnitude) / UInt128(largest))
                let y = 5 + index * rowHeight
                svg += "<text x=\"0\" y=\"\(y + 15)\">\(escape(String(value.label.prefix(28))))</text>"
                svg += "<rect class=\"bar\(value.amount.micros < 0 ? " negative" : "")\" x=\"190\" y=\"\(y + 3)\" width=\"\(max(length, 1))\" height=\"\(rowHeight - 6)\" data-\(value.kind)=\"\(escape(value.label))\" data-amount=\"\(value.amount)\"><title>\(escape(value.label)): \(value.amount)</title></rect>"
                svg += "<text x=\"\(196 + length)\" y=\"\(y + 15)\">\(value.amount)</text>"
            }
        }
        return svg + "</svg>"
    }

    /// A page that needs nothing from outside (no script, no external asset): the stylesheet of
    /// Tariff's pages (tables, amounts, the charts above), then the page's own `style` rules.
    /// `head` is placed before the stylesheet as it is (a `<meta>` of the page's own).
    public static func document(title: String, head: String = "", style: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        \(head)<style>
        body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d2330; }
        h1 { font-size: 1.6rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
        table { border-collapse: collapse; } th, td { padding: 0.2rem 0.7rem; text-align: left; border-bottom: 1px solid #e3e6ec; }
        td.amount { text-align: right; font-variant-numeric: tabular-nums; }
        svg text { font-size: 11px; fill: #1d2330; } rect.bar { fill: #3b6fd8; } rect.negative { fill: #d8553b; }
        \(style)
        </style></head>
        <body>
        \(body)
        </body></html>
        """
    }

    /// A titled section of a page.
    public static func section(_ title: String, _ content: String) -> String {
        "<section><h2>\(escape(title))</h2>\n\(content)\n</section>\n"
    }

    /// Text made safe inside an element or a quoted attribute.
    public static func escape(_ text: String) -> String {
        var output = ""
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }
}
