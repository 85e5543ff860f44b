/// A JSON value with ordered object keys: the one JSON writer of Tariff, for the commands'
/// outputs (compact: `rendered`, keeping the field order of cli.md), the catalog's JSON Schema
/// (indented: `pretty`), and the rail logs (`quoted`). Amounts are strings ("21.400000"), never floats.
public indirect enum JSON: Sendable {
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

    /// Indented text: two spaces a level, one member or element per line; an array of scalars on
    /// one line when it fits 100 characters (the committed schema's layout: stable and diffable).
    public func pretty(indent: String = "") -> String {
        switch self {
        case .string, .integer, .number, .bool, .null: return rendered
        case .array(let elements):
            if elements.isEmpty { return "[]" }
            let scalars = elements.allSatisfy { if case .array = $0 { false } else if case .object = $0 { false } else { true } }
            let inline = "[" + elements.map(\.rendered).joined(separator: ", ") + "]"
            if scalars && inline.count <= 100 { return inline }
            let inner = indent + "  "
            return "[\n" + elements.map { inner + $0.pretty(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            let inner = indent + "  "
            return "{\n" + members.map { inner + Self.quoted($0.0) + ": " + $0.1.pretty(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        }
    }

    /// A JSON string literal of `text` (quotes, backslashes and control characters escaped).
    public static func quoted(_ text: String) -> String {
        var output = ""
        escape(text, into: &output)
        return output
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
