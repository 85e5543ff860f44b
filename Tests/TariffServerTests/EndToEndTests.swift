import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement

/// Every endpoint and every status the server answers, over loopback with URLSession. Expected
/// amounts are worked out by hand from the sample catalog: research-payg charges 0.02 a call
/// (split 80/15/5: 0.016, 0.003, 0.001); its hold is that exact fee.
@Suite("The service end to end", .serialized)
struct EndToEndTests {
    @Test("health, the document, metrics, plans, errors of routing and keys")
    func basics() async throws {
        let server = try await TestServer.start()
        #expect(try await server.send("GET", "/healthz").status == 200)
        #expect(try await server.send("GET", "/readyz").status == 200)
        let document = try await server.send("GET", "/openapi.json")
        #expect(document.status == 200)
        #expect(document.string("openapi") == "3.1.0")
        let admin = server.adminKey
        let plans = try await server.send("GET", "/v1/plans", key: admin)
        #expect(plans.status == 200)
        let rows = plans.json?["plans"] as? [[String: Any]] ?? []
        #expect(rows.contains { $0["id"] as? String == "research-payg" && $0["default"] as? Bool == true && $0["agent"] as? String == "agt_research" })
        #expect(rows.count == 6) // six plan files in plans/: research-pro in two versions
        let metrics = try await server.send("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("tariff_http_requests_total"))
        #expect(metrics.body.contains("route=\"/v1/plans\""))

        // 401 with the challenge: no key, an unknown key, a malformed header.
        let none = try await server.send("GET", "/v1/plans")
        #expect(none.status == 401)
        #expect(none.code == "unauthorized")
        #expect(none.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(none.headers["content-type"] == "application/problem+json")
        #expect(try await server.send("GET", "/v1/plans", key: "tk_" + String(repeating: "0", count: 64)).status == 401)
        #expect(try await server.send("GET", "/v1/plans", headers: ["Authorization": "Basic abc"]).status == 401)
        // 403: a consumer key on an admin endpoint.
        let consumerKey = try await server.key(.consumer, consumer: "cus_a")
        let forbidden = try await server.send("GET", "/v1/ledger/verify", key: consumerKey)
        #expect(forbidden.status == 403)
        #expect(forbidden.code == "forbidden")
        // 404 for no such path, 405 with Allow for another method, no clock without --test-clock.
        let missing = try await server.send("GET", "/v1/nothing", key: admin)
        #expect(missing.status == 404)
        #expect(missing.code == "not_found")
        let method = try await server.send("DELETE", "/v1/balance", key: admin)
        #expect(method.status == 405)
        #expect(method.headers["allow"] == "GET")
        #expect(try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2030-01-01T00:00:00Z"}"#).status == 404)
        // X-Request-Id: echoed when given, made when not.
        let echoed = try await server.send("GET", "/healthz", headers: ["X-Request-Id": "req-123"])
        #expect(echoed.headers["x-request-id"] == "req-123")
        #expect((try await server.send("GET", "/healthz")).headers["x-request-id"]?.count == 24)
        // A webhook on a server with no webhook secret changes nothing.
        #expect(try await server.send("POST", "/v1/webhooks/stripe", json: "{}").status == 400)
        await server.stop()
    }

    @Test("credits: balance, purchases with Idempotency-Key, consumer settings, body rules")
    func credits() async throws {
        let server = try await TestServer.start()
        let admin = server.adminKey
        let alice = try await server.key(.consumer, consumer: "cus_a")
        let bob = try await server.key(.consumer, consumer: "cus_b")

        // A consumer's own balance with no history is zeros; an admin asking about an unknown id: 404.
        let fresh = try await server.send("GET", "/v1/balance", key: alice)
        #expect(fresh.status == 200)
        #expect(fresh.string("available") == "0.000000")
        #expect(fresh.string("reserved") == "0.000000")
        #expect(fresh.string("currency") == "USD")
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_nobody", key: admin).status == 404)
        #expect(try await server.send("GET", "/v1/balance", key: admin).status == 400)

        let first = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"100"}"#, headers: ["Idempotency-Key": "order-1"])
        #expect(first.status == 201)
        let purchase = first.json?["purchase"] as? [String: Any]
        #expect(purchase?["amount"] as? String == "100.000000")
        #expect(purchase?["status"] as? String == "succeeded")
        #expect(purchase?["key"] as? String == "order-1")
        #expect((first.json?["balance"] as? [String: Any])?["available"] as? String == "100.000000")
        #expect(first.headers["idempotent-replayed"] == nil)
        // The same purchase again ("100.00" is the same amount): the first answer, marked replayed, nothing added.
        let again = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"100.00"}"#, headers: ["Idempotency-Key": "order-1"])
        #expect(again.status == 201)
        #expect(again.body == first.body)
        #expect(again.headers["idempotent-replayed"] == "true")
        // Another amount under the key: 409.
        let conflict = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"50"}"#, headers: ["Idempotency-Key": "order-1"])
        #expect(conflict.status == 409)
        #expect(conflict.code == "idempotency_conflict")
        // Keys are scoped to their consumer: bob's order-1 is his own purchase.
        let bobs = try await server.send("POST", "/v1/purchases", key: bob, json: #"{"amount":"30"}"#, headers: ["Idempotency-Key": "order-1"])
        #expect(bobs.status == 201)
        #expect((bobs.json?["balance"] as? [String: Any])?["available"] as? String == "30.000000")
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "100.000000")
        // An admin buys for a named consumer.
        let forCarol = try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_c","amount":"0.01"}"#, headers: ["Idempotency-Key": "k"])
        #expect(forCarol.status == 201)
        // A consumer key naming another consumer: exactly the unknown-id answer.
        let other = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"consumer":"cus_b","amount":"1"}"#, headers: ["Idempotency-Key": "x"])
        let unknown = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"consumer":"cus_zz","amount":"1"}"#, headers: ["Idempotency-Key": "x"])
        #expect(other.status == 404)
        #expect(other.code == "not_found")
        #expect(other.body.replacingOccurrences(of: "cus_b", with: "ID") == unknown.body.replacingOccurrences(of: "cus_zz", with: "ID"))

        // Refusals: no key header, a key too long, amounts not exact cents or not strings, unknown fields, bad JSON, types.
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"1"}"#).code == "invalid_input")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"1"}"#,
                                      headers: ["Idempotency-Key": String(repeating: "k", count: 256)]).code == "invalid_key")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"1.005"}"#, headers: ["Idempotency-Key": "a1"]).code == "invalid_amount")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":100}"#, headers: ["Idempotency-Key": "a2"]).code == "invalid_amount")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"1e3"}"#, headers: ["Idempotency-Key": "a3"]).code == "invalid_amount")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"-5"}"#, headers: ["Idempotency-Key": "a4"]).code == "invalid_amount")
        let typo = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"1","ammount":"2"}"#, headers: ["Idempotency-Key": "a5"])
        #expect(typo.status == 400)
        #expect(typo.code == "invalid_input")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"1","amount":"2"}"#, headers: ["Idempotency-Key": "a6"]).status == 400)
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"#, headers: ["Idempotency-Key": "a7"]).status == 400)
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"[1,2]"#, headers: ["Idempotency-Key": "a8"]).status == 400)
        let media = try await server.send("POST", "/v1/purchases", key: alice, json: "amount=1", headers: ["Idempotency-Key": "a9"], contentType: "text/plain")
        #expect(media.status == 415)
        #expect(media.code == "unsupported_media_type")
        let huge = "{\"amount\":\"1\",\"payment_method\":\"" + String(repeating: "x", count: 1 << 20) + "\"}"
        let tooLarge = try await server.send("POST", "/v1/purchases", key: alice, json: huge, headers: ["Idempotency-Key": "a10"])
        #expect(tooLarge.status == 413)
        #expect(tooLarge.code == "body_too_large")
        // None of the refusals changed a balance.
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "100.000000")

        // Consumer settings: admin only.
        let settings = try await server.send("PUT", "/v1/consumers/cus_a", key: admin, json: #"{"stripe_customer":"cus_stripe_1","low_balance":"10"}"#)
        #expect(settings.status == 200)
        #expect(settings.string("low_balance") == "10.000000")
        #expect(settings.string("stripe_customer") == "cus_stripe_1")
        #expect(try await server.send("PUT", "/v1/consumers/cus_a", key: alice, json: "{}").status == 403)
        await server.stop()
    }

    @Test("the lifecycle: reserve, meter, settle, release, execution state, usage, quotes")
    func lifecycle() async throws {
        let server = try await TestServer.start()
        let admin = server.adminKey
        let runtime = try await server.key(.runtime)
        let alice = try await server.key(.consumer, consumer: "cus_a")
        #expect(try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"10"}"#, headers: ["Idempotency-Key": "p"]).status == 201)
        let now = SystemClock().now().rfc3339

        let hold = try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_1","consumer":"cus_a","agent":"agt_research"}"#)
        #expect(hold.status == 201)
        #expect(hold.string("plan") == "research-payg")
        #expect(hold.string("held") == "0.020000")
        let replay = try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_1","consumer":"cus_a","agent":"agt_research"}"#)
        #expect(replay.status == 201)
        #expect(replay.body == hold.body)
        #expect(replay.headers["idempotent-replayed"] == "true")
        #expect(try await server.send("POST", "/v1/executions", key: runtime,
                                      json: #"{"execution":"exe_1","consumer":"cus_a","agent":"agt_research","ttl_seconds":60}"#).code == "idempotency_conflict")
        let balance = try await server.send("GET", "/v1/balance?consumer=cus_a", key: runtime)
        #expect(balance.string("available") == "9.980000")
        #expect(balance.string("reserved") == "0.020000")

        let meter = try await server.send("POST", "/v1/executions/exe_1/meter", key: runtime, json: "{\"at\":\"\(now)\",\"meters\":{\"cpu_ms\":1000}}")
        #expect(meter.status == 200)
        #expect(meter.string("held") == "0.020000")
        #expect(meter.string("cost") == "0.020000")
        #expect(meter.json?["exhausted"] as? Bool == false)

        let settleBody = "{\"ended_at\":\"\(now)\",\"status\":\"succeeded\",\"meters\":{\"cpu_ms\":1200,\"inference_calls\":3}}"
        let settled = try await server.send("POST", "/v1/executions/exe_1/settle", key: runtime, json: settleBody)
        #expect(settled.status == 200)
        #expect(settled.string("charged") == "0.020000")
        #expect(settled.string("uncollected") == "0.000000")
        #expect(settled.string("released") == "0.000000")
        #expect(settled.string("compute_units") == "2.700") // 1.2 s of CPU + 3 calls x 0.5
        #expect((settled.json?["split"] as? [String: String]) == ["creator": "0.016000", "platform": "0.003000", "processing": "0.001000"])
        #expect((settled.json?["lines"] as? [[String: Any]])?.count == 1)
        #expect(settled.json?["refused"] is NSNull)
        let settledAgain = try await server.send("POST", "/v1/executions/exe_1/settle", key: runtime, json: settleBody)
        #expect(settledAgain.body == settled.body)
        #expect(settledAgain.headers["idempotent-replayed"] == "true")
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "9.980000")

        // Its state, to the runtime and to its own consumer; another consumer's key sees the unknown-id answer.
        let state = try await server.send("GET", "/v1/executions/exe_1", key: alice)
        #expect(state.status == 200)
        #expect(state.string("state") == "settled")
        #expect(state.string("charged") == "0.020000")
        let bob = try await server.key(.consumer, consumer: "cus_b")
        let hidden = try await server.send("GET", "/v1/executions/exe_1", key: bob)
        let absent = try await server.send("GET", "/v1/executions/exe_none", key: bob)
        #expect(hidden.status == 404)
        #expect(hidden.body.replacingOccurrences(of: "exe_1", with: "X") == absent.body.replacingOccurrences(of: "exe_none", with: "X"))

        // Release: the hold comes back; a second release is the first answer; a settle after it conflicts.
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_2","consumer":"cus_a","plan":"research-payg","version":1}"#).status == 201)
        let released = try await server.send("POST", "/v1/executions/exe_2/release", key: runtime)
        #expect(released.status == 200)
        #expect(released.string("released") == "0.020000")
        let releasedAgain = try await server.send("POST", "/v1/executions/exe_2/release", key: runtime)
        #expect(releasedAgain.body == released.body)
        #expect(releasedAgain.headers["idempotent-replayed"] == "true")
        #expect(try await server.send("POST", "/v1/executions/exe_2/settle", key: runtime, json: settleBody).code == "idempotency_conflict")
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "9.980000")

        // Refusals of the lifecycle.
        let poor = try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_poor","amount":"0.01"}"#, headers: ["Idempotency-Key": "p"])
        #expect(poor.status == 201)
        let refused = try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_3","consumer":"cus_poor","agent":"agt_research"}"#)
        #expect(refused.status == 402)
        #expect(refused.code == "insufficient_credits")
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_4","consumer":"cus_never","agent":"agt_research"}"#).code == "unknown_consumer")
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_5","consumer":"cus_a","plan":"research-pro"}"#).code == "no_plan")
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_6","consumer":"cus_a","plan":"reserch-payg"}"#).code == "unknown_plan")
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_7","consumer":"cus_a","agent":"agt_translate"}"#).code == "no_plan")
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"exe_8","consumer":"cus_a","agent":"agt_research","ttl_seconds":0}"#).code == "invalid_input")
        #expect(try await server.send("POST", "/v1/executions", key: runtime, json: #"{"execution":"","consumer":"cus_a","agent":"agt_research"}"#).code == "invalid_key")
        #expect(try await server.send("POST", "/v1/executions/exe_none/meter", key: runtime, json: #"{"meters":{}}"#).code == "unknown_reservation")
        #expect(try await server.send("POST", "/v1/executions/exe_none/settle", key: runtime, json: settleBody).code == "unknown_reservation")
        // A reading no metering weighs is not an input error: it adds nothing and is said in
        // `warnings` (PricingAgreementServiceTests), as quote and simulate do.
        #expect(try await server.send("POST", "/v1/executions/exe_1/settle", key: runtime, json: #"{"meters":{}}"#).code == "invalid_input")
        #expect(try await server.send("POST", "/v1/executions", key: alice, json: #"{"execution":"exe_9","consumer":"cus_a","agent":"agt_research"}"#).status == 403)
        // The metrics count ledger steps by route and outcome, and never name a consumer or an execution.
        let metrics = try await server.send("GET", "/metrics")
        #expect(metrics.body.contains("tariff_ledger_steps_total"))
        #expect(metrics.body.contains("insufficient_credits"))
        #expect(metrics.body.contains("tariff_http_request_duration_seconds"))
        for id in ["cus_a", "cus_poor", "exe_1", "exe_2"] { #expect(!metrics.body.contains(id)) }

        // Usage of the last 30 days, as `tariff ledger usage`.
        let usage = try await server.send("GET", "/v1/usage?period=30d&group_by=agent", key: alice)
        #expect(usage.status == 200)
        let data = usage.json?["data"] as? [[String: Any]] ?? []
        #expect(data.count == 1)
        #expect(data.first?["agent"] as? String == "agt_research")
        #expect(data.first?["compute_units"] as? String == "2.700")
        #expect(data.first?["cost"] as? String == "0.020000")
        #expect(data.first?["executions"] as? Int == 1)
        #expect(try await server.send("GET", "/v1/usage?period=30x", key: alice).code == "invalid_input")
        #expect(try await server.send("GET", "/v1/usage?group_by=color", key: alice).code == "invalid_input")
        #expect(try await server.send("GET", "/v1/usage?consumer=cus_b", key: alice).status == 404)
        #expect(try await server.send("GET", "/v1/usage?consumer=cus_nobody", key: admin).status == 404)

        // Quotes: by plan, by agent, with a consumer; refusals.
        let quote = try await server.send("POST", "/v1/quotes", key: alice, json: #"{"plan":"research-pro","meters":{"cpu_ms":1200,"inference_calls":3}}"#)
        #expect(quote.status == 200)
        #expect(quote.string("compute_units") == "2.700")
        #expect(quote.string("charge") == "0.000000") // within the 10,000 CU allowance
        let byAgent = try await server.send("POST", "/v1/quotes", key: runtime, json: #"{"agent":"agt_research","consumer":"cus_a","meters":{"cpu_ms":"1200.5"}}"#)
        #expect(byAgent.string("plan") == "research-payg")
        #expect(byAgent.string("charge") == "0.020000")
        #expect(try await server.send("POST", "/v1/quotes", key: alice, json: #"{"plan":"nope"}"#).code == "unknown_plan")
        #expect(try await server.send("POST", "/v1/quotes", key: alice, json: #"{"agent":"agt_translate"}"#).code == "no_plan")
        #expect(try await server.send("POST", "/v1/quotes", key: alice, json: #"{"agent":"agt_research","consumer":"cus_b"}"#).status == 404)
        #expect(try await server.send("POST", "/v1/quotes", key: alice, json: #"{"plan":"research-payg","meters":{"cpu_ms":1.5e3}}"#).code == "invalid_input")
        #expect(try await server.send("POST", "/v1/quotes", key: alice, json: #"{"plan":"research-payg","at":"yesterday"}"#).code == "invalid_input")

        // Payouts, verify.
        let monday = Self.monday(of: SystemClock().now())
        let payouts = try await server.send("GET", "/v1/payouts?week=\(monday)", key: admin)
        #expect(payouts.status == 200)
        let rows = payouts.json?["payouts"] as? [[String: Any]] ?? []
        #expect(rows.first?["earnings"] as? String == "0.016000")
        #expect(rows.first?["status"] as? String == "carried") // below the 10.00 minimum
        let notDue = try await server.send("POST", "/v1/payouts/\(monday)/execute", key: admin)
        #expect(notDue.status == 409)
        #expect(notDue.code == "not_due")
        #expect(try await server.send("GET", "/v1/payouts?week=2026-11-03", key: admin).code == "invalid_input") // a Tuesday
        #expect(try await server.send("GET", "/v1/payouts", key: admin).code == "invalid_input")
        let verify = try await server.send("GET", "/v1/ledger/verify", key: admin)
        #expect(verify.status == 200)
        #expect(verify.json?["ok"] as? Bool == true)
        await server.stop()
    }

    static func monday(of instant: Timestamp) -> String {
        let date = instant.civilDate
        let back = (date.weekday.rawValue - Weekday.monday.rawValue + 7) % 7
        return date.addingDays(Int64(-back)).description
    }

    @Test("the test clock: holds expire when it moves; it only moves forward")
    func testClock() async throws {
        let server = try await TestServer.start(testClock: Timestamp(rfc3339: "2026-11-02T09:00:00Z")!)
        let admin = server.adminKey
        #expect(try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_a","amount":"1"}"#, headers: ["Idempotency-Key": "p"]).status == 201)
        let hold = try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"exe_1","consumer":"cus_a","agent":"agt_research","ttl_seconds":60}"#)
        #expect(hold.string("expires_at") == "2026-11-02T09:01:00Z")
        let moved = try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-11-02T09:02:00Z"}"#)
        #expect(moved.status == 200)
        #expect(moved.json?["expired_holds"] as? Int == 1)
        #expect(try await server.send("GET", "/v1/executions/exe_1", key: admin).string("state") == "expired")
        let late = try await server.send("POST", "/v1/executions/exe_1/settle", key: admin, json: #"{"ended_at":"2026-11-02T09:00:30Z"}"#)
        #expect(late.status == 409)
        #expect(late.code == "reservation_expired")
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).string("available") == "1.000000")
        #expect(try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-11-01T00:00:00Z"}"#).code == "invalid_input")
        // Payouts of the week of 2026-11-02 are due on Wednesday 2026-11-11.
        #expect(try await server.send("POST", "/v1/payouts/2026-11-02/execute", key: admin).code == "not_due")
        #expect(try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-11-11T00:00:00Z"}"#).status == 200)
        let paid = try await server.send("POST", "/v1/payouts/2026-11-02/execute", key: admin)
        #expect(paid.status == 200)
        #expect(paid.json?["executed"] as? Bool == true)
        await server.stop()
    }

    @Test("catalog reload: errors keep the old catalog (422 with diagnostics), a clean one replaces it")
    func reload() async throws {
        let folder = temporaryPath("catalog")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/plans", toPath: folder + "/plans")
        try FileManager.default.copyItem(atPath: repositoryRoot + "/rules", toPath: folder + "/rules")
        let server = try await TestServer.start(plans: folder + "/plans", rules: folder + "/rules")
        let admin = server.adminKey
        let good = try await server.send("POST", "/v1/catalog/reload", key: admin)
        #expect(good.status == 200)
        #expect(good.json?["plans"] as? Int == 6)
        let payg = try String(contentsOfFile: folder + "/plans/research-payg.yaml", encoding: .utf8)
        try payg.replacingOccurrences(of: "fee: 0.02", with: "fe: 0.02").write(toFile: folder + "/plans/research-payg.yaml", atomically: true, encoding: .utf8)
        let bad = try await server.send("POST", "/v1/catalog/reload", key: admin)
        #expect(bad.status == 422)
        #expect(bad.code == "catalog_errors")
        #expect(((bad.json?["diagnostics"] as? [[String: Any]])?.count ?? 0) >= 1)
        // The old catalog still prices.
        #expect(try await server.send("POST", "/v1/quotes", key: admin, json: #"{"plan":"research-payg"}"#).string("charge") == "0.020000")
        try payg.replacingOccurrences(of: "fee: 0.02", with: "fee: 0.03").write(toFile: folder + "/plans/research-payg.yaml", atomically: true, encoding: .utf8)
        #expect(try await server.send("POST", "/v1/catalog/reload", key: admin).status == 200)
        #expect(try await server.send("POST", "/v1/quotes", key: admin, json: #"{"plan":"research-payg"}"#).string("charge") == "0.030000")
        await server.stop()
    }
}
