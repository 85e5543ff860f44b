import Tariff
import TariffSettlement

/// A request's JSON object, read field by field: every field must be one the endpoint knows (a
/// typo is refused, never ignored), and each has its type.
struct BodyObject: Sendable {
    private let fields: [String: JSONValue]

    /// - throws: 400 `invalid_input` for a body that is not one JSON object or has an unknown field.
    init(bytes: [UInt8], allowed: Set<String>) throws(APIError) {
        if bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            fields = [:]
            return
        }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw APIError.invalid("the body is not UTF-8") }
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw APIError.invalid("the body is not JSON: \(error.reason) at byte \(error.offset)") }
        guard case .object(let pairs) = value else { throw APIError.invalid("the body must be a JSON object") }
        for (name, _) in pairs where !allowed.contains(name) {
            throw APIError.invalid("unknown field '\(Self.printable(name))'; this endpoint takes \(allowed.sorted().joined(separator: ", "))")
        }
        fields = Dictionary(uniqueKeysWithValues: pairs)
    }

    /// A name safe to echo (no control characters, at most 64 characters).
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(64)))
    }

    func has(_ name: String) -> Bool { if let value = fields[name], value != .null { return true } else { return false } }

    func string(_ name: String) throws(APIError) -> String? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .string(let text) = value else { throw APIError.invalid("'\(name)' must be a string, not \(value.typeName)") }
        return text
    }

    func requiredString(_ name: String) throws(APIError) -> String {
        guard let text = try string(name) else { throw APIError.invalid("'\(name)' is required") }
        return text
    }

    /// An id: 1 to 255 characters, no control characters (as the ledger's keys).
    func id(_ name: String) throws(APIError) -> String? {
        guard let text = try string(name) else { return nil }
        _ = try validatedID(text, name)
        return text
    }

    func requiredID(_ name: String) throws(APIError) -> String {
        guard let text = try id(name) else { throw APIError.invalid("'\(name)' is required") }
        return text
    }

    /// A list of strings, at most `maximumCount` of them.
    func strings(_ name: String, maximumCount: Int) throws(APIError) -> [String]? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .array(let items) = value else { throw APIError.invalid("'\(name)' must be a list, not \(value.typeName)") }
        guard items.count <= maximumCount else { throw APIError.invalid("'\(name)' has at most \(maximumCount) items") }
        var texts: [String] = []
        for item in items {
            guard case .string(let text) = item else { throw APIError.invalid("'\(name)' holds strings, not \(item.typeName)") }
            texts.append(text)
        }
        return texts
    }

    /// A whole number written as a JSON number without fraction or exponent.
    func integer(_ name: String, in range: ClosedRange<Int64>) throws(APIError) -> Int64? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .number(let text) = value, let number = Int64(text), range.contains(number) else {
            throw APIError(400, "invalid_input", "'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// An amount as a decimal string ("100", "100.00"), parsed exactly.
    func amount(_ name: String) throws(APIError) -> Money? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .string(let text) = value else {
            throw APIError(400, "invalid_amount", "'\(name)' is an amount written as a decimal string such as \"100.00\", not \(value.typeName)")
        }
        do { return try Money(parsing: Substring(text)) } catch {
            throw APIError(400, "invalid_amount", "'\(name)' is not an amount: \(Self.printable(text)) (write it like \"100.00\")")
        }
    }

    func timestamp(_ name: String) throws(APIError) -> Timestamp? {
        guard let text = try string(name) else { return nil }
        guard let instant = Timestamp(rfc3339: text) else {
            throw APIError.invalid("'\(name)' is not an RFC 3339 timestamp such as 2026-11-30T12:00:00Z")
        }
        return instant
    }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw APIError.invalid("'\(name)' must be true or false") }
        return flag
    }

    /// `{"cpu_ms": 1200, "inference_calls": "3"}`: readings by meter name, numbers or decimal strings, exact.
    func meters(_ name: String) throws(APIError) -> [(name: String, value: MeterValue)] {
        guard let value = fields[name], value != .null else { return [] }
        guard case .object(let pairs) = value else { throw APIError.invalid("'\(name)' must be an object of meter readings") }
        guard pairs.count <= 256 else { throw APIError.invalid("at most 256 meter readings") }
        var readings: [(name: String, value: MeterValue)] = []
        for (meter, reading) in pairs {
            let text: String
            switch reading {
            case .number(let literal), .string(let literal): text = literal
            default: throw APIError.invalid("the reading of meter '\(Self.printable(meter))' must be a number")
            }
            do { readings.append((meter, try MeterValue(parsing: Substring(text)))) } catch {
                throw APIError.invalid("the reading of meter '\(Self.printable(meter))' is not a non-negative decimal of at most 6 fractional digits")
            }
        }
        return readings
    }
}
