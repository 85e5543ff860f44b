import Synchronization
import Tariff
import TariffSettlement
import Testing

extension SettlementConformance {
    /// Conservation of money over a random sequence of operations drawn from `seed`: purchases,
    /// holds, meter samples, settles (some beyond the balance), releases, period fees and ends,
    /// clock jumps past TTLs and expiry sweeps, refused operations included. Afterwards every
    /// invariant holds and, summed over consumers, `purchases = available + reserved + charged`.
    /// - returns: what was applied, for the caller to require a minimum over all its seeds (one
    ///   seed may by chance apply few steps or settle nothing; a backend that refuses them fails over many).
    @discardableResult
    public static func conservation(_ factory: BackendFactory, seed: UInt64, operations: Int = 60) async throws -> ConservationCounts {
        let ledger = try await TestLedger.make(factory)
        var random = SplitMix64(seed: seed)
        let consumers = ["cus_1", "cus_2", "cus_3"]
        let plans = ["flat", "metered", "ent"]
        var purchased: Int64 = 0
        var open: [String] = []
        // What was applied (refusals are part of the sequence, but a backend refusing everything
        // would "conserve" trivially: a minimum of applied operations is required below).
        var applied = 0, purchases = 0, settles = 0
        // Every consumer opens with 20.00 (never refused: a backend that refuses them fails below).
        for consumer in consumers {
            if (try? await ledger.settlement.purchase(consumer: consumer, amount: Money(micros: 20_000_000), idempotencyKey: "open-\(consumer)")) != nil {
                purchased += 20_000_000
                purchases += 1
            }
        }
        for step in 0..<operations {
            let consumer = consumers[Int(random.next() % 3)]
            do {
                switch random.next() % 10 {
                case 0, 1:
                    // 0.01 to 50.00 in whole cents.
                    let cents = Int64(random.next() % 5_000) + 1
                    _ = try await ledger.settlement.purchase(consumer: consumer, amount: Money(micros: cents * 10_000), idempotencyKey: "buy-\(step)")
                    purchased += cents * 10_000
                    purchases += 1
                case 2, 3, 4:
                    let plan = plans[Int(random.next() % 3)]
                    try await ledger.reserve("exe_\(step)", consumer, plan: plan)
                    open.append("exe_\(step)")
                case 5, 6:
                    guard !open.isEmpty else { continue }
                    let execution = open.remove(at: Int(random.next() % UInt64(open.count)))
                    try await ledger.settle(execution, cpuMilliseconds: Int64(random.next() % 40_000), failed: random.next() % 5 == 0)
                    settles += 1
                case 7:
                    guard let execution = open.last else { continue }
                    let cpu = Int64(random.next() % 40_000)
                    _ = try await ledger.settlement.meter(execution: execution, sample: MeterSample(at: ledger.clock.now(), meters: ledger.meters(cpuMilliseconds: cpu)))
                case 8:
                    if random.next() % 2 == 0, let execution = open.popLast() {
                        _ = try await ledger.settlement.release(execution: execution)
                    } else {
                        // Past some TTLs now and then.
                        ledger.clock.advance(by: .seconds(Int64(random.next() % 1_200)))
                        if random.next() % 2 == 0 { _ = try await ledger.settlement.expireHolds() }
                    }
                default:
                    let plan = ledger.plan(random.next() % 2 == 0 ? "metered" : "ent")
                    if random.next() % 2 == 0 {
                        try await ledger.settlement.chargePeriodStart(consumer: consumer, plan: plan, periodStart: TestLedger.periodStart)
                    } else {
                        try await ledger.settlement.chargePeriodEnd(consumer: consumer, plan: plan, periodStart: TestLedger.periodStart,
                                                                    periodEnd: Timestamp(rfc3339: "2026-12-01T00:00:00Z")!)
                    }
                }
                applied += 1
            } catch let error as SettlementError {
                // Refusals are part of the sequence (credits run out, holds expire, ids repeat); a
                // storage failure never is.
                #expect(error.code != .storage && error.code != .outOfRange, "step \(step): \(error)")
            }
        }
        // A backend refusing everything would "conserve" trivially: the opening purchases must apply
        // (the caller requires a minimum of applied steps, settles and charges over all its seeds).
        #expect(purchases >= consumers.count, "seed \(seed): the opening purchases were refused")
        let snapshot = try await ledger.backend.snapshot()
        let held = snapshot.consumers.reduce(Int128(0)) { $0 + Int128($1.available.micros) + Int128($1.reserved.micros) }
        let charged = snapshot.charges.reduce(Int128(0)) { $0 + Int128($1.charged.micros) }
        #expect(Int128(purchased) == held + charged, "seed \(seed)")
        let report = try await ledger.settlement.verify()
        #expect(report.passed, "seed \(seed): \(report.invariants.filter { !$0.holds })")
        return ConservationCounts(operations: operations, applied: applied, settles: settles, charged: snapshot.charges.filter { $0.charged.micros > 0 }.count)
    }
}

/// What one conservation run applied.
public struct ConservationCounts: Sendable, CustomStringConvertible {
    /// Random steps drawn (the opening purchases not included).
    public var operations: Int
    /// Random steps applied (not refused, not skipped).
    public var applied: Int
    public var settles: Int
    /// Charge lines that took money from a consumer.
    public var charged: Int

    /// Sums counts over the seeds of a property, safely from concurrent runs.
    public final class Total: Sendable {
        private let sums = Mutex(ConservationCounts(operations: 0, applied: 0, settles: 0, charged: 0))
        public init() {}
        public func add(_ counts: ConservationCounts) {
            sums.withLock {
                $0.operations += counts.operations
                $0.applied += counts.applied
                $0.settles += counts.settles
                $0.charged += counts.charged
            }
        }
        public var value: ConservationCounts { sums.withLock { $0 } }
    }

    public var description: String { "\(applied) of \(operations) steps applied, \(settles) settles, \(charged) lines charged" }
}

/// A small deterministic generator (SplitMix64): the same seed replays the same operations.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
