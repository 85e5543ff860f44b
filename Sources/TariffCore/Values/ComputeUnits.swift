/// Compute units, exact to 10^-3 (milli-CU): the metered size of an execution.
public struct ComputeUnits: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let fractionalDigits = 3
    public static let zero = ComputeUnits(millis: 0)
    /// Allowances, tier bounds and an execution's units are capped at 10^12 CU, so that
    /// `cu * price` stays far inside `Int128`.
    public static let maximumWholeUnits: Int64 = 1_000_000_000_000
    public static let maximum = ComputeUnits(millis: maximumWholeUnits * 1_000)

    public var millis: Int64

    @inlinable public init(millis: Int64) { self.millis = millis }

    public init(parsing text: Substring) throws(DecimalText.Failure) {
        let value = try DecimalText.parse(text, fractionalDigits: ComputeUnits.fractionalDigits)
        guard value <= Int128(ComputeUnits.maximum.millis) else { throw .outOfRange }
        millis = Int64(value)
    }

    /// "2.700": three fractional digits, as in quotes.
    public var description: String { DecimalText.format(Int128(millis), fractionalDigits: 3) }

    public static func < (lhs: ComputeUnits, rhs: ComputeUnits) -> Bool { lhs.millis < rhs.millis }

    /// Period usage grows without a trap: past the maximum every tier bound is behind it anyway.
    @inlinable public func saturatingAdding(_ other: ComputeUnits) -> ComputeUnits {
        let (sum, overflow) = millis.addingReportingOverflow(other.millis)
        return ComputeUnits(millis: overflow ? Int64.max : sum)
    }
}

/// A metering weight: compute units per unit of a meter, exact to 10^-9.
public struct MeterWeight: Sendable, Hashable, CustomStringConvertible {
    public static let fractionalDigits = 9
    public var nanos: Int64
    public init(nanos: Int64) { self.nanos = nanos }
    public init(parsing text: Substring) throws(DecimalText.Failure) {
        let value = try DecimalText.parse(text, fractionalDigits: MeterWeight.fractionalDigits)
        // A weight above a million CU per meter unit is a typo, not a price.
        guard value <= 1_000_000 * 1_000_000_000 else { throw .outOfRange }
        nanos = Int64(value)
    }
    public var description: String { DecimalText.formatTrimmed(Int128(nanos), fractionalDigits: 9) }
}

/// A meter reading of one execution (CPU ms, MB-seconds, KB, inference calls), exact to 10^-6.
public struct MeterValue: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let fractionalDigits = 6
    /// Readings are capped at 10^12 units of their meter.
    public static let maximumWholeUnits: Int64 = 1_000_000_000_000
    public static let zero = MeterValue(micros: 0)
    public var micros: Int64
    @inlinable public init(micros: Int64) { self.micros = micros }
    public init(parsing text: Substring) throws(DecimalText.Failure) {
        let value = try DecimalText.parse(text, fractionalDigits: MeterValue.fractionalDigits)
        guard value <= Int128(MeterValue.maximumWholeUnits) * 1_000_000 else { throw .outOfRange }
        micros = Int64(value)
    }
    public var description: String { DecimalText.formatTrimmed(Int128(micros), fractionalDigits: 6) }
    public static func < (lhs: MeterValue, rhs: MeterValue) -> Bool { lhs.micros < rhs.micros }
}
