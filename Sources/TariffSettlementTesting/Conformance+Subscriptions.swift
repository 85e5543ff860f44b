import Tariff
import TariffSettlement
import Testing

// Live subscriptions and the period clock (service.md), on every backend. The conformance catalog's
// `metered` (10.00 a month, 10 CU included, 0.50 per CU beyond) and `metered-max` (30.00 a month,
// same agent) and the default `late_usage_grace` of 1h. Every amount below is computed by hand.
extension SettlementConformance {
    static let subscriptionScenarios: [Scenario] = [
        Scenario(name: "subscriptions: the same plan answered, per_call refused, a replacement, a cancel at the period's end, fees and closes by the clock",
                 body: subscriptionLifecycle),
        Scenario(name: "subscriptions: a fee beyond available is charged up to it; concurrent clocks charge each period once", body: subscriptionClocks),
        Scenario(name: "subscriptions: eight clocks at once, a year of month ends: each period closed once, no clock refused", body: racingCloses),
        Scenario(name: "subscriptions: a clock run that registers a replaced period with its scheduled end after the replacement: it still closes at the replacement",
                 body: subscriptionReplacementRace),
    ]

    /// Eight clocks at the same instant, six times two months on: each run charges fees and closes
    /// periods of four consumers, racing the seven others. On PostgreSQL a close that lost the race
    /// between its two looks (its key, then the period) was refused as `idempotency_conflict`
    /// (fixed by migration 15).
    static func racingCloses(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        let consumers = ["cus_r1", "cus_r2", "cus_r3", "cus_r4"]
        for consumer in consumers {
            try await ledger.purchase(consumer, "1000.00")
            try await settlement.subscribe(consumer: consumer, plan: "metered", id: "sub_" + consumer)
        }
        let rounds = ["2027-01", "2027-03", "2027-05", "2027-07", "2027-09", "2027-11"]
        for (round, month) in rounds.enumerated() {
            // The grace (1h) after a period's start: two fees are due and two periods close, per consumer.
            let at = instant("\(month)-02T11:00:00Z")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { _ = try await settlement.runClock(at: at) } }
                try await group.waitForAll()
            }
            // Each fee charged once, whichever clock charged it: the first at the subscribe, then two a round.
            for consumer in consumers {
                let fees = try await ledger.backend.chargeRecords(ChargeQuery(consumer: consumer)).filter { $0.kind == .fee }
                #expect(fees.count == 1 + 2 * (round + 1), "round \(round + 1), \(consumer)")
            }
            let closed = try await ledger.backend.periodCloses().filter(\.isClosed)
            #expect(closed.count == 2 * (round + 1) * consumers.count, "round \(round + 1): \(closed.count) periods closed")
        }
        // 13 fees of 10.00 each (the first at the subscribe), no usage: 1000.00 - 130.00.
        for consumer in consumers {
            let fees = try await ledger.backend.chargeRecords(ChargeQuery(consumer: consumer)).filter { $0.kind == .fee }
            #expect(fees.count == 13, "\(consumer)")
            #expect(try await ledger.balance(consumer).available == money("870.00"), "\(consumer)")
        }
        try await ledger.expectVerified()
    }

    static func subscriptionLifecycle(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        try await ledger.purchase("cus_s", "100.00")
        // 2026-11-02T10:00Z: the first fee at once (100.00 - 10.00).
        let first = try await settlement.subscribe(consumer: "cus_s", plan: "metered", id: "sub_1")
        #expect(first.created && first.replaced == nil && first.subscription.chargedPeriods == 1)
        #expect(first.subscription.nextPeriodStart == instant("2026-12-02T10:00:00Z"))
        #expect(try await ledger.balance("cus_s").available == money("90.00"))
        // The same plan again: the existing subscription, nothing charged.
        let again = try await settlement.subscribe(consumer: "cus_s", plan: "metered", id: "sub_2")
        #expect(!again.created && again.subscription.id == "sub_1")
        try await ledger.expectRefused(.invalidInput, "a subscribe to a per_call plan") {
            try await settlement.subscribe(consumer: "cus_s", plan: "flat", id: "sub_3")
        }
        try await ledger.expectRefused(.unknownPlan, "a subscribe to an unknown plan") {
            try await settlement.subscribe(consumer: "cus_s", plan: "nope", id: "sub_3")
        }
        try await ledger.expectRefused(.notFound, "a cancel with no active subscription to that plan") {
            try await settlement.cancel(consumer: "cus_s", plan: "metered-max")
        }
        // 14 CU in the first period: 4 beyond the allowance, 2.00.
        try await ledger.reserve("exe_s1", "cus_s", plan: "metered", period: .starting(instant("2026-11-02T10:00:00Z")))
        #expect(try await ledger.settle("exe_s1", cpuMilliseconds: 14_000).charged == money("2.00"))
        #expect(try await settlement.runClock(at: instant("2026-11-20T00:00:00Z")).fees == 0)

        // The second period's fee when it starts; the first period closes an hour (the grace) later.
        ledger.clock.set(instant("2026-12-02T10:00:00Z"))
        let december = try await settlement.runClock()
        #expect(december.fees == 1 && december.closes.isEmpty)
        #expect(try await ledger.balance("cus_s").available == money("78.00"))
        let closed = try await settlement.runClock(at: instant("2026-12-02T11:00:00Z"))
        #expect(closed.fees == 0 && closed.closes.map(\.start) == [instant("2026-11-02T10:00:00Z")])

        // Replaced on 2026-12-10 by metered-max (30.00 at once): metered ends there, its period cut short.
        ledger.clock.set(instant("2026-12-10T00:00:00Z"))
        let replacing = try await settlement.subscribe(consumer: "cus_s", plan: "metered-max", id: "sub_4")
        #expect(replacing.created && replacing.replaced?.id == "sub_1" && replacing.replaced?.ending == .replaced)
        #expect(replacing.replaced?.endsAt == instant("2026-12-10T00:00:00Z") && replacing.replaced?.nextPeriodStart == nil)
        #expect(try await ledger.balance("cus_s").available == money("48.00"))
        let cut = try await ledger.backend.periodCloses().first { $0.start == instant("2026-12-02T10:00:00Z") }
        #expect(cut?.end == instant("2026-12-10T00:00:00Z") && cut?.isClosed == false)
        #expect(try await settlement.activeSubscription(consumer: "cus_s", agent: "agt_metered", at: ledger.clock.now())?.id == "sub_4")

        // Canceled on 2026-12-15: it ends at its period's end, 2027-01-10; a second cancel changes nothing.
        ledger.clock.set(instant("2026-12-15T00:00:00Z"))
        let canceled = try await settlement.cancel(consumer: "cus_s", plan: "metered-max")
        #expect(canceled.endsAt == instant("2027-01-10T00:00:00Z") && canceled.ending == .canceled && canceled.nextPeriodStart == nil)
        #expect(try await settlement.cancel(subscription: "sub_4", at: instant("2026-12-20T00:00:00Z")) == canceled)
        // The cut period closes at 2026-12-10T01:00 (found by this run); no fee on 2027-01-10.
        let january = try await settlement.runClock(at: instant("2027-01-10T00:00:00Z"))
        #expect(january.fees == 0 && january.closes.map(\.end) == [instant("2026-12-10T00:00:00Z")])
        let last = try await settlement.runClock(at: instant("2027-01-10T01:00:00Z"))
        #expect(last.fees == 0 && last.closes.map(\.end) == [instant("2027-01-10T00:00:00Z")])
        #expect(try await settlement.runClock(at: instant("2027-03-01T00:00:00Z")) == ClockRun())

        let listed = try await ledger.backend.subscriptions(consumer: "cus_s")
        #expect(listed.map(\.id) == ["sub_1", "sub_4"] && listed.map(\.chargedPeriods) == [2, 1])
        #expect(try await ledger.backend.subscriptions(consumer: nil).count == 2)
        #expect(try await ledger.backend.subscriptions(consumer: "cus_other").isEmpty)
        // 100.00 - 10.00 - 2.00 - 10.00 - 30.00, and the fees by period start.
        #expect(try await ledger.balance("cus_s").available == money("48.00"))
        let fees = try await ledger.backend.chargeRecords(ChargeQuery(consumer: "cus_s")).filter { $0.kind == .fee }
        #expect(fees.map(\.billed) == [money("10.00"), money("10.00"), money("30.00")])
        #expect(fees.map(\.datedAt) == [instant("2026-11-02T10:00:00Z"), instant("2026-12-02T10:00:00Z"), instant("2026-12-10T00:00:00Z")])
        try await ledger.expectVerified()
    }

    static func subscriptionClocks(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        try await ledger.purchase("cus_p", "5.00")
        // The 10.00 fee finds 5.00: 5.00 charged, 5.00 uncollected.
        try await settlement.subscribe(consumer: "cus_p", plan: "metered", id: "sub_p")
        #expect(try await ledger.balance("cus_p").available == .zero)
        #expect(try await ledger.backend.uncollectedTotal().money("uncollected") == money("5.00"))
        try await ledger.purchase("cus_q", "100.00")
        try await settlement.subscribe(consumer: "cus_q", plan: "metered-max", id: "sub_q")
        // Eight clocks at once, three months on: each period's fee once (30.00 x 3 more for cus_q).
        let at = instant("2027-02-02T10:00:00Z")
        let runs = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await settlement.runClock(at: at).fees } }
            var total = 0
            for try await fees in group { total += fees }
            return total
        }
        #expect(runs >= 6)
        // 100.00 - 4 x 30.00: 100.00 collected, 20.00 uncollected in all for cus_q; cus_p owes 5.00 + 3 x 10.00.
        #expect(try await ledger.balance("cus_q").available == .zero)
        let fees = try await ledger.backend.chargeRecords(ChargeQuery()).filter { $0.kind == .fee }
        #expect(fees.count == 8)
        #expect(try await ledger.backend.uncollectedTotal().money("uncollected") == money("55.00"))
        #expect(try await ledger.backend.subscriptions(consumer: nil).map(\.chargedPeriods) == [4, 4])
        try await ledger.expectVerified()
    }

    /// Two servers: one replaces a subscription while the other's clock run, which read the
    /// subscription before the replacement, registers the period the replacement cut with its
    /// scheduled end (the replacement found nothing registered to cut). The period closes at the
    /// replacement (its end plus the grace), as `simulate` closes it, not a month later.
    static func subscriptionReplacementRace(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        try await ledger.purchase("cus_r", "100.00")
        // 2026-11-02T10:00Z: metered, 10.00 at once.
        try await settlement.subscribe(consumer: "cus_r", plan: "metered", id: "sub_r1")
        // 2026-12-10: the replacing server's transaction (no clock has charged the 2026-12-02 period yet).
        let replacedAt = instant("2026-12-10T00:00:00Z")
        ledger.clock.set(replacedAt)
        let receipt = try await ledger.backend.subscribe(SubscribeCommand(id: "sub_r2", consumer: "cus_r", plan: "metered-max", agent: "agt_metered",
                                                                         unit: .month, at: replacedAt, now: replacedAt))
        #expect(receipt.created && receipt.replaced?.endsAt == replacedAt)
        // The other server's clock run, with what it read before: the period open to its scheduled end, its fee.
        let december = instant("2026-12-02T10:00:00Z")
        let handle = try #require(settlement.catalog?.plan(id: "metered", at: december))
        try await settlement.chargePeriodStart(consumer: "cus_r", plan: handle, periodStart: december, periodEnd: instant("2027-01-02T10:00:00Z"))
        // The clocks go on: metered-max's first fee (30.00); the first period closes (its end + 1h passed), the cut one not yet.
        let first = try await settlement.runClock(at: replacedAt)
        #expect(first.closes.map(\.start) == [instant("2026-11-02T10:00:00Z")])
        // An hour after the replacement: the cut period closes, ending there.
        let cut = try await settlement.runClock(at: instant("2026-12-10T01:00:00Z"))
        #expect(cut.closes.map(\.start) == [december] && cut.closes.map(\.end) == [replacedAt])
        let record = try await ledger.backend.periodCloses().first { $0.start == december && $0.consumer == "cus_r" }
        #expect(record?.end == replacedAt && record?.isClosed == true)
        // 100.00 - 10.00 - 10.00 - 30.00: each fee once.
        #expect(try await ledger.balance("cus_r").available == money("50.00"))
        let fees = try await ledger.backend.chargeRecords(ChargeQuery(consumer: "cus_r")).filter { $0.kind == .fee }
        #expect(fees.map(\.billed) == [money("10.00"), money("10.00"), money("30.00")])
        try await ledger.expectVerified()
    }
}
