import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import TariffStripe

/// The Stripe webhook over a SQLite ledger, with events signed as Stripe signs them.
@Suite("The Stripe webhook")
struct WebhookTests {
    static let secret = "whsec_test_0123456789abcdef"

    static func event(id: String, type: String = "payment_intent.succeeded", account: String? = nil, livemode: Bool = false,
                      amount: Int64 = 5_000, currency: String = "usd", customer: String = "cus_stripe_a", key: String, consumer: String = "cus_a") -> Data {
        let accountField = account.map { ",\"account\":\"\($0)\"" } ?? ""
        return Data("""
            {"id":"\(id)","object":"event","type":"\(type)","livemode":\(livemode)\(accountField),"data":{"object":{"id":"pi_1","object":"payment_intent",\
            "status":"succeeded","amount":\(amount),"amount_received":\(amount),"currency":"\(currency)","customer":"\(customer)",\
            "metadata":{"tariff_consumer":"\(consumer)","tariff_purchase_key":"\(key)"}}}}
            """.utf8)
    }

    static func fileBytes(_ path: String) -> Data {
        let main = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        return main + ((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data())
    }

    @Test("a signed payment_intent.succeeded credits its pending purchase once; a bad signature, a replay, another account change nothing")
    func signedEvents() async throws {
        let path = temporaryPath("webhook.sqlite")
        let backend = try SQLiteBackend(path: path)
        let server = try await TestServer.start(backend: backend, webhookSecret: Self.secret, stripeAccount: "acct_platform")
        let webhook = try StripeWebhook(endpointSecret: Self.secret)
        // A purchase Stripe has not confirmed yet (3-D Secure): the answer the server kept for it, as its rail returned `pending`.
        let ledgerKey = TariffService.ledgerPurchaseKey(consumer: "cus_a", key: "order-9")
        let pending = #"{"purchase":{"consumer":"cus_a","amount":"50.000000","key":"order-9","status":"pending","payment_intent":"pi_1"},"balance":{"consumer":"cus_a","currency":"USD","available":"0.000000","reserved":"0.000000"}}"#
        _ = try await backend.keepAnswer(StoredAnswer(key: "purchase:" + ledgerKey, fingerprint: "amount=50000000;payment_method=pm_1;customer=cus_stripe_a;consumer=cus_a",
                                                      status: 202, body: pending))
        let now = SystemClock().now().nanosecondsSinceEpoch / 1_000_000_000
        func deliver(_ payload: Data, signature: String? = nil) async throws -> Answer {
            try await HTTP.send("POST", server.base + "/v1/webhooks/stripe", body: payload,
                                headers: ["Stripe-Signature": signature ?? webhook.signatureHeader(payload: payload, timestamp: now)])
        }
        let admin = server.adminKey

        // A bad signature: 400 and not a byte of the ledger changed.
        let genuine = Self.event(id: "evt_1", key: ledgerKey)
        let before = Self.fileBytes(path)
        let forged = try await deliver(genuine, signature: "t=\(now),v1=" + String(repeating: "ab", count: 32))
        #expect(forged.status == 400)
        #expect(forged.code == "invalid_signature")
        let stale = try await deliver(genuine, signature: webhook.signatureHeader(payload: genuine, timestamp: now - 301))
        #expect(stale.status == 400)
        #expect(try await deliver(genuine, signature: "garbage").status == 400)
        #expect(Self.fileBytes(path) == before)

        // Another account's event, the other mode's, a wrong amount or customer: 200, nothing credited.
        for ignored in [Self.event(id: "evt_2", account: "acct_other", key: ledgerKey), Self.event(id: "evt_3", livemode: true, key: ledgerKey),
                        Self.event(id: "evt_4", amount: 4_999, key: ledgerKey), Self.event(id: "evt_5", customer: "cus_stripe_b", key: ledgerKey),
                        Self.event(id: "evt_6", currency: "eur", key: ledgerKey), Self.event(id: "evt_7", type: "charge.refunded", key: ledgerKey)] {
            let answer = try await deliver(ignored)
            #expect(answer.status == 200)
            #expect(answer.json?["applied"] as? Bool == false)
        }
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).status == 404)

        // The genuine event credits 50.00 once; delivered again, nothing changes.
        let applied = try await deliver(genuine)
        #expect(applied.status == 200)
        #expect(applied.json?["applied"] as? Bool == true)
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).string("available") == "50.000000")
        _ = try await deliver(genuine)
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).string("available") == "50.000000")
        let verify = try await server.send("GET", "/v1/ledger/verify", key: admin)
        #expect(verify.json?["ok"] as? Bool == true)

        // The purchase replayed under its key answers its current state.
        let alice = try await server.key(.consumer, consumer: "cus_a")
        let replay = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"50.00","payment_method":"pm_1"}"#,
                                           headers: ["Idempotency-Key": "order-9"])
        #expect(replay.status == 202)
        #expect((replay.json?["purchase"] as? [String: Any])?["status"] as? String == "succeeded")
        await server.stop()
    }

    @Test("a signed transfer.reversed of a payout returns its amount to earnings and holds the creator; one of no payout is ignored")
    func transferReversed() async throws {
        let backend = try SQLiteBackend(path: temporaryPath("reversal.sqlite"))
        // acct_flat earns 2 x 5.60 = 11.20 in the week of 2026-11-02, paid through a rail that accepts it.
        let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: clock)
        _ = try await settlement.purchase(consumer: "cus_r", amount: TestLedger.money("50.00"), idempotencyKey: "buy-r")
        for execution in ["exe_r1", "exe_r2"] {
            try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_r", plan: TestLedger.catalog.plan(id: "flat", at: clock.now())!))
            try await settlement.settle(SettlementRequest(execution: execution, meters: MeterReadings(), endedAt: clock.now()))
        }
        clock.set(Timestamp(rfc3339: "2026-11-11T09:00:00Z")!)
        _ = try await settlement.executePayouts(week: Timestamp(date: "2026-11-02")!.civilDate, rail: RefusingRail())
        let server = try await TestServer.start(backend: backend, webhookSecret: Self.secret, stripeAccount: "acct_platform")
        let webhook = try StripeWebhook(endpointSecret: Self.secret)
        let now = SystemClock().now().nanosecondsSinceEpoch / 1_000_000_000
        func deliver(_ key: String) async throws -> Answer {
            let payload = Data("""
                {"id":"evt_r","object":"event","type":"transfer.reversed","livemode":false,"data":{"object":{"id":"tr_9","object":"transfer",                "amount":1120,"amount_reversed":1120,"currency":"usd","metadata":{"tariff_payout_key":"\(key)"}}}}
                """.utf8)
            return try await HTTP.send("POST", server.base + "/v1/webhooks/stripe", body: payload,
                                       headers: ["Stripe-Signature": webhook.signatureHeader(payload: payload, timestamp: now)])
        }
        let unknown = try await deliver("payout:acct_nobody:2026-11-02")
        #expect(unknown.status == 200 && unknown.json?["applied"] as? Bool == false)
        let applied = try await deliver("payout:acct_flat:2026-11-02")
        #expect(applied.status == 200 && applied.json?["applied"] as? Bool == true)
        #expect(try await deliver("payout:acct_flat:2026-11-02").status == 200)
        let snapshot = try await backend.snapshot()
        #expect(snapshot.entries.filter { $0.operation == "payout-reversed:payout:acct_flat:2026-11-02" }.map(\.amount) == [TestLedger.money("11.20")])
        #expect(try await backend.creatorHolds().map(\.creator) == ["acct_flat"])
    }
}

@Suite("The Stripe webhook: disputes and refunds")
struct WebhookDisputeTests {
    static func dispute(id: String, status: String, amount: Int64, payment: String, currency: String = "usd") -> Data {
        Data("""
            {"id":"evt_\(id)","object":"event","type":"charge.dispute.closed","livemode":false,"data":{"object":{"id":"\(id)","object":"dispute",\
            "amount":\(amount),"currency":"\(currency)","charge":"ch_1","payment_intent":"\(payment)","status":"\(status)"}}}
            """.utf8)
    }

    @Test("a lost dispute takes from available as far as it goes, the rest to dispute_losses, once; won changes nothing; POST /v1/refunds refunds and refuses")
    func disputesAndRefunds() async throws {
        let server = try await TestServer.start(webhookSecret: WebhookTests.secret, stripeAccount: "acct_platform")
        let webhook = try StripeWebhook(endpointSecret: WebhookTests.secret)
        let admin = server.adminKey
        let now = SystemClock().now().nanosecondsSinceEpoch / 1_000_000_000
        func deliver(_ payload: Data) async throws -> Answer {
            try await HTTP.send("POST", server.base + "/v1/webhooks/stripe", body: payload,
                                headers: ["Stripe-Signature": webhook.signatureHeader(payload: payload, timestamp: now)])
        }
        // cus_a buys 50.00 through the log rail; its payment is the purchase's reference.
        #expect(try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_a","amount":"50"}"#,
                                      headers: ["Idempotency-Key": "o1"]).status == 201)
        let ledgerKey = TariffService.ledgerPurchaseKey(consumer: "cus_a", key: "o1")
        let payment = try #require(try await server.service.settlement.backend.purchaseRecord(key: ledgerKey)?.reference)

        // A refund of 20.00 (admin): 30.00 left available; the same key answers the same; beyond what is left, refused.
        let refund = try await server.send("POST", "/v1/refunds", key: admin, json: #"{"purchase":"o1","consumer":"cus_a","amount":"20.00"}"#,
                                           headers: ["Idempotency-Key": "rf1"])
        #expect(refund.status == 201)
        #expect((refund.json?["refund"] as? [String: Any])?["status"] as? String == "succeeded")
        #expect((refund.json?["balance"] as? [String: Any])?["available"] as? String == "30.000000")
        let again = try await server.send("POST", "/v1/refunds", key: admin, json: #"{"purchase":"o1","consumer":"cus_a","amount":"20"}"#,
                                          headers: ["Idempotency-Key": "rf1"])
        #expect(again.status == 201 && again.body == refund.body && again.headers["idempotent-replayed"] == "true")
        let conflict = try await server.send("POST", "/v1/refunds", key: admin, json: #"{"purchase":"o1","consumer":"cus_a","amount":"21"}"#,
                                             headers: ["Idempotency-Key": "rf1"])
        #expect(conflict.status == 409 && conflict.code == "idempotency_conflict")
        let beyond = try await server.send("POST", "/v1/refunds", key: admin, json: #"{"purchase":"o1","consumer":"cus_a","amount":"30.01"}"#,
                                           headers: ["Idempotency-Key": "rf2"])
        #expect(beyond.status == 400 && beyond.code == "invalid_amount")
        let unknown = try await server.send("POST", "/v1/refunds", key: admin, json: #"{"purchase":"nope","amount":"1"}"#, headers: ["Idempotency-Key": "rf3"])
        #expect(unknown.status == 404 && unknown.code == "not_found")
        #expect(try await server.send("POST", "/v1/refunds", key: admin, json: #"{"purchase":"o1","amount":"1"}"#).status == 400)

        // A won dispute: nothing. A lost one of the 30.00 left: all of it from available (the loss beyond available is in the conformance suite).
        #expect(try await deliver(Self.dispute(id: "dp_won", status: "won", amount: 4_000, payment: payment)).json?["applied"] as? Bool == false)
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).string("available") == "30.000000")
        let lost = try await deliver(Self.dispute(id: "dp_1", status: "lost", amount: 3_000, payment: payment))
        #expect(lost.status == 200 && lost.json?["applied"] as? Bool == true)
        _ = try await deliver(Self.dispute(id: "dp_1", status: "lost", amount: 3_000, payment: payment))
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).string("available") == "0.000000")
        // Beyond the purchase (50 - 20 - 30 = 0 left): ignored, nothing changes; another payment's: ignored.
        #expect(try await deliver(Self.dispute(id: "dp_2", status: "lost", amount: 100, payment: payment)).json?["applied"] as? Bool == false)
        #expect(try await deliver(Self.dispute(id: "dp_3", status: "lost", amount: 100, payment: "pi_other")).json?["applied"] as? Bool == false)
        let snapshot = try await server.service.settlement.backend.snapshot()
        #expect(snapshot.reversals.map(\.key) == ["dispute:dp_1", "refund:rf1"])
        let verify = try await server.send("GET", "/v1/ledger/verify", key: admin)
        #expect(verify.json?["ok"] as? Bool == true)
        await server.stop()
    }
}
