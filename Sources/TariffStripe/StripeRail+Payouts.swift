import Foundation
import Tariff
import TariffSettlement

// Weekly creator payouts: Connect transfers.

extension StripeRail: PaymentRail {
    struct Transfer: Decodable { var id: String }

    /// The metadata field naming the payout a transfer pays (`payout:CREATOR:WEEK`).
    public static let payoutKeyMetadata = "tariff_payout_key"

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
        form.append("metadata[\(Self.payoutKeyMetadata)]", transfer.idempotencyKey)
        let data = try await client.post("/v1/transfers", form, idempotencyKey: Self.stripeKey("", transfer.idempotencyKey),
                                         what: "the transfer \(transfer.idempotencyKey)")
        guard let answer = try? JSONDecoder().decode(Transfer.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to the transfer \(transfer.idempotencyKey) has no transfer id")
        }
        return answer.id
    }

    /// One page of `GET /v1/transfers`, as far as the look-up reads it.
    struct TransferList: Decodable {
        struct Item: Decodable {
            var id: String
            var amount: Int64
            var currency: String
            var destination: String?
            var metadata: [String: String]?
        }
        var data: [Item]
        var has_more: Bool
    }

    /// The most pages read for one look-up (100 transfers each): a week's group holds one transfer
    /// per creator, so 100 pages is 10,000 creators; past it the look-up gives up loudly.
    static let maximumTransferPages = 100

    /// Looks for a transfer already made for this payout: the transfers of the week's
    /// `transfer_group`, matched by the payout key in their `metadata` (Stripe forgets idempotency
    /// keys after 24 h, metadata it keeps). A match of another amount, currency or destination is
    /// not adopted: it is refused loudly (`rail_rejected`), for a person to look at.
    /// - throws: the client's errors; `rail_rejected` for a mismatch; `rail_unavailable` for an unreadable list.
    public func findSent(_ transfer: PayoutTransfer) async throws -> String? {
        let minor = try StripeAmount.minorUnits(transfer.amount, transfer.currency)
        var after: String?
        for _ in 0..<Self.maximumTransferPages {
            var query = FormBody()
            query.append("transfer_group", transfer.transferGroup)
            query.append("limit", 100)
            if let after { query.append("starting_after", after) }
            let data = try await client.get("/v1/transfers", query, what: "the transfers of the group \(transfer.transferGroup)")
            guard let page = try? JSONDecoder().decode(TransferList.self, from: data) else {
                throw SettlementError(.railUnavailable, "Stripe's list of the transfers of the group \(transfer.transferGroup) is unreadable")
            }
            if let found = page.data.first(where: { $0.metadata?[Self.payoutKeyMetadata] == transfer.idempotencyKey }) {
                guard found.amount == minor, found.currency.lowercased() == transfer.currency.code.lowercased(), found.destination == transfer.destination else {
                    throw SettlementError(.railRejected, "the transfer \(found.id) carries the key \(transfer.idempotencyKey) but moves \(found.amount) "
                                          + "\(found.currency) to \(found.destination ?? "nobody"), not \(minor) to \(transfer.destination): not adopted")
                }
                return found.id
            }
            guard page.has_more, let last = page.data.last?.id else { return nil }
            after = last
        }
        throw SettlementError(.railUnavailable, "the transfer group \(transfer.transferGroup) holds more than \(Self.maximumTransferPages * 100) transfers")
    }
}
