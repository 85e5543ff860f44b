/// Exact parsing of plain decimal text ("49", "49.00", "0.0000125", "-3.5") into a scaled integer.
///
/// Plans and traces write amounts as text; reading them through a binary float would turn
/// `0.1` into `0.1000000000000000055...`. Every value type of Tariff parses its text here,
/// digit by digit, into an integer count of its smallest unit.
public enum DecimalText {
    /// Why a decimal text was not accepted; each case carries what a person needs to fix it.
    public enum Failure: Error, Sendable, Equatable {
        case empty
        case exponentNotation
        case notANumber
        case negative
        case tooManyFractionalDigits(allowed: Int)
        case outOfRange
    }

    /// Parses `text` into an integer count of `10^-fractionalDigits` units.
    ///
    /// Trailing zeros of the fraction do not count against `fractionalDigits` ("49.000000000000000"
    /// is fine for money), a leading `+` is accepted, and a leading `-` only when `allowNegative`.
    /// - throws: `Failure` naming what is wrong; never traps, whatever the text.
    public static func parse(_ text: Substring, fractionalDigits: Int, allowNegative: Bool = false) throws(Failure) -> Int128 {
        var bytes = text.utf8[...]
        guard !bytes.isEmpty else { throw .empty }
        if bytes.contains(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
           bytes.contains(where: { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            throw .exponentNotation
        }
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var integerDigits = bytes[...]
        var fractionDigits = bytes[bytes.endIndex...]
        if let dot = bytes.firstIndex(of: UInt8(ascii: ".")) {
            integerDigits = bytes[..<dot]
            fractionDigits = bytes[bytes.index(after: dot)...]
        }
        guard !integerDigits.isEmpty || !fractionDigits.isEmpty else { throw .notANumber }
        // "5." and ".5" are accepted as 5 and 0.5; the digits themselves must be plain ASCII digits.
        let isDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard integerDigits.allSatisfy(isDigit), fractionDigits.allSatisfy(isDigit) else { throw .notANumber }
        while let last = fractionDigits.last, last == UInt8(ascii: "0") { fractionDigits = fractionDigits.dropLast() }
        guard fractionDigits.count <= fractionalDigits else { throw .tooManyFractionalDigits(allowed: fractionalDigits) }
        var value: Int128 = 0
        // 10^38 is past Int128; anything with more than 30 integer digits is out of any range we keep.
        let significantInteger = integerDigits.drop(while: { $0 == UInt8(ascii: "0") })
        guard significantInteger.count + fractionalDigits <= 36 else { throw .outOfRange }
        for digit in significantInteger { value = value * 10 + Int128(digit - UInt8(ascii: "0")) }
        var scaled = 0
        for digit in fractionDigits { value = value * 10 + Int128(digit - UInt8(ascii: "0")); scaled += 1 }
        while scaled < fractionalDigits { value *= 10; scaled += 1 }
        if negative && value != 0 {
            guard allowNegative else { throw .negative }
            value = -value
        }
        return value
    }

    /// Formats a scaled integer with exactly `fractionalDigits` digits after the point ("0.003500").
    public static func format(_ units: Int128, fractionalDigits: Int) -> String {
        let negative = units < 0
        let magnitude = units.magnitude
        var digits = String(magnitude)
        if fractionalDigits > 0 {
            if digits.count <= fractionalDigits {
                digits = String(repeating: "0", count: fractionalDigits - digits.count + 1) + digits
            }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -fractionalDigits))
        }
        return negative ? "-" + digits : digits
    }

    /// Formats with at least `minimumFractionalDigits` and trailing zeros trimmed beyond them ("0.0000125", "49").
    public static func formatTrimmed(_ units: Int128, fractionalDigits: Int, minimumFractionalDigits: Int = 0) -> String {
        var text = format(units, fractionalDigits: fractionalDigits)
        guard fractionalDigits > 0 else { return text }
        var removable = fractionalDigits - minimumFractionalDigits
        while removable > 0, text.last == "0" { text.removeLast(); removable -= 1 }
        if text.last == "." { text.removeLast() }
        return text
    }
}

extension DecimalText.Failure: CustomStringConvertible {
    public var description: String {
        switch self {
        case .empty: "the value is empty"
        case .exponentNotation: "exponent notation is not accepted; write the number out in plain digits (1e3 -> 1000)"
        case .notANumber: "not a plain decimal number"
        case .negative: "the value must not be negative"
        case .tooManyFractionalDigits(let allowed): "at most \(allowed) fractional digits are allowed"
        case .outOfRange: "the number is too large"
        }
    }
}
