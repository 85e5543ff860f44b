import Foundation
import Tariff
import TariffSettlement
import TariffSQLite
@testable import TariffStripe
import Testing

/// `reconcile` against the in-process fake: refund, dispute and payout flows with `verify` and
/// `reconcile` clean after each step, and a difference of each kind made on purpose.
@Suite("Reconciliation with Stripe (fake)")
struct StripeReconcileTests {
    typealias S = StripeTestSupport

    static let november = (from: Timestamp(date: "2026-11-01")!, to: Timestamp(date: "2026-12-01")!)
    /// Pay day of the week of 2026-11-02: the purchases, refunds and payouts happen then, on both clocks.
    static let payDay = Timestamp(rfc3339: "2026-11-11T08:00:00Z")!

    struct Fixture {
        let fake: FakeStripe
        let rail: StripeRail
        let clock: ManualClock
        let settlement: Settlement
    }

    static func fixture(backend: (any SettlementBackend)? = nil) throws -> Fixture {
        let fake = try FakeStripe()
        fake.setClock(payDay)
        let clock = ManualClock(payDay)
        let settlement = Settlement(backend: backend ?? InMemoryBackend(currency: S.usd), catalog: StripePayoutRunTests.catalog, clock: clock)
        return Fixture(fake: fake, rail: try S.rail(fake.baseURL), clock: clock, settlement: settlement)
    }

    /// Both checks after a step: every invariant holds, and the ledger and Stripe agree over November.
    static func expectReconciled(_ fixture: Fixture, _ step: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> ReconciliationReport {
        let verified = try await fixture.settlement.verify()
        #expect(verified.passed, "\(step): \(verified.invariants.filter { !$0.holds })", sourceLocation: sourceLocation)
        let report = try await fixture.settlement.reconcile(from: november.from, to: november.to, rail: fixture.rail)
        #expect(report.isClean, "\(step): \(report.differences)", sourceLocation: sourceLocation)
        return report
    }

    static func buy(_ fixture: Fixture, _ key: String, _ amount: String) async throws -> String {
        let receipt = try await fixture.settlement.purchase(CreditPurchase(consumer: "cus_1", amount: S.money(amount), currency: S.usd, idempotencyKey: key,
                                                                           payer: "cus_stripe_1", paymentMethod: "pm_card_visa"), through: fixture.rail)
        return try #require(receipt.record?.reference)
    }

    /// A fresh ledger of each kind the flows run on.
    static func backend(_ kind: String) throws -> any SettlementBackend {
        guard kind == "sqlite" else { return InMemoryBackend(currency: S.usd) }
        let directory = try StripeCLITests.temporaryDirectory()
        return try SQLiteBackend(path: directory.appendingPathComponent("ledger.sqlite").path, currency: S.usd)
    }

    @Test("a purchase, a refund, a lost dispute and a won one: verify and reconcile clean after each step", arguments: ["memory", "sqlite"])
    func refundAndDisputeFlows(_ kind: String) async throws {
        let fixture = try Self.fixture(backend: try Self.backend(kind))
        defer { fixture.fake.stop() }
        #expect(try await Self.expectReconciled(fixture, "empty").ledgerCounts.isEmpty)

        let payment = try await Self.buy(fixture, "buy-1", "100.00")
        var report = try await Self.expectReconciled(fixture, "purchase")
        #expect(report.ledgerCounts == [.purchase: 1] && report.railCounts == [.purchase: 1])

        fixture.clock.advance(by: .seconds(60))
        fixture.fake.advanceClock(seconds: 60)
        let refund = try await fixture.settlement.refund(purchase: "buy-1", amount: S.money("30.00"), idempotencyKey: "r-1", through: fixture.rail)
        #expect(fixture.fake.refunds.map(\.amount) == [3_000] && refund.reference == fixture.fake.refunds.first?.id)
        report = try await Self.expectReconciled(fixture, "refund")
        #expect(report.ledgerCounts == [.purchase: 1, .refund: 1] && report.railCounts == [.purchase: 1, .refund: 1])

        // The bank opens a dispute of 20.00: nothing to reconcile while it is open.
        let dispute = fixture.fake.openDispute(payment: payment, amount: 2_000)
        _ = try await Self.expectReconciled(fixture, "dispute opened")
        // Lost on Stripe before the ledger heard of it: a difference, until the webhook's record.
        fixture.fake.closeDispute(dispute, status: "lost")
        report = try await fixture.settlement.reconcile(from: Self.november.from, to: Self.november.to, rail: fixture.rail)
        #expect(report.differences.map(\.issue) == [.missingInLedger])
        #expect(report.differences.first?.kind == .dispute && report.differences.first?.reference == dispute)
        #expect(report.differences.first?.railAmount == S.money("20.00"))
        fixture.clock.advance(by: .seconds(86_400))
        try await fixture.settlement.recordLostDispute(dispute: dispute, payment: payment, amount: S.money("20.00"))
        report = try await Self.expectReconciled(fixture, "dispute lost")
        #expect(report.ledgerCounts == [.purchase: 1, .refund: 1, .dispute: 1])
        // 100.00 bought - 30.00 refunded - 20.00 lost in the dispute.
        #expect(try await fixture.settlement.balance(consumer: "cus_1").available == S.money("50.00"))

        // A won dispute changes nothing, on either side.
        let won = fixture.fake.openDispute(payment: payment, amount: 1_000)
        fixture.fake.closeDispute(won, status: "won")
        _ = try await Self.expectReconciled(fixture, "dispute won")
    }

    @Test("payouts: six transfers reconcile; a reversal on Stripe differs until the webhook's compensating entry", arguments: ["memory", "sqlite"])
    func payouts(_ kind: String) async throws {
        let fixture = try Self.fixture(backend: try Self.backend(kind))
        defer { fixture.fake.stop() }
        fixture.clock.set(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
        try await StripePayoutRunTests.seed(fixture.settlement)
        fixture.clock.set(Self.payDay)
        let lines = try await fixture.settlement.executePayouts(week: Timestamp(date: "2026-11-02")!.civilDate, rail: fixture.rail)
        #expect(lines.map(\.status) == Array(repeating: .paid, count: 6))
        let report = try await Self.expectReconciled(fixture, "payouts")
        #expect(report.ledgerCounts == [.payout: 6] && report.railCounts == [.payout: 6])

        // 5.00 of creator 2's 20.00 transfer reversed on Stripe: 15.00 net against the ledger's 20.00.
        let transfer = try #require(fixture.fake.transfers.first { $0.destination == "acct_creator2" })
        fixture.fake.reverseTransfer(transfer.id, amount: 500)
        let reversed = try await fixture.settlement.reconcile(from: Self.november.from, to: Self.november.to, rail: fixture.rail)
        #expect(reversed.differences.count == 1)
        #expect(reversed.differences.first?.issue == .amountDiffers && reversed.differences.first?.key == "payout:acct_creator2:2026-11-02")
        #expect(reversed.differences.first?.ledgerAmount == S.money("20.00") && reversed.differences.first?.railAmount == S.money("15.00"))
        try await fixture.settlement.reversePayout(key: "payout:acct_creator2:2026-11-02", reversedTotal: S.money("5.00"), transfer: transfer.id)
        _ = try await Self.expectReconciled(fixture, "reversal recorded")
    }

    @Test("an object only on Stripe, a record only in the ledger, and an amount that differs are each listed")
    func differences() async throws {
        let fixture = try Self.fixture()
        defer { fixture.fake.stop() }
        let first = try await Self.buy(fixture, "buy-1", "100.00")
        _ = try await Self.buy(fixture, "buy-2", "40.00")
        _ = try await fixture.settlement.refund(purchase: "buy-1", amount: S.money("10.00"), idempotencyKey: "r-1", through: fixture.rail)
        _ = try await Self.expectReconciled(fixture, "before the differences")

        // Only on Stripe: a PaymentIntent carrying a purchase key the ledger never credited.
        let ghost = fixture.fake.addPaymentIntent(amount: 1_234, customer: "cus_stripe_1", metadata: ["tariff_purchase_key": "buy-ghost"])
        var report = try await fixture.settlement.reconcile(from: Self.november.from, to: Self.november.to, rail: fixture.rail)
        #expect(report.differences.map(\.issue) == [.missingInLedger])
        #expect(report.differences.first?.reference == ghost && report.differences.first?.key == "buy-ghost")
        #expect(report.differences.first?.railAmount == S.money("12.34"))
        fixture.fake.remove(ghost)

        // Only in the ledger: the refund's object is gone from Stripe.
        let refund = try #require(fixture.fake.refunds.first)
        fixture.fake.remove(refund.id)
        report = try await fixture.settlement.reconcile(from: Self.november.from, to: Self.november.to, rail: fixture.rail)
        #expect(report.differences.map(\.issue) == [.missingOnRail])
        #expect(report.differences.first?.key == "refund:r-1" && report.differences.first?.ledgerAmount == S.money("10.00"))

        // An amount that differs: the first purchase's PaymentIntent says 99.00.
        fixture.fake.setAmount(first, 9_900)
        report = try await fixture.settlement.reconcile(from: Self.november.from, to: Self.november.to, rail: fixture.rail)
        #expect(report.differences.map(\.issue) == [.amountDiffers, .missingOnRail])
        #expect(report.differences.first?.key == "buy-1" && report.differences.first?.reference == first)
        #expect(report.differences.first?.ledgerAmount == S.money("100.00") && report.differences.first?.railAmount == S.money("99.00"))
    }

    @Test("reconcile reads every page: 250 purchases, listed 100 at a time")
    func paging() async throws {
        let fixture = try Self.fixture()
        defer { fixture.fake.stop() }
        for index in 1...250 { _ = try await Self.buy(fixture, "buy-\(index)", "1.00") }
        let report = try await Self.expectReconciled(fixture, "250 purchases")
        #expect(report.ledgerCounts == [.purchase: 250] && report.railCounts == [.purchase: 250])
        let lists = fixture.fake.seen.filter { $0.method == "GET" && $0.path.hasPrefix("/v1/payment_intents?") }
        #expect(lists.count == 3)
        #expect(lists.dropFirst().allSatisfy { $0.path.contains("starting_after=") })
        #expect(lists.allSatisfy { $0.path.contains("created%5Bgte%5D=") && $0.path.contains("created%5Blt%5D=") }, "\(lists.map(\.path))")
    }

    @Test("tariff ledger reconcile: exit 0 clean, 1 with the difference listed (text and JSON), 2 for the log rail or no key; the key never printed")
    func command() async throws {
        let directory = try StripeCLITests.temporaryDirectory()
        let ledger = directory.appendingPathComponent("ledger.sqlite").path
        let fixture = try Self.fixture(backend: try SQLiteBackend(path: ledger, currency: S.usd))
        defer { fixture.fake.stop() }
        _ = try await Self.buy(fixture, "buy-1", "100.00")
        let environment = ["STRIPE_SECRET_KEY": FakeStripe.secretKey, "STRIPE_API_BASE": fixture.fake.baseURL]
        let arguments = ["ledger", "reconcile", "--ledger", "sqlite:\(ledger)", "--from", "2026-11-01", "--to", "2026-12-01"]

        let clean = try StripeCLITests.run(arguments, environment: environment, in: directory)
        #expect(clean.status == 0, "\(clean.all)")
        #expect(clean.output.contains("ledger/stripe: 1/1 purchases, 0/0 refunds, 0/0 disputes, 0/0 payouts") && clean.output.contains("no difference"), "\(clean.output)")
        let cleanJSON = try StripeCLITests.run(arguments + ["--format", "json"], environment: environment, in: directory)
        #expect(cleanJSON.status == 0)
        #expect(cleanJSON.output.contains(#""clean":true"#) && cleanJSON.output.contains(#""differences":[]"#), "\(cleanJSON.output)")
        #expect(cleanJSON.output.contains(#""ledger":{"purchase":1,"refund":0,"dispute":0,"payout":0}"#), "\(cleanJSON.output)")

        let ghost = fixture.fake.addPaymentIntent(amount: 500, customer: "cus_stripe_1", metadata: ["tariff_purchase_key": "buy-ghost"])
        let text = try StripeCLITests.run(arguments, environment: environment, in: directory)
        #expect(text.status == 1, "\(text.all)")
        #expect(text.output.contains("missing_in_ledger") && text.output.contains(ghost) && text.output.contains("5.000000") && text.output.contains("1 difference"),
                "\(text.output)")
        let json = try StripeCLITests.run(arguments + ["--format", "json"], environment: environment, in: directory)
        #expect(json.status == 1)
        #expect(json.output.contains(#""clean":false"#), "\(json.output)")
        #expect(json.output.contains(#"{"issue":"missing_in_ledger","kind":"purchase","key":"buy-ghost","reference":"\#(ghost)","ledger_amount":null,"stripe_amount":"5.000000""#),
                "\(json.output)")

        let log = try StripeCLITests.run(arguments + ["--rail", "log"], environment: environment, in: directory)
        #expect(log.status == 2 && log.error.contains("reconcile needs the stripe rail"), "\(log.all)")
        let noKey = try StripeCLITests.run(arguments, environment: ["STRIPE_API_BASE": fixture.fake.baseURL], in: directory)
        #expect(noKey.status == 2 && noKey.error.contains("STRIPE_SECRET_KEY"), "\(noKey.all)")
        let backwards = try StripeCLITests.run(["ledger", "reconcile", "--ledger", "sqlite:\(ledger)", "--from", "2026-12-01", "--to", "2026-11-01"],
                                               environment: environment, in: directory)
        #expect(backwards.status == 2 && backwards.error.contains("is not before"), "\(backwards.all)")
        let badDate = try StripeCLITests.run(["ledger", "reconcile", "--ledger", "sqlite:\(ledger)", "--from", "November", "--to", "2026-11-01"],
                                             environment: environment, in: directory)
        #expect(badDate.status == 2 && badDate.error.contains("--from"), "\(badDate.all)")
        for run in [clean, cleanJSON, text, json, log, noKey, backwards, badDate] { #expect(!run.all.contains(FakeStripe.secretKey)) }
    }
}
