import TariffCore

/// A strict, allocation-light scanner for one JSON Lines record (RFC 8259).
///
/// The trace reader pulls exactly the fields it needs: strings decoded, numbers kept as their
/// text so amounts and meter readings are read exactly (never through a binary float), and every
/// other value validated and skipped. It never traps, whatever the bytes.
struct JSONScanner {
    enum Failure: Error, Equatable {
        case syntax(String)
        case tooDeep
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0
    static let maximumDepth = 64

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }

    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
        skipWhitespace()
        guard peek == byte else { throw .syntax("expected \(what) at column \(position + 1)") }
        position += 1
    }

    /// Reads `{`, then calls `field` for each key with the scanner positioned at its value;
    /// `field` must consume the value. Duplicate keys are an error.
    mutating func object(depth: Int = 0, _ field: (_ key: String, _ scanner: inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        guard depth < Self.maximumDepth else { throw .tooDeep }
        try expect(UInt8(ascii: "{"), "an object")
        skipWhitespace()
        if peek == UInt8(ascii: "}") { position += 1; return }
        var keys: [String] = []
        while true {
            skipWhitespace()
            let key = try string()
            if keys.contains(key) { throw .syntax("duplicate key '\(key)'") }
            keys.append(key)
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            try field(key, &self)
            skipWhitespace()
            guard let next = peek else { throw .syntax("unterminated object") }
            position += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw .syntax("expected ',' or '}' at column \(position)") }
        }
    }

    /// A string value, escapes decoded; invalid UTF-8 or control characters are errors.
    mutating func string() throws(Failure) -> String {
        skipWhitespace()
        guard peek == UInt8(ascii: "\"") else { throw .syntax("expected a string at column \(position + 1)") }
        position += 1
        let start = position
        var hasEscape = false
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<position])
                position += 1
                if !hasEscape {
                    guard let text = String(validating: raw, as: UTF8.self) else { throw .syntax("invalid UTF-8 in a string") }
                    return text
                }
                return try Self.unescape(raw)
            }
            if byte < 0x20 { throw .syntax("control character in a string") }
            if byte == UInt8(ascii: "\\") { hasEscape = true; position += 1 }
            position += 1
        }
        throw .syntax("unterminated string")
    }

    private static func unescape(_ raw: UnsafeBufferPointer<UInt8>) throws(Failure) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = 0
        func hex4(_ at: Int) throws(Failure) -> UInt32 {
            guard at + 4 <= raw.count else { throw .syntax("bad \\u escape") }
            var value: UInt32 = 0
            for offset in 0..<4 {
                let byte = raw[at + offset]
                let digit: UInt32
                switch byte {
                case 0x30...0x39: digit = UInt32(byte - 0x30)
                case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
                default: throw .syntax("bad \\u escape")
                }
                value = value << 4 | digit
            }
            return value
        }
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\") else { output.append(byte); index += 1; continue }
            guard index + 1 < raw.count else { throw .syntax("bad escape") }
            let escaped = raw[index + 1]
            index += 2
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escaped)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(index)
                index += 4
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u") else { throw .syntax("unpaired surrogate") }
                    let low = try hex4(index + 2)
                    guard low >= 0xDC00 && low < 0xE000 else { throw .syntax("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw .syntax("unpaired surrogate")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw .syntax("bad \\u escape") }
                output.append(contentsOf: String(Character(unicode)).utf8)
            default: throw .syntax("bad escape")
            }
        }
        guard let text = String(validating: output, as: UTF8.self) else { throw .syntax("invalid UTF-8 in a string") }
        return text
    }

    /// A number's text (validated against JSON's grammar), for exact parsing by the caller.
    mutating func numberText() throws(Failure) -> Substring {
        skipWhitespace()
        let start = position
        if peek == UInt8(ascii: "-") { position += 1 }
        func digits(_ scanner: inout JSONScanner) -> Int {
            var count = 0
            while let byte = scanner.peek, byte >= 0x30, byte <= 0x39 { scanner.position += 1; count += 1 }
            return count
        }
        let integerStart = position
        let integerDigits = digits(&self)
        guard integerDigits > 0 else { throw .syntax("expected a number at column \(start + 1)") }
        if integerDigits > 1 && bytes[integerStart] == 0x30 { throw .syntax("leading zero in a number") }
        if peek == UInt8(ascii: ".") {
            position += 1
            guard digits(&self) > 0 else { throw .syntax("expected digits after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            position += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { position += 1 }
            guard digits(&self) > 0 else { throw .syntax("expected digits in an exponent") }
        }
        return Substring(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    /// Skips any value, validating it.
    mutating func skipValue(depth: Int = 0) throws(Failure) {
        guard depth < Self.maximumDepth else { throw .tooDeep }
        skipWhitespace()
        guard let byte = peek else { throw .syntax("expected a value") }
        switch byte {
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "{"): try object(depth: depth + 1) { _, scanner throws(Failure) in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            position += 1
            skipWhitespace()
            if peek == UInt8(ascii: "]") { position += 1; return }
            while true {
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek else { throw .syntax("unterminated array") }
                position += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw .syntax("expected ',' or ']'") }
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try numberText()
        }
    }

    mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw .syntax("unexpected end") }
        for offset in 0..<count where bytes[position + offset] != word.utf8Start[offset] { throw .syntax("unexpected value") }
        position += count
    }

    /// After the top-level value only whitespace may follow.
    mutating func finish() throws(Failure) {
        skipWhitespace()
        guard atEnd else { throw .syntax("unexpected text after the object at column \(position + 1)") }
    }
}

/// Exact decimal reading of a JSON number's text, exponents included (`1.2e3` is 1200 exactly).
enum JSONNumber {
    enum Failure: Error, Equatable { case negative, tooPrecise, outOfRange }

    /// The number as an integer count of `10^-fractionalDigits`, or a failure.
    static func scaled(_ text: Substring, fractionalDigits: Int, maximum: Int128) -> Result<Int128, Failure> {
        var mantissa: Int128 = 0
        var scale = 0                  // digits after the point so far
        var negative = false
        var exponent = 0
        var seenPoint = false
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        var significant = 0
        while index < utf8.endIndex {
            let byte = utf8[index]
            switch byte {
            case UInt8(ascii: "-"): negative = true
            case UInt8(ascii: "."): seenPoint = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                let rest = text[utf8.index(after: index)...]
                guard let value = Int(rest), value.magnitude < 1_000 else { return .failure(.outOfRange) }
                exponent = value
                index = utf8.endIndex
                continue
            default:
                let digit = Int128(byte &- 0x30)
                if mantissa != 0 || digit != 0 { significant += 1 }
                guard significant <= 36 else { return .failure(.outOfRange) }
                mantissa = mantissa * 10 + digit
                if seenPoint { scale += 1 }
            }
            index = utf8.index(after: index)
        }
        // value = mantissa * 10^(exponent - scale); we want value * 10^fractionalDigits.
        var shift = exponent - scale + fractionalDigits
        while shift < 0 {
            if mantissa % 10 != 0 { return .failure(.tooPrecise) }
            mantissa /= 10
            shift += 1
        }
        while shift > 0 {
            if mantissa > maximum { return .failure(.outOfRange) }
            mantissa *= 10
            shift -= 1
        }
        if mantissa > maximum { return .failure(.outOfRange) }
        if negative && mantissa != 0 { return .failure(.negative) }
        return .success(mantissa)
    }
}
