import Tariff
import TariffSettlement
import Synchronization
import Testing

/// The conformance suite: one body of tests that every settlement backend runs (in-memory, SQLite,
/// and PostgreSQL or a third party's later). Each scenario builds a fresh ledger from a factory,
/// checks values worked out by hand (the comments show the arithmetic), and ends with `verify`.
public enum SettlementConformance {
    public struct Scenario: Sendable, CustomTestStringConvertible {
        public let name: String
        let body: @Sendable (TestLedger) async throws -> Void

        public var testDescription: String { name }

        public func run(_ factory: BackendFactory) async throws {
            let ledger = try await TestLedger.make(factory)
            try await body(ledger)
            try await ledger.expectVerified()
        }
    }

    public static let scenarios: [Scenario] = [
        Scenario(name: "purchase and balance", body: purchaseAndBalance),
        Scenario(name: "reserve then settle charges the price and gives back the rest", body: reserveAndSettle),
        Scenario(name: "a charge beyond held + available is partly uncollected", body: uncollected),
        Scenario(name: "concurrent settles never both consume the last allowance", body: lastAllowance),
        Scenario(name: "meter samples extend the hold, then answer exhausted", body: meterSamples),
        Scenario(name: "release gives the hold back in full", body: release),
        Scenario(name: "expiry with an injected clock", body: expiry),
        Scenario(name: "idempotency: retries return the first result, other parameters conflict", body: idempotency),
        Scenario(name: "16 concurrent settles with one key write one set of entries", body: concurrentSettles),
        Scenario(name: "a recorded refusal is the execution's first result", body: recordedRefusal),
        Scenario(name: "race: 64 tasks x 200 reservations of 7.00 on 10,000.00", body: race),
        Scenario(name: "bad inputs are refused and change nothing", body: badInputs),
        Scenario(name: "period fees and period-end lines without a hold", body: periodLines),
        Scenario(name: "usage grouped by agent, consumer, plan and day", body: usage),
        Scenario(name: "payouts: listed, executed once, resumed after a stop half way", body: payouts),
    ] + payoutScenarios + reversalScenarios + refundScenarios + closeScenarios + subscriptionScenarios

    static func money(_ text: String) -> Money { TestLedger.money(text) }

    // MARK: Credits

    static func purchaseAndBalance(_ ledger: TestLedger) async throws {
        let first = try await ledger.purchase("cus_a", "100.00")
        #expect(first.available == money("100.00"))
        let second = try await ledger.purchase("cus_a", "42.50")
        // 100.00 + 42.50
        #expect(second.available == money("142.50"))
        let balance = try await ledger.balance("cus_a")
        #expect(balance == Balance(consumer: "cus_a", currency: TestLedger.usd, available: money("142.50"), reserved: .zero))
        // One purchases -> available entry per purchase.
        let entries = try await ledger.backend.snapshot().entries
        #expect(entries.map(\.amount) == [money("100.00"), money("42.50")])
        #expect(entries.allSatisfy { $0.debit == Account(.purchases, "cus_a") && $0.credit == Account(.available, "cus_a") })
    }

    // MARK: Executions

    static func reserveAndSettle(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_a", "100.00")
        // The subscription's `reserve: 2.00` is the estimate.
        let hold = try await ledger.reserve("exe_1", "cus_a", plan: "metered")
        #expect(hold.amount == money("2.00"))
        #expect(hold.expiresAt == TestLedger.start.adding(nanoseconds: 15 * 60 * 1_000_000_000))
        #expect(try await ledger.balance("cus_a") == Balance(consumer: "cus_a", currency: TestLedger.usd, available: money("98.00"), reserved: money("2.00")))
        // 12,000 cpu_ms = 12 CU; 10 included, 2 over at 0.50 = 1.00; 80/15/5 = 0.80/0.15/0.05.
        let receipt = try await ledger.settle("exe_1", cpuMilliseconds: 12_000)
        #expect(receipt.computeUnits == ComputeUnits(millis: 12_000))
        #expect(receipt.billed == money("1.00") && receipt.charged == money("1.00") && receipt.uncollected == .zero)
        #expect(receipt.split == SplitShares(creator: money("0.80"), platform: money("0.15"), processing: money("0.05")))
        // 2.00 held - 1.00 charged.
        #expect(receipt.released == money("1.00"))
        // 100.00 - 1.00.
        #expect(try await ledger.balance("cus_a") == Balance(consumer: "cus_a", currency: TestLedger.usd, available: money("99.00"), reserved: .zero))
        let state = try await ledger.backend.periodState(PeriodKey(consumer: "cus_a", plan: "metered", start: TestLedger.periodStart))
        #expect(state.usedComputeUnits == ComputeUnits(millis: 12_000) && state.usageCharges == money("1.00") && state.executions == 1)
        // The allowance is used up: 3 CU more are all overage, 1.50.
        try await ledger.reserve("exe_2", "cus_a", plan: "metered")
        let second = try await ledger.settle("exe_2", cpuMilliseconds: 3_000)
        #expect(second.charged == money("1.50"))
        // 99.00 - 1.50.
        #expect(try await ledger.balance("cus_a").available == money("97.50"))
        // Settle entries: the hold back (2.00), then three shares out of available.
        let entries = try await ledger.entries(of: "settle:exe_1")
        #expect(entries.map(\.amount) == [money("2.00"), money("0.80"), money("0.15"), money("0.05")])
        #expect(entries.map(\.credit) == [Account(.available, "cus_a"), Account(.earnings, "acct_metered"), Account(.platform), Account(.processing)])
    }

    static func uncollected(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_b", "3.00")
        // Holds 2.00 of 3.00: 1.00 left available.
        try await ledger.reserve("exe_1", "cus_b", plan: "metered")
        // 20 CU: 10 over at 0.50 = 5.00 billed; held 2.00 + available 1.00 = 3.00 collected; 2.00 uncollected.
        let receipt = try await ledger.settle("exe_1", cpuMilliseconds: 20_000)
        #expect(receipt.billed == money("5.00") && receipt.charged == money("3.00") && receipt.uncollected == money("2.00"))
        // The 3.00 collected is split again: 2.40 / 0.45 / 0.15.
        #expect(receipt.split == SplitShares(creator: money("2.40"), platform: money("0.45"), processing: money("0.15")))
        #expect(receipt.released == .zero)
        #expect(try await ledger.balance("cus_b") == Balance(consumer: "cus_b", currency: TestLedger.usd, available: .zero, reserved: .zero))
        let uncollected = try await ledger.entries(of: "settle:exe_1").filter { $0.debit.kind == .uncollected }
        #expect(uncollected.map(\.amount) == [money("2.00")])
        // The period state counts the whole price (plans.md prices against what was billed).
        let state = try await ledger.backend.periodState(PeriodKey(consumer: "cus_b", plan: "metered", start: TestLedger.periodStart))
        #expect(state.usageCharges == money("5.00"))

        // A per-call plan with a hold below its fee (an explicit estimate): 1.00 held of 4.00, 3.00 left.
        // The 7.00 fee finds 1.00 + 3.00 = 4.00: charged 4.00 (3.20 / 0.60 / 0.20), 3.00 uncollected.
        try await ledger.purchase("cus_b2", "4.00")
        try await ledger.reserve("exe_2", "cus_b2", plan: "flat", estimate: "1.00")
        let perCall = try await ledger.settle("exe_2")
        #expect(perCall.billed == money("7.00") && perCall.charged == money("4.00") && perCall.uncollected == money("3.00"))
        #expect(perCall.split == SplitShares(creator: money("3.20"), platform: money("0.60"), processing: money("0.20")))
        #expect(try await ledger.balance("cus_b2") == Balance(consumer: "cus_b2", currency: TestLedger.usd, available: .zero, reserved: .zero))
        // And a hold above the fee gives the rest back: 9.00 held, 7.00 charged, 2.00 released.
        try await ledger.purchase("cus_b3", "9.00")
        try await ledger.reserve("exe_3", "cus_b3", plan: "flat", estimate: "9.00")
        let covered = try await ledger.settle("exe_3")
        #expect(covered.charged == money("7.00") && covered.uncollected == .zero && covered.released == money("2.00"))
        #expect(try await ledger.balance("cus_b3") == Balance(consumer: "cus_b3", currency: TestLedger.usd, available: money("2.00"), reserved: .zero))
    }

    static func lastAllowance(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_c", "50.00")
        try await ledger.reserve("exe_1", "cus_c", plan: "metered")
        try await ledger.reserve("exe_2", "cus_c", plan: "metered")
        // Two runs of 6 CU each against 10 CU included: whichever settles second finds 4 CU left,
        // so 2 CU are overage, 1.00 in total. Had both read the empty state, both would be free.
        async let first = ledger.settle("exe_1", cpuMilliseconds: 6_000)
        async let second = ledger.settle("exe_2", cpuMilliseconds: 6_000)
        let charges = try await [first.charged, second.charged]
        #expect(charges.sorted() == [.zero, money("1.00")])
        let state = try await ledger.backend.periodState(PeriodKey(consumer: "cus_c", plan: "metered", start: TestLedger.periodStart))
        #expect(state.usedComputeUnits == ComputeUnits(millis: 12_000) && state.executions == 2)
        // 50.00 - 1.00.
        #expect(try await ledger.balance("cus_c").available == money("49.00"))
    }

    static func meterSamples(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_m", "3.00")
        try await ledger.reserve("exe_m", "cus_m", plan: "metered")
        let at = ledger.clock.now()
        // 14 CU so far: 4 over, 2.00: the 2.00 hold covers it.
        var receipt = try await ledger.settlement.meter(execution: "exe_m", sample: MeterSample(at: at, meters: ledger.meters(cpuMilliseconds: 14_000)))
        #expect(receipt == MeterReceipt(held: money("2.00"), running: money("2.00"), exhausted: false))
        // 16 CU: 6 over, 3.00: the hold grows by 1.00, all that was available.
        receipt = try await ledger.settlement.meter(execution: "exe_m", sample: MeterSample(at: at, meters: ledger.meters(cpuMilliseconds: 16_000)))
        #expect(receipt == MeterReceipt(held: money("3.00"), running: money("3.00"), exhausted: false))
        #expect(try await ledger.balance("cus_m") == Balance(consumer: "cus_m", currency: TestLedger.usd, available: .zero, reserved: money("3.00")))
        // 18 CU: 4.00: 1.00 more is needed and none is available: exhausted, the hold stays 3.00.
        receipt = try await ledger.settlement.meter(execution: "exe_m", sample: MeterSample(at: at, meters: ledger.meters(cpuMilliseconds: 18_000)))
        #expect(receipt == MeterReceipt(held: money("3.00"), running: money("4.00"), exhausted: true))
        // Settled at 18 CU: 4.00 billed, 3.00 collected, 1.00 uncollected.
        let settled = try await ledger.settle("exe_m", cpuMilliseconds: 18_000)
        #expect(settled.charged == money("3.00") && settled.uncollected == money("1.00"))
        try await ledger.expectRefused(.idempotencyConflict, "a sample after the settle") {
            try await ledger.settlement.meter(execution: "exe_m", sample: MeterSample(at: at, meters: ledger.meters(cpuMilliseconds: 20_000)))
        }
    }

    static func release(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_r", "10.00")
        try await ledger.reserve("exe_r", "cus_r", plan: "flat")
        // 10.00 - 7.00 held.
        #expect(try await ledger.balance("cus_r").available == money("3.00"))
        let receipt = try await ledger.settlement.release(execution: "exe_r")
        #expect(receipt == ReleaseReceipt(execution: "exe_r", consumer: "cus_r", released: money("7.00")))
        #expect(try await ledger.balance("cus_r") == Balance(consumer: "cus_r", currency: TestLedger.usd, available: money("10.00"), reserved: .zero))
        let before = try await ledger.backend.snapshot()
        #expect(try await ledger.settlement.release(execution: "exe_r") == receipt)
        #expect(try await ledger.backend.snapshot() == before)
        try await ledger.expectRefused(.idempotencyConflict, "a settle after the release") { try await ledger.settle("exe_r") }
        try await ledger.expectRefused(.unknownReservation, "a release of nothing") { try await ledger.settlement.release(execution: "exe_none") }
    }

    static func expiry(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_e", "10.00")
        try await ledger.reserve("exe_e", "cus_e", plan: "flat")
        // One millisecond before the 15-minute TTL the 7.00 is still held.
        ledger.clock.advance(by: .seconds(15 * 60) - .milliseconds(1))
        #expect(try await ledger.balance("cus_e") == Balance(consumer: "cus_e", currency: TestLedger.usd, available: money("3.00"), reserved: money("7.00")))
        // At the TTL it is back.
        ledger.clock.advance(by: .milliseconds(1))
        #expect(try await ledger.balance("cus_e") == Balance(consumer: "cus_e", currency: TestLedger.usd, available: money("10.00"), reserved: .zero))
        // A late settle is refused and changes nothing.
        try await ledger.expectRefused(.reservationExpired, "a settle after the TTL") { try await ledger.settle("exe_e") }
        try await ledger.expectRefused(.reservationExpired, "a release after the TTL") { try await ledger.settlement.release(execution: "exe_e") }
        // The sweep writes the expiry (reserved -> available, dated at the expiry instant).
        #expect(try await ledger.settlement.expireHolds() == 1)
        let entries = try await ledger.entries(of: "expire:exe_e")
        #expect(entries.map(\.amount) == [money("7.00")])
        #expect(entries.first?.at == TestLedger.start.adding(nanoseconds: 15 * 60 * 1_000_000_000))
        #expect(try await ledger.backend.hold(execution: "exe_e")?.state == .expired)
        #expect(try await ledger.settlement.expireHolds() == 0)
        try await ledger.expectRefused(.reservationExpired, "a settle after the sweep") { try await ledger.settle("exe_e") }
        // The funds are usable again.
        try await ledger.reserve("exe_e2", "cus_e", plan: "flat")
        #expect(try await ledger.balance("cus_e").available == money("3.00"))
    }

    // MARK: Idempotency

    static func idempotency(_ ledger: TestLedger) async throws {
        let first = try await ledger.purchase("cus_i", "10.00", key: "order-1")
        let again = try await ledger.purchase("cus_i", "10.00", key: "order-1")
        #expect(again == first)
        // Still 10.00, not 20.00.
        #expect(try await ledger.balance("cus_i").available == money("10.00"))
        try await ledger.expectRefused(.idempotencyConflict, "the key with another amount") { try await ledger.purchase("cus_i", "20.00", key: "order-1") }
        try await ledger.expectRefused(.idempotencyConflict, "the key for another consumer") { try await ledger.purchase("cus_j", "10.00", key: "order-1") }

        let hold = try await ledger.reserve("exe_i", "cus_i", plan: "flat")
        #expect(try await ledger.reserve("exe_i", "cus_i", plan: "flat") == hold)
        try await ledger.expectRefused(.idempotencyConflict, "the execution id with another estimate") {
            try await ledger.reserve("exe_i", "cus_i", plan: "flat", estimate: "1.00")
        }
        let settled = try await ledger.settle("exe_i", endedAt: TestLedger.start)
        #expect(try await ledger.settle("exe_i", endedAt: TestLedger.start) == settled)
        try await ledger.expectRefused(.idempotencyConflict, "the settle with other meters") {
            try await ledger.settle("exe_i", cpuMilliseconds: 5, endedAt: TestLedger.start)
        }
        try await ledger.expectRefused(.idempotencyConflict, "a release after the settle") { try await ledger.settlement.release(execution: "exe_i") }
        // A reserve repeated after its settle still returns the first hold and changes nothing.
        let before = try await ledger.backend.snapshot()
        #expect(try await ledger.reserve("exe_i", "cus_i", plan: "flat") == hold)
        #expect(try await ledger.backend.snapshot() == before)

        let start = try await ledger.settlement.chargePeriodStart(consumer: "cus_i", plan: ledger.plan("metered"), periodStart: TestLedger.periodStart)
        #expect(try await ledger.settlement.chargePeriodStart(consumer: "cus_i", plan: ledger.plan("metered"), periodStart: TestLedger.periodStart) == start)
        // 10.00 - 7.00 (the flat fee) - 3.00 of the 10.00 fee (the rest uncollected).
        #expect(start.charged == money("3.00") && start.uncollected == money("7.00"))
    }

    static func concurrentSettles(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_s", "100.00")
        try await ledger.reserve("exe_s", "cus_s", plan: "flat")
        let end = ledger.clock.now()
        let receipts = try await withThrowingTaskGroup(of: SettleReceipt.self) { group in
            for _ in 0..<16 { group.addTask { try await ledger.settle("exe_s", endedAt: end) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(receipts.count == 16 && Set(receipts).count == 1)
        // One set of entries: the 7.00 hold back, then 5.60 / 1.05 / 0.35 (80/15/5 of 7.00).
        let entries = try await ledger.entries(of: "settle:exe_s")
        #expect(entries.map(\.amount) == [money("7.00"), money("5.60"), money("1.05"), money("0.35")])
        let snapshot = try await ledger.backend.snapshot()
        #expect(snapshot.charges.count == 1)
        // 100.00 - 7.00.
        #expect(try await ledger.balance("cus_s").available == money("93.00"))
    }

    static func recordedRefusal(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_f", "5.00")
        let flat = ledger.plan("flat")
        let request = ReservationRequest(execution: "exe_f", consumer: "cus_f", plan: flat, recordsRefusal: true)
        // 5.00 cannot hold the 7.00 fee: refused, and the refusal is kept (no money moves).
        let before = try await ledger.backend.snapshot()
        await #expect(throws: SettlementError.self) { try await ledger.settlement.reserve(request) }
        let after = try await ledger.backend.snapshot()
        #expect(after.entries == before.entries && after.consumers == before.consumers)
        #expect(after.holds.map(\.state) == [.refused])
        // A purchase later does not change the first result.
        try await ledger.purchase("cus_f", "10.00")
        do {
            try await ledger.settlement.reserve(request)
            Issue.record("the recorded refusal was not repeated")
        } catch let error as SettlementError {
            #expect(error.code == .insufficientCredits)
        }
        try await ledger.expectRefused(.insufficientCredits, "a settle of a refused execution") { try await ledger.settle("exe_f") }
        // An unknown consumer is recorded the same way.
        await #expect(throws: SettlementError.self) {
            try await ledger.settlement.reserve(ReservationRequest(execution: "exe_g", consumer: "cus_nobody", plan: flat, recordsRefusal: true))
        }
        #expect(try await ledger.backend.hold(execution: "exe_g")?.state == .refused)
        // 5.00 + 10.00, nothing held.
        #expect(try await ledger.balance("cus_f") == Balance(consumer: "cus_f", currency: TestLedger.usd, available: money("15.00"), reserved: .zero))
    }

    // MARK: The race

    static func race(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_race", "10000.00")
        let tasks = 64, attempts = 200
        let watching = ManualFlag()
        // A sampler reads the balance throughout: never negative, never more or less than the 10,000.00.
        let sampler = Task {
            var samples = 0
            while !watching.isSet || samples == 0 {
                let balance = try await ledger.balance("cus_race")
                #expect(balance.available >= .zero && balance.reserved >= .zero)
                #expect(balance.available.micros + balance.reserved.micros == 10_000_000_000)
                samples += 1
                await Task.yield()
            }
            return samples
        }
        let outcomes = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var succeeded = 0, refused = 0
                    for attempt in 0..<attempts {
                        do {
                            try await ledger.reserve("exe_\(task)_\(attempt)", "cus_race", plan: "flat")
                            succeeded += 1
                        } catch let error as SettlementError where error.code == .insufficientCredits {
                            refused += 1
                        }
                    }
                    return (succeeded, refused)
                }
            }
            return try await group.reduce(into: (0, 0)) { $0.0 += $1.0; $0.1 += $1.1 }
        }
        watching.set()
        let samples = try await sampler.value
        // floor(10,000.00 / 7.00) = 1,428 holds (9,996.00); 4.00 stays available.
        #expect(outcomes.0 == 1_428)
        #expect(outcomes.1 == tasks * attempts - 1_428)
        #expect(samples > 0)
        #expect(try await ledger.balance("cus_race") == Balance(consumer: "cus_race", currency: TestLedger.usd, available: money("4.00"), reserved: money("9996.00")))
        let snapshot = try await ledger.backend.snapshot()
        #expect(snapshot.holds.count == 1_428)
    }

    // MARK: Bad inputs

    static func badInputs(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_x", "10.00")
        let settlement = ledger.settlement
        let key300 = String(repeating: "k", count: 300)
        for (amount, what) in [(Money.zero, "zero"), (money("-1.00"), "negative"), (Money(micros: Int64.max), "Int64.max"),
                               (money("0.005"), "not whole cents"), (money("1000000000000.01"), "above the largest purchase (10^12)")] {
            try await ledger.expectRefused(.invalidAmount, "a \(what) purchase") {
                try await settlement.purchase(consumer: "cus_x", amount: amount, idempotencyKey: "bad-\(what)")
            }
        }
        try await ledger.expectRefused(.wrongCurrency, "a purchase in EUR") {
            try await settlement.purchase(consumer: "cus_x", amount: money("5.00"), currency: TestLedger.eur, idempotencyKey: "eur")
        }
        try await ledger.expectRefused(.invalidKey, "an empty key") { try await settlement.purchase(consumer: "cus_x", amount: money("5.00"), idempotencyKey: "") }
        try await ledger.expectRefused(.invalidKey, "a 300-character key") {
            try await settlement.purchase(consumer: "cus_x", amount: money("5.00"), idempotencyKey: key300)
        }
        try await ledger.expectRefused(.invalidKey, "a key with a newline") {
            try await settlement.purchase(consumer: "cus_x", amount: money("5.00"), idempotencyKey: "a\nb")
        }
        try await ledger.expectRefused(.invalidKey, "an empty consumer") { try await settlement.purchase(consumer: "", amount: money("5.00"), idempotencyKey: "k") }
        try await ledger.expectRefused(.unknownConsumer, "the balance of a stranger") { try await ledger.balance("cus_nobody") }
        try await ledger.expectRefused(.unknownConsumer, "a hold for a stranger") { try await ledger.reserve("exe_1", "cus_nobody", plan: "flat") }
        try await ledger.expectRefused(.insufficientCredits, "a hold beyond the balance") { try await ledger.reserve("exe_2", "cus_x", plan: "flat", estimate: "10.01") }
        try await ledger.expectRefused(.wrongCurrency, "a hold on a EUR plan") { try await ledger.reserve("exe_3", "cus_x", plan: "eur") }
        try await ledger.expectRefused(.invalidAmount, "a negative estimate") { try await ledger.reserve("exe_4", "cus_x", plan: "flat", estimate: "-1.00") }
        try await ledger.expectRefused(.invalidAmount, "an Int64.max estimate") {
            try await settlement.reserve(ReservationRequest(execution: "exe_5", consumer: "cus_x", plan: ledger.plan("flat"), estimate: Money(micros: Int64.max)))
        }
        try await ledger.expectRefused(.invalidKey, "an empty execution id") { try await ledger.reserve("", "cus_x", plan: "flat") }
        try await ledger.expectRefused(.invalidKey, "a 300-character execution id") { try await ledger.reserve(key300, "cus_x", plan: "flat") }
        try await ledger.expectRefused(.invalidInput, "a zero TTL") { try await ledger.reserve("exe_6", "cus_x", plan: "flat", ttl: .zero) }
        try await ledger.expectRefused(.invalidInput, "a TTL of 30 days") { try await ledger.reserve("exe_7", "cus_x", plan: "flat", ttl: .seconds(30 * 86_400)) }
        try await ledger.expectRefused(.unknownReservation, "a settle of nothing") { try await ledger.settle("exe_none") }
        try await ledger.expectRefused(.invalidKey, "a settle of an empty id") { try await ledger.settle("") }
        try await ledger.expectRefused(.wrongCurrency, "a EUR fee") {
            try await settlement.chargePeriodStart(consumer: "cus_x", plan: ledger.plan("eur"), periodStart: TestLedger.periodStart)
        }
        try await ledger.expectRefused(.invalidInput, "payouts of a Tuesday") {
            try await settlement.payouts(week: Timestamp(date: "2026-11-03")!.civilDate)
        }
        #expect(try await ledger.balance("cus_x").available == money("10.00"))
    }

    // MARK: Period lines

    static func periodLines(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement, ent = ledger.plan("ent")
        let periodEnd = Timestamp(rfc3339: "2026-12-01T00:00:00Z")!
        try await ledger.purchase("cus_p", "200.00")
        let fee = try await settlement.chargePeriodStart(consumer: "cus_p", plan: ent, periodStart: TestLedger.periodStart)
        #expect(fee.billed == money("100.00") && fee.charged == money("100.00") && fee.uncollected == .zero)
        // One execution of 100 CU at 0.10 = 10.00 (held: the catalog's default 1.00), and one failed (free, counted).
        try await ledger.reserve("exe_ok", "cus_p", plan: "ent")
        #expect(try await ledger.settle("exe_ok", cpuMilliseconds: 100_000).charged == money("10.00"))
        try await ledger.reserve("exe_failed", "cus_p", plan: "ent")
        #expect(try await ledger.settle("exe_failed", cpuMilliseconds: 100_000, failed: true).charged == .zero)
        // 200.00 - 100.00 - 10.00.
        #expect(try await ledger.balance("cus_p").available == money("90.00"))
        // Shortfall: 150.00 - (100.00 + 10.00) = 40.00. Availability 1/2 = 50% < 99%: credit
        // -10% x (110.00 + 40.00) = -15.00. Net 25.00, all collected (90.00 available).
        let end = try await settlement.chargePeriodEnd(consumer: "cus_p", plan: ent, periodStart: TestLedger.periodStart, periodEnd: periodEnd)
        #expect(end.billed == money("25.00") && end.charged == money("25.00") && end.uncollected == .zero)
        // 90.00 - 40.00 + 15.00.
        #expect(try await ledger.balance("cus_p").available == money("65.00"))
        let lines = try await ledger.backend.chargeRecords(ChargeQuery(consumer: "cus_p")).filter { $0.kind != .execution }
        #expect(lines.map(\.kind) == [.fee, .shortfall, .slaCredit])
        #expect(lines.map(\.datedAt) == [TestLedger.periodStart, periodEnd, periodEnd])
        // The credit's shares: 80/15/5 of -15.00.
        #expect(lines.last?.split == SplitShares(creator: money("-12.00"), platform: money("-2.25"), processing: money("-0.75")))

        // A fee beyond the balance: 100.00 billed, 65.00 collected, 35.00 uncollected; never negative.
        let next = try await settlement.chargePeriodStart(consumer: "cus_p", plan: ent, periodStart: periodEnd)
        #expect(next.charged == money("65.00") && next.uncollected == money("35.00"))
        #expect(try await ledger.balance("cus_p").available == .zero)
        // A fee before any purchase opens the consumer's accounts: all of it uncollected.
        let stranger = try await settlement.chargePeriodStart(consumer: "cus_new", plan: ledger.plan("metered"), periodStart: TestLedger.periodStart)
        #expect(stranger.charged == .zero && stranger.uncollected == money("10.00"))
    }

    // MARK: Reports

    static func usage(_ ledger: TestLedger) async throws {
        try await ledger.purchase("cus_u", "100.00")
        try await ledger.purchase("cus_v", "100.00")
        // Yesterday: two flat calls of cus_u (7.00 each), metered 12 CU for cus_v (1.00 overage).
        let yesterday = ledger.clock.now().adding(nanoseconds: -86_400_000_000_000)!
        try await ledger.reserve("exe_1", "cus_u", plan: "flat")
        try await ledger.settle("exe_1", cpuMilliseconds: 2_000, endedAt: yesterday)
        try await ledger.reserve("exe_2", "cus_u", plan: "flat")
        try await ledger.settle("exe_2", cpuMilliseconds: 3_000, endedAt: yesterday)
        try await ledger.reserve("exe_3", "cus_v", plan: "metered")
        try await ledger.settle("exe_3", cpuMilliseconds: 12_000)
        // 40 days ago: outside a 30-day window.
        try await ledger.reserve("exe_old", "cus_v", plan: "flat")
        try await ledger.settle("exe_old", endedAt: ledger.clock.now().adding(nanoseconds: -40 * 86_400_000_000_000)!)

        let byAgent = try await ledger.settlement.usage(period: .seconds(30 * 86_400), groupBy: .agent)
        // agt_flat: 2 + 3 CU, 14.00; agt_metered: 12 CU, 1.00.
        #expect(byAgent == [UsageRow(key: "agt_flat", computeUnits: ComputeUnits(millis: 5_000), cost: money("14.00"), executions: 2),
                            UsageRow(key: "agt_metered", computeUnits: ComputeUnits(millis: 12_000), cost: money("1.00"), executions: 1)])
        let byConsumer = try await ledger.settlement.usage(groupBy: .consumer)
        #expect(byConsumer.map(\.key) == ["cus_u", "cus_v"] && byConsumer.map(\.cost) == [money("14.00"), money("1.00")])
        let byDay = try await ledger.settlement.usage(groupBy: .day)
        #expect(byDay.map(\.key) == ["2026-11-01", "2026-11-02"])
        // The seed's per-consumer call; 40 days back includes the old call (7.00 more).
        let mine = try await ledger.settlement.billing(for: "cus_v").usage(period: "41d", groupBy: .plan)
        #expect(mine == [UsageRow(key: "flat", computeUnits: .zero, cost: money("7.00"), executions: 1),
                         UsageRow(key: "metered", computeUnits: ComputeUnits(millis: 12_000), cost: money("1.00"), executions: 1)])
        await #expect(throws: SettlementError.self) { try await ledger.settlement.billing(for: "cus_v").usage(period: "1y") }
    }

    static func payouts(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        let week = Timestamp(date: "2026-11-02")!.civilDate
        try await ledger.purchase("cus_w", "500.00")
        // acct_ent: 80% of a 100.00 fee dated Monday 2026-11-02 = 80.00.
        try await settlement.chargePeriodStart(consumer: "cus_w", plan: ledger.plan("ent"), periodStart: Timestamp(rfc3339: "2026-11-02T00:00:00Z")!)
        // acct_flat: three calls of 7.00 on Tuesday: 3 x 5.60 = 16.80.
        for index in 0..<3 {
            try await ledger.reserve("exe_\(index)", "cus_w", plan: "flat")
            try await ledger.settle("exe_\(index)", endedAt: Timestamp(rfc3339: "2026-11-03T12:00:00Z")!)
        }
        // acct_metered: 12 CU, 1.00, 0.80 to the creator: under the 10.00 minimum, carried.
        try await ledger.reserve("exe_m", "cus_w", plan: "metered")
        try await ledger.settle("exe_m", cpuMilliseconds: 12_000, endedAt: Timestamp(rfc3339: "2026-11-04T12:00:00Z")!)
        // Next week's line does not count.
        try await ledger.reserve("exe_next", "cus_w", plan: "flat")
        try await ledger.settle("exe_next", endedAt: Timestamp(rfc3339: "2026-11-09T00:00:00Z")!)

        let listed = try await settlement.payouts(week: week)
        #expect(listed.map(\.creator) == ["acct_ent", "acct_flat", "acct_metered"])
        #expect(listed.map(\.earnings) == [money("80.00"), money("16.80"), money("0.80")])
        #expect(listed.map(\.amount) == [money("80.00"), money("16.80"), .zero])
        #expect(listed.map(\.carried) == [.zero, .zero, money("0.80")])
        #expect(listed.map(\.status) == [.due, .due, .carried])
        #expect(listed.allSatisfy { $0.payDate == Timestamp(date: "2026-11-11")!.civilDate })
        #expect(listed.first?.key == "payout:acct_ent:2026-11-02")

        // Not before the week's pay date (settlement.md: "from W's pay date on"): not while the week
        // runs, nor on the Monday and Tuesday after it, nor a nanosecond before Wednesday 2026-11-11
        // (UTC, the payout zone); refused with `not_due`, the ledger's rows unchanged, nothing sent.
        let early = RecordingRail()
        try await ledger.expectRefused(.notDue, "payouts of a running week") { try await settlement.executePayouts(week: week, rail: early) }
        ledger.clock.set(Timestamp(rfc3339: "2026-11-09T00:00:00Z")!)
        try await ledger.expectRefused(.notDue, "payouts when the week has just ended") { try await settlement.executePayouts(week: week, rail: early) }
        ledger.clock.set(Timestamp(nanosecondsSinceEpoch: Timestamp(rfc3339: "2026-11-11T00:00:00Z")!.nanosecondsSinceEpoch - 1))
        try await ledger.expectRefused(.notDue, "payouts a nanosecond before the pay date") { try await settlement.executePayouts(week: week, rail: early) }
        #expect(early.paid.isEmpty)
        // Exactly at the pay date's first instant the run goes ahead.
        ledger.clock.set(Timestamp(rfc3339: "2026-11-11T00:00:00Z")!)
        // A run that stops half way: the rail fails on its second transfer (acct_flat).
        let rail = RecordingRail(failingCall: 2)
        await #expect(throws: RecordingRail.Failure.self) { try await settlement.executePayouts(week: week, rail: rail) }
        #expect(try await settlement.payouts(week: week).map(\.status) == [.paid, .recorded, .carried])
        // Run again (twice): each creator is paid exactly once.
        let done = try await settlement.executePayouts(week: week, rail: rail)
        #expect(done.map(\.status) == [.paid, .paid, .carried])
        _ = try await settlement.executePayouts(week: week, rail: rail)
        let paid = rail.paid
        #expect(paid.map(\.idempotencyKey) == ["payout:acct_ent:2026-11-02", "payout:acct_flat:2026-11-02"])
        #expect(paid.map(\.amount) == [money("80.00"), money("16.80")])
        let snapshot = try await ledger.backend.snapshot()
        #expect(snapshot.entries.filter { $0.credit.kind == .paidOut }.map(\.amount) == [money("80.00"), money("16.80")])
        #expect(snapshot.payouts.count == 2)
    }
}

/// A flag set once, read from any task.
final class ManualFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A payment rail that records what it paid and can fail on its n-th call (1-based), like a rail
/// whose network dropped: the run stops there.
public final class RecordingRail: PaymentRail {
    public struct Failure: Error {}
    private let state = Mutex<(calls: Int, paid: [PayoutTransfer])>((0, []))
    private let failingCall: Int?

    public init(failingCall: Int? = nil) { self.failingCall = failingCall }

    /// Transfers that went through, in order (one per idempotency key, as a real rail dedups).
    public var paid: [PayoutTransfer] { state.withLock { $0.paid } }

    public func send(_ transfer: PayoutTransfer) async throws -> String {
        try state.withLock { state in
            state.calls += 1
            if state.calls == failingCall { throw Failure() }
            if !state.paid.contains(where: { $0.idempotencyKey == transfer.idempotencyKey }) { state.paid.append(transfer) }
        }
        return "rec:" + transfer.idempotencyKey
    }
}
