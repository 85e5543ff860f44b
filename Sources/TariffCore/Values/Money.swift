/// An amount on the ledger: an exact count of micro-units (10^-6) of a currency.
///
/// Every charge line that reaches a consumer, a creator or the platform is a `Money`. Lines are
/// computed exactly (see `ExactAmount`) and rounded half-to-even to micro-units once, at the end.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let fractionalDigits = 6
    public static let microsPerUnit: Int64 = 1_000_000
    public static let zero = Money(micros: 0)

    public var micros: Int64

    @inlinable public init(micros: Int64) { self.micros = micros }

    /// Parses a decimal text with at most 6 fractional digits ("21.40", "-0.000001").
    public init(parsing text: Substring, allowNegative: Bool = false) throws(DecimalText.Failure) {
        let units = try DecimalText.parse(text, fractionalDigits: Money.fractionalDigits, allowNegative: allowNegative)
        guard let micros = Int64(exactly: units) else { throw .outOfRange }
        self.micros = micros
    }

    /// "21.400000": always six fractional digits, as in the JSON outputs.
    public var description: String { DecimalText.format(Int128(micros), fractionalDigits: Money.fractionalDigits) }

    /// Whole cents, rounded down (payouts): "floor_to_cents".
    public var flooredToCents: Money {
        Money(micros: Int64(Int128(micros).divided(by: 10_000, rounding: .down) * 10_000))
    }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.micros < rhs.micros }

    /// Checked sum: nil on overflow, so a caller turns it into an error rather than a trap.
    @inlinable public func adding(_ other: Money) -> Money? {
        let (sum, overflow) = micros.addingReportingOverflow(other.micros)
        return overflow ? nil : Money(micros: sum)
    }

    @inlinable public func subtracting(_ other: Money) -> Money? {
        let (difference, overflow) = micros.subtractingReportingOverflow(other.micros)
        return overflow ? nil : Money(micros: difference)
    }

    public var exact: ExactAmount { ExactAmount(units: Int128(micros), scale: Money.fractionalDigits) }
}
