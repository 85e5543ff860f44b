import Foundation
import Tariff
import TariffSettlement

// Weekly creator payouts: Connect transfers.

extension StripeRail: PaymentRail {
    struct Transfer: Decodable { var id: String }

    /// `POST /v1/transfers`; returns the transfer's id (`tr_...`).
    /// - throws: `invalid_amount` (zero or finer than the currency allows), and the client's errors.
    public func send(_ transfer: PayoutTransfer) async throws -> String {
        let minor = try StripeAmount.minorUnits(transfer.amount, transfer.currency)
        guard minor > 0 else { throw SettlementError(.invalidAmount, "a transfer must be positive, not \(transfer.amount) \(transfer.currency.code)") }
        var form = FormBody()
        form.append("amount", minor)
        form.append("currency", transfer.currency.code.lowercased())
        form.append("destination", transfer.destination)
        form.append("transfer_group", transfer.transferGroup)
        form.append("metadata[tariff_payout_key]", transfer.idempotencyKey)
        let data = try await client.post("/v1/transfers", form, idempotencyKey: Self.stripeKey("", transfer.idempotencyKey),
                                         what: "the transfer \(transfer.idempotencyKey)")
        guard let answer = try? JSONDecoder().decode(Transfer.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to the transfer \(transfer.idempotencyKey) has no transfer id")
        }
        return answer.id
    }
}
