import Tariff
import TariffSettlement
import Testing

// Period close (settlement.md, "Periods close"), on every backend. The `ent` plan of the conformance
// catalog: fee 100.00, 0.10 per CU, commitment 150.00, 10% back under 99% availability, split 80/15/5;
// `late_usage_grace` is the default 1h.
extension SettlementConformance {
    static let closeScenarios: [Scenario] = [
        Scenario(name: "period close: due at end + grace, late executions credit the shortfall back, the SLA credit recomputed", body: periodClose),
        Scenario(name: "period close: a credit-back first reduces what the consumer owes, then available", body: creditBackToOwed),
    ]

    static let closePeriodStart = instant("2026-11-01T00:00:00Z")
    static let closePeriodEnd = instant("2026-12-01T00:00:00Z")

    /// A late (or on-time) run of `ent` in the period, `units` CU, settled now.
    static func entRun(_ ledger: TestLedger, _ execution: String, _ consumer: String, units: Int64, failed: Bool = false,
                       endedAt: Timestamp) async throws -> SettleReceipt {
        try await ledger.reserve(execution, consumer, plan: "ent", period: .starting(closePeriodStart))
        return try await ledger.settlement.settle(SettlementRequest(execution: execution, meters: ledger.meters(cpuMilliseconds: units * 1_000),
                                                                    failed: failed, endedAt: endedAt))
    }

    static func periodClose(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        try await ledger.purchase("cus_c", "500.00")
        // Registered with its end when its fee is charged: 500.00 - 100.00.
        try await settlement.chargePeriodStart(consumer: "cus_c", plan: ledger.plan("ent"), periodStart: closePeriodStart, periodEnd: closePeriodEnd)
        #expect(try await ledger.backend.periodCloses().map(\.isClosed) == [false])
        // 100 CU: 10.00.
        #expect(try await entRun(ledger, "exe_c1", "cus_c", units: 100, endedAt: ledger.clock.now()).billed == money("10.00"))
        // Not due before end + 1h.
        #expect(try await settlement.closeDuePeriods(at: instant("2026-12-01T00:59:59Z")).isEmpty)
        let closed = try await settlement.closeDuePeriods(at: instant("2026-12-01T01:00:00Z"))
        // Shortfall 150.00 - (100.00 + 10.00) = 40.00; one run, succeeded: no SLA credit.
        #expect(closed.map(\.shortfall) == [money("40.00")] && closed.map(\.slaCredit) == [.zero] && closed.map(\.isClosed) == [true])
        #expect(try await ledger.balance("cus_c").available == money("350.00"))
        // A second close finds nothing due; another key for the closed period is refused and changes nothing.
        #expect(try await settlement.closeDuePeriods(at: instant("2026-12-02T00:00:00Z")).isEmpty)
        try await ledger.expectRefused(.idempotencyConflict, "a second close of a closed period") {
            try await settlement.chargePeriodEnd(consumer: "cus_c", plan: ledger.plan("ent"), periodStart: closePeriodStart, periodEnd: closePeriodEnd,
                                                 idempotencyKey: "another-close")
        }

        ledger.clock.set(instant("2026-12-01T02:00:00Z"))
        // A late run of 25 CU (2.50) dated in the closed period: charged as usual, and 2.50 of the
        // shortfall credited back, dated at the period's end: the period still totals 150.00.
        #expect(try await entRun(ledger, "exe_c2", "cus_c", units: 25, endedAt: instant("2026-11-30T23:00:00Z")).charged == money("2.50"))
        #expect(try await ledger.balance("cus_c").available == money("350.00"))
        // 500 CU (50.00) more: only the 37.50 left of the shortfall comes back; 100 + 62.50 = 162.50 > 150.
        #expect(try await entRun(ledger, "exe_c3", "cus_c", units: 500, endedAt: instant("2026-11-30T23:30:00Z")).charged == money("50.00"))
        #expect(try await ledger.balance("cus_c").available == money("337.50"))
        // A failed run of 0 CU: 3 of 4 succeeded (75% < 99%): the SLA credit is now 10% of 162.50.
        _ = try await entRun(ledger, "exe_c4", "cus_c", units: 0, failed: true, endedAt: instant("2026-11-30T23:45:00Z"))
        #expect(try await ledger.balance("cus_c").available == money("353.75"))

        let adjustments = try await ledger.backend.snapshot().charges.filter(\.kind.isAdjustment)
        #expect(adjustments.map(\.kind) == [.shortfallAdjustment, .shortfallAdjustment, .slaAdjustment])
        #expect(adjustments.map(\.billed) == [money("-2.50"), money("-37.50"), money("-16.25")])
        #expect(adjustments.allSatisfy { $0.datedAt == closePeriodEnd })
        #expect(adjustments.map(\.operation) == ["adjust:exe_c2", "adjust:exe_c3", "adjust:exe_c4"])
        // split(37.50) - split(40.00) = (30.00, 5.625, 1.875) - (32.00, 6.00, 2.00).
        #expect(adjustments.first?.split == SplitShares(creator: money("-2.00"), platform: money("-0.375"), processing: money("-0.125")))
        // split(-16.25) - split(0): 80/15/5.
        #expect(adjustments.last?.split == SplitShares(creator: money("-13.00"), platform: money("-2.4375"), processing: money("-0.8125")))
        let record = try #require(try await ledger.backend.periodCloses().first)
        #expect(record.shortfall == .zero && record.slaCredit == money("-16.25"))
        try await ledger.expectVerified()
    }

    static func creditBackToOwed(_ ledger: TestLedger) async throws {
        let settlement = ledger.settlement
        try await ledger.purchase("cus_o", "100.00")
        try await settlement.chargePeriodStart(consumer: "cus_o", plan: ledger.plan("ent"), periodStart: closePeriodStart, periodEnd: closePeriodEnd)
        // The fee took everything: the 50.00 shortfall is all uncollected.
        let closed = try await settlement.closeDuePeriods(at: instant("2026-12-01T01:00:00Z"))
        #expect(closed.map(\.shortfall) == [money("50.00")])
        #expect(try await ledger.backend.uncollectedTotal().money("uncollected") == money("50.00"))
        try await ledger.purchase("cus_o", "20.00")
        ledger.clock.set(instant("2026-12-01T02:00:00Z"))
        // A late run of 10 CU (1.00): charged from the 20.00; its credit-back reduces what is owed, not available.
        #expect(try await entRun(ledger, "exe_o1", "cus_o", units: 10, endedAt: instant("2026-11-15T00:00:00Z")).charged == money("1.00"))
        #expect(try await ledger.balance("cus_o").available == money("19.00"))
        #expect(try await ledger.backend.uncollectedTotal().money("uncollected") == money("49.00"))
        let adjustment = try #require(try await ledger.backend.snapshot().charges.first(where: \.kind.isAdjustment))
        #expect(adjustment.billed == money("-1.00") && adjustment.charged == .zero && adjustment.uncollected == money("-1.00") && adjustment.split == .zero)
        try await ledger.expectVerified()
    }

    /// What one random period close did (the property's coverage).
    public struct CloseCounts: Sendable, CustomStringConvertible {
        public var late = 0, creditBacks = 0, slaChanges = 0, beyondCommitment = 0
        public init() {}
        public mutating func add(_ other: CloseCounts) {
            late += other.late; creditBacks += other.creditBacks; slaChanges += other.slaChanges; beyondCommitment += other.beyondCommitment
        }
        public var description: String { "late \(late), credit-backs \(creditBacks), SLA changes \(slaChanges), beyond the commitment \(beyondCommitment)" }
    }

    /// One period of `ent` with random runs before its close and random late runs after it (some
    /// failed): after every late run, the period's total before SLA credits (fee + usage +
    /// shortfall + adjustments, from the ledger's lines) is exactly max(150.00, 100.00 + usage) and
    /// its SLA credit lines add up to 10% of that total when availability is under 99%, else 0,
    /// both computed here from the runs alone; `verify` passes.
    public static func periodCloseProperty(_ factory: BackendFactory, seed: UInt64) async throws -> CloseCounts {
        let ledger = try await TestLedger.make(factory)
        var random = SplitMix64(seed: seed)
        var counts = CloseCounts()
        try await ledger.purchase("cus_p", "9000.00")
        try await ledger.settlement.chargePeriodStart(consumer: "cus_p", plan: ledger.plan("ent"), periodStart: closePeriodStart, periodEnd: closePeriodEnd)
        var usageMicros: Int64 = 0, succeeded: Int64 = 0, failed: Int64 = 0
        func run(_ index: Int, endedAt: Timestamp) async throws {
            let isFailed = random.next() % 4 == 0
            // Failed runs meter nothing (what a failure costs is the plan's business, not this property's).
            let units = isFailed ? 0 : Int64(random.next() % 900)
            let receipt = try await entRun(ledger, "exe_\(index)", "cus_p", units: units, failed: isFailed, endedAt: endedAt)
            #expect(receipt.billed.micros == units * 100_000)
            usageMicros += units * 100_000
            if isFailed { failed += 1 } else { succeeded += 1 }
        }
        for index in 0..<Int(random.next() % 4) { try await run(index, endedAt: ledger.clock.now()) }
        _ = try await ledger.settlement.closeDuePeriods(at: instant("2026-12-01T01:00:00Z"))
        ledger.clock.set(instant("2026-12-01T03:00:00Z"))
        var previousCredit: Int128 = 0
        for index in 10..<(10 + Int(random.next() % 8)) {
            let dated = Timestamp(nanosecondsSinceEpoch: closePeriodStart.nanosecondsSinceEpoch
                                  + Int64(random.next() % UInt64(closePeriodEnd.nanosecondsSinceEpoch - closePeriodStart.nanosecondsSinceEpoch)))
            let shortfallBefore = 150_000_000 - (100_000_000 + usageMicros)
            try await run(index, endedAt: dated)
            counts.late += 1
            if shortfallBefore > 0 && usageMicros > 0 { counts.creditBacks += 1 }
            let lines = try await ledger.backend.snapshot().charges.filter { $0.consumer == "cus_p" }
            var beforeCredit: Int128 = 0, credit: Int128 = 0
            for line in lines {
                switch line.kind {
                case .fee, .execution, .shortfall, .shortfallAdjustment: beforeCredit += Int128(line.billed.micros)
                case .slaCredit, .slaAdjustment: credit += Int128(line.billed.micros)
                }
            }
            let expected = Int128(max(150_000_000, 100_000_000 + usageMicros))
            #expect(beforeCredit == expected, "period total \(beforeCredit) after \(succeeded + failed) runs, usage \(usageMicros)")
            if expected > 150_000_000 { counts.beyondCommitment += 1 }
            // 10% of a multiple of 0.10: exact, no rounding.
            let under = succeeded * 100 < 99 * (succeeded + failed)
            #expect(credit == (under ? -expected / 10 : 0), "SLA credit \(credit), \(succeeded) succeeded, \(failed) failed, total \(expected)")
            if credit != previousCredit { counts.slaChanges += 1 }
            previousCredit = credit
        }
        try await ledger.expectVerified()
        return counts
    }
}
