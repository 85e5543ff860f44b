import Foundation
import Tariff
import TariffSettlement

// Refunds of credit purchases: `POST /v1/refunds` of the purchase's PaymentIntent.

extension StripeRail: RefundRail {
    struct Refund: Decodable {
        var id: String
        var status: String?
        var amount: Int64?
        var metadata: [String: String]?
    }
    struct RefundList: Decodable {
        var data: [Refund]
        var has_more: Bool
    }

    static let refundKeyMetadata = "tariff_refund_key"

    /// `POST /v1/refunds` under `refund:KEY`; returns the refund's id (`re_...`).
    /// - throws: `rail_rejected` when Stripe refuses it or answers it failed, and the client's errors.
    public func refund(_ refund: CreditRefund) async throws -> String {
        var form = FormBody()
        form.append("payment_intent", refund.payment)
        form.append("amount", try StripeAmount.minorUnits(refund.amount, refund.currency))
        form.append("metadata[\(Self.refundKeyMetadata)]", refund.idempotencyKey)
        form.append("metadata[\(Self.purchaseKeyMetadata)]", refund.purchase)
        let what = "the refund \(refund.idempotencyKey) of \(refund.amount) \(refund.currency.code)"
        let data = try await client.post("/v1/refunds", form, idempotencyKey: Self.stripeKey("refund:", refund.idempotencyKey), what: what)
        guard let answer = try? JSONDecoder().decode(Refund.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not a refund")
        }
        return try Self.accepted(answer, what: what)
    }

    /// The refund made under this key: the PaymentIntent's refunds, matched by the key in `metadata`.
    public func existingRefund(for refund: CreditRefund) async throws -> String? {
        let what = "the look-up of refund \(refund.idempotencyKey)"
        var startingAfter: String?
        var read = 0
        while read < Self.lookUpLimit {
            var query = FormBody()
            query.append("payment_intent", refund.payment)
            query.append("limit", 100)
            if let startingAfter { query.append("starting_after", startingAfter) }
            let data = try await client.get("/v1/refunds", query, what: what)
            guard let page = try? JSONDecoder().decode(RefundList.self, from: data) else {
                throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not a list of refunds")
            }
            read += page.data.count
            if let found = page.data.first(where: { $0.metadata?[Self.refundKeyMetadata] == refund.idempotencyKey }) {
                return try Self.accepted(found, what: what)
            }
            guard page.has_more, let last = page.data.last else { return nil }
            startingAfter = last.id
        }
        return nil
    }

    /// A refund Stripe took (`pending`, `succeeded`, `requires_action`) is the refund's reference;
    /// one that failed or was canceled is refused.
    static func accepted(_ refund: Refund, what: String) throws -> String {
        if let status = refund.status, status == "failed" || status == "canceled" {
            throw SettlementError(.railRejected, "Stripe answered \(what) with refund \(SafeText.escaping(refund.id)) \(status)")
        }
        return refund.id
    }
}
