import Foundation
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

    /// A key of an object, as its raw bytes (escapes decoded only when it has any).
    struct Key {
        var bytes: UnsafeBufferPointer<UInt8>
        /// Owns decoded bytes when the key had escapes (rare).
        var decoded: [UInt8]?

        func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
            if let decoded { return decoded.withUnsafeBufferPointer(body) }
            return body(bytes)
        }

        /// Whether the key is `name` (keys are compared as bytes: no String is made).
        func `is`(_ name: StaticString) -> Bool {
            withBytes { bytes in
                bytes.count == name.utf8CodeUnitCount && (bytes.count == 0 || memcmp(bytes.baseAddress!, name.utf8Start, bytes.count) == 0)
            }
        }

        var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }
    }

    /// Most fields an object may have (a trace event has about ten).
    static let maximumKeys = 64

    /// Reads `{`, then calls `field` for each key with the scanner positioned at its value;
    /// `field` must consume the value. Duplicate keys are an error.
    mutating func object(depth: Int = 0, _ field: (_ key: Key, _ scanner: inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        guard depth < Self.maximumDepth else { throw .tooDeep }
        try expect(UInt8(ascii: "{"), "an object")
        skipWhitespace()
        if peek == UInt8(ascii: "}") { position += 1; return }
        // Keys seen so far (their byte ranges), on the stack: finding duplicates allocates nothing.
        // Sixteen inline (a trace event has about ten fields); more spill to an array.
        var seen = InlineArray<16, (start: Int, end: Int)>(repeating: (0, 0))
        var spilled: [(start: Int, end: Int)] = []
        var count = 0
        func earlierKey(_ index: Int) -> (start: Int, end: Int) { index < 16 ? seen[index] : spilled[index - 16] }
        while true {
            skipWhitespace()
            let (key, start, end) = try keyBytes()
            if key.decoded != nil {
                // An escaped key is compared decoded, against every earlier key decoded: rare.
                for index in 0..<count {
                    let range = earlierKey(index)
                    let earlier = try Self.text(UnsafeBufferPointer(rebasing: bytes[range.start..<range.end]))
                    if earlier == key.string { throw .syntax("duplicate key '\(key.string.prefix(40))'") }
                }
            } else {
                let length = end - start
                for index in 0..<count {
                    let range = earlierKey(index)
                    guard range.end - range.start == length else { continue }
                    if length == 0 || bytesEqual(bytes.baseAddress! + start, bytes.baseAddress! + range.start, length) {
                        throw .syntax("duplicate key '\(key.string.prefix(40))'")
                    }
                }
            }
            guard count < Self.maximumKeys else { throw .syntax("more than \(Self.maximumKeys) fields in an object") }
            if count < 16 { seen[count] = (start, end) } else { spilled.append((start, end)) }
            count += 1
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

    /// A key: its bytes (decoded if escaped) and its raw range in the line.
    private mutating func keyBytes() throws(Failure) -> (Key, Int, Int) {
        guard peek == UInt8(ascii: "\"") else { throw .syntax("expected a key at column \(position + 1)") }
        let start = position + 1
        let (raw, hasEscape) = try rawString()
        if !hasEscape { return (Key(bytes: raw, decoded: nil), start, start + raw.count) }
        let decoded = Array(try Self.unescape(raw).utf8)
        return (Key(bytes: raw, decoded: decoded), start, start + raw.count)
    }

    /// The raw bytes of a string (between the quotes) and whether it has escapes; control
    /// characters are an error.
    mutating func rawString() throws(Failure) -> (UnsafeBufferPointer<UInt8>, Bool) {
        skipWhitespace()
        guard peek == UInt8(ascii: "\"") else { throw .syntax("expected a string at column \(position + 1)") }
        position += 1
        let start = position
        var hasEscape = false
        // The hottest loop of the reader. Eight bytes at a time, a word is searched for the three
        // bytes that end or complicate a string (quote, backslash, control characters) with the
        // "has a zero byte" bit trick; borrows only flag bytes above a real match, so the lowest
        // flagged byte is the first stop. Then the stop (or the last few bytes) one at a time.
        guard let base = bytes.baseAddress else { throw .syntax("unterminated string") }
        let count = bytes.count
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        while true {
            while position + 8 <= count {
                let word = UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self)
                let quotes = word ^ (ones &* 0x22), backslashes = word ^ (ones &* 0x5C)
                let stops = ((quotes &- ones) & ~quotes | (backslashes &- ones) & ~backslashes | (word &- ones &* 0x20) & ~word) & highs
                if stops != 0 {
                    position += stops.trailingZeroBitCount >> 3
                    break
                }
                position += 8
            }
            guard position < count else { throw .syntax("unterminated string") }
            let byte = base[position]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(start: base + start, count: position - start)
                position += 1
                return (raw, hasEscape)
            }
            if byte < 0x20 { throw .syntax("control character in a string") }
            if byte == UInt8(ascii: "\\") {
                // The escaped byte is skipped unread: unescaping checks it.
                hasEscape = true
                position += 1
            }
            position += 1
        }
    }

    /// A string value, escapes decoded; invalid UTF-8 is an error.
    mutating func string() throws(Failure) -> String {
        let (raw, hasEscape) = try rawString()
        if hasEscape { return try Self.unescape(raw) }
        return try Self.text(raw)
    }

    /// UTF-8 bytes as a String: ASCII (every id and timestamp of a trace) needs no validation.
    static func text(_ raw: UnsafeBufferPointer<UInt8>) throws(Failure) -> String {
        var ascii = true
        for byte in raw where byte >= 0x80 { ascii = false; break }
        if ascii { return String(decoding: raw, as: UTF8.self) }
        guard let text = String(validating: raw, as: UTF8.self) else { throw .syntax("invalid UTF-8 in a string") }
        return text
    }

    static func unescapeString(_ raw: UnsafeBufferPointer<UInt8>) throws(Failure) -> String { try unescape(raw) }

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
        Substring(decoding: try numberBytes(), as: UTF8.self)
    }

    /// A number's bytes (validated against JSON's grammar), for exact parsing without a String.
    mutating func numberBytes() throws(Failure) -> UnsafeBufferPointer<UInt8> {
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
        return UnsafeBufferPointer(rebasing: bytes[start..<position])
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
        default: _ = try numberBytes()
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

/// Whether `count` bytes at `a` and `b` are equal: eight at a time, inline (keys and ids are
/// short, and calling memcmp cost more than comparing).
@inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var offset = 0
    while offset + 8 <= count {
        guard UnsafeRawPointer(a + offset).loadUnaligned(as: UInt64.self) == UnsafeRawPointer(b + offset).loadUnaligned(as: UInt64.self) else { return false }
        offset += 8
    }
    while offset < count {
        guard a[offset] == b[offset] else { return false }
        offset += 1
    }
    return true
}

/// Exact decimal reading of a JSON number's text, exponents included (`1.2e3` is 1200 exactly).
enum JSONNumber {
    enum Failure: Error, Equatable { case negative, tooPrecise, outOfRange }

    /// The number as an integer count of `10^-fractionalDigits`, or a failure.
    static func scaled(_ text: Substring, fractionalDigits: Int, maximum: Int128) -> Result<Int128, Failure> {
        var text = String(text)
        return text.withUTF8 { scaled($0, fractionalDigits: fractionalDigits, maximum: maximum) }
    }

    /// The same from the number's bytes (already checked against JSON's grammar).
    static func scaled(_ bytes: UnsafeBufferPointer<UInt8>, fractionalDigits: Int, maximum: Int128) -> Result<Int128, Failure> {
        // Most meter readings are short plain integers ("1200"): read them in 64 bits.
        if bytes.count <= 12 && fractionalDigits <= 6 {
            var value: Int64 = 0
            var plain = !bytes.isEmpty
            for byte in bytes {
                guard byte >= 0x30 && byte <= 0x39 else { plain = false; break }
                value = value &* 10 &+ Int64(byte &- 0x30)
            }
            if plain {
                var scaled = Int128(value)
                for _ in 0..<fractionalDigits { scaled &*= 10 }
                return scaled > maximum ? .failure(.outOfRange) : .success(scaled)
            }
        }
        return scaledSlowly(bytes, fractionalDigits: fractionalDigits, maximum: maximum)
    }

    private static func scaledSlowly(_ bytes: UnsafeBufferPointer<UInt8>, fractionalDigits: Int, maximum: Int128) -> Result<Int128, Failure> {
        var mantissa: Int128 = 0
        var scale = 0                  // digits after the point so far
        var negative = false
        var exponent = 0
        var seenPoint = false
        var significant = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-"): negative = true
            case UInt8(ascii: "+"): break
            case UInt8(ascii: "."): seenPoint = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                var value = 0
                var sign = 1
                var digits = 0
                var cursor = index + 1
                while cursor < bytes.count {
                    let next = bytes[cursor]
                    if next == UInt8(ascii: "-") { sign = -1 } else if next >= 0x30 && next <= 0x39 {
                        value = value * 10 + Int(next - 0x30)
                        digits += 1
                        // Saturated, not refused: 1e-999999 is tiny (too precise, or 0 for 0e-999999), 1e999999 is huge.
                        if value >= 1_000 { value = 1_000 }
                    } else if next != UInt8(ascii: "+") { return .failure(.outOfRange) }
                    cursor += 1
                }
                guard digits > 0 else { return .failure(.outOfRange) }
                exponent = sign * value
                index = bytes.count
                continue
            case 0x30...0x39:
                let digit = Int128(byte &- 0x30)
                if mantissa != 0 || digit != 0 { significant += 1 }
                guard significant <= 36 else { return .failure(.outOfRange) }
                // 36 significant digits stay below 10^36, inside Int128: no overflow check needed.
                mantissa = mantissa &* 10 &+ digit
                if seenPoint { scale += 1 }
            default:
                return .failure(.outOfRange)
            }
            index += 1
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
