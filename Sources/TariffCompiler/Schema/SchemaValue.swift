/// A JSON value with ordered keys: what the catalog's JSON Schema is built of.
///
/// Ordered, so the printed schema is stable (diffable, comparable with a committed copy) and reads
/// in the order a plan is written.
public indirect enum SchemaValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
    case array([SchemaValue])
    case object([SchemaMember])

    /// The value of `key` in an object (nil for other values or a missing key).
    public subscript(key: String) -> SchemaValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The object with `key` set to `value` (replaced in place, or appended).
    public func setting(_ key: String, _ value: SchemaValue) -> SchemaValue {
        guard case .object(var members) = self else { return self }
        if let index = members.firstIndex(where: { $0.key == key }) { members[index].value = value } else { members.append(SchemaMember(key, value)) }
        return .object(members)
    }

    /// JSON text: two-space indentation, one member or element per line; short scalar arrays on one line.
    public func rendered(indent: String = "") -> String {
        switch self {
        case .string(let text): return Self.quoted(text)
        case .integer(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array(let elements):
            if elements.isEmpty { return "[]" }
            let scalars = elements.allSatisfy { if case .array = $0 { false } else if case .object = $0 { false } else { true } }
            let inline = "[" + elements.map { $0.rendered() }.joined(separator: ", ") + "]"
            if scalars && inline.count <= 100 { return inline }
            let inner = indent + "  "
            return "[\n" + elements.map { inner + $0.rendered(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            let inner = indent + "  "
            return "{\n" + members.map { inner + Self.quoted($0.key) + ": " + $0.value.rendered(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// One `"key": value` of a JSON object.
public struct SchemaMember: Sendable, Equatable {
    public var key: String
    public var value: SchemaValue
    public init(_ key: String, _ value: SchemaValue) {
        self.key = key
        self.value = value
    }
}

extension SchemaValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(arrayLiteral elements: SchemaValue...) { self = .array(elements) }
    /// Keys keep the order they are written in.
    public init(dictionaryLiteral elements: (String, SchemaValue)...) { self = .object(elements.map { SchemaMember($0.0, $0.1) }) }
}
