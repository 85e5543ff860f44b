import Foundation
import Tariff
import TariffSettlement
import TariffStripe

extension TariffService {
    // MARK: Refunds (admin, Idempotency-Key)

    /// `POST /v1/refunds` `{"purchase","amount","consumer"?}`: settlement.md's refund through the
    /// server's rail. `purchase` is the purchase's ledger key; with `consumer`, it is the
    /// `Idempotency-Key` that consumer's `POST /v1/purchases` was sent with. 201
    /// `{"refund":{"key","purchase","consumer","amount","status","reference"},"balance":{...}}`; a
    /// repeat under the same key answers the first answer; another body under it is 409.
    func refund(_ request: ServiceRequest) async throws -> ServiceResponse {
        guard let key = request.header("idempotency-key") else { throw APIError.invalid("a refund needs an Idempotency-Key header") }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw APIError(400, "invalid_key", "an Idempotency-Key is 1 to 255 printable ASCII characters")
        }
        let body = try await body(request, allowed: ["purchase", "amount", "consumer"])
        guard let named = try body.id("purchase") else { throw APIError.invalid("'purchase' is required") }
        guard let amount = try body.amount("amount") else { throw APIError(400, "invalid_amount", "'amount' is required") }
        let purchaseKey = try body.id("consumer").map { Self.ledgerPurchaseKey(consumer: $0, key: named) } ?? named
        let answerKey = "refund:" + key
        let fingerprint = "purchase=\(purchaseKey);amount=\(amount.micros)"
        if let stored = try await configuration.store.answer(key: answerKey) {
            guard stored.fingerprint == fingerprint else { throw APIError(409, "idempotency_conflict", "this Idempotency-Key was used for another refund") }
            return ServiceResponse(status: stored.status, headers: [("Idempotent-Replayed", "true")], body: stored.body, contentType: "application/json")
        }
        let settlement = settlement
        let record = try await configuration.rail.refund(purchase: purchaseKey, amount: amount, key: key, on: settlement)
        let balance = try await currentBalance(record.consumer, own: true)
        let answerBody = JSON.object([
            ("refund", .object([("key", .string(key)), ("purchase", .string(named)), ("consumer", .string(record.consumer)),
                                ("amount", .string(record.amount.description)), ("status", .string(record.state.description)),
                                ("reference", .optional(record.reference))])),
            ("balance", balanceJSON(balance)),
        ])
        let kept = try await configuration.store.keepAnswer(StoredAnswer(key: answerKey, fingerprint: fingerprint, status: 201, body: answerBody.rendered))
        let replayed = kept.body != answerBody.rendered
        return ServiceResponse(status: kept.status, headers: replayed ? [("Idempotent-Replayed", "true")] : [], body: kept.body, contentType: "application/json")
    }
}
