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
        let total = Int128(amount.micros)
        let whole = Int128(Percent.partsPerWhole)
        let c = total * Int128(creator.partsPerMillion)
        let p = total * Int128(platform.partsPerMillion)
        let r = total * Int128(processing.partsPerMillion)
        var creatorShare = c / whole
        var platformShare = p / whole
        var processingShare = r / whole
        // Truncated-away fractions, as magnitudes in parts of a micro-unit (0 ..< 1,000,000).
        let creatorFraction = (c - creatorShare * whole).magnitude
        let platformFraction = (p - platformShare * whole).magnitude
        let processingFraction = (r - processingShare * whole).magnitude
        var leftover = total - creatorShare - platformShare - processingShare
        let step: Int128 = leftover < 0 ? -1 : 1
        // At most two micro-units are ever left over (three truncations each lose < 1).
        // Order: largest fraction first; on ties creator, platform, processing (stable by index).
        var order = (0, 1, 2)
        let fractions = (creatorFraction, platformFraction, processingFraction)
        func fraction(_ index: Int) -> UInt128 { index == 0 ? fractions.0 : (index == 1 ? fractions.1 : fractions.2) }
        func before(_ a: Int, _ b: Int) -> Bool { fraction(a) > fraction(b) || (fraction(a) == fraction(b) && a < b) }
        if before(order.1, order.0) { swap(&order.0, &order.1) }
        if before(order.2, order.1) { swap(&order.1, &order.2) }
        if before(order.1, order.0) { swap(&order.0, &order.1) }
        var position = 0
        while leftover != 0 {
            let index = position == 0 ? order.0 : (position == 1 ? order.1 : order.2)
            switch index {
            case 0: creatorShare += step
            case 1: platformShare += step
            default: processingShare += step
            }
            leftover -= step
            position = (position + 1) % 3
        }
        // Each share's magnitude is at most |amount|, so it fits Int64.
        return SplitShares(
            creator: Money(micros: Int64(truncatingIfNeeded: creatorShare)),
            platform: Money(micros: Int64(truncatingIfNeeded: platformShare)),
            processing: Money(micros: Int64(truncatingIfNeeded: processingShare))
        )
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
