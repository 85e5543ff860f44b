import Synchronization
import Tariff
import TariffSettlement
import Testing

// Payouts from the ledger (settlement.md, "Money that reconciles"): late lines, per-creator
// refusals, the currency's minor unit, and random interleavings of settles and payout runs.

extension SettlementConformance {
    public static let payoutScenarios: [Scenario] = [
        Scenario(name: "payouts: a late line in a paid week is paid by the next run, exactly once", body: latePayoutLine),
        Scenario(name: "payouts: the rail refuses one creator of five; four are paid, the fifth is failed, owed and paid next run", body: refusedCreator),
        Scenario(name: "payouts: floored to whole yen before anything is recorded", body: yenPayouts),
        Scenario(name: "payouts: a reversed transfer goes back to earnings and holds the creator until released", body: reversedTransfer),
    ]

    static func day(_ text: String) -> CivilDate { Timestamp(date: text)!.civilDate }
    static func instant(_ text: String) -> Timestamp { Timestamp(rfc3339: text)! }

    static func latePayoutLine(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        let rail = RefusingRail()
        try await ledger.purchase("cus_l", "500.00")
        // Three flat calls (7.00, 5.60 to acct_flat) on Tuesday of the week of 2026-11-02: 16.80.
        for index in 0..<3 {
            try await ledger.reserve("exe_w1_\(index)", "cus_l", plan: "flat")
            try await ledger.settle("exe_w1_\(index)", endedAt: instant("2026-11-03T12:00:00Z"))
        }
        ledger.clock.set(instant("2026-11-11T09:00:00Z"))
        let first = try await settlement.executePayouts(week: day("2026-11-02"), rail: rail)
        #expect(first.map(\.creator) == ["acct_flat"] && first.map(\.amount) == [money("16.80")] && first.map(\.status) == [.paid])

        // A late settle dated Wednesday 2026-11-04, in the week already paid (5.60), and two calls in
        // the week of 2026-11-09 (11.20).
        try await ledger.reserve("exe_late", "cus_l", plan: "flat")
        try await ledger.settle("exe_late", endedAt: instant("2026-11-04T08:00:00Z"))
        for index in 0..<2 {
            try await ledger.reserve("exe_w2_\(index)", "cus_l", plan: "flat")
            try await ledger.settle("exe_w2_\(index)", endedAt: instant("2026-11-10T12:00:00Z"))
        }
        // The paid week keeps its record (16.80, paid); 22.40 earned by its end, 5.60 of it still owed.
        let paidWeek = try await settlement.executePayouts(week: day("2026-11-02"), rail: rail)
        #expect(paidWeek.map(\.amount) == [money("16.80")] && paidWeek.map(\.status) == [.paid])
        #expect(paidWeek.map(\.earnings) == [money("22.40")] && paidWeek.map(\.carried) == [money("5.60")])
        #expect(rail.paid.count == 1)

        // The next week's run pays the late 5.60 with the week's 11.20: 22.40 + 11.20 - 16.80 = 16.80.
        #expect(try await settlement.payouts(week: day("2026-11-09")).map(\.status) == [.due])
        ledger.clock.set(instant("2026-11-18T09:00:00Z"))
        let next = try await settlement.executePayouts(week: day("2026-11-09"), rail: rail)
        #expect(next.map(\.earnings) == [money("11.20")] && next.map(\.amount) == [money("16.80")] && next.map(\.carried) == [.zero])
        // Exactly once: every rerun, of either week, sends nothing more.
        _ = try await settlement.executePayouts(week: day("2026-11-09"), rail: rail)
        _ = try await settlement.executePayouts(week: day("2026-11-02"), rail: rail)
        #expect(rail.paid.map(\.idempotencyKey) == ["payout:acct_flat:2026-11-02", "payout:acct_flat:2026-11-09"])
        #expect(rail.paid.map(\.amount) == [money("16.80"), money("16.80")])
        // 6 calls x 5.60 = 33.60 earned = 33.60 paid + 0 owed.
        let snapshot = try await ledger.backend.snapshot()
        #expect(snapshot.balances[Account(.paidOut, "acct_flat")] == 33_600_000 && snapshot.balances[Account(.earnings, "acct_flat")] == 0)
    }

    /// Five creators at 12.50 a call (10.00 to the creator), minimum 10.00.
    static let fiveCreators: CompiledCatalog = {
        var sources = [CatalogSource(path: "rules/rules.yaml", text: """
            metering:
              standard:
                weights: { cpu_ms: 0.001 }
            splits:
              standard: { creator: 80%, platform: 15%, processing: 5% }
            payouts:
              week_starts: monday
              timezone: UTC
              pay_on: wednesday
              minimum: 10.00
            reservation: 1.00
            """, kind: .rules)]
        for index in 1...5 {
            sources.append(CatalogSource(path: "plans/c\(index).yaml", text: """
                plan: c\(index)
                agent: agt_c\(index)
                creator: acct_c\(index)
                currency: USD
                model: per_call
                per_call:
                  fee: 12.50
                """, kind: .plan))
        }
        guard let catalog = CatalogLoader.compile(sources: sources).catalog else { fatalError("the five-creator catalog does not compile") }
        return catalog
    }()

    static func refusedCreator(_ ledger: TestLedger) async throws {
        let settlement = Settlement(backend: ledger.backend, catalog: fiveCreators, clock: ledger.clock)
        let at = instant("2026-11-03T09:00:00Z")
        _ = try await settlement.purchase(consumer: "cus_five", amount: money("100.00"), idempotencyKey: "buy-five")
        for index in 1...5 {
            let execution = "exe_c\(index)"
            try await settlement.reserve(ReservationRequest(execution: execution, consumer: "cus_five", plan: fiveCreators.plan(id: "c\(index)", at: at)!))
            try await settlement.settle(SettlementRequest(execution: execution, meters: MeterReadings(), endedAt: at))
        }
        ledger.clock.set(instant("2026-11-11T09:00:00Z"))
        let reason = "Your destination account needs to have at least one of the following capabilities enabled: transfers"
        let rail = RefusingRail(refusing: ["acct_c3": reason])
        let lines = try await settlement.executePayouts(week: day("2026-11-02"), rail: rail)
        #expect(lines.map(\.creator) == (1...5).map { "acct_c\($0)" })
        #expect(lines.map(\.status) == [.paid, .paid, .failed, .paid, .paid])
        #expect(lines.map(\.amount) == Array(repeating: money("10.00"), count: 5))
        #expect(lines[2].failure?.contains(reason) == true && lines[2].carried == money("10.00"))
        #expect(rail.paid.map(\.destination) == ["acct_c1", "acct_c2", "acct_c4", "acct_c5"])
        // The refused 10.00 went back to acct_c3's earnings by a compensating entry.
        let back = try await ledger.entries(of: "payout-failed:payout:acct_c3:2026-11-02")
        #expect(back.map(\.amount) == [money("10.00")])
        #expect(back.map(\.debit) == [Account(.paidOut, "acct_c3")] && back.map(\.credit) == [Account(.earnings, "acct_c3")])
        var snapshot = try await ledger.backend.snapshot()
        #expect(snapshot.balances[Account(.earnings, "acct_c3")] == 10_000_000 && snapshot.balances[Account(.paidOut, "acct_c3")] == 0)
        // The same week again: the failed record is kept; nothing is sent.
        #expect(try await settlement.executePayouts(week: day("2026-11-02"), rail: rail).map(\.status) == [.paid, .paid, .failed, .paid, .paid])
        #expect(rail.paid.count == 4)

        // The account works now: the next week's run pays acct_c3 its 10.00 (it had no line that week).
        rail.accept("acct_c3")
        ledger.clock.set(instant("2026-11-18T09:00:00Z"))
        let next = try await settlement.executePayouts(week: day("2026-11-09"), rail: rail)
        #expect(next.map(\.creator) == ["acct_c3"] && next.map(\.amount) == [money("10.00")] && next.map(\.status) == [.paid])
        #expect(rail.paid.map(\.idempotencyKey).last == "payout:acct_c3:2026-11-09" && rail.paid.count == 5)
        snapshot = try await ledger.backend.snapshot()
        #expect(snapshot.balances[Account(.earnings, "acct_c3")] == 0 && snapshot.balances[Account(.paidOut, "acct_c3")] == 10_000_000)
    }

    static func yenPayouts(_ ledger: TestLedger) async throws {
        let jpy = Currency(code: "JPY")!
        let backend = try await ledger.factory.makeBackend(jpy)
        var sources = [CatalogSource(path: "rules/rules.yaml", text: """
            metering:
              standard:
                weights: { cpu_ms: 0.001 }
            splits:
              standard: { creator: 80%, platform: 15%, processing: 5% }
            """, kind: .rules)]
        sources.append(CatalogSource(path: "plans/yen.yaml", text: """
            plan: yen
            agent: agt_yen
            creator: acct_yen
            currency: JPY
            model: per_call
            per_call:
              fee: 333
            """, kind: .plan))
        let catalog = try #require(CatalogLoader.compile(sources: sources).catalog)
        let settlement = Settlement(backend: backend, catalog: catalog, clock: ledger.clock)
        let at = instant("2026-11-03T09:00:00Z")
        _ = try await settlement.purchase(consumer: "cus_yen", amount: money("1000"), idempotencyKey: "buy-yen")
        try await settlement.reserve(ReservationRequest(execution: "exe_yen", consumer: "cus_yen", plan: catalog.plan(id: "yen", at: at)!))
        try await settlement.settle(SettlementRequest(execution: "exe_yen", meters: MeterReadings(), endedAt: at))
        ledger.clock.set(instant("2026-11-11T09:00:00Z"))
        // 80% of 333 yen = 266.4 yen: 266 paid (whole yen, before anything is recorded), 0.4 owed.
        #expect(try await settlement.payouts(week: day("2026-11-02")).map(\.amount) == [money("266")])
        let rail = RefusingRail()
        let lines = try await settlement.executePayouts(week: day("2026-11-02"), rail: rail)
        #expect(lines.map(\.amount) == [money("266")] && lines.map(\.carried) == [money("0.4")] && lines.map(\.status) == [.paid])
        #expect(try rail.paid.map { try $0.minorUnits() } == [266])
        #expect(try await backend.snapshot().payouts.map(\.amount) == [money("266")])
        let report = try await settlement.verify()
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }
}

extension SettlementConformance {
    static func reversedTransfer(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        let rail = RefusingRail()
        try await ledger.purchase("cus_rv", "100.00")
        // Two flat calls in the week of 2026-11-02: 11.20 to acct_flat, paid on 2026-11-11.
        for index in 0..<2 {
            try await ledger.reserve("exe_rv_\(index)", "cus_rv", plan: "flat")
            try await ledger.settle("exe_rv_\(index)", endedAt: instant("2026-11-03T12:00:00Z"))
        }
        ledger.clock.set(instant("2026-11-11T09:00:00Z"))
        #expect(try await settlement.executePayouts(week: day("2026-11-02"), rail: rail).map(\.status) == [.paid])
        // Stripe reverses the whole transfer: 11.20 goes back to earnings, once however often the event comes; acct_flat is held.
        let key = "payout:acct_flat:2026-11-02"
        for _ in 0..<2 { try await settlement.reversePayout(key: key, reversedTotal: money("11.20"), transfer: "tr_1") }
        let back = try await ledger.entries(of: "payout-reversed:" + key)
        #expect(back.map(\.amount) == [money("11.20")] && back.map(\.credit) == [Account(.earnings, "acct_flat")])
        #expect(try await settlement.creatorHolds().map(\.creator) == ["acct_flat"])
        #expect(try await ledger.backend.snapshot().payouts.first?.returned == money("11.20"))
        try await ledger.expectRefused(.invalidInput, "a reversal of no payout") {
            try await settlement.reversePayout(key: "payout:acct_flat:2026-11-09", reversedTotal: money("1.00"), transfer: "tr_2")
        }

        // Two more calls in the week of 2026-11-09: 22.40 owed, but the creator is held: nothing is sent.
        for index in 2..<4 {
            try await ledger.reserve("exe_rv_\(index)", "cus_rv", plan: "flat")
            try await ledger.settle("exe_rv_\(index)", endedAt: instant("2026-11-10T12:00:00Z"))
        }
        ledger.clock.set(instant("2026-11-18T09:00:00Z"))
        let held = try await settlement.executePayouts(week: day("2026-11-09"), rail: rail)
        #expect(held.map(\.status) == [.held] && held.map(\.amount) == [.zero] && held.map(\.carried) == [money("22.40")])
        #expect(rail.paid.count == 1)
        // Released by an admin: the week's run pays the 22.40.
        #expect(try await settlement.releaseCreator("acct_flat"))
        #expect(try await settlement.releaseCreator("acct_flat") == false)
        let paid = try await settlement.executePayouts(week: day("2026-11-09"), rail: rail)
        #expect(paid.map(\.status) == [.paid] && paid.map(\.amount) == [money("22.40")] && paid.map(\.carried) == [.zero])
        #expect(rail.paid.map(\.amount) == [money("11.20"), money("22.40")])
    }
}

/// A payment rail that records what it paid (one transfer per key, as a real rail dedups) and
/// refuses the transfers of some destinations, the way Stripe refuses an account that cannot
/// receive transfers (`rail_rejected`, a definitive refusal).
public final class RefusingRail: PaymentRail {
    private let state: Mutex<(refusing: [String: String], paid: [PayoutTransfer], refused: [PayoutTransfer])>

    public init(refusing: [String: String] = [:]) { state = Mutex((refusing, [], [])) }

    /// Transfers that went through, in order.
    public var paid: [PayoutTransfer] { state.withLock { $0.paid } }
    /// Transfers refused, in order.
    public var refused: [PayoutTransfer] { state.withLock { $0.refused } }

    /// The destination's account works from now on.
    public func accept(_ destination: String) { _ = state.withLock { $0.refusing.removeValue(forKey: destination) } }
    public func refuse(_ destination: String, reason: String) { state.withLock { $0.refusing[destination] = reason } }

    public func send(_ transfer: PayoutTransfer) async throws -> String {
        _ = try transfer.minorUnits()
        try state.withLock { state in
            if let reason = state.refusing[transfer.destination] {
                state.refused.append(transfer)
                throw SettlementError(SettlementError.Code(rawValue: "rail_rejected"), "the rail refused \(transfer.idempotencyKey): \(reason)")
            }
            if !state.paid.contains(where: { $0.idempotencyKey == transfer.idempotencyKey }) { state.paid.append(transfer) }
        }
        return "ref:" + transfer.idempotencyKey
    }
}

extension SettlementConformance {
    /// What one random interleaving did, for the caller to require a minimum over its seeds.
    public struct PayoutInterleavingCounts: Sendable, Hashable, CustomStringConvertible {
        public init() {}
        public var settles = 0, lateSettles = 0, runs = 0, payouts = 0, failed = 0
        public var description: String { "\(settles) settles, \(lateSettles) late, \(runs) runs, \(payouts) payouts, \(failed) failed" }
        public mutating func add(_ other: PayoutInterleavingCounts) {
            settles += other.settles; lateSettles += other.lateSettles; runs += other.runs; payouts += other.payouts; failed += other.failed
        }
    }

    /// Settles dated now, late settles dated in earlier (maybe already paid) weeks, SLA credits
    /// after the fact, clock jumps, refusals and payout runs of any ended week, interleaved at
    /// random from `seed`. After every run, for every creator, `paid out (net) + owed = earnings`
    /// to the micro-unit, every key was sent at most once and `verify` passes; at the end a run of a
    /// week past every line leaves each creator owing less than the minimum (nothing lost).
    @discardableResult
    public static func payoutInterleaving(_ factory: BackendFactory, seed: UInt64, operations: Int = 40) async throws -> PayoutInterleavingCounts {
        let ledger = try await TestLedger.make(factory)
        let settlement = ledger.settlement
        var random = SplitMix64(seed: seed)
        var counts = PayoutInterleavingCounts()
        var closes = 0
        let rail = RefusingRail()
        let firstWeek = instant("2026-11-02T00:00:00Z")
        let weekNanoseconds: Int64 = 7 * 86_400 * 1_000_000_000
        try await ledger.purchase("cus_pi", "100000.00")

        func check(_ when: String) async throws {
            let snapshot = try await ledger.backend.snapshot()
            var earned: [String: Int128] = [:], net: [String: Int128] = [:]
            for charge in snapshot.charges { earned[charge.creator, default: 0] += Int128(charge.split.creator.micros) }
            for payout in snapshot.payouts { net[payout.creator, default: 0] += Int128(payout.netAmount.micros) }
            for creator in Set(earned.keys).union(net.keys) {
                let owed = snapshot.balances[Account(.earnings, creator)] ?? 0
                #expect((net[creator] ?? 0) + owed == (earned[creator] ?? 0), "\(when), seed \(seed): \(creator)")
                // What the rail moved for the creator is what the ledger says it paid, net.
                let sent = rail.paid.filter { $0.destination == creator }.reduce(Int128(0)) { $0 + Int128($1.amount.micros) }
                #expect(sent == (net[creator] ?? 0), "\(when), seed \(seed): \(creator) was sent \(sent)")
            }
            let keys = rail.paid.map(\.idempotencyKey)
            #expect(Set(keys).count == keys.count, "\(when), seed \(seed): a key was sent twice")
            let report = try await settlement.verify()
            #expect(report.passed, "\(when), seed \(seed): \(report.invariants.filter { !$0.holds })")
        }

        for step in 0..<operations {
            let now = ledger.clock.now()
            switch random.next() % 11 {
            case 0, 1, 2:
                // A run dated now: a flat call (5.60 to acct_flat) or a metered one.
                let plan = random.next() % 2 == 0 ? "flat" : "metered"
                try await ledger.reserve("exe_\(step)", "cus_pi", plan: plan)
                try await ledger.settle("exe_\(step)", cpuMilliseconds: Int64(random.next() % 30_000))
                counts.settles += 1
            case 3, 4:
                // A late settle: dated anywhere from the first week to now, often in a paid week.
                let span = max(1, now.nanosecondsSinceEpoch - firstWeek.nanosecondsSinceEpoch)
                let dated = Timestamp(nanosecondsSinceEpoch: firstWeek.nanosecondsSinceEpoch + Int64(random.next() % UInt64(span)))
                try await ledger.reserve("exe_\(step)", "cus_pi", plan: random.next() % 3 == 0 ? "ent" : "flat")
                try await ledger.settle("exe_\(step)", cpuMilliseconds: Int64(random.next() % 200_000), failed: random.next() % 4 == 0, endedAt: dated)
                counts.lateSettles += 1
            case 5:
                // Period lines of the enterprise plan: the fee, then the shortfall and an SLA credit
                // (negative creator shares, maybe after the creator was paid: a debt netted later).
                // The enterprise runs are priced in the period from 2026-11-01 (TestLedger): its end lines
                // see their failures. Dated at most 2026-11-29, before the final run's week ends.
                // A period closes once: the first close is the one the runs are priced in (later
                // enterprise runs dated in it are late: adjustment lines); later ones are periods of their own.
                let start = TestLedger.periodStart.adding(nanoseconds: closes == 0 ? 0 : Int64(step))!
                closes += 1
                let end = start.adding(nanoseconds: Int64(random.next() % 4 + 1) * weekNanoseconds)!
                try await settlement.chargePeriodStart(consumer: "cus_pi", plan: ledger.plan("ent"), periodStart: start, idempotencyKey: "fee-\(step)")
                try await settlement.chargePeriodEnd(consumer: "cus_pi", plan: ledger.plan("ent"), periodStart: start, periodEnd: end,
                                                     idempotencyKey: "end-\(step)")
            case 6, 10:
                ledger.clock.advance(by: .seconds(Int64(random.next() % (96 * 3_600)) + 1))
            case 7:
                // A creator's account refuses transfers for a while, or works again.
                let creator = ["acct_flat", "acct_metered", "acct_ent"][Int(random.next() % 3)]
                if random.next() % 2 == 0 { rail.refuse(creator, reason: "account closed") } else { rail.accept(creator) }
            default:
                // A payout run of any week whose pay date (the Wednesday after it, 9 days after its
                // Monday) has come by now: a run may be executed from the pay date on.
                let ended = (now.nanosecondsSinceEpoch - firstWeek.nanosecondsSinceEpoch - 2 * weekNanoseconds / 7) / weekNanoseconds
                guard ended > 0 else { continue }
                let week = Timestamp(nanosecondsSinceEpoch: firstWeek.nanosecondsSinceEpoch + Int64(random.next() % UInt64(ended)) * weekNanoseconds)
                let lines = try await settlement.executePayouts(week: week.civilDate, rail: rail)
                counts.runs += 1
                counts.failed += lines.filter { $0.status == .failed }.count
                try await check("after the run of \(week.civilDate) at step \(step)")
            }
        }
        // Every account works; a run of a week past every line pays what is owed.
        for creator in ["acct_flat", "acct_metered", "acct_ent"] { rail.accept(creator) }
        let now = ledger.clock.now()
        // The week holding now, and at least the week of 2026-11-30 (past every period line).
        let weeks = max((now.nanosecondsSinceEpoch - firstWeek.nanosecondsSinceEpoch) / weekNanoseconds, 4)
        let last = Timestamp(nanosecondsSinceEpoch: firstWeek.nanosecondsSinceEpoch + weeks * weekNanoseconds)
        ledger.clock.set(last.adding(nanoseconds: 2 * weekNanoseconds)!)
        _ = try await settlement.executePayouts(week: last.civilDate, rail: rail)
        try await check("after the final run")
        let snapshot = try await ledger.backend.snapshot()
        for creator in ["acct_flat", "acct_metered", "acct_ent"] {
            // Below the 10.00 minimum (or a debt) is all that may stay owed.
            #expect((snapshot.balances[Account(.earnings, creator)] ?? 0) < 10_000_000, "seed \(seed): \(creator) is still owed")
        }
        counts.payouts = snapshot.payouts.count
        return counts
    }
}
