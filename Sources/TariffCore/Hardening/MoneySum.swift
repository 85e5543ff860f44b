/// The one accumulator of money sums: a running total in Int128 micro-units, read back as `Money`
/// only through a check.
///
/// A single amount fits Int64 micro-units (9.2 * 10^12 currency units), but a sum of them need
/// not: 20 executions of a plan's largest fee (10^12) make 2 * 10^13. Int128 holds the sum of
/// 2^64 such amounts, so adding never wraps; turning the total into `Money` (to print it, store it
/// or pay it) is checked, and a total beyond Int64 is an `AmountOverflow` error naming what
/// overflowed, never a wrapped, saturated or clamped number.
public struct MoneySum: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var micros: Int128

    public init() { micros = 0 }
    public init(_ money: Money) { micros = Int128(money.micros) }
    public init(micros: Int128) { self.micros = micros }

    public mutating func add(_ money: Money) { micros += Int128(money.micros) }
    public mutating func subtract(_ money: Money) { micros -= Int128(money.micros) }
    public mutating func add(_ other: MoneySum) { micros += other.micros }

    public static func += (lhs: inout MoneySum, rhs: Money) { lhs.add(rhs) }
    public static func + (lhs: MoneySum, rhs: MoneySum) -> MoneySum { MoneySum(micros: lhs.micros + rhs.micros) }
    public static func - (lhs: MoneySum, rhs: MoneySum) -> MoneySum { MoneySum(micros: lhs.micros - rhs.micros) }
    public static func < (lhs: MoneySum, rhs: MoneySum) -> Bool { lhs.micros < rhs.micros }

    /// The total as `Money`; nil when it is beyond Int64 micro-units.
    public var money: Money? { Int64(exactly: micros).map(Money.init(micros:)) }

    /// The total as `Money`.
    /// - throws: `AmountOverflow` naming `what` when it is beyond Int64 micro-units.
    public func money(_ what: @autoclosure () -> String) throws(AmountOverflow) -> Money {
        guard let money else { throw AmountOverflow(what: what(), micros: micros) }
        return money
    }

    /// Six fractional digits, like `Money` (exact whatever the size).
    public var description: String { DecimalText.format(micros, fractionalDigits: Money.fractionalDigits) }
}

/// A sum of money beyond what the ledger and the reports keep (Int64 micro-units,
/// 9,223,372,036,854.775807 currency units): the command stops with this error rather than print
/// or pay a wrong amount.
public struct AmountOverflow: Error, Sendable, Hashable, CustomStringConvertible {
    public var what: String
    public var micros: Int128

    public init(what: String, micros: Int128) {
        self.what = what
        self.micros = micros
    }

    public var description: String {
        "\(what) would be \(DecimalText.format(micros, fractionalDigits: Money.fractionalDigits)), beyond the largest amount kept "
            + "(\(Money(micros: micros < 0 ? .min : .max))): stopped rather than report a wrong sum"
    }
}

extension MoneySum {
    /// Adds `amount` to a total kept as `Money` (a report's row): the total changes while the sum
    /// fits; the first sum that does not is recorded in `overflow` (and the total left as it was),
    /// so the caller stops with it instead of printing a wrapped or saturated amount.
    public static func add(_ amount: Money, to total: inout Money, overflow: inout AmountOverflow?, _ what: @autoclosure () -> String) {
        let (sum, overflowed) = total.micros.addingReportingOverflow(amount.micros)
        if !overflowed {
            total.micros = sum
        } else if overflow == nil {
            overflow = AmountOverflow(what: what(), micros: Int128(total.micros) + Int128(amount.micros))
        }
    }
}
