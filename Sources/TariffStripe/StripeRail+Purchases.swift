import Foundation
import Tariff
import TariffSettlement

// Credit purchases: PaymentIntents on the platform account.

/// A PaymentIntent as far as the rail reads it.
struct PaymentIntent: Decodable {
    struct PaymentError: Decodable {
        var code: String?
        var decline_code: String?
        var message: String?
    }
    var id: String
    var status: String
    var amount: Int64
    var amount_received: Int64?
    var currency: String
    /// The customer charged (`cus_...`); Stripe may expand it to an object, read as absent then.
    var customer: String?
    var metadata: [String: String]?
    var last_payment_error: PaymentError?
    /// For the consumer's page to finish a payment that needs them (3-D Secure).
    var client_secret: String?
    /// Unix seconds.
    var created: Int64?
}

extension StripeRail: PurchaseRail {
    /// Metadata the rail puts on each purchase's PaymentIntent, so the webhook can credit it.
    static let consumerMetadata = "tariff_consumer"
    static let purchaseKeyMetadata = "tariff_purchase_key"

    /// `POST /v1/payment_intents` with `confirm=true`, under `purchase:KEY`.
    /// - throws: `payment_declined` with Stripe's reason, and the client's errors.
    public func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome {
        var form = FormBody()
        form.append("amount", try StripeAmount.minorUnits(purchase.amount, purchase.currency))
        form.append("currency", purchase.currency.code.lowercased())
        form.append("customer", purchase.payer)
        form.append("payment_method", purchase.paymentMethod)
        // A card charged now, with no redirect: the only answers are succeeded, declined, or
        // requires_action (3-D Secure), which stays pending until the webhook.
        form.append("payment_method_types[]", "card")
        form.append("confirm", "true")
        if purchase.offSession { form.append("off_session", "true") }
        form.append("metadata[\(Self.consumerMetadata)]", purchase.consumer)
        form.append("metadata[\(Self.purchaseKeyMetadata)]", purchase.idempotencyKey)
        let what = "the payment of \(purchase.amount) \(purchase.currency.code) for \(purchase.consumer)"
        let data = try await client.post("/v1/payment_intents", form, idempotencyKey: Self.stripeKey("purchase:", purchase.idempotencyKey), what: what)
        guard let intent = try? JSONDecoder().decode(PaymentIntent.self, from: data) else {
            throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not a PaymentIntent")
        }
        try Self.check(intent, matches: purchase, what: what)
        return try Self.outcome(of: intent, what: what, key: client.configuration.secretKey)
    }

    /// `GET /v1/payment_methods/{id}`: the customer the payment method is attached to (nil when
    /// it is attached to none). service.md: a purchase's `payment_method` must belong to the
    /// consumer's recorded customer, checked before anything is recorded or charged.
    /// - throws: `invalid_input` for an id that is not Stripe's shape (it goes into the path);
    ///   `rail_rejected` when Stripe knows no such payment method; the client's errors.
    public func customer(ofPaymentMethod id: String) async throws -> String? {
        guard (1...255).contains(id.utf8.count), id.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0)
                                                                       || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw SettlementError(.invalidInput, "a payment method id is letters, digits and '_' (pm_...)")
        }
        struct PaymentMethod: Decodable {
            var id: String
            /// Unexpanded: the customer's id, or null.
            var customer: String?
        }
        let what = "the look-up of payment method \(id)"
        let data = try await client.get("/v1/payment_methods/\(id)", FormBody(), what: what)
        guard let method = try? JSONDecoder().decode(PaymentMethod.self, from: data), method.id == id else {
            throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not that payment method")
        }
        return method.customer
    }

    /// `GET /v1/customers/{id}`: the customer's default payment method
    /// (`invoice_settings.default_payment_method`), which an auto top-up charges off-session; nil
    /// when it has none.
    public func defaultPaymentMethod(ofCustomer id: String) async throws -> String? {
        guard (1...255).contains(id.utf8.count), id.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0)
                                                                       || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw SettlementError(.invalidInput, "a customer id is letters, digits and '_' (cus_...)")
        }
        struct Customer: Decodable {
            struct InvoiceSettings: Decodable { var default_payment_method: String? }
            var id: String
            var invoice_settings: InvoiceSettings?
        }
        let what = "the look-up of customer \(id)"
        let data = try await client.get("/v1/customers/\(id)", FormBody(), what: what)
        guard let customer = try? JSONDecoder().decode(Customer.self, from: data), customer.id == id else {
            throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not that customer")
        }
        return customer.invoice_settings?.default_payment_method
    }

    /// A page of `GET /v1/payment_intents`.
    struct PaymentIntentList: Decodable {
        var data: [PaymentIntent]
        var has_more: Bool
    }

    /// The most PaymentIntents read in one look-up (20 pages of 100): a limit on everything.
    static let lookUpLimit = 2_000

    /// Finds the PaymentIntent made for this purchase: the customer's PaymentIntents created since
    /// the purchase was recorded (less an hour for clock skew), matched by the purchase key in
    /// `metadata`. The list endpoint rather than search: search is eventually consistent (a
    /// PaymentIntent made just before a crash may not be found for a minute), a list is not.
    /// A PaymentIntent found for another amount, currency or customer is refused (`rail_rejected`);
    /// a declined one throws `payment_declined` as the charge would.
    public func existingPayment(for purchase: CreditPurchase, since: Timestamp) async throws -> CreditPaymentOutcome? {
        let what = "the look-up of purchase \(purchase.idempotencyKey)'s payment"
        let createdSince = since.nanosecondsSinceEpoch / 1_000_000_000 - 3_600
        var startingAfter: String?
        var read = 0
        var found: [PaymentIntent] = []
        while read < Self.lookUpLimit {
            var query = FormBody()
            query.append("customer", purchase.payer)
            query.append("created[gte]", createdSince)
            query.append("limit", 100)
            if let startingAfter { query.append("starting_after", startingAfter) }
            let data = try await client.get("/v1/payment_intents", query, what: what)
            guard let page = try? JSONDecoder().decode(PaymentIntentList.self, from: data) else {
                throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is not a list of PaymentIntents")
            }
            read += page.data.count
            found += page.data.filter { $0.metadata?[Self.purchaseKeyMetadata] == purchase.idempotencyKey }
            guard page.has_more, let last = page.data.last else { break }
            startingAfter = last.id
        }
        // A succeeded one first (Stripe lists newest first; a retry made with another key is impossible,
        // but should two exist, the paid one is the purchase's payment).
        guard let intent = found.first(where: { $0.status == "succeeded" }) ?? found.first else { return nil }
        try Self.check(intent, matches: purchase, what: what)
        return try Self.outcome(of: intent, what: what, key: client.configuration.secretKey)
    }

    /// settlement.md: a PaymentIntent is credited only when its amount, currency and customer are
    /// the purchase's. An answer that says `succeeded` for another amount (a negative one), another
    /// currency or another customer is not this purchase's payment, whatever its status: refused,
    /// nothing credited.
    /// - throws: `rail_rejected` naming what differs.
    static func check(_ intent: PaymentIntent, matches purchase: CreditPurchase, what: String) throws {
        var differences: [String] = []
        let expected = try StripeAmount.minorUnits(purchase.amount, purchase.currency)
        if intent.amount != expected { differences.append("amount \(intent.amount) instead of \(expected)") }
        if let received = intent.amount_received, intent.status == "succeeded", received != expected {
            differences.append("amount received \(received) instead of \(expected)")
        }
        if intent.currency.lowercased() != purchase.currency.code.lowercased() {
            differences.append("currency '\(SafeText.escaping(intent.currency))' instead of '\(purchase.currency.code.lowercased())'")
        }
        if intent.customer != purchase.payer {
            differences.append("customer '\(SafeText.escaping(intent.customer ?? "none"))' instead of '\(SafeText.escaping(purchase.payer))'")
        }
        guard differences.isEmpty else {
            throw SettlementError(.railRejected, "Stripe answered \(what) with PaymentIntent \(SafeText.escaping(intent.id)) of "
                                  + differences.joined(separator: ", ") + ": not this purchase's payment, nothing credited")
        }
    }

    static func outcome(of intent: PaymentIntent, what: String, key: StripeSecretKey) throws -> CreditPaymentOutcome {
        switch intent.status {
        case "succeeded":
            return .succeeded(reference: intent.id)
        case "processing", "requires_action", "requires_confirmation", "requires_capture":
            return .pending(reference: intent.id, clientSecret: intent.client_secret)
        default:
            // requires_payment_method after a confirm is a decline reported in the body, not as 402.
            let failure = StripeFailure(status: 402, type: "card_error", code: intent.last_payment_error?.code ?? intent.status,
                                        declineCode: intent.last_payment_error?.decline_code, message: intent.last_payment_error?.message)
            throw failure.settlementError(what: what, key: key)
        }
    }
}
