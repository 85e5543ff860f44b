import Foundation
import Tariff
import TariffSettlement

// Reconciliation reads: Stripe's list endpoints by creation time (`created[gte]`, `created[lt]`),
// page by page (`starting_after` while `has_more`).

/// An object of a Stripe list, as far as paging needs it.
protocol StripeListed: Decodable {
    var id: String { get }
}

extension StripeRail: ReconcilingRail {
    struct ListPage<Item: Decodable>: Decodable {
        var data: [Item]
        var has_more: Bool
    }
    struct ListedPaymentIntent: StripeListed {
        var id: String
        var status: String
        var amount: Int64
        var currency: String
        var metadata: [String: String]?
        var created: Int64
    }
    struct ListedRefund: StripeListed {
        var id: String
        var status: String?
        var amount: Int64
        var currency: String
        var metadata: [String: String]?
        var created: Int64
    }
    struct ListedDispute: StripeListed {
        var id: String
        var status: String
        var amount: Int64
        var currency: String
        /// Unexpanded: the disputed PaymentIntent's id.
        var payment_intent: String?
        var created: Int64
    }
    struct ListedTransfer: StripeListed {
        var id: String
        var amount: Int64
        var amount_reversed: Int64?
        var currency: String
        var metadata: [String: String]?
        var created: Int64
    }

    /// The most objects of one kind read for one reconciliation (1,000 pages of 100): past it the
    /// run stops loudly and asks for a shorter range, rather than reading without end.
    public static let maximumListedObjects = 100_000

    /// Succeeded PaymentIntents, refunds not failed or canceled, lost disputes and transfers (net
    /// of `amount_reversed`) created in the range, with the Tariff keys of their `metadata`.
    /// - throws: the client's errors; `rail_unavailable` for an unreadable page or too many objects.
    public func movements(from: Timestamp, to: Timestamp, disputesFrom: Timestamp) async throws -> [RailMovement] {
        let first = Self.seconds(from, roundingUp: false), last = Self.seconds(to, roundingUp: true)
        var movements: [RailMovement] = []
        for intent in try await list("/v1/payment_intents", ListedPaymentIntent.self, from: first, to: last, what: "PaymentIntents")
        where intent.status == "succeeded" {
            movements.append(RailMovement(kind: .purchase, id: intent.id, key: intent.metadata?[Self.purchaseKeyMetadata],
                                          amount: try Self.money(intent.amount, intent.currency, intent.id), currency: intent.currency.lowercased(),
                                          at: Self.instant(intent.created)))
        }
        for refund in try await list("/v1/refunds", ListedRefund.self, from: first, to: last, what: "refunds")
        where refund.status != "failed" && refund.status != "canceled" {
            movements.append(RailMovement(kind: .refund, id: refund.id, key: refund.metadata?[Self.refundKeyMetadata],
                                          amount: try Self.money(refund.amount, refund.currency, refund.id), currency: refund.currency.lowercased(),
                                          at: Self.instant(refund.created)))
        }
        let disputesFirst = Self.seconds(disputesFrom, roundingUp: false)
        for dispute in try await list("/v1/disputes", ListedDispute.self, from: disputesFirst, to: last, what: "disputes") where dispute.status == "lost" {
            movements.append(RailMovement(kind: .dispute, id: dispute.id, key: nil, payment: dispute.payment_intent,
                                          amount: try Self.money(dispute.amount, dispute.currency, dispute.id), currency: dispute.currency.lowercased(),
                                          at: Self.instant(dispute.created)))
        }
        for transfer in try await list("/v1/transfers", ListedTransfer.self, from: first, to: last, what: "transfers") {
            let reversed = transfer.amount_reversed ?? 0
            guard reversed >= 0, reversed <= transfer.amount else {
                throw SettlementError(.railUnavailable, "Stripe lists the transfer \(SafeText.escaping(transfer.id)) of \(transfer.amount) with \(reversed) reversed")
            }
            movements.append(RailMovement(kind: .payout, id: transfer.id, key: transfer.metadata?[Self.payoutKeyMetadata],
                                          amount: try Self.money(transfer.amount - reversed, transfer.currency, transfer.id),
                                          currency: transfer.currency.lowercased(), at: Self.instant(transfer.created)))
        }
        return movements
    }

    /// Every object of a list endpoint created in `[from, to)` (Unix seconds), newest first as Stripe lists them.
    func list<Item: StripeListed>(_ path: String, _ item: Item.Type, from: Int64, to: Int64, what: String) async throws -> [Item] {
        let description = "the list of \(what) created from \(from) to \(to)"
        var items: [Item] = []
        var startingAfter: String?
        while true {
            var query = FormBody()
            query.append("created[gte]", from)
            query.append("created[lt]", to)
            query.append("limit", 100)
            if let startingAfter { query.append("starting_after", startingAfter) }
            let data = try await client.get(path, query, what: description)
            guard let page = try? JSONDecoder().decode(ListPage<Item>.self, from: data) else {
                throw SettlementError(.railUnavailable, "Stripe's answer to \(description) is not a list of \(what)")
            }
            items += page.data
            guard items.count <= Self.maximumListedObjects else {
                throw SettlementError(.railUnavailable, "Stripe holds more than \(Self.maximumListedObjects) \(what) around the range: reconcile a shorter range")
            }
            guard page.has_more, let last = page.data.last else { return items }
            startingAfter = last.id
        }
    }

    /// A Stripe amount in the ledger's units, in the object's own currency (an unknown currency's
    /// amount is read with two decimals; its currency differs from the ledger's, which is reported).
    static func money(_ minorUnits: Int64, _ code: String, _ id: String) throws -> Money {
        let currency = Currency(code: code.uppercased()) ?? Currency(code: "USD")
        guard let currency else { throw SettlementError(.railUnavailable, "no currency to read \(SafeText.escaping(id))'s amount") }
        do { return try StripeAmount.money(minorUnits: minorUnits, currency) } catch {
            throw SettlementError(.railUnavailable, "Stripe lists \(SafeText.escaping(id)) with an amount of \(minorUnits) \(SafeText.escaping(code)) the ledger cannot hold")
        }
    }

    static func seconds(_ instant: Timestamp, roundingUp: Bool) -> Int64 {
        let (quotient, remainder) = instant.nanosecondsSinceEpoch.quotientAndRemainder(dividingBy: 1_000_000_000)
        if roundingUp, remainder > 0 { return quotient + 1 }
        if !roundingUp, remainder < 0 { return quotient - 1 }
        return quotient
    }

    static func instant(_ seconds: Int64) -> Timestamp {
        let (nanoseconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return Timestamp(nanosecondsSinceEpoch: overflow ? (seconds < 0 ? Int64.min : Int64.max) : nanoseconds)
    }
}
