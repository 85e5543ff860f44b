/// The three parties every charge line is shared between.
public enum Party: Int, Sendable, CaseIterable, CustomStringConvertible {
    case creator = 0, platform, processing
    public var description: String {
        switch self {
        case .creator: "creator"
        case .platform: "platform"
        case .processing: "processing"
        }
    }
}

/// A revenue split: the creator's, platform's and processing shares, adding up to exactly 100%.
public struct SplitRule: Sendable, Hashable {
    public var creator: Percent
    public var platform: Percent
    public var processing: Percent

    /// nil unless the three shares add up to exactly 100%.
    public init?(creator: Percent, platform: Percent, processing: Percent) {
        guard creator.partsPerMillion + platform.partsPerMillion + processing.partsPerMillion == Percent.partsPerWhole else { return nil }
        self.creator = creator
        self.platform = platform
        self.processing = processing
    }

    /// Splits `amount` exactly (plans.md, "Splits"):
    /// 1. each share is `amount * percent` truncated toward zero to micro-units;
    /// 2. the micro-units left over go one at a time to the parties in order of the largest
    ///    truncated-away fraction, ties in the order creator, platform, processing.
    /// Works for negative lines (SLA credits) by symmetry: the left-over micro-units are negative.
    /// The three shares always add up to `amount`. Allocation-free, no trap for any `Int64`.
    @inlinable
    public func allocate(_ amount: Money) -> SplitShares {
        // Lines under 9,000,000 currency units (all but absurd ones) are split in 64-bit arithmetic:
        // amount x 10^6 then fits Int64, and 64-bit division is several times cheaper than 128-bit.
        if amount.micros.magnitude <= 9_000_000_000_000 {
            let shares = Self.allocate(amount.micros, creator.partsPerMillion, platform.partsPerMillion, processing.partsPerMillion)
            return SplitShares(creator: Money(micros: shares.0), platform: Money(micros: shares.1), processing: Money(micros: shares.2))
        }
        let shares = Self.allocate(Int128(amount.micros), Int128(creator.partsPerMillion), Int128(platform.partsPerMillion), Int128(processing.partsPerMillion))
        // Each share's magnitude is at most |amount|, so it fits Int64.
        return SplitShares(creator: Money(micros: Int64(truncatingIfNeeded: shares.0)),
                           platform: Money(micros: Int64(truncatingIfNeeded: shares.1)),
                           processing: Money(micros: Int64(truncatingIfNeeded: shares.2)))
    }

    /// The allocation itself, for any fixed-width integer wide enough for `total * 10^6`.
    @inlinable
    static func allocate<Value: FixedWidthInteger & SignedInteger>(_ total: Value, _ creatorPPM: Value, _ platformPPM: Value, _ processingPPM: Value) -> (Value, Value, Value) {
        let whole = Value(Percent.partsPerWhole)
        let c = total * creatorPPM, p = total * platformPPM, r = total * processingPPM
        var shares = (c / whole, p / whole, r / whole)
        // Truncated-away fractions as magnitudes, in millionths of a micro-unit.
        let fractions = ((c - shares.0 * whole).magnitude, (p - shares.1 * whole).magnitude, (r - shares.2 * whole).magnitude)
        var leftover = total - shares.0 - shares.1 - shares.2
        guard leftover != 0 else { return shares }
        let step: Value = leftover < 0 ? -1 : 1
        // Order: largest fraction first; ties in the order creator, platform, processing.
        func fraction(_ index: Int) -> Value.Magnitude { index == 0 ? fractions.0 : (index == 1 ? fractions.1 : fractions.2) }
        func before(_ a: Int, _ b: Int) -> Bool { fraction(a) > fraction(b) || (fraction(a) == fraction(b) && a < b) }
        var order = (0, 1, 2)
        if before(order.1, order.0) { swap(&order.0, &order.1) }
        if before(order.2, order.1) { swap(&order.1, &order.2) }
        if before(order.1, order.0) { swap(&order.0, &order.1) }
        // At most two micro-units are ever left over (three truncations each lose less than one).
        var position = 0
        while leftover != 0 {
            let index = position == 0 ? order.0 : (position == 1 ? order.1 : order.2)
            switch index {
            case 0: shares.0 += step
            case 1: shares.1 += step
            default: shares.2 += step
            }
            leftover -= step
            position = (position + 1) % 3
        }
        return shares
    }
}

/// One line's three shares; `creator + platform + processing` is the line, to the micro-unit.
public struct SplitShares: Sendable, Hashable {
    public var creator: Money
    public var platform: Money
    public var processing: Money

    @inlinable public init(creator: Money, platform: Money, processing: Money) {
        self.creator = creator
        self.platform = platform
        self.processing = processing
    }

    public static let zero = SplitShares(creator: .zero, platform: .zero, processing: .zero)

    public subscript(party: Party) -> Money {
        switch party {
        case .creator: creator
        case .platform: platform
        case .processing: processing
        }
    }
}
