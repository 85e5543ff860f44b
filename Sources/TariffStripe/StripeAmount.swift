import Tariff
import TariffSettlement

/// Exact conversion between the ledger's micro-units and Stripe's integer amounts in the currency's
/// smallest unit (cents for USD, yen for JPY, fils for the three-decimal KWD). Integer arithmetic
/// only: an amount never passes through a binary float, where 0.29 * 100 is 28.999999999999996.
public enum StripeAmount {
    /// Micro-units per smallest unit: 10,000 for a two-decimal currency, 1,000,000 for JPY.
    static func microsPerMinorUnit(_ currency: Currency) -> Int64 {
        let digits = max(0, min(currency.minorUnitDigits, Money.fractionalDigits))
        var divisor: Int64 = 1
        for _ in 0..<(Money.fractionalDigits - digits) { divisor *= 10 }
        return divisor
    }

    /// The amount Stripe takes: `12.62` USD is `1262`, `500` JPY is `500`.
    /// - throws: `invalid_amount` for a negative amount, or one finer than the currency's smallest
    ///   unit (`0.5` JPY, `0.001` USD): never rounded silently.
    public static func minorUnits(_ amount: Money, _ currency: Currency) throws -> Int64 {
        guard amount.micros >= 0 else { throw SettlementError(.invalidAmount, "Stripe amounts are not negative: \(amount)") }
        let divisor = microsPerMinorUnit(currency)
        guard amount.micros % divisor == 0 else {
            throw SettlementError(.invalidAmount, "\(amount) \(currency.code) is finer than the currency's smallest unit")
        }
        return amount.micros / divisor
    }

    /// The ledger amount of a Stripe amount (a webhook's `amount_received`).
    /// - throws: `invalid_amount` when it is negative or beyond the ledger's 64-bit range.
    public static func money(minorUnits: Int64, _ currency: Currency) throws -> Money {
        guard minorUnits >= 0 else { throw SettlementError(.invalidAmount, "a Stripe amount cannot be negative: \(minorUnits)") }
        let (micros, overflow) = minorUnits.multipliedReportingOverflow(by: microsPerMinorUnit(currency))
        guard !overflow else { throw SettlementError(.invalidAmount, "\(minorUnits) \(currency.code) minor units exceed the ledger's range") }
        return Money(micros: micros)
    }
}
