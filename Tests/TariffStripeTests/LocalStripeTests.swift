import TariffStripeTesting
import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// Credit purchases against localstripe: real customers, payment methods and PaymentIntents.
@Suite("Credit purchases against localstripe")
struct LocalStripeTests {
    typealias S = StripeTestSupport

    static func rail(_ server: LocalStripe) throws -> StripeRail {
        try StripeRail(configuration: StripeConfiguration(apiBase: server.baseURL, secretKey: try StripeSecretKey(LocalStripe.secretKey),
                                                          initialBackoffMilliseconds: 50, maximumBackoffMilliseconds: 200,
                                                          totalTimeoutMilliseconds: 600_000))
    }

    @Test("card 4242 4242 4242 4242 pays: the PaymentIntent succeeds and the credits are added once")
    func succeeds() async throws {
        let server = try LocalStripe.require()
        let (customer, method) = try await server.customer(card: "4242424242424242")
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let purchase = CreditPurchase(consumer: "cus_tariff_ls1", amount: S.money("100.00"), currency: S.usd, idempotencyKey: "ls-order-1",
                                      payer: customer, paymentMethod: method)
        let result = try await settlement.purchase(purchase, through: try Self.rail(server))
        guard case .succeeded(let reference) = result.outcome else { Issue.record("not succeeded: \(result.outcome)"); return }
        #expect(result.receipt?.available == S.money("100.00"))
        let intent = try await server.paymentIntent(reference)
        #expect(intent.amount == 10_000 && intent.currency == "usd" && intent.status == "succeeded")
        // localstripe ignores idempotency keys (it would charge again), but the ledger applies the key once.
        _ = try await settlement.purchase(purchase, through: try Self.rail(server))
        #expect(try await settlement.balance(consumer: "cus_tariff_ls1").available == S.money("100.00"))
    }

    @Test("card 4000 0000 0000 0341 is declined at charge time: Stripe's reason, exit as payment_declined, no credits")
    func declined() async throws {
        let server = try LocalStripe.require()
        let (customer, method) = try await server.customer(card: "4000000000000341")
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        _ = try await settlement.purchase(consumer: "cus_tariff_ls2", amount: S.money("5.00"), idempotencyKey: "ls-seed")
        let before = try await settlement.backend.snapshot()
        do {
            _ = try await settlement.purchase(CreditPurchase(consumer: "cus_tariff_ls2", amount: S.money("100.00"), currency: S.usd, idempotencyKey: "ls-order-2",
                                                             payer: customer, paymentMethod: method), through: try Self.rail(server))
            Issue.record("a declined card added credits")
        } catch let error as SettlementError {
            #expect(error.code == .paymentDeclined)
            #expect(error.message.contains("card_declined") && error.message.contains("Your card was declined."))
            #expect(!error.description.contains(LocalStripe.secretKey))
        }
        // Nothing added: only the purchase's own record, written before the charge, now `failed`.
        var after = try await settlement.backend.snapshot()
        #expect(after.purchases.map(\.state) == [.failed])
        after.purchases = []
        #expect(after == before)
        #expect(try await settlement.balance(consumer: "cus_tariff_ls2").available == S.money("5.00"))
    }

    @Test("a zero-decimal currency: 5000 JPY is a PaymentIntent of amount 5000")
    func yen() async throws {
        let server = try LocalStripe.require()
        let (customer, method) = try await server.customer(card: "4242424242424242")
        let settlement = Settlement(backend: InMemoryBackend(currency: S.jpy), catalog: nil)
        let result = try await settlement.purchase(CreditPurchase(consumer: "cus_tariff_ls3", amount: S.money("5000"), currency: S.jpy, idempotencyKey: "ls-order-3",
                                                                  payer: customer, paymentMethod: method), through: try Self.rail(server))
        guard case .succeeded(let reference) = result.outcome else { Issue.record("not succeeded: \(result.outcome)"); return }
        let intent = try await server.paymentIntent(reference)
        #expect(intent.amount == 5000 && intent.currency == "jpy")
        #expect(result.receipt?.available == S.money("5000"))
    }

    @Test("an unknown customer is rail_rejected with localstripe's message, and adds nothing")
    func unknownCustomer() async throws {
        let server = try LocalStripe.require()
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        do {
            _ = try await settlement.purchase(CreditPurchase(consumer: "cus_tariff_ls4", amount: S.money("10.00"), currency: S.usd, idempotencyKey: "ls-order-4",
                                                             payer: "cus_doesnotexist", paymentMethod: "pm_doesnotexist"), through: try Self.rail(server))
            Issue.record("an unknown customer was charged")
        } catch let error as SettlementError {
            #expect(error.code == .railRejected, "\(error)")
        }
        await #expect(throws: SettlementError.self) { try await settlement.balance(consumer: "cus_tariff_ls4") }
    }
}

/// Reconciliation against localstripe, where it can list what reconcile reads.
@Suite("Reconciliation against localstripe")
struct LocalStripeReconcileTests {
    typealias S = StripeTestSupport

    @Test("a purchase and a refund reconcile clean (skipped, with the reason, where localstripe lacks a list reconcile reads)")
    func reconcile() async throws {
        let server = try LocalStripe.require()
        let client = try server.client
        // localstripe (0.2.x) has no transfers and no disputes: reconcile needs all four lists.
        var missing: [String] = []
        for path in ["/v1/payment_intents", "/v1/refunds", "/v1/disputes", "/v1/transfers"] {
            do { _ = try await client.get(path, FormBody([("limit", "1")]), what: "the probe of \(path)") } catch { missing.append(path) }
        }
        if !missing.isEmpty { try Test.cancel("skipped: localstripe has no list of \(missing.joined(separator: ", ")), which reconcile reads") }
        let (customer, method) = try await server.customer(card: "4242424242424242")
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: nil)
        let rail = try LocalStripeTests.rail(server)
        _ = try await settlement.purchase(CreditPurchase(consumer: "cus_tariff_rec", amount: S.money("50.00"), currency: S.usd, idempotencyKey: "ls-rec-1",
                                                         payer: customer, paymentMethod: method), through: rail)
        _ = try await settlement.refund(purchase: "ls-rec-1", amount: S.money("20.00"), idempotencyKey: "ls-rec-r1", through: rail)
        let now = SystemClock().now()
        let report = try await settlement.reconcile(from: now.adding(nanoseconds: -3_600_000_000_000)!, to: now.adding(nanoseconds: 3_600_000_000_000)!, rail: rail)
        // localstripe is shared by the process's tests: other tests' purchases are on it, not in this ledger.
        let ours = report.differences.filter { ($0.key ?? "").hasPrefix("ls-rec") || ($0.key ?? "").hasPrefix("refund:ls-rec") }
        #expect(ours.isEmpty, "\(ours)")
        #expect(report.ledgerCounts == [.purchase: 1, .refund: 1])
    }
}
