import TariffStripeTesting
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement
@testable import TariffStripe

/// `POST /v1/purchases` through the server's Stripe rail, against localstripe (skipped with the
/// reason where it is not installed; `.ci/run` installs it).
@Suite("Purchases through the Stripe rail (localstripe)")
struct StripePurchaseServiceTests {
    @Test("a card that pays: 201 and credits once; a declined card: 402 payment_declined and nothing added; no customer recorded: 400")
    func purchases() async throws {
        let stripe = try LocalStripe.require()
        let rail = try StripeRail(configuration: StripeConfiguration(apiBase: stripe.baseURL, secretKey: try StripeSecretKey(LocalStripe.secretKey),
                                                                     initialBackoffMilliseconds: 50, maximumBackoffMilliseconds: 200))
        TestServer.secrets.withLock { _ = $0.insert(LocalStripe.secretKey) }
        let server = try await TestServer.start(rail: .stripe(rail))
        let admin = server.adminKey
        let alice = try await server.key(.consumer, consumer: "cus_a")
        let noCustomer = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"100","payment_method":"pm_x"}"#,
                                               headers: ["Idempotency-Key": "o0"])
        #expect(noCustomer.status == 400)
        let (customer, method) = try await stripe.customer(card: "4242424242424242")
        #expect(try await server.send("PUT", "/v1/consumers/cus_a", key: admin, json: "{\"stripe_customer\":\"\(customer)\"}").status == 200)
        let paid = try await server.send("POST", "/v1/purchases", key: alice, json: "{\"amount\":\"100.00\",\"payment_method\":\"\(method)\"}",
                                         headers: ["Idempotency-Key": "o1"])
        #expect(paid.status == 201)
        #expect((paid.json?["balance"] as? [String: Any])?["available"] as? String == "100.000000")
        let again = try await server.send("POST", "/v1/purchases", key: alice, json: "{\"amount\":\"100\",\"payment_method\":\"\(method)\"}",
                                          headers: ["Idempotency-Key": "o1"])
        #expect(again.body == paid.body)
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "100.000000")
        // The refused "o0" (no customer then) kept no claim on its key: it pays now, at once, not
        // after 10 s of request_in_progress.
        let started = ContinuousClock.now
        let retried = try await server.send("POST", "/v1/purchases", key: alice, json: "{\"amount\":\"100\",\"payment_method\":\"\(method)\"}",
                                            headers: ["Idempotency-Key": "o0"])
        #expect(retried.status == 201)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "200.000000")

        let bob = try await server.key(.consumer, consumer: "cus_b")
        let (declinedCustomer, declinedMethod) = try await stripe.customer(card: "4000000000000341")
        #expect(try await server.send("PUT", "/v1/consumers/cus_b", key: admin, json: "{\"stripe_customer\":\"\(declinedCustomer)\"}").status == 200)
        let declined = try await server.send("POST", "/v1/purchases", key: bob, json: "{\"amount\":\"20\",\"payment_method\":\"\(declinedMethod)\"}",
                                             headers: ["Idempotency-Key": "o2"])
        #expect(declined.status == 402)
        #expect(declined.code == "payment_declined")
        #expect(try await server.send("GET", "/v1/balance", key: bob).string("available") == "0.000000")
        // Bob's card named by Alice: it is not her customer's, refused before anything is recorded
        // or charged (service.md: a payment_method must belong to the consumer's customer).
        let foreign = try await server.send("POST", "/v1/purchases", key: alice, json: "{\"amount\":\"20\",\"payment_method\":\"\(declinedMethod)\"}",
                                            headers: ["Idempotency-Key": "o-foreign"])
        #expect(foreign.status == 400)
        #expect(foreign.code == "invalid_input")
        #expect(foreign.body.contains("does not belong"))
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "200.000000")
        // An id that is not Stripe's shape never reaches Stripe's path.
        let odd = try await server.send("POST", "/v1/purchases", key: alice, json: #"{"amount":"20","payment_method":"pm_1/../../v1/customers"}"#,
                                        headers: ["Idempotency-Key": "o-odd"])
        #expect(odd.status == 400)

        // A customer Stripe does not know: Stripe refused the server's request, 502 rail_rejected, nothing added.
        #expect(try await server.send("PUT", "/v1/consumers/cus_c", key: admin, json: #"{"stripe_customer":"cus_doesnotexist"}"#).status == 200)
        let rejected = try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_c","amount":"5","payment_method":"pm_doesnotexist"}"#,
                                             headers: ["Idempotency-Key": "o3"])
        #expect(rejected.status == 502)
        #expect(rejected.code == "rail_rejected")
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_c", key: admin).status == 404)
        await server.stop()
    }

    @Test("a card that needs 3-D Secure: 202 pending with Stripe's client_secret, the purchase recorded pending, nothing added")
    func pendingClientSecret() async throws {
        let stripe = try LocalStripe.require()
        let rail = try StripeRail(configuration: StripeConfiguration(apiBase: stripe.baseURL, secretKey: try StripeSecretKey(LocalStripe.secretKey),
                                                                     initialBackoffMilliseconds: 50, maximumBackoffMilliseconds: 200))
        TestServer.secrets.withLock { _ = $0.insert(LocalStripe.secretKey) }
        let server = try await TestServer.start(rail: .stripe(rail))
        let admin = server.adminKey
        let alice = try await server.key(.consumer, consumer: "cus_a")
        // Stripe's test card that always asks for 3-D Secure.
        let (customer, method) = try await stripe.customer(card: "4000002760003184")
        #expect(try await server.send("PUT", "/v1/consumers/cus_a", key: admin, json: "{\"stripe_customer\":\"\(customer)\"}").status == 200)
        let pending = try await server.send("POST", "/v1/purchases", key: alice, json: "{\"amount\":\"30.00\",\"payment_method\":\"\(method)\"}",
                                            headers: ["Idempotency-Key": "o-3ds"])
        #expect(pending.status == 202)
        let purchase = try #require(pending.json?["purchase"] as? [String: Any])
        #expect(purchase["status"] as? String == "pending")
        let intent = try #require(purchase["payment_intent"] as? String)
        // localstripe makes the secret as Stripe does: the PaymentIntent's id, "_secret_", random characters.
        #expect((purchase["client_secret"] as? String)?.hasPrefix(intent + "_secret_") == true)
        #expect(try await server.send("GET", "/v1/balance", key: alice).string("available") == "0.000000")
        let record = try await server.service.settlement.backend.purchaseRecord(key: TariffService.ledgerPurchaseKey(consumer: "cus_a", key: "o-3ds"))
        #expect(record?.state == .pending && record?.reference == intent)
        await server.stop()
    }

    @Test("Stripe cannot be reached: 503 rail_unavailable with Retry-After, nothing added, the same key may be sent again")
    func unreachable() async throws {
        // A closed loopback port: every attempt fails at once; the rail retries, then gives up.
        let rail = try StripeRail(configuration: StripeConfiguration(apiBase: "http://127.0.0.1:9", secretKey: try StripeSecretKey("sk_test_unreachable_000"),
                                                                     maximumAttempts: 2, initialBackoffMilliseconds: 10, maximumBackoffMilliseconds: 20,
                                                                     requestTimeoutMilliseconds: 2_000))
        TestServer.secrets.withLock { _ = $0.insert("sk_test_unreachable_000") }
        let server = try await TestServer.start(rail: .stripe(rail))
        let admin = server.adminKey
        #expect(try await server.send("PUT", "/v1/consumers/cus_a", key: admin, json: #"{"stripe_customer":"cus_x"}"#).status == 200)
        let answer = try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_a","amount":"5","payment_method":"pm_x"}"#,
                                           headers: ["Idempotency-Key": "u1"])
        #expect(answer.status == 503)
        #expect(answer.code == "rail_unavailable")
        #expect(answer.headers["retry-after"] != nil)
        #expect(try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin).status == 404)
        await server.stop()
    }
}

/// A purchase whose key is still in flight: the second request waits for the first's answer and
/// gets 409 request_in_progress after 10 s.
@Suite("Purchases in flight")
struct PurchaseInFlightTests {
    @Test("the same Idempotency-Key while the first purchase is still being answered: 409 request_in_progress after 10 s")
    func inProgress() async throws {
        // A listener that accepts connections (the kernel's backlog) and never answers: Stripe hanging.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound && listen(listener, 16) == 0)
        let port = UInt16(bigEndian: address.sin_port)
        let rail = try StripeRail(configuration: StripeConfiguration(apiBase: "http://127.0.0.1:\(port)", secretKey: try StripeSecretKey("sk_test_hanging_000"),
                                                                     maximumAttempts: 1, initialBackoffMilliseconds: 10, maximumBackoffMilliseconds: 20,
                                                                     requestTimeoutMilliseconds: 14_000))
        TestServer.secrets.withLock { _ = $0.insert("sk_test_hanging_000") }
        let server = try await TestServer.start(rail: .stripe(rail))
        let admin = server.adminKey
        #expect(try await server.send("PUT", "/v1/consumers/cus_a", key: admin, json: #"{"stripe_customer":"cus_x"}"#).status == 200)
        let body = #"{"consumer":"cus_a","amount":"5","payment_method":"pm_x"}"#
        async let first = server.send("POST", "/v1/purchases", key: admin, json: body, headers: ["Idempotency-Key": "slow"])
        try await Task.sleep(for: .milliseconds(500))
        let started = ContinuousClock.now
        let second = try await server.send("POST", "/v1/purchases", key: admin, json: body, headers: ["Idempotency-Key": "slow"])
        let waited = ContinuousClock.now - started
        #expect(second.status == 409)
        #expect(second.code == "request_in_progress")
        // 10 s of waiting, then the answer (a loaded machine adds its delay to the loopback round trips).
        #expect(waited >= .seconds(9.9) && waited <= .seconds(20), "answered after \(waited)")
        let firstAnswer = try await first
        #expect(firstAnswer.code == "rail_unavailable")
        await server.stop()
    }
}
