import TariffCore

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

    /// JSON text: two-space indentation, one member or element per line; short scalar arrays on
    /// one line (written by Tariff's one JSON writer, `JSON.pretty`).
    public func rendered(indent: String = "") -> String { json.pretty(indent: indent) }

    /// The same value as the JSON writer's.
    public var json: JSON {
        switch self {
        case .string(let text): .string(text)
        case .integer(let value): .integer(value)
        case .bool(let value): .bool(value)
        case .null: .null
        case .array(let elements): .array(elements.map(\.json))
        case .object(let members): .object(members.map { ($0.key, $0.value.json) })
        }
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
