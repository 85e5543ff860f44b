import Foundation
import Tariff
import TariffSettlement
import TariffStripe

extension TariffService {
    // MARK: The Stripe webhook (signed, no key)

    /// `payment_intent.succeeded` credits the purchase its metadata names, once (the ledger's key),
    /// and only when amount, currency and customer are the purchase's; `payment_intent.payment_failed`
    /// marks a pending purchase failed. Events of another account or mode, and other types, are
    /// answered 200 and change nothing. A bad signature is 400 and changes nothing.
    func stripeWebhook(_ request: ServiceRequest) async throws -> ServiceResponse {
        let bytes = try await request.readBody()
        guard let webhook else { throw APIError(400, "invalid_signature", "this server has no webhook secret (STRIPE_WEBHOOK_SECRET)") }
        guard let signature = request.header("stripe-signature") else { throw APIError(400, "invalid_signature", "no Stripe-Signature header") }
        do { _ = try webhook.verify(payload: Data(bytes), signatureHeader: signature, now: SystemClock().now()) } catch let error as SettlementError {
            throw APIError(400, error.code == .invalidSignature ? "invalid_signature" : "invalid_input", error.message)
        }
        let ignored = ServiceResponse.json(200, .object([("received", .bool(true)), ("applied", .bool(false))]))
        guard let event = try? JSONValue.parse(bytes), case .object(let fields) = event else { return ignored }
        let top = Dictionary(fields, uniquingKeysWith: { first, _ in first })
        // Another account's event (a connected account's), or the other mode's: not ours to apply.
        if case .string(let account)? = top["account"], account != configuration.stripeAccount { return ignored }
        if case .bool(let live)? = top["livemode"], live != configuration.livemode { return ignored }
        if case .string("transfer.reversed")? = top["type"] { return try await transferReversed(top, ignored: ignored) }
        if case .string("charge.dispute.closed")? = top["type"] { return try await disputeClosed(top, ignored: ignored) }
        guard case .string(let type)? = top["type"], type == "payment_intent.succeeded" || type == "payment_intent.payment_failed",
              case .object(let data)? = top["data"], case .object(let objectFields)? = Dictionary(data, uniquingKeysWith: { a, _ in a })["object"] else {
            return ignored
        }
        let intent = Dictionary(objectFields, uniquingKeysWith: { a, _ in a })
        guard case .object(let metadataFields)? = intent["metadata"] else { return ignored }
        let metadata = Dictionary(metadataFields, uniquingKeysWith: { a, _ in a })
        guard case .string(let ledgerKey)? = metadata["tariff_purchase_key"], case .string(let consumer)? = metadata["tariff_consumer"],
              let stored = try await configuration.store.answer(key: "purchase:" + ledgerKey), stored.status == 202 else {
            return ignored // not a pending purchase of this service
        }
        let recorded = Self.fingerprintFields(stored.fingerprint)
        guard recorded["consumer"] == consumer, let micros = recorded["amount"].flatMap(Int64.init), let customer = recorded["customer"] else { return ignored }
        let settlement = settlement
        // The ledger's own record of the purchase (written pending before the charge), when there is one.
        let record = try await settlement.backend.purchaseRecord(key: ledgerKey)
        if type == "payment_intent.payment_failed" {
            if record?.state == .pending { _ = try await settlement.failPurchase(key: ledgerKey) }
            _ = try await configuration.store.keepAnswer(StoredAnswer(key: "purchase-state:" + ledgerKey, fingerprint: "", status: 200, body: "failed"))
            return .json(200, .object([("received", .bool(true)), ("applied", .bool(true))]))
        }
        // Only the purchase's own amount, currency and customer are credited.
        guard case .string(let currencyCode)? = intent["currency"], currencyCode.uppercased() == settlement.currency.code,
              case .string(let intentCustomer)? = intent["customer"], intentCustomer == customer,
              case .number(let amountText)? = intent["amount_received"] ?? intent["amount"], let minor = Int64(amountText),
              let received = try? StripeAmount.money(minorUnits: minor, settlement.currency), received.micros == micros else {
            configuration.logger.warning("stripe webhook: a payment that does not match its purchase was not credited")
            return ignored
        }
        if record != nil, case .string(let reference)? = intent["id"] {
            // Checks the reference stored when Stripe first answered, credits once, marks it succeeded.
            do { try await settlement.confirmPurchase(key: ledgerKey, reference: reference, amount: received, payer: customer) } catch let error as SettlementError
                where error.code == .railRejected {
                configuration.logger.warning("stripe webhook: a payment that is not its purchase's was not credited")
                return ignored
            }
        } else {
            _ = try await settlement.purchase(consumer: consumer, amount: received, idempotencyKey: ledgerKey)
        }
        _ = try await configuration.store.keepAnswer(StoredAnswer(key: "purchase-state:" + ledgerKey, fingerprint: "", status: 200, body: "succeeded"))
        return .json(200, .object([("received", .bool(true)), ("applied", .bool(true))]))
    }

    /// `transfer.reversed` of a payout this ledger made (its metadata names the payout key): the
    /// reversed amount goes back to the creator's earnings and the creator is held (settlement.md).
    /// A transfer the ledger does not know is answered 200 and changes nothing.
    func transferReversed(_ top: [String: JSONValue], ignored: ServiceResponse) async throws -> ServiceResponse {
        guard case .object(let data)? = top["data"], case .object(let objectFields)? = Dictionary(data, uniquingKeysWith: { a, _ in a })["object"] else {
            return ignored
        }
        let transfer = Dictionary(objectFields, uniquingKeysWith: { a, _ in a })
        guard case .string(let id)? = transfer["id"], case .object(let metadataFields)? = transfer["metadata"],
              case .string(let key)? = Dictionary(metadataFields, uniquingKeysWith: { a, _ in a })[StripeRail.payoutKeyMetadata],
              case .string(let currency)? = transfer["currency"], currency.uppercased() == settlement.currency.code,
              case .number(let reversedText)? = transfer["amount_reversed"] ?? transfer["amount"], let minor = Int64(reversedText),
              let reversed = try? StripeAmount.money(minorUnits: minor, settlement.currency) else {
            return ignored
        }
        do {
            _ = try await settlement.reversePayout(key: key, reversedTotal: reversed, transfer: id)
        } catch let error as SettlementError where error.code == .invalidInput || error.code == .invalidKey || error.code == .invalidAmount {
            configuration.logger.warning("stripe webhook: a reversed transfer of no payout of this ledger was ignored")
            return ignored
        }
        return .json(200, .object([("received", .bool(true)), ("applied", .bool(true))]))
    }

    /// `charge.dispute.closed`: a dispute `lost` takes its amount back from the purchase its
    /// PaymentIntent paid (settlement.md, "Disputes"), once per dispute id; `won` (or any other
    /// status) changes nothing. A dispute of a payment no purchase made, or in another currency, is
    /// ignored; one the ledger refuses (beyond what is left of the purchase) is logged and ignored,
    /// so Stripe does not send it again for days (a reconciliation against Stripe's disputes is
    /// still to come: issue 14's `tariff ledger reconcile`).
    func disputeClosed(_ top: [String: JSONValue], ignored: ServiceResponse) async throws -> ServiceResponse {
        guard case .object(let data)? = top["data"], case .object(let objectFields)? = Dictionary(data, uniquingKeysWith: { a, _ in a })["object"] else {
            return ignored
        }
        let dispute = Dictionary(objectFields, uniquingKeysWith: { a, _ in a })
        guard case .string("lost")? = dispute["status"] else { return ignored }
        let settlement = settlement
        guard case .string(let id)? = dispute["id"], case .string(let payment)? = dispute["payment_intent"],
              case .string(let currencyCode)? = dispute["currency"], currencyCode.uppercased() == settlement.currency.code,
              case .number(let amountText)? = dispute["amount"], let minor = Int64(amountText),
              let amount = try? StripeAmount.money(minorUnits: minor, settlement.currency) else { return ignored }
        do {
            try await settlement.recordLostDispute(dispute: id, payment: payment, amount: amount)
        } catch let error as SettlementError where error.code != .storage {
            configuration.logger.warning("stripe webhook: a lost dispute was not recorded", metadata: ["code": .string(error.code.rawValue)])
            return ignored
        }
        return .json(200, .object([("received", .bool(true)), ("applied", .bool(true))]))
    }

    static func fingerprintFields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for part in text.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        return fields
    }
}
