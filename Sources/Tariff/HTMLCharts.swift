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
