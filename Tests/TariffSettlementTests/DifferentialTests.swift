import Foundation
import PropertyBased
import Tariff
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// Issue 14's differential test on the two backends that need no server (the PostgreSQL suite
/// runs the same sequences through all three): random operation sequences with faults (a crash
/// between two steps as a reopen of the file, a rail that times out after applying, answers lost
/// and sent again), every answer and the full ledger compared after each step.
///
/// `TARIFF_DIFFERENTIAL_RUNS` sets how many sequences (default 12, of 10 to 40 steps: a few
/// seconds in a debug build); e.g. `TARIFF_DIFFERENTIAL_RUNS=300` for a long run.
/// `TARIFF_DIFFERENTIAL_TRACE=1` prints each step and its answer.
@Suite("differential: memory and SQLite (issue 14)")
struct DifferentialTests {
    static var runs: Int { ProcessInfo.processInfo.environment["TARIFF_DIFFERENTIAL_RUNS"].flatMap(Int.init) ?? 12 }

    static func sqlite() -> Differential.Subject {
        let path = Backends.temporaryLedgerPath()
        return Differential.Subject(name: "sqlite", open: { try SQLiteBackend(path: path, currency: TestLedger.usd) })
    }

    @Test("random sequences with faults: every answer and every snapshot equal after each step")
    func differential() async throws {
        let total = Differential.Counts.Total()
        await propertyCheck(count: Self.runs, input: Gen.int(in: 0...Int.max).array(of: 10...40)) { words in
            let counts = try await Differential.run(words, subjects: [.memory(), Self.sqlite()])
            total.add(counts)
        }
        let counts = total.value
        // The sequences did something: most steps applied, faults among them, money paid out.
        // Payout runs that transfer are rare in random sequences (5 transfers in 150 sequences): the
        // fixed scenario below makes sure of them.
        #expect(counts.applied >= counts.steps / 3 && counts.faults >= Self.runs, "\(counts)")
    }

    @Test("a fixed sequence through live subscriptions: subscribes, a replacement, cancels, the clock over two months with a crash and cut connections")
    func subscriptionScenario() async throws {
        let counts = try await Differential.run(steps: Differential.subscriptionSteps, subjects: [.memory(), Self.sqlite()])
        #expect(counts.steps == Differential.subscriptionSteps.count, "\(counts)")
        // cus_a: metered (replaced), ent, metered-max; cus_b: metered-max (canceled). Closed: cus_a's
        // first metered period (cut at the replacement), ent's November and December periods, and
        // metered-max's first periods of cus_a and cus_b (their ends + 1h passed by the last ticks).
        #expect(counts.subscriptions == 4 && counts.endedSubscriptions == 2 && counts.closedPeriods >= 4, "\(counts)")
    }

    @Test("a fixed sequence through period close: closes, a crash and a retry, late runs adjusted, the SLA credit recomputed")
    func closeScenario() async throws {
        let subjects: [Differential.Subject] = [.memory(), Self.sqlite()]
        let counts = try await Differential.run(steps: Differential.closeSteps, subjects: subjects)
        #expect(counts.steps == Differential.closeSteps.count, "\(counts)")
        // Three periods closed by closeDue (cus_a's ent and metered, cus_b's ent); exe_3 credits back
        // shortfall and exe_5 (failed) changes the SLA credit of cus_a's ent period; exe_4 and exe_6 adjust theirs.
        #expect(counts.closedPeriods == 3 && counts.adjustments >= 3, "\(counts)")
    }

    @Test("a fixed sequence: payouts with each rail fault, a late settle into a paid week, crashes and retries")
    func fixedScenario() async throws {
        let steps: [DifferentialStep] = [
            .purchase(consumer: "cus_a", cents: 5_000, key: "buy_1"), .purchase(consumer: "cus_b", cents: 5_000, key: "buy_2"),
            .purchase(consumer: "cus_a", cents: 5_000, key: "buy_1"), .purchase(consumer: "cus_a", cents: 7_000, key: "buy_1"),
            .railPurchase(consumer: "cus_c", cents: 3_000, key: "card_1", timesOut: true),
            .reserve(execution: "exe_1", consumer: "cus_a", plan: "flat", longHold: false), .settle(execution: "exe_1", cpuMilliseconds: 0, failed: false, daysLate: 0),
            .reserve(execution: "exe_2", consumer: "cus_b", plan: "flat", longHold: false), .crash,
            .retry(.settle(execution: "exe_2", cpuMilliseconds: 0, failed: false, daysLate: 0)),
            .reserve(execution: "exe_3", consumer: "cus_c", plan: "metered", longHold: false), .meter(execution: "exe_3", cpuMilliseconds: 30_000),
            .settle(execution: "exe_3", cpuMilliseconds: 30_000, failed: false, daysLate: 0), .periodStart(consumer: "cus_c", plan: "metered"),
            .reserve(execution: "exe_4", consumer: "cus_a", plan: "flat", longHold: false), .release(execution: "exe_4"),
            .reserve(execution: "exe_5", consumer: "cus_b", plan: "ent", longHold: false), .advance(seconds: 1_200, sweep: true),
            .settle(execution: "exe_5", cpuMilliseconds: 0, failed: false, daysLate: 0),
            // Past the week of 2026-11-02 (11.20 to acct_flat): paid through a rail that times out after applying.
            .advance(seconds: 8 * 86_400, sweep: true), .payouts(weeksBack: 0, fault: .timeoutAfterApplying),
            .payouts(weeksBack: 0, fault: .none),
            // A settle dated in the paid week, then the next week's run, which stops before sending (a crash) and is run again.
            .reserve(execution: "exe_6", consumer: "cus_a", plan: "flat", longHold: false), .settle(execution: "exe_6", cpuMilliseconds: 0, failed: false, daysLate: 8),
            .reserve(execution: "exe_7", consumer: "cus_b", plan: "flat", longHold: false), .settle(execution: "exe_7", cpuMilliseconds: 0, failed: false, daysLate: 0),
            .reserve(execution: "exe_8", consumer: "cus_a", plan: "flat", longHold: false), .settle(execution: "exe_8", cpuMilliseconds: 0, failed: false, daysLate: 0),
            .advance(seconds: 7 * 86_400, sweep: false), .payouts(weeksBack: 0, fault: .crashBeforeSending),
            .periodEnd(consumer: "cus_c", plan: "metered"), .cutConnections, .retry(.periodEnd(consumer: "cus_c", plan: "metered")),
        ]
        let counts = try await Differential.run(steps: steps, subjects: [.memory(), Self.sqlite()])
        #expect(counts.steps == steps.count, "\(counts)")
        // At least acct_flat's two weeks (11.20, then the next week's lines) reached the rail.
        #expect(counts.payoutsSent >= 2, "\(counts)")
    }
}
