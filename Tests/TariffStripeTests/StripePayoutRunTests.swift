import Foundation
import Synchronization
import Tariff
import TariffSettlement
@testable import TariffStripe
import Testing

/// A week's payout run through the Stripe rail, stopped half way and run again.
@Suite("Weekly payouts through Stripe Connect (fake)")
struct StripePayoutRunTests {
    typealias S = StripeTestSupport

    /// Six creators, one per-call plan each at 12.50 a call, split 80/15/5: every call earns its
    /// creator 10.00. Creator k's agent runs k calls in the week of 2026-11-02, so creator k is paid
    /// 10.00 * k on Wednesday 2026-11-11: 10, 20, 30, 40, 50, 60 = 210.00 in all.
    static let creators = (1...6).map { "acct_creator\($0)" }

    static let rulesText = """
        metering:
          standard:
            weights: { cpu_ms: 0.001 }
        splits:
          standard: { creator: 80%, platform: 15%, processing: 5% }
        payouts:
          week_starts: monday
          timezone: UTC
          pay_on: wednesday
          minimum: 0
        reservation: 1.00
        """

    static func planText(_ index: Int) -> String {
        """
        plan: p\(index)
        agent: agt_\(index)
        creator: acct_creator\(index)
        currency: USD
        model: per_call
        per_call:
          fee: 12.50
        """
    }

    static let catalog: CompiledCatalog = {
        var sources = [CatalogSource(path: "rules/rules.yaml", text: rulesText, kind: .rules)]
        for index in 1...6 { sources.append(CatalogSource(path: "plans/p\(index).yaml", text: planText(index), kind: .plan)) }
        return CatalogLoader.compile(sources: sources).catalog!
    }()

    /// The week's executions: 500.00 bought, then creator k's agent runs k calls on Tuesday 2026-11-03.
    static func seed(_ settlement: Settlement) async throws {
        let at = Timestamp(rfc3339: "2026-11-03T09:00:00Z")!
        _ = try await settlement.purchase(consumer: "cus_buyer", amount: S.money("500.00"), idempotencyKey: "buy-1")
        for index in 1...6 {
            let plan = try #require(catalog.plan(id: "p\(index)", at: at))
            for call in 1...index {
                let execution = "exe_\(index)_\(call)"
                try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_buyer", plan: plan))
                try await settlement.settle(SettlementRequest(execution: execution, meters: MeterReadings(), endedAt: at))
            }
        }
    }

    /// Sends through the inner rail, then "crashes" (throws) right after Stripe accepted the
    /// `crashAt`-th transfer, before the ledger hears the confirmation: the worst place to stop.
    final class CrashingRail: PaymentRail {
        struct Crash: Error {}
        let inner: StripeRail
        let crashAt: Int
        private let calls = Mutex(0)
        init(inner: StripeRail, crashAt: Int) {
            self.inner = inner
            self.crashAt = crashAt
        }
        func send(_ transfer: PayoutTransfer) async throws -> String {
            let call = calls.withLock { $0 += 1; return $0 }
            let reference = try await inner.send(transfer)
            if call == crashAt { throw Crash() }
            return reference
        }
    }

    @Test("a run that crashes after half the creators, run again, transfers exactly once to every creator; paid out = transferred")
    func crashAndRerun() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: Self.catalog, clock: clock)
        try await Self.seed(settlement)
        // The week has ended; the run starts on the pay date.
        clock.set(Timestamp(rfc3339: "2026-11-11T08:00:00Z")!)
        let week = Timestamp(date: "2026-11-02")!.civilDate
        let rail = try S.rail(fake.baseURL)
        // One transfer hits a timeout after Stripe applied it, on top of the crash.
        fake.inject(.status(429), .timeoutAfterApplying(milliseconds: 4_000))
        await #expect(throws: CrashingRail.Crash.self) {
            try await settlement.executePayouts(week: week, rail: CrashingRail(inner: try S.rail(fake.baseURL, timeoutMilliseconds: 1_000), crashAt: 3))
        }
        #expect(fake.transfers.count == 3)
        #expect(try await settlement.payouts(week: week).map(\.status) == [.paid, .paid, .recorded, .due, .due, .due])

        let lines = try await settlement.executePayouts(week: week, rail: rail)
        _ = try await settlement.executePayouts(week: week, rail: rail) // a third run changes nothing
        #expect(lines.map(\.status) == Array(repeating: .paid, count: 6))
        // Exactly one transfer per creator, 1000 cents * k, in the week's transfer group.
        let transfers = fake.transfers
        #expect(transfers.map(\.destination).sorted() == Self.creators)
        for (index, creator) in Self.creators.enumerated() {
            let sent = transfers.filter { $0.destination == creator }
            #expect(sent.map(\.amount) == [Int64(1000 * (index + 1))], "\(creator)")
            #expect(sent.map(\.idempotencyKey) == ["payout:\(creator):2026-11-02"] && sent.map(\.transferGroup) == ["2026-11-02"])
        }
        #expect(transfers.reduce(0) { $0 + $1.amount } == 21_000)
        // The ledger's paid-out totals equal what was transferred, creator by creator, and each payout holds its transfer's id.
        let payouts = try await settlement.backend.snapshot().payouts
        #expect(payouts.count == 6)
        for payout in payouts {
            let transfer = try #require(transfers.first { $0.destination == payout.creator })
            #expect(payout.amount == (try StripeAmount.money(minorUnits: transfer.amount, S.usd)))
            #expect(payout.reference == transfer.id)
        }
        #expect(payouts.reduce(Int64(0)) { $0 + $1.amount.micros } == 210 * 1_000_000)
        let report = try await settlement.verify()
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }

    @Test("a rerun 25 hours after a crash between 'transfer sent' and 'confirmed', past Stripe's idempotency window: the transfer is found and adopted, one transfer")
    func rerunPastTheIdempotencyWindow() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: Self.catalog, clock: clock)
        try await Self.seed(settlement)
        clock.set(Timestamp(rfc3339: "2026-11-11T08:00:00Z")!)
        let week = Timestamp(date: "2026-11-02")!.civilDate
        // The third transfer (acct_creator3, 30.00) is made by Stripe, then the process dies before the ledger hears of it.
        await #expect(throws: CrashingRail.Crash.self) {
            try await settlement.executePayouts(week: week, rail: CrashingRail(inner: try S.rail(fake.baseURL), crashAt: 3))
        }
        #expect(fake.transfers.count == 3)
        #expect(try await settlement.payouts(week: week).map(\.status) == [.paid, .paid, .recorded, .due, .due, .due])
        let made = try #require(fake.transfers.last)

        // 25 hours later Stripe no longer knows the key: sending it again would move the money twice.
        fake.advance(hours: 25)
        clock.advance(by: .seconds(25 * 3_600))
        let rail = try S.rail(fake.baseURL)
        let lines = try await settlement.executePayouts(week: week, rail: rail)
        #expect(lines.map(\.status) == Array(repeating: .paid, count: 6))
        // One transfer per creator: the third was looked up by its metadata in the week's transfer group and adopted.
        let transfers = fake.transfers
        #expect(transfers.map(\.destination).sorted() == Self.creators)
        #expect(transfers.filter { $0.destination == "acct_creator3" }.map(\.amount) == [3_000])
        let payouts = try await settlement.backend.snapshot().payouts
        #expect(payouts.first { $0.creator == "acct_creator3" }?.reference == made.id)
        let lookups = fake.seen.filter { $0.method == "GET" }
        #expect(lookups.count == 1 && lookups.first?.path.contains("transfer_group=2026-11-02") == true)
        // Without the look-up: the fake does forget the key, and the same transfer sent again is a second one.
        _ = try await rail.send(S.transfer("acct_creator3", "30.00"))
        #expect(fake.transfers.filter { $0.destination == "acct_creator3" }.count == 2)
        let report = try await settlement.verify()
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }

    @Test("Stripe refuses one creator's account: the others are paid, it is failed with Stripe's reason, its amount owed again and paid next week")
    func refusedAccount() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: Self.catalog, clock: clock)
        try await Self.seed(settlement)
        clock.set(Timestamp(rfc3339: "2026-11-11T08:00:00Z")!)
        fake.setRefusing("acct_creator4", true)
        let rail = try S.rail(fake.baseURL)
        let lines = try await settlement.executePayouts(week: Timestamp(date: "2026-11-02")!.civilDate, rail: rail)
        #expect(lines.map(\.status) == [.paid, .paid, .paid, .failed, .paid, .paid])
        #expect(lines[3].failure?.contains("insufficient_capabilities_for_transfer") == true && lines[3].carried == S.money("40.00"))
        #expect(fake.transfers.map(\.destination) == ["acct_creator1", "acct_creator2", "acct_creator3", "acct_creator5", "acct_creator6"])
        // The account works; the next week's run pays the 40.00 (acct_creator4 has no line that week).
        fake.setRefusing("acct_creator4", false)
        clock.set(Timestamp(rfc3339: "2026-11-18T08:00:00Z")!)
        let next = try await settlement.executePayouts(week: Timestamp(date: "2026-11-09")!.civilDate, rail: rail)
        #expect(next.map(\.creator) == ["acct_creator4"] && next.map(\.amount) == [S.money("40.00")] && next.map(\.status) == [.paid])
        #expect(fake.transfers.last?.destination == "acct_creator4" && fake.transfers.last?.amount == 4_000 && fake.transfers.count == 6)
        #expect(fake.transfers.last?.idempotencyKey == "payout:acct_creator4:2026-11-09")
        let report = try await settlement.verify()
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }
}
