/// A JSON value with ordered object keys, rendered compactly: outputs keep the field order of cli.md.
/// Amounts are strings ("21.400000"), never floats.
public enum JSON: Sendable {
    case string(String)
    case integer(Int64)
    /// A number already written as JSON text (a measured ratio such as 7.5996).
    case number(String)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    public static func optional(_ text: String?) -> JSON { text.map { .string($0) } ?? .null }

    public var rendered: String {
        var output = ""
        render(into: &output)
        return output
    }

    public func render(into output: inout String) {
        switch self {
        case .string(let text): JSON.escape(text, into: &output)
        case .integer(let value): output += String(value)
        case .number(let text): output += text
        case .bool(let value): output += value ? "true" : "false"
        case .null: output += "null"
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                element.render(into: &output)
            }
            output += "]"
        case .object(let pairs):
            output += "{"
            for (index, (key, value)) in pairs.enumerated() {
                if index > 0 { output += "," }
                JSON.escape(key, into: &output)
                output += ":"
                value.render(into: &output)
            }
            output += "}"
        }
    }

    public static func escape(_ text: String, into output: inout String) {
        output += "\""
        // Almost every string of a report (ids, amounts, dates) needs no escape: appending it whole
        // is many times cheaper than appending scalar by scalar (a 10,000-consumer simulation
        // report spent more time here than in pricing its last 100,000 events).
        // DEL, C1 and bidi controls are escaped too (\u007f, \u202e: the same JSON value), so no
        // output of Tariff holds a raw terminal control, whatever its ids hold.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == 0x7F || $0 == 0xC2 || $0 == 0xE2 }) {
            output += text
            output += "\""
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 || SafeText.needsEscape(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}

/// Left-aligned text columns for people.
public func table(_ rows: [[String]], indent: String = "") -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: width)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    return rows.map { row in
        var line = indent
        for (index, cell) in row.enumerated() {
            line += cell
            if index < row.count - 1 { line += String(repeating: " ", count: widths[index] - cell.count + 2) }
        }
        return line
    }.joined(separator: "\n")
}
