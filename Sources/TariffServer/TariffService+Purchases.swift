import Crypto
import Foundation
import Tariff
import TariffSettlement
import TariffStripe

extension TariffService {
    // MARK: Purchases (Idempotency-Key, scoped to the consumer)

    /// The ledger key of a consumer's purchase key: two consumers may use the same key, and the
    /// ledger's keys stay within 255 characters whatever the two are.
    static func ledgerPurchaseKey(consumer: String, key: String) -> String {
        "api:" + SHA256.hash(data: Data((consumer + "\u{1F}" + key).utf8)).map { APIKeys.hex($0) }.joined()
    }

    func purchase(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        guard let key = request.header("idempotency-key") else { throw APIError.invalid("a purchase needs an Idempotency-Key header") }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw APIError(400, "invalid_key", "an Idempotency-Key is 1 to 255 printable ASCII characters")
        }
        let body = try await body(request, allowed: ["consumer", "amount", "payment_method"])
        let consumer = try consumer(named: try body.id("consumer"), for: principal, required: true)!
        guard let amount = try body.amount("amount") else { throw APIError(400, "invalid_amount", "'amount' is required") }
        let paymentMethod = try body.id("payment_method")
        let ledgerKey = Self.ledgerPurchaseKey(consumer: consumer, key: key)
        // The parsed request: "100" and "100.00" are the same purchase.
        let fingerprint = "amount=\(amount.micros);payment_method=\(paymentMethod ?? "-")"
        let answerKey = "purchase:" + ledgerKey
        // The key is claimed in the ledger's answers table, so the same key in flight on this
        // server or another sharing the ledger waits for the first's answer (up to 10 s).
        let claim: AnswerClaim
        switch try await claimAnswer(answerKey) {
        case .claimed(let held): claim = held
        case .answered(let stored): return try await replay(stored, fingerprint: fingerprint, ledgerKey: ledgerKey)
        case .busy: throw APIError(409, "request_in_progress", "a purchase under this Idempotency-Key is still being answered; try again")
        }
        do {
            return try await purchase(consumer: consumer, amount: amount, paymentMethod: paymentMethod, key: key, ledgerKey: ledgerKey,
                                      fingerprint: fingerprint, answerKey: answerKey, claim: claim)
        } catch {
            // Only a successful answer is kept: a refused purchase may be sent again under its key.
            try? await configuration.store.abandonClaim(key: answerKey, claim: claim)
            throw error
        }
    }

    private func purchase(consumer: String, amount: Money, paymentMethod: String?, key: String, ledgerKey: String, fingerprint: String,
                          answerKey: String, claim: AnswerClaim) async throws -> ServiceResponse {
        let settings = try await configuration.store.consumerSettings(consumer)
        let payer: String
        if configuration.rail.isStripe {
            guard let customer = settings?.stripeCustomer else {
                throw APIError.invalid("consumer '\(consumer)' has no Stripe customer; record it with PUT /v1/consumers/{id}")
            }
            guard let paymentMethod else { throw APIError.invalid("a purchase through Stripe names a 'payment_method' of the consumer's customer") }
            // service.md: the payment method must be the consumer's customer's, checked before
            // anything is recorded (a card of another customer is never charged for this consumer).
            if case .stripe(let rail) = configuration.rail, try await rail.customer(ofPaymentMethod: paymentMethod) != customer {
                throw APIError.invalid("payment method '\(BodyObject.printable(paymentMethod))' does not belong to consumer '\(consumer)''s Stripe customer")
            }
            payer = customer
        } else {
            payer = settings?.stripeCustomer ?? consumer
        }
        let settlement = settlement
        let purchase = CreditPurchase(consumer: consumer, amount: amount, currency: settlement.currency, idempotencyKey: ledgerKey, payer: payer,
                                      paymentMethod: paymentMethod ?? "default")
        let result = try await configuration.rail.charge(purchase, on: settlement)
        let answer: StoredAnswer
        switch result.outcome {
        case .succeeded:
            guard let receipt = result.receipt else { throw APIError(503, "storage", "the purchase was paid but not recorded; send it again") }
            let balance = try await currentBalance(consumer, own: true)
            let body = JSON.object([
                ("purchase", .object([("consumer", .string(consumer)), ("amount", .string(receipt.amount.description)), ("key", .string(key)),
                                      ("status", .string("succeeded"))])),
                ("balance", balanceJSON(Balance(consumer: consumer, currency: settlement.currency, available: receipt.available, reserved: balance.reserved))),
            ])
            answer = StoredAnswer(key: answerKey, fingerprint: fingerprint, status: 201, body: body.rendered)
        case .pending(let reference, let clientSecret):
            let balance = try await currentBalance(consumer, own: true)
            // service.md: Stripe's client_secret, for the consumer to finish the payment (3-D Secure).
            var purchaseFields: [(String, JSON)] = [("consumer", .string(consumer)), ("amount", .string(amount.description)), ("key", .string(key)),
                                                    ("status", .string("pending")), ("payment_intent", .string(reference))]
            if let clientSecret { purchaseFields.append(("client_secret", .string(clientSecret))) }
            let body = JSON.object([
                ("purchase", .object(purchaseFields)),
                ("balance", balanceJSON(balance)),
            ])
            // The customer is kept with the pending answer: the webhook credits it only for that customer.
            answer = StoredAnswer(key: answerKey, fingerprint: fingerprint + ";customer=\(payer);consumer=\(consumer)", status: 202, body: body.rendered)
        }
        let kept = try await configuration.store.completeClaim(claim, with: answer)
        let replayed = kept.body != answer.body
        return ServiceResponse(status: kept.status, headers: replayed ? [("Idempotent-Replayed", "true")] : [], body: kept.body, contentType: "application/json")
    }

    /// A stored first answer, for a request with the same key: the same body, or a conflict.
    /// A purchase that was pending answers its current state (set by the webhook).
    func replay(_ stored: StoredAnswer, fingerprint: String, ledgerKey: String) async throws -> ServiceResponse {
        guard stored.fingerprint == fingerprint || stored.fingerprint.hasPrefix(fingerprint + ";") else {
            throw APIError(409, "idempotency_conflict", "this Idempotency-Key was used for another purchase")
        }
        var body = stored.body
        if stored.status == 202, let state = try await configuration.store.answer(key: "purchase-state:" + ledgerKey) {
            body = body.replacingOccurrences(of: "\"status\":\"pending\"", with: "\"status\":\"\(state.body)\"")
        }
        return ServiceResponse(status: stored.status, headers: [("Idempotent-Replayed", "true")], body: body, contentType: "application/json")
    }

    enum PurchaseClaim {
        case claimed(AnswerClaim)
        case answered(StoredAnswer)
        case busy
    }

    /// A claim older than this was left by a server that died mid-request: another may take it
    /// over (the rail's own idempotency, `purchase:KEY` at Stripe and the ledger's pending
    /// purchase, still makes the retry charge once). Longer than any bounded rail call.
    static let staleClaimNanoseconds: Int64 = 120_000_000_000

    /// Claims the key, waiting up to 10 s (wall clock) while another request, on any server of the
    /// ledger, holds it.
    private func claimAnswer(_ key: String) async throws -> PurchaseClaim {
        let deadline = ContinuousClock.now + .seconds(10)
        let token = UUID().uuidString
        while true {
            let claim = AnswerClaim(token: token, claimedAtNanoseconds: SystemClock().now().nanosecondsSinceEpoch)
            switch try await configuration.store.claimAnswer(key: key, claim: claim, staleAfterNanoseconds: Self.staleClaimNanoseconds) {
            case .claimed: return .claimed(claim)
            case .answered(let stored): return .answered(stored)
            case .busy:
                guard ContinuousClock.now < deadline else { return .busy }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}
