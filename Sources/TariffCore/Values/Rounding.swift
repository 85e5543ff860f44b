/// How an exact value is brought to a coarser scale. Every rounding in Tariff names its rule.
public enum RoundingRule: Sendable, Hashable {
    /// Ties go to the even neighbour (banker's rounding): the ledger's rule for every charge line.
    case halfEven
    /// Toward zero: split shares before the remainder is distributed.
    case towardZero
    /// Toward positive infinity: compute units are rounded up to the metering precision.
    case up
    /// Toward negative infinity: payouts are floored to whole cents.
    case down
}

extension FixedWidthInteger where Self: SignedInteger {
    /// `self / divisor`, rounded by `rule`. `divisor` must be positive.
    ///
    /// One implementation for every width: the engine calls it on `Int64` when a value fits
    /// (a 64-bit division is several times cheaper) and on `Int128` otherwise.
    @inlinable
    public func divided(by divisor: Self, rounding rule: RoundingRule) -> Self {
        precondition(divisor > 0, "rounding divisor must be positive")
        let quotient = self / divisor          // truncates toward zero
        let remainder = self - quotient * divisor
        if remainder == 0 { return quotient }
        switch rule {
        case .towardZero:
            return quotient
        case .up:
            return remainder > 0 ? quotient + 1 : quotient
        case .down:
            return remainder < 0 ? quotient - 1 : quotient
        case .halfEven:
            let twiceRemainder = remainder.magnitude * 2
            let divisorMagnitude = divisor.magnitude
            let awayFromZero: Self = self < 0 ? -1 : 1
            if twiceRemainder > divisorMagnitude { return quotient + awayFromZero }
            if twiceRemainder < divisorMagnitude { return quotient }
            return quotient % 2 == 0 ? quotient : quotient + awayFromZero
        }
    }
}

/// Powers of ten as `Int128`, for rescaling between the fixed scales of Tariff's values.
public enum PowerOfTen {
    @inlinable
    public static func int128(_ exponent: Int) -> Int128 {
        var value: Int128 = 1
        var remaining = exponent
        while remaining > 0 { value &*= 10; remaining -= 1 }
        return value
    }
}
