/// An exact amount of money at a stated decimal scale: `units * 10^-scale`.
///
/// Prices carry up to 12 fractional digits, compute units 3 and percents 6 (as fractions), so a
/// product such as `cu * price * (1 - discount)` needs 21 digits after the point to stay exact.
/// `ExactAmount` keeps the scale with the number, multiplies in `Int128`, reports overflow instead
/// of trapping, and is rounded to a ledger `Money` exactly once, with the rule spelled out.
public struct ExactAmount: Sendable, Hashable, CustomStringConvertible {
    public var units: Int128
    public var scale: Int

    public static let zero = ExactAmount(units: 0, scale: 0)
    /// The largest scale Tariff ever builds (12 + 3 + 6); beyond it a value is out of range.
    public static let maximumScale = 24

    @inlinable public init(units: Int128, scale: Int) {
        self.units = units
        self.scale = scale
    }

    /// The amount with `scale` raised to `newScale` (exact); nil on overflow.
    @inlinable public func rescaled(to newScale: Int) -> ExactAmount? {
        if newScale == scale { return self }
        guard newScale > scale, newScale <= ExactAmount.maximumScale else { return nil }
        let (value, overflow) = units.multipliedReportingOverflow(by: PowerOfTen.int128(newScale - scale))
        return overflow ? nil : ExactAmount(units: value, scale: newScale)
    }

    @inlinable public func adding(_ other: ExactAmount) -> ExactAmount? {
        let target = max(scale, other.scale)
        guard let a = rescaled(to: target), let b = other.rescaled(to: target) else { return nil }
        let (sum, overflow) = a.units.addingReportingOverflow(b.units)
        return overflow ? nil : ExactAmount(units: sum, scale: target)
    }

    @inlinable public func subtracting(_ other: ExactAmount) -> ExactAmount? {
        adding(ExactAmount(units: -other.units, scale: other.scale))
    }

    /// Exact product with a scaled integer factor (`factorUnits * 10^-factorScale`); nil on overflow.
    @inlinable public func multiplied(byUnits factorUnits: Int128, scale factorScale: Int) -> ExactAmount? {
        let newScale = scale + factorScale
        guard newScale <= ExactAmount.maximumScale else { return nil }
        let (product, overflow) = units.multipliedReportingOverflow(by: factorUnits)
        return overflow ? nil : ExactAmount(units: product, scale: newScale)
    }

    /// Rounds to ledger micro-units by `rule`; nil if the result does not fit a `Money`.
    @inlinable public func roundedToMoney(_ rule: RoundingRule) -> Money? {
        let micros: Int128
        if scale <= Money.fractionalDigits {
            let (value, overflow) = units.multipliedReportingOverflow(by: PowerOfTen.int128(Money.fractionalDigits - scale))
            if overflow { return nil }
            micros = value
        } else {
            micros = units.divided(by: PowerOfTen.int128(scale - Money.fractionalDigits), rounding: rule)
        }
        guard let exact = Int64(exactly: micros) else { return nil }
        return Money(micros: exact)
    }

    /// -1, 0 or 1 comparison of the exact values (nil only if rescaling overflows).
    public func compare(_ other: ExactAmount) -> Int? {
        let target = max(scale, other.scale)
        guard let a = rescaled(to: target), let b = other.rescaled(to: target) else { return nil }
        return a.units < b.units ? -1 : (a.units > b.units ? 1 : 0)
    }

    /// The exact decimal as a plan author wrote it: every trailing zero trimmed ("0.0000125", "49", "0.5").
    public func description(trimmed: Bool) -> String {
        trimmed ? DecimalText.formatTrimmed(units, fractionalDigits: scale) : description
    }

    /// The exact decimal, trailing zeros trimmed but at least 6 fractional digits ("0.0000125", "49.000000").
    public var description: String {
        DecimalText.formatTrimmed(units, fractionalDigits: scale, minimumFractionalDigits: min(scale, Money.fractionalDigits))
    }
}

/// A money value written in a plan (a fee, a price per unit, a cap): exact, up to 12 fractional digits.
///
/// Stored as picos (10^-12 of the currency) in `Int128`, so `0.0000125` is exact; it becomes a
/// ledger `Money` only through an explicit rounding.
public struct PlanMoney: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let fractionalDigits = 12
    /// Plan amounts are capped at one trillion currency units, so every product the engine forms fits `Int128`.
    public static let maximumWholeUnits: Int128 = 1_000_000_000_000
    public var picos: Int128

    public init(picos: Int128) { self.picos = picos }

    public init(parsing text: Substring) throws(DecimalText.Failure) {
        let value = try DecimalText.parse(text, fractionalDigits: PlanMoney.fractionalDigits)
        guard value <= PlanMoney.maximumWholeUnits * PowerOfTen.int128(PlanMoney.fractionalDigits) else { throw .outOfRange }
        picos = value
    }

    public var exact: ExactAmount { ExactAmount(units: picos, scale: PlanMoney.fractionalDigits) }
    public var description: String { exact.description }
    public static func < (lhs: PlanMoney, rhs: PlanMoney) -> Bool { lhs.picos < rhs.picos }
}
