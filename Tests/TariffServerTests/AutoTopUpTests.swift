import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import Tariff
@testable import TariffCommands
@testable import TariffServer
import TariffSettlement
import TariffSQLite
import TariffStripe
import TariffStripeTesting

/// service.md, "Auto top-up": below `below`, one off-session purchase of `amount` under
/// `topup:CONSUMER:N` (N counts crossings), never two in flight; a decline is not retried until
/// the setting changes. Amounts computed by hand.
@Suite("Auto top-up")
struct AutoTopUpTests {
    /// The purchase keys of the rail log's lines (`purchase:topup:...`), in order.
    static func topUpKeys(_ path: String) -> [String] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: #""idempotency_key":"purchase:topup:"#) else { return nil }
            return "topup:" + line[range.upperBound...].prefix { $0 != "\"" }
        }
    }

    static func setting(_ server: TestServer, _ consumer: String) async throws -> AutoTopUpSetting? {
        try await (server.service.configuration.store as? any AutoTopUpStore)?.autoTopUp(consumer: consumer)
    }

    /// 500.00 bought; auto top-up below 100.00 by 50.00; 64 holds of 7.00 (available 52.00); then
    /// 64 settles at once, spread over `servers` (one ledger), all finding 52.00 < 100.00: exactly
    /// one purchase, `topup:cus_t:1` (52.00 + 50.00 = 102.00, armed again). One more run of 7.00
    /// falls to 95.00: the second crossing, `topup:cus_t:2` (145.00).
    static func sixtyFourSettles(_ servers: [TestServer], railLog: String) async throws {
        let admin = servers[0].adminKey
        let own = try await servers[0].key(.consumer, consumer: "cus_t")
        #expect(try await servers[0].send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_t","amount":"500.00"}"#,
                                          headers: ["Idempotency-Key": "t0"]).status == 201)
        // The consumer sets it for itself (500.00 is above: nothing bought).
        let set = try await servers[0].send("PUT", "/v1/consumers/cus_t/auto-top-up", key: own, json: #"{"below":"100.00","amount":"50.00"}"#)
        #expect(set.status == 200 && set.string("state") == "armed" && set.string("below") == "100.000000" && set.string("amount") == "50.000000", "\(set.body)")
        #expect(set.json?["crossings"] as? Int == 0)
        for run in 0..<64 {
            let server = servers[run % servers.count]
            let held = try await server.send("POST", "/v1/executions", key: server.adminKey,
                                                                    json: #"{"execution":"t_\#(run)","consumer":"cus_t","agent":"agt_seven"}"#)
            #expect(held.status == 201, "\(held.body)")
        }
        #expect(try await servers[0].send("GET", "/v1/balance?consumer=cus_t", key: admin).string("available") == "52.000000")
        try await withThrowingTaskGroup(of: Answer.self) { group in
            for run in 0..<64 {
                let server = servers[run % servers.count]
                group.addTask {
                    try await server.send("POST", "/v1/executions/t_\(run)/settle", key: server.adminKey, json: #"{"ended_at":"2026-11-02T10:00:00Z"}"#)
                }
            }
            for try await answer in group { #expect(answer.status == 200 && answer.string("charged") == "7.000000", "\(answer.body)") }
        }
        #expect(topUpKeys(railLog) == ["topup:cus_t:1"])
        #expect(try await servers[0].send("GET", "/v1/balance?consumer=cus_t", key: admin).string("available") == "102.000000")
        let afterFirst = try await setting(servers[0], "cus_t")
        #expect(afterFirst?.crossings == 1 && afterFirst?.state == .armed, "\(String(describing: afterFirst))")

        // The next fall below is a new crossing: N = 2.
        let last = servers[1 % servers.count]
        #expect(try await last.send("POST", "/v1/executions", key: last.adminKey,
                                                          json: #"{"execution":"t_more","consumer":"cus_t","agent":"agt_seven"}"#).status == 201)
        #expect(try await servers[0].send("POST", "/v1/executions/t_more/settle", key: admin, json: #"{"ended_at":"2026-11-02T11:00:00Z"}"#).status == 200)
        #expect(topUpKeys(railLog) == ["topup:cus_t:1", "topup:cus_t:2"])
        #expect(try await servers[0].send("GET", "/v1/balance?consumer=cus_t", key: admin).string("available") == "145.000000")
        #expect(try await setting(servers[0], "cus_t")?.crossings == 2)
        // Another consumer's key cannot set it (as an unknown id); bad amounts are refused.
        let other = try await servers[0].key(.consumer, consumer: "cus_other")
        #expect(try await servers[0].send("PUT", "/v1/consumers/cus_t/auto-top-up", key: other, json: #"{"below":"1","amount":"1"}"#).status == 404)
        let zero = try await servers[0].send("PUT", "/v1/consumers/cus_t/auto-top-up", key: admin, json: #"{"below":"1","amount":"0"}"#)
        #expect(zero.status == 400 && zero.code == "invalid_amount")
        #expect(try await servers[0].send("PUT", "/v1/consumers/cus_t/auto-top-up", key: admin, json: #"{"below":"1"}"#).status == 400)
        #expect(try await servers[0].send("PUT", "/v1/consumers/cus_t/auto-top-up", key: admin, json: #"{"below":"1","amount":"5","extra":1}"#).status == 400)
        let verify = try await servers[0].send("GET", "/v1/ledger/verify", key: admin)
        #expect(verify.json?["ok"] as? Bool == true, "\(verify.body)")
    }

    static func catalog() throws -> (plans: String, rules: String) {
        let directory = temporaryPath("top-up")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try ServicePostgresServerTests.catalog(in: directory)
    }

    @Test("64 settles at once crossing the threshold together (SQLite): exactly one purchase, topup:cus_t:1; the next crossing is topup:cus_t:2")
    func sqliteSixtyFour() async throws {
        let (plans, rules) = try Self.catalog()
        let railLog = temporaryPath("top-up-rail") + ".log"
        let backend = try SQLiteBackend(path: temporaryPath("top-up") + ".sqlite", currency: Currency(code: "USD")!)
        let server = try await TestServer.start(backend: backend, rail: .log(try LogRail(path: railLog)), plans: plans, rules: rules)
        try await Self.sixtyFourSettles([server], railLog: railLog)
        await server.stop()
    }

    @Test("64 settles at once crossing the threshold together (in memory): exactly one purchase")
    func memorySixtyFour() async throws {
        let (plans, rules) = try Self.catalog()
        let railLog = temporaryPath("top-up-rail") + ".log"
        let server = try await TestServer.start(rail: .log(try LogRail(path: railLog)), plans: plans, rules: rules)
        try await Self.sixtyFourSettles([server], railLog: railLog)
        await server.stop()
    }

    /// A customer of localstripe whose default payment method (`invoice_settings`) is a card.
    static func customer(_ stripe: LocalStripe, card: String) async throws -> String {
        let (customer, method) = try await stripe.customer(card: card)
        try await setDefault(stripe, customer: customer, card: method)
        return customer
    }

    static func setDefault(_ stripe: LocalStripe, customer: String, card method: String) async throws {
        _ = try await stripe.client.post("/v1/customers/\(customer)", FormBody([("invoice_settings[default_payment_method]", method)]),
                                         idempotencyKey: "default-\(UUID().uuidString)", what: "a default payment method")
    }

    @Test("Stripe (localstripe): a declined top-up is recorded and not retried by later checks; changing the setting tries crossing 2; a good default card pays crossing 3 off-session")
    func declined() async throws {
        let stripe = try LocalStripe.require()
        let rail = try StripeRail(configuration: StripeConfiguration(apiBase: stripe.baseURL, secretKey: try StripeSecretKey(LocalStripe.secretKey),
                                                                     initialBackoffMilliseconds: 50, maximumBackoffMilliseconds: 200))
        TestServer.secrets.withLock { _ = $0.insert(LocalStripe.secretKey) }
        let server = try await TestServer.start(testClock: Timestamp(rfc3339: "2026-11-02T10:00:00Z")!, rail: .stripe(rail))
        let admin = server.adminKey
        let customer = try await Self.customer(stripe, card: "4000000000000341")
        #expect(try await server.send("PUT", "/v1/consumers/cus_d", key: admin, json: "{\"stripe_customer\":\"\(customer)\"}").status == 200)
        // 0.00 available is below 10.00: the setting's own check claims crossing 1, declined.
        let set = try await server.send("PUT", "/v1/consumers/cus_d/auto-top-up", key: admin, json: #"{"below":"10.00","amount":"50.00"}"#)
        #expect(set.status == 200 && set.string("state") == "failed" && set.json?["crossings"] as? Int == 1, "\(set.body)")
        #expect(set.string("failure")?.isEmpty == false)
        // The clock's sweeps check again and again: nothing is retried.
        for hour in 11...14 {
            #expect(try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-11-02T\#(hour):00:00Z"}"#).status == 200)
        }
        let still = try await Self.setting(server, "cus_d")
        #expect(still?.state == .failed && still?.crossings == 1, "\(String(describing: still))")
        // The setting changed: tried again, crossing 2 (a new key), declined again.
        let again = try await server.send("PUT", "/v1/consumers/cus_d/auto-top-up", key: admin, json: #"{"below":"10.00","amount":"40.00"}"#)
        #expect(again.string("state") == "failed" && again.json?["crossings"] as? Int == 2, "\(again.body)")
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_d", key: admin).string("available") ?? "0.000000" == "0.000000")
        // A card that pays as the customer's default, and the setting saved again: crossing 3 paid off-session.
        let paying = try await Self.customer(stripe, card: "4242424242424242")
        #expect(try await server.send("PUT", "/v1/consumers/cus_d", key: admin, json: "{\"stripe_customer\":\"\(paying)\"}").status == 200)
        let paid = try await server.send("PUT", "/v1/consumers/cus_d/auto-top-up", key: admin, json: #"{"below":"10.00","amount":"40.00"}"#)
        #expect(paid.string("state") == "armed" && paid.json?["crossings"] as? Int == 3, "\(paid.body)")
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_d", key: admin).string("available") == "40.000000")
        await server.stop()
    }
}

extension AutoTopUpTests {
    /// A Stripe rail that is never called: a consumer with no recorded Stripe customer is declined
    /// before any request (`TariffService.buyTopUp`).
    static func unreachableStripe() throws -> ServiceRail {
        let secret = "sk_test_unreachable_0123456789abcdef"
        TestServer.secrets.withLock { _ = $0.insert(secret) }
        return .stripe(try StripeRail(configuration: StripeConfiguration(apiBase: "http://127.0.0.1:9", secretKey: try StripeSecretKey(secret))))
    }

    /// Each declined crossing writes one `auto_top_up.failed` (with the failure, in its transaction
    /// on SQLite and PostgreSQL): crossing 1 at the setting, none from later sweeps (not retried),
    /// crossing 2 when the setting is saved again, 40.00 this time.
    static func failureEvents(_ server: TestServer) async throws {
        let admin = server.adminKey
        let set = try await server.send("PUT", "/v1/consumers/cus_n/auto-top-up", key: admin, json: #"{"below":"10.00","amount":"50.00"}"#)
        #expect(set.status == 200 && set.string("state") == "failed" && set.json?["crossings"] as? Int == 1, "\(set.body)")
        for hour in 11...12 {
            #expect(try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-11-02T\#(hour):00:00Z"}"#).status == 200)
        }
        let again = try await server.send("PUT", "/v1/consumers/cus_n/auto-top-up", key: admin, json: #"{"below":"10.00","amount":"40.00"}"#)
        #expect(again.string("state") == "failed" && again.json?["crossings"] as? Int == 2, "\(again.body)")
        let outbox = try #require(server.service.configuration.backend as? any WebhookOutbox)
        let failed = try await outbox.outboxEvents(after: 0, limit: 1_000).filter { $0.type == "auto_top_up.failed" }
        let reason = "no Stripe customer is recorded for the consumer (PUT /v1/consumers/{id})"
        #expect(failed.map(\.subject) == ["cus_n", "cus_n"])
        #expect(failed.map(\.data) == [
            #"{"consumer":"cus_n","key":"topup:cus_n:1","amount_micros":50000000,"reason":"\#(reason)"}"#,
            #"{"consumer":"cus_n","key":"topup:cus_n:2","amount_micros":40000000,"reason":"\#(reason)"}"#,
        ])
    }

    @Test("a declined top-up writes one auto_top_up.failed per crossing (SQLite: in the failure's transaction; in memory)", arguments: ["sqlite", "memory"])
    func failureEvent(_ store: String) async throws {
        let backend: (any SettlementBackend)? = store == "sqlite"
            ? try SQLiteBackend(path: temporaryPath("top-up-failed") + ".sqlite", currency: Currency(code: "USD")!) : nil
        let server = try await TestServer.start(backend: backend, testClock: Timestamp(rfc3339: "2026-11-02T10:00:00Z")!, rail: try Self.unreachableStripe())
        try await Self.failureEvents(server)
        await server.stop()
    }
}

extension ServicePostgresServerTests {
    @Test("auto top-up: a declined crossing writes one auto_top_up.failed in the failure's transaction (PostgreSQL)")
    func autoTopUpFailureEvent() async throws {
        let backend = try await LedgerOptions.parse(["--ledger", Self.freshURL()]).backend()
        let server = try await TestServer.start(backend: backend, testClock: Timestamp(rfc3339: "2026-11-02T10:00:00Z")!, rail: try AutoTopUpTests.unreachableStripe())
        try await AutoTopUpTests.failureEvents(server)
        await server.stop()
    }

    @Test("auto top-up: 64 settles at once over two servers on one PostgreSQL ledger crossing together: exactly one purchase")
    func autoTopUpSixtyFour() async throws {
        let (plans, rules) = try AutoTopUpTests.catalog()
        let railLog = temporaryPath("top-up-rail") + ".log"
        let ledger = Self.freshURL()
        let first = try await LedgerOptions.parse(["--ledger", ledger]).backend()
        let second = try await LedgerOptions.parse(["--ledger", ledger]).backend()
        let serverA = try await TestServer.start(backend: first, rail: .log(try LogRail(path: railLog)), plans: plans, rules: rules)
        let serverB = try await TestServer.start(backend: second, rail: .log(try LogRail(path: railLog)), plans: plans, rules: rules)
        try await AutoTopUpTests.sixtyFourSettles([serverA, serverB], railLog: railLog)
        await serverA.stop()
        await serverB.stop()
    }
}
