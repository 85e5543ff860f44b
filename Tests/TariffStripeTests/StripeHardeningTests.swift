import Foundation
import Synchronization
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// Issue 12, items 6, 7 and 10 on the Stripe rail: a Stripe (or something answering in its place)
/// that lies, never answers, answers without end, or quotes the key back.
@Suite("Stripe rail hardening (issue 12)")
struct StripeHardeningTests {
    typealias S = StripeTestSupport

    static func purchase(_ key: String) -> CreditPurchase {
        CreditPurchase(consumer: "c1", amount: S.money("10.00"), currency: S.usd, idempotencyKey: key, payer: "cus_1", paymentMethod: "pm_1")
    }

    static func answering(_ body: String, status: Int = 200) throws -> LoopbackHTTPServer {
        try LoopbackHTTPServer { _ in .respond(status: status, body: body) }
    }

    @Test("10. a PaymentIntent reported succeeded for another amount, currency or customer credits nothing", arguments: [
        #"{"id":"pi_x","status":"succeeded","amount":-500,"amount_received":-500,"currency":"eur","customer":"cus_1"}"#,
        #"{"id":"pi_x","status":"succeeded","amount":1000,"amount_received":1000,"currency":"eur","customer":"cus_1"}"#,
        #"{"id":"pi_x","status":"succeeded","amount":1000,"amount_received":1000,"currency":"usd","customer":"cus_other"}"#,
        #"{"id":"pi_x","status":"succeeded","amount":1000,"amount_received":1000,"currency":"usd"}"#,
        #"{"id":"pi_x","status":"succeeded","amount":100000,"amount_received":100000,"currency":"usd","customer":"cus_1"}"#,
    ])
    func paymentIntentMustMatch(answer: String) async throws {
        let server = try Self.answering(answer)
        defer { server.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        do {
            _ = try await settlement.purchase(Self.purchase("order-1"), through: try S.rail(server.baseURL, attempts: 1))
            Issue.record("a mismatched PaymentIntent was credited: \(answer)")
        } catch let error as SettlementError {
            #expect(error.code == .railRejected, "\(error)")
            #expect(error.message.contains("nothing credited"))
        }
        #expect(try await settlement.backend.snapshot().consumers.isEmpty)
    }

    @Test("10. the matching PaymentIntent is credited (the check does not refuse Stripe's true answer)")
    func matchingIntent() async throws {
        let server = try Self.answering(#"{"id":"pi_ok","status":"succeeded","amount":1000,"amount_received":1000,"currency":"usd","customer":"cus_1"}"#)
        defer { server.stop() }
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let paid = try await settlement.purchase(Self.purchase("order-2"), through: try S.rail(server.baseURL, attempts: 1))
        #expect(paid.receipt?.available == S.money("10.00"))
    }

    @Test("10. a Stripe that never answers fails within the total deadline, retries and waits included")
    func neverAnswers() async throws {
        let attempts = Atomic<Int>(0)
        let server = try LoopbackHTTPServer { _ in
            attempts.add(1, ordering: .relaxed)
            return .hang(milliseconds: 20_000)
        }
        defer { server.stop() }
        // 4 attempts of 1.5 s each and backoffs would take over 6 s; the deadline is 2 s.
        let configuration = StripeConfiguration(apiBase: server.baseURL, secretKey: try StripeSecretKey(FakeStripe.secretKey), maximumAttempts: 4,
                                                initialBackoffMilliseconds: 200, maximumBackoffMilliseconds: 400, requestTimeoutMilliseconds: 1_500,
                                                totalTimeoutMilliseconds: 2_000)
        let rail = try StripeRail(configuration: configuration)
        let start = ContinuousClock.now
        do {
            _ = try await rail.charge(Self.purchase("order-3"))
            Issue.record("a hanging Stripe answered")
        } catch let error as SettlementError {
            #expect(error.code == .railUnavailable)
        }
        // The deadline cuts the retries short: not all 4 attempts are made (4 attempts of 1.5 s and
        // their backoffs take over 6 s against a deadline of 2 s; on an idle machine 3 were seen,
        // each refused early). Wall time is only bounded loosely: the suites share two cores, and
        // under a load average of 10 a starved task was seen to take 82 to 98 s here.
        #expect(attempts.load(ordering: .relaxed) < 4, "\(attempts.load(ordering: .relaxed)) attempts")
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(180), "took \(elapsed)")
        // The documented default: 60 s in all.
        #expect(StripeConfiguration(secretKey: try StripeSecretKey("sk_test_x")).totalTimeoutMilliseconds == 60_000)
    }

    @Test("7. an answer longer than the bound is refused as it arrives, never read whole")
    func boundedAnswer() async throws {
        // 4 MiB of JSON-looking text against a 1 MiB bound.
        let body = #"{"id":"pi_x","pad":""# + String(repeating: "x", count: 4 << 20) + #""}"#
        let server = try Self.answering(body)
        defer { server.stop() }
        let configuration = StripeConfiguration(apiBase: server.baseURL, secretKey: try StripeSecretKey(FakeStripe.secretKey), maximumAttempts: 1,
                                                requestTimeoutMilliseconds: 10_000, maximumResponseBytes: 1 << 20)
        do {
            _ = try await StripeRail(configuration: configuration).charge(Self.purchase("order-4"))
            Issue.record("a 4 MiB answer was read")
        } catch let error as SettlementError {
            #expect(error.code == .railUnavailable && error.message.contains("larger than 1048576 bytes"), "\(error)")
        }
    }

    @Test("7. --stripe-key-file is read with a bound: a 1 GB (sparse) file is refused without reading it")
    func boundedKeyFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("key-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(truncate(path, 1 << 30) == 0)
        let start = ContinuousClock.now
        do {
            _ = try StripeSecretKey.load(file: path, environment: [:])
            Issue.record("a 1 GB key file was accepted")
        } catch let error as SettlementError {
            #expect(error.code == .invalidInput && error.message.contains("larger than 4096 bytes"))
        }
        #expect(ContinuousClock.now - start < .seconds(1))
        // /dev/zero never ends: refused after the bound.
        #expect(throws: SettlementError.self) { try StripeSecretKey.load(file: "/dev/zero", environment: [:]) }
    }

    @Test("6. a Stripe error whose code, param or message holds the key is printed redacted")
    func errorFieldsRedacted() async throws {
        let key = FakeStripe.secretKey
        let body = #"{"error":{"type":"invalid_request_error","code":"bad_\#(key)","param":"p_\#(key)","message":"m \#(key)"}}"#
        for status in [400, 402, 409, 429, 500] {
            let server = try Self.answering(body, status: status)
            defer { server.stop() }
            do {
                _ = try await S.rail(server.baseURL, attempts: 1).charge(Self.purchase("order-5-\(status)"))
                Issue.record("HTTP \(status) succeeded")
            } catch {
                #expect(!"\(error)".contains(key) && !String(reflecting: error).contains(key), "HTTP \(status) printed the key: \(error)")
            }
        }
        // STRIPE_API_BASE with credentials in it is echoed redacted.
        do {
            _ = try StripeConfiguration.load(keyFile: nil, environment: ["STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": "ftp://user:hunter2@example.com"])
            Issue.record("an ftp base was accepted")
        } catch {
            #expect(!"\(error)".contains("hunter2"), "\(error)")
        }
    }
}
