import Foundation
import Tariff
import TariffSettlement

/// A Connect transfer as a `transfer.*` event carries it, as far as the ledger reads it.
public struct StripeTransferObject: Sendable, Decodable {
    public var id: String
    public var object: String?
    public var amount: Int64
    /// What was reversed so far (cumulative; Stripe may reverse a transfer in parts).
    public var amount_reversed: Int64?
    public var currency: String
    public var metadata: [String: String]?
}

extension StripeWebhook {
    /// Applies a `transfer.reversed` of a payout the rail made (its metadata names the payout key):
    /// the reversed amount goes back to the creator's earnings by a compensating entry, once
    /// however often the event is delivered, and the creator is held until an admin releases it
    /// (`tariff ledger payouts release --creator ID`). Other events, and transfers made outside
    /// Tariff, are ignored (nil).
    /// - throws: `invalid_input` (another currency, or a payout the ledger does not hold), what `Settlement.reversePayout` throws.
    public func applyTransferReversal(_ event: StripeEvent, to settlement: Settlement) async throws -> PayoutRecord? {
        guard event.type == "transfer.reversed", let transfer = event.data.transfer, transfer.object == nil || transfer.object == "transfer",
              let key = transfer.metadata?[StripeRail.payoutKeyMetadata] else { return nil }
        guard transfer.currency.uppercased() == settlement.currency.code else {
            throw SettlementError(.invalidInput, "the transfer \(transfer.id) is in \(transfer.currency); this ledger keeps \(settlement.currency.code)")
        }
        let reversed = try StripeAmount.money(minorUnits: transfer.amount_reversed ?? transfer.amount, settlement.currency)
        return try await settlement.reversePayout(key: key, reversedTotal: reversed, transfer: transfer.id)
    }
}
