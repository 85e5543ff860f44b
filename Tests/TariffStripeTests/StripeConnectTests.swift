import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// Transfers, destination charges, idempotency and retries against `FakeStripe` (localstripe has
/// no Connect endpoints and ignores idempotency keys).
@Suite("Stripe Connect against the in-process fake")
struct StripeConnectTests {
    typealias S = StripeTestSupport

    @Test("a payout is one transfer: amount in cents, destination, the week as transfer_group, payout:CREATOR:WEEK as the key")
    func transfer() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let reference = try await S.rail(fake.baseURL).send(S.transfer("acct_1Nv0FGQ9RKHgCVdK", "1262.50"))
        #expect(fake.transfers == [FakeStripe.Transfer(id: reference, amount: 126_250, currency: "usd", destination: "acct_1Nv0FGQ9RKHgCVdK",
                                                       transferGroup: "2026-11-02", idempotencyKey: "payout:acct_1Nv0FGQ9RKHgCVdK:2026-11-02",
                                                       created: fake.nowSeconds)])
        let request = try #require(fake.seen.first)
        #expect(request.path == "/v1/transfers" && request.idempotencyKey == "payout:acct_1Nv0FGQ9RKHgCVdK:2026-11-02")
        #expect(request.authorization == "Bearer \(FakeStripe.secretKey)")
        #expect(S.fields(request.body)["amount"] == "126250" && S.fields(request.body)["currency"] == "usd")
    }

    @Test("a zero-decimal currency sends whole units: 1500 JPY is amount=1500")
    func zeroDecimal() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let rail = try S.rail(fake.baseURL)
        _ = try await rail.send(S.transfer("acct_jp", "1500", currency: S.jpy))
        #expect(fake.transfers.map(\.amount) == [1500] && fake.transfers.map(\.currency) == ["jpy"])
        // Half a yen cannot be sent: refused before any request.
        await #expect(throws: SettlementError.self) { try await rail.send(S.transfer("acct_jp", "1500.5", week: "2026-11-09", currency: S.jpy)) }
        #expect(fake.seen.count == 1)
    }

    @Test("the same key and parameters replay the first transfer; other parameters are an idempotency conflict")
    func replay() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let rail = try S.rail(fake.baseURL)
        let first = try await rail.send(S.transfer("acct_a", "25.00"))
        let again = try await rail.send(S.transfer("acct_a", "25.00"))
        #expect(again == first)
        #expect(fake.transfers.count == 1)
        do {
            _ = try await rail.send(S.transfer("acct_a", "26.00"))
            Issue.record("a changed amount under the same key was accepted")
        } catch let error as SettlementError {
            #expect(error.code == .idempotencyConflict)
            #expect(error.message.contains("payout:acct_a:2026-11-02"))
        }
        #expect(fake.transfers.map(\.amount) == [2500])
    }

    @Test("a timeout after Stripe accepted the transfer is retried under the same key and pays once")
    func timeoutAfterAccepting() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        // The fake applies the transfer, then hangs 4 s; the client gives up after 1 s and retries.
        fake.inject(.timeoutAfterApplying(milliseconds: 4_000))
        let reference = try await S.rail(fake.baseURL, timeoutMilliseconds: 1_000).send(S.transfer("acct_t", "40.00"))
        #expect(fake.transfers.count == 1)
        #expect(fake.transfers.first?.id == reference)
        // Two attempts at least (more if this machine is so loaded that a replay also takes over 1 s), all under one key.
        #expect(fake.seen.count >= 2 && fake.seen.allSatisfy { $0.idempotencyKey == "payout:acct_t:2026-11-02" })
    }

    @Test("429 and 5xx are retried with backoff under the same key")
    func transientStatuses() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        fake.inject(.status(429), .status(500), .status(503))
        _ = try await S.rail(fake.baseURL).send(S.transfer("acct_r", "10.00"))
        #expect(fake.transfers.count == 1)
        #expect(fake.seen.count == 4)
        #expect(Set(fake.seen.map(\.idempotencyKey)) == ["payout:acct_r:2026-11-02"])
    }

    @Test("Stripe-Should-Retry: false makes a 500 final; true makes a 400 worth retrying")
    func shouldRetryHeader() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let rail = try S.rail(fake.baseURL)
        fake.inject(.status(500, shouldRetry: false))
        do {
            _ = try await rail.send(S.transfer("acct_h", "10.00"))
            Issue.record("a 500 was taken as success")
        } catch let error as SettlementError {
            #expect(error.code == .railUnavailable && error.message.contains("HTTP 500"), "\(error)")
        }
        #expect(fake.seen.count == 1)
        fake.inject(.status(400, shouldRetry: true))
        _ = try await rail.send(S.transfer("acct_h", "10.00"))
        #expect(fake.seen.count == 3 && fake.transfers.count == 1)
    }

    @Test("the same key sent twice at once: the second meets 409 idempotency_key_in_use, retries, and gets the first's transfer")
    func keyInUse() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        // The fake holds the first request's key until a second request with it has met 409; the second
        // retries (waits of 50, 100, 200, 400, 400, ... ms) and then gets the stored answer.
        fake.inject(.holdUntilConflict(limitMilliseconds: 60_000))
        let patient = try StripeRail(configuration: StripeConfiguration(apiBase: fake.baseURL, secretKey: try StripeSecretKey(FakeStripe.secretKey),
                                                                        maximumAttempts: 10, initialBackoffMilliseconds: 50,
                                                                        maximumBackoffMilliseconds: 400, requestTimeoutMilliseconds: 90_000, totalTimeoutMilliseconds: 600_000))
        let waiting = try StripeRail(configuration: StripeConfiguration(apiBase: fake.baseURL, secretKey: try StripeSecretKey(FakeStripe.secretKey),
                                                                        requestTimeoutMilliseconds: 90_000, totalTimeoutMilliseconds: 600_000))
        async let first = waiting.send(S.transfer("acct_c", "30.00"))
        var polls = 0
        while fake.keysInFlight == 0, polls < 12_000 {
            try await Task.sleep(for: .milliseconds(5))
            polls += 1
        }
        async let second = patient.send(S.transfer("acct_c", "30.00"))
        let (a, b) = try await (first, second)
        #expect(a == b)
        #expect(fake.transfers.count == 1)
        #expect(fake.statuses.contains(409))
    }

    @Test("a rail that keeps failing gives up with rail_unavailable after the last attempt, and a rerun pays once")
    func exhausted() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        fake.inject(.status(503), .status(503), .status(503))
        let rail = try S.rail(fake.baseURL, attempts: 3)
        do {
            _ = try await rail.send(S.transfer("acct_u", "10.00"))
            Issue.record("three 503s were taken as success")
        } catch let error as SettlementError {
            #expect(error.code == .railUnavailable)
            #expect(error.message.contains("3 attempts") && error.message.contains("HTTP 503"), "\(error)")
        }
        #expect(fake.transfers.isEmpty && fake.seen.count == 3)
        _ = try await rail.send(S.transfer("acct_u", "10.00"))
        #expect(fake.transfers.count == 1)
    }

    @Test("a refused request is not retried and says what Stripe said")
    func rejected() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        do {
            _ = try await S.rail(fake.baseURL).send(S.transfer("cus_not_an_account", "10.00"))
            Issue.record("a transfer to a customer id was accepted")
        } catch let error as SettlementError {
            #expect(error.code == .railRejected)
            #expect(error.message.contains("destination") && error.message.contains("No such destination"))
        }
        #expect(fake.seen.count == 1)
    }

    @Test("a wrong secret key is rail_authentication, and no key shows in the error")
    func wrongKey() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let wrong = "sk_test_wrong_key_0123456789"
        do {
            _ = try await S.rail(fake.baseURL, key: wrong).send(S.transfer("acct_k", "10.00"))
            Issue.record("a wrong key was accepted")
        } catch let error as SettlementError {
            #expect(error.code == .railAuthentication)
            #expect(!error.description.contains(wrong) && !error.description.contains("6789"))
        }
        #expect(fake.seen.count == 1)
    }

    @Test("an unreachable Stripe is rail_unavailable and the error holds no key")
    func unreachable() async throws {
        // A port bound but not listening refuses connections (and no other test's server can take it meanwhile).
        let refusing = try #require(LoopbackHTTPServer.refusingPort())
        defer { close(refusing.socket) }
        let base = "http://127.0.0.1:\(refusing.port)"
        do {
            _ = try await S.rail(base, attempts: 2).send(S.transfer("acct_k", "10.00"))
            Issue.record("an unreachable Stripe was taken as success")
        } catch let error as SettlementError {
            #expect(error.code == .railUnavailable)
            #expect(!error.description.contains(FakeStripe.secretKey))
        }
    }

    @Test("a direct invoice is a destination charge: transfer_data[destination] and application_fee_amount = platform + processing")
    func destinationCharge() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let rail = try S.rail(fake.baseURL)
        // 150.00 split 80/15/5: creator 120.00, platform 22.50, processing 7.50 -> fee 30.00 = 3000 cents.
        let invoice = DirectInvoice(invoice: "inv_2026_11_acme", customer: "cus_acme", paymentMethod: "pm_card_visa", destination: "acct_creator",
                                    amount: S.money("150.00"), currency: S.usd,
                                    split: SplitShares(creator: S.money("120.00"), platform: S.money("22.50"), processing: S.money("7.50")))
        let payment = try await rail.chargeInvoice(invoice)
        #expect(payment.applicationFeeMinorUnits == 3000)
        #expect(payment.outcome == .succeeded(reference: payment.reference))
        #expect(fake.charges == [FakeStripe.Charge(id: payment.reference, amount: 15_000, currency: "usd", customer: "cus_acme", applicationFee: 3000,
                                                   destination: "acct_creator", status: "succeeded", metadata: ["tariff_invoice": "inv_2026_11_acme"],
                                                   created: 1_796_040_000)])
        let request = try #require(fake.seen.last)
        #expect(request.idempotencyKey == "invoice:inv_2026_11_acme")
        #expect(S.fields(request.body)["transfer_data[destination]"] == "acct_creator" && S.fields(request.body)["confirm"] == "true")
        // Charged again under the same invoice: replayed, not charged twice.
        #expect(try await rail.chargeInvoice(invoice).reference == payment.reference)
        #expect(fake.charges.count == 1)
    }

    @Test("a fee finer than a cent: the creator's share is floored to cents, the rest is the platform's fee")
    func fractionalFee() throws {
        // 149.99 split 80/15/5 exactly: creator 119.992, platform 22.4985, processing 7.4995. The creator can be
        // sent 119.99 (11999 cents); the fee is 14999 - 11999 = 3000 cents (29.998 rounded up to the cent).
        let invoice = DirectInvoice(invoice: "inv_1", customer: "cus_1", paymentMethod: "pm_1", destination: "acct_1", amount: S.money("149.99"),
                                    currency: S.usd, split: SplitShares(creator: S.money("119.992"), platform: S.money("22.4985"), processing: S.money("7.4995")))
        #expect(try invoice.applicationFeeMinorUnits() == 3000)
        var broken = invoice
        broken.split.platform = S.money("22.4986")
        #expect(throws: SettlementError.self) { try broken.applicationFeeMinorUnits() }
    }

    @Test("a declined destination charge carries Stripe's decline reason")
    func declinedInvoice() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let invoice = DirectInvoice(invoice: "inv_2", customer: "cus_b", paymentMethod: "pm_card_chargeDeclinedInsufficientFunds", destination: "acct_c",
                                    amount: S.money("10.00"), currency: S.usd,
                                    split: SplitShares(creator: S.money("8.00"), platform: S.money("1.50"), processing: S.money("0.50")))
        do {
            _ = try await S.rail(fake.baseURL).chargeInvoice(invoice)
            Issue.record("a declined card was taken as paid")
        } catch let error as SettlementError {
            #expect(error.code == .paymentDeclined)
            #expect(error.message.contains("insufficient_funds"))
        }
        #expect(fake.charges.isEmpty && fake.seen.count == 1)
    }
}
