import Foundation
import Synchronization
import Tariff
import TariffSettlement
import Testing

/// The differential test of issue 14: one random sequence of operations, with faults injected
/// between and inside them, driven through several backends side by side; after every step each
/// backend must answer the same (the same result, or a refusal with the same code) and hold the
/// same ledger (full snapshots, normalized only for what a backend may number differently).
///
/// A step is decoded from one random word (`DifferentialStep(word:)`), so a generator of arrays of
/// words (swift-property-based's `Gen.int(...).array(of:)`) shrinks a failing sequence to a short one.
public enum Differential {
    /// The code a rail answers when it could not be reached or its answer was lost (the Stripe
    /// rail's `rail_unavailable`; this module does not depend on it).
    static let railUnavailable = SettlementError.Code(rawValue: "rail_unavailable")

    /// One backend under test, reopened on the same storage after a simulated crash.
    public struct Subject: Sendable {
        public let name: String
        /// Opens the backend: the first time, and again after a crash (the same file, the same
        /// schema). The in-memory backend returns its one instance (nothing of it survives a real
        /// crash, and nothing needs to: it is the reference the durable ones must agree with).
        let open: @Sendable () async throws -> any SettlementBackend
        /// Cuts the backend's connections under it (PostgreSQL); nil where there are none.
        let cutConnections: (@Sendable (any SettlementBackend) async throws -> Void)?
        /// Lets the old instance go before a reopen (closes a PostgreSQL pool).
        let close: (@Sendable (any SettlementBackend) -> Void)?

        public init(name: String, open: @escaping @Sendable () async throws -> any SettlementBackend,
                    cutConnections: (@Sendable (any SettlementBackend) async throws -> Void)? = nil,
                    close: (@Sendable (any SettlementBackend) -> Void)? = nil) {
            self.name = name
            self.open = open
            self.cutConnections = cutConnections
            self.close = close
        }

        /// A fresh in-memory backend (its own instance for each run).
        public static func memory() -> Subject {
            let backend = InMemoryBackend(currency: TestLedger.usd)
            return Subject(name: "memory", open: { backend })
        }
    }

    /// What one run did, for the caller to require that the sequences exercised something.
    public struct Counts: Sendable, CustomStringConvertible {
        public init() {}
        public var steps = 0
        public var applied = 0
        public var refused = 0
        public var faults = 0
        public var payoutsSent = 0
        /// Adjustment lines and closed periods in the ledger after the last step.
        public var adjustments = 0, closedPeriods = 0
        /// Subscriptions in the ledger after the last step, and how many of them ended (canceled or replaced).
        public var subscriptions = 0, endedSubscriptions = 0
        public var description: String {
            "\(steps) steps: \(applied) applied, \(refused) refused (all backends alike), \(faults) faults, \(payoutsSent) transfers, "
                + "\(closedPeriods) periods closed, \(adjustments) adjustment lines, \(subscriptions) subscriptions (\(endedSubscriptions) ended)"
        }

        public mutating func add(_ other: Counts) {
            steps += other.steps; applied += other.applied; refused += other.refused; faults += other.faults; payoutsSent += other.payoutsSent
            adjustments += other.adjustments; closedPeriods += other.closedPeriods
            subscriptions += other.subscriptions; endedSubscriptions += other.endedSubscriptions
        }

        /// Sums counts over the runs of a property, safely from concurrent runs.
        public final class Total: Sendable {
            private let sums = Mutex(Counts())
            public init() {}
            public func add(_ counts: Counts) { sums.withLock { $0.add(counts) } }
            public var value: Counts { sums.withLock { $0 } }
        }
    }

    /// Runs `words` (one step each) through every subject; records an issue at the first step where
    /// two backends disagree (and stops there: later steps would only repeat it).
    public static func run(_ words: [Int], subjects: [Subject], sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> Counts {
        try await run(steps: words.enumerated().map { DifferentialStep(word: $0.element, index: $0.offset) }, subjects: subjects, sourceLocation: sourceLocation)
    }

    /// The same with the steps written out (a fixed scenario).
    /// A fixed sequence through period close: periods registered by their fees, runs in them, the
    /// clock past their end + grace, closes (one cut short by a crash and retried), late runs dated
    /// in the closed periods (adjustment lines), a failed one (the SLA credit recomputed).
    public static let closeSteps: [DifferentialStep] = [
        .purchase(consumer: "cus_a", cents: 50_000, key: "buy_c1"), .purchase(consumer: "cus_b", cents: 5_000, key: "buy_c2"),
        .periodStart(consumer: "cus_a", plan: "ent"), .periodStart(consumer: "cus_b", plan: "ent"), .periodStart(consumer: "cus_a", plan: "metered"),
        .reserve(execution: "exe_1", consumer: "cus_a", plan: "ent", longHold: false), .settle(execution: "exe_1", cpuMilliseconds: 30_000, failed: false, daysLate: 0),
        .reserve(execution: "exe_2", consumer: "cus_a", plan: "metered", longHold: false), .settle(execution: "exe_2", cpuMilliseconds: 12_000, failed: false, daysLate: 0),
        // 2026-11-02T10:00 + 29 days: 2026-12-01T10:00, past every end (2026-12-01) + 1h.
        .advance(seconds: 29 * 86_400, sweep: true), .closeDue, .crash, .retry(.closeDue),
        // Late runs, dated 2 and 3 days back (in November): adjustments against the closed periods.
        .reserve(execution: "exe_3", consumer: "cus_a", plan: "ent", longHold: true), .settle(execution: "exe_3", cpuMilliseconds: 400_000, failed: false, daysLate: 2),
        .purchase(consumer: "cus_b", cents: 1_000, key: "buy_c3"), .reserve(execution: "exe_4", consumer: "cus_b", plan: "ent", longHold: true), .settle(execution: "exe_4", cpuMilliseconds: 20_000, failed: false, daysLate: 3),
        .reserve(execution: "exe_5", consumer: "cus_a", plan: "ent", longHold: false), .settle(execution: "exe_5", cpuMilliseconds: 0, failed: true, daysLate: 2),
        .reserve(execution: "exe_6", consumer: "cus_a", plan: "metered", longHold: false), .cutConnections,
        .retry(.settle(execution: "exe_6", cpuMilliseconds: 90_000, failed: false, daysLate: 2)),
        .periodEnd(consumer: "cus_a", plan: "ent"), .closeDue,
    ]

    /// A fixed sequence through live subscriptions: subscribes (one answered as the existing one), a
    /// replacement, a cancel, the period clock over two months (fees by period key, closes at end +
    /// grace), a crash and a cut connection between ticks and a retried tick.
    public static let subscriptionSteps: [DifferentialStep] = [
        .purchase(consumer: "cus_a", cents: 50_000, key: "buy_s1"), .purchase(consumer: "cus_b", cents: 1_500, key: "buy_s2"),
        .subscribe(consumer: "cus_a", plan: "metered", id: "sub_a1"), .subscribe(consumer: "cus_a", plan: "metered", id: "sub_a2"),
        .subscribe(consumer: "cus_b", plan: "metered-max", id: "sub_b1"), .subscribe(consumer: "cus_a", plan: "ent", id: "sub_a3"),
        .subscribe(consumer: "cus_c", plan: "flat", id: "sub_c1"),
        .reserve(execution: "exe_s1", consumer: "cus_a", plan: "ent", longHold: false), .settle(execution: "exe_s1", cpuMilliseconds: 30_000, failed: false, daysLate: 0),
        .advance(seconds: 10 * 86_400, sweep: true), .subscribe(consumer: "cus_a", plan: "metered-max", id: "sub_a4"),
        .cancel(consumer: "cus_b", plan: "metered-max"), .cancel(consumer: "cus_b", plan: "metered-max"), .cancel(consumer: "cus_c", plan: "metered"),
        .advance(seconds: 21 * 86_400, sweep: false), .tick, .crash, .retry(.tick),
        .advance(seconds: 3_600, sweep: false), .tick, .cutConnections, .retry(.tick),
        .advance(seconds: 31 * 86_400, sweep: true), .tick, .tick,
    ]

    public static func run(steps: [DifferentialStep], subjects: [Subject], sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> Counts {
        var lanes: [Lane] = []
        for subject in subjects { lanes.append(try await Lane(subject)) }
        var counts = Counts()
        var history: [String] = []
        // Where each step's rows end: the rows of one step are compared in order of operation.
        var entryBounds: [Int] = [], chargeBounds: [Int] = []
        for (index, step) in steps.enumerated() {
            history.append(step.description)
            var outcomes: [String] = []
            for lane in lanes { outcomes.append(try await lane.apply(step)) }
            counts.steps += 1
            if ProcessInfo.processInfo.environment["TARIFF_DIFFERENTIAL_TRACE"] != nil { print("\(index) \(step) -> \(outcomes[0].prefix(160))") }
            if step.isFault { counts.faults += 1 }
            if outcomes.first?.hasPrefix("refused:") == true { counts.refused += 1 } else { counts.applied += 1 }
            guard Set(outcomes).count == 1 else {
                let answers: String = zip(lanes, outcomes).map { "  \($0.subject.name): \($1)" }.joined(separator: "\n")
                record("step \(index) \(step): the backends answered differently:\n\(answers)\nsteps: \(history.joined(separator: "; "))",
                             sourceLocation: sourceLocation)
                return counts
            }
            if outcomes[0].hasPrefix("failed:") {
                record("step \(index) \(step) failed on every backend: \(outcomes[0])\nsteps: \(history.joined(separator: "; "))", sourceLocation: sourceLocation)
                return counts
            }
            var snapshots: [LedgerSnapshot] = []
            for lane in lanes { snapshots.append(normalized(try await lane.backend.snapshot(), entryBounds: entryBounds, chargeBounds: chargeBounds)) }
            var rails: [String] = []
            for lane in lanes { rails.append(lane.railState()) }
            for (lane, snapshot) in zip(lanes, snapshots).dropFirst() where snapshot != snapshots[0] {
                let rows: String = difference(snapshots[0], snapshot)
                record("after step \(index) \(step) the ledger of \(lane.subject.name) differs from \(lanes[0].subject.name)'s:\n\(rows)\nsteps: \(history.joined(separator: "; "))",
                             sourceLocation: sourceLocation)
                return counts
            }
            counts.adjustments = snapshots[0].charges.filter(\.kind.isAdjustment).count
            counts.closedPeriods = snapshots[0].closes.filter(\.isClosed).count
            counts.subscriptions = snapshots[0].subscriptions.count
            counts.endedSubscriptions = snapshots[0].subscriptions.filter { $0.endsAt != nil }.count
            entryBounds.append(snapshots[0].entries.count)
            chargeBounds.append(snapshots[0].charges.count)
            guard Set(rails).count == 1 else {
                record("after step \(index) \(step) the rails differ: \(rails)\nsteps: \(history.joined(separator: "; "))", sourceLocation: sourceLocation)
                return counts
            }
        }
        for lane in lanes {
            let report = try await lane.settlement.verify()
            #expect(report.passed, "\(lane.subject.name): \(report.invariants.filter { !$0.holds })", sourceLocation: sourceLocation)
            counts.payoutsSent = lane.transfers.count()
            lane.subject.close?(lane.backend)
        }
        return counts
    }

    /// Records an issue (and prints it with `TARIFF_DIFFERENTIAL_TRACE`: a property check holds its
    /// issues back while it shrinks the sequence).
    static func record(_ message: String, sourceLocation: Testing.SourceLocation) {
        if ProcessInfo.processInfo.environment["TARIFF_DIFFERENTIAL_TRACE"] != nil { print("MISMATCH \(message)") }
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }

    /// Entries and charge lines renumbered 1, 2, 3 in their order: PostgreSQL's sequences skip the
    /// numbers of rolled back steps, SQLite's and the in-memory backend's do not. Nothing else is
    /// normalized: every backend writes the rows of a step in the same order (the expiry sweep
    /// too: by consumer, then execution), and that order is compared.
    public static func normalized(_ snapshot: LedgerSnapshot, entryBounds: [Int] = [], chargeBounds: [Int] = []) -> LedgerSnapshot {
        var snapshot = snapshot
        for index in snapshot.entries.indices { snapshot.entries[index].sequence = Int64(index + 1) }
        for index in snapshot.charges.indices { snapshot.charges[index].sequence = Int64(index + 1) }
        return snapshot
    }

    /// The first differing rows of each table.
    static func difference(_ left: LedgerSnapshot, _ right: LedgerSnapshot) -> String {
        func first<T: Equatable>(_ name: String, _ a: [T], _ b: [T]) -> String? {
            guard a != b else { return nil }
            let index = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
            return "  \(name) (\(a.count) vs \(b.count)) at \(index): \(index < a.count ? "\(a[index])" : "-") vs \(index < b.count ? "\(b[index])" : "-")"
        }
        return [first("consumers", left.consumers, right.consumers), first("holds", left.holds, right.holds),
                first("entries", left.entries, right.entries), first("charges", left.charges, right.charges),
                first("operations", left.operations, right.operations), first("payouts", left.payouts, right.payouts),
                first("periods", left.periods, right.periods), first("closes", left.closes, right.closes),
                first("subscriptions", left.subscriptions, right.subscriptions)].compactMap { $0 }.joined(separator: "\n")
    }

    /// One backend's side of the run: its settlement, its clock (moved in step with the others)
    /// and its own rails.
    final class Lane: Sendable {
        let subject: Subject
        let clock = ManualClock(TestLedger.start)
        let transfers = FakeRail()
        let charges = FakeRail()
        private let current: Mutex<Settlement>
        /// Executions this lane reserved and has not closed, in order: `open:K` in a step names the
        /// K-th (modulo their count), so settles, meters and releases mostly find a hold. Every
        /// lane keeps the same list as long as the backends answer alike (and the run stops where
        /// they do not).
        private let open = Mutex<[String]>([])

        func resolve(_ execution: String) -> String {
            guard execution.hasPrefix("open:"), let index = Int(execution.dropFirst("open:".count)) else { return execution }
            return open.withLock { $0.isEmpty ? "exe_none" : $0[index % $0.count] }
        }

        private func opened(_ execution: String) { open.withLock { if !$0.contains(execution) { $0.append(execution) } } }
        private func closed(_ execution: String) { open.withLock { $0.removeAll { $0 == execution } } }

        init(_ subject: Subject) async throws {
            self.subject = subject
            current = Mutex(Settlement(backend: try await subject.open(), catalog: TestLedger.catalog, clock: clock))
        }

        var settlement: Settlement { current.withLock { $0 } }
        var backend: any SettlementBackend { settlement.backend }

        func railState() -> String { "transfers \(transfers.summary()); charges \(charges.summary())" }

        /// The step's answer as text: the result, or `refused:CODE` (messages may differ between
        /// backends, codes may not), or `failed:...` for anything but a `SettlementError`.
        func apply(_ step: DifferentialStep) async throws -> String {
            // A fault armed for a call the step never made (refused before the rail) ends with the step.
            defer {
                transfers.disarm()
                charges.disarm()
            }
            do {
                return try await perform(step)
            } catch let error as SettlementError {
                return "refused:\(error.code.rawValue)"
            } catch {
                return "failed:\(type(of: error)): \(error)"
            }
        }

        private func perform(_ step: DifferentialStep) async throws -> String {
            let settlement = settlement
            let ledger = TestLedger.catalog
            switch step {
            case .purchase(let consumer, let cents, let key):
                return "\(try await settlement.purchase(consumer: consumer, amount: Money(micros: cents * 10_000), idempotencyKey: key))"
            case .railPurchase(let consumer, let cents, let key, let timesOut):
                let purchase = CreditPurchase(consumer: consumer, amount: Money(micros: cents * 10_000), currency: TestLedger.usd, idempotencyKey: key,
                                              payer: "cus_pay_\(consumer)", paymentMethod: "pm_card")
                // A rail that charges, then loses the answer: the caller retries under the same key,
                // and the card must have been charged once and the credits added once.
                if timesOut {
                    charges.failNextAfterApplying()
                    _ = try? await settlement.purchase(purchase, through: charges)
                }
                return "\(try await settlement.purchase(purchase, through: charges))"
            case .reserve(let execution, let consumer, let plan, let longHold):
                let handle = ledger.plan(id: plan, at: TestLedger.start)!
                let period: BillingPeriod = ledger.plan(handle).period == nil ? .unbounded : .starting(TestLedger.periodStart)
                let hold = try await settlement.reserve(ReservationRequest(execution: execution, consumer: consumer, plan: handle, period: period,
                                                                           ttl: longHold ? .seconds(86_400) : Settlement.defaultTTL))
                opened(execution)
                return "\(hold)"
            case .meter(let execution, let cpu):
                let execution = resolve(execution)
                return "\(try await settlement.meter(execution: execution, sample: MeterSample(at: clock.now(), meters: Self.meters(cpu))))"
            case .settle(let execution, let cpu, let failed, let daysLate):
                let execution = resolve(execution)
                let endedAt = clock.now().adding(nanoseconds: -Int64(daysLate) * 86_400 * 1_000_000_000) ?? clock.now()
                let receipt = try await settlement.settle(SettlementRequest(execution: execution, meters: Self.meters(cpu), failed: failed, endedAt: endedAt))
                closed(execution)
                return "\(receipt)"
            case .release(let execution):
                let execution = resolve(execution)
                let receipt = try await settlement.release(execution: execution)
                closed(execution)
                return "\(receipt)"
            case .advance(let seconds, let sweep):
                clock.advance(by: .seconds(seconds))
                return sweep ? "expired \(try await settlement.expireHolds())" : "at \(clock.now())"
            case .periodStart(let consumer, let plan):
                // Registered with its end: a `closeDue` step closes it once end + grace has passed.
                return "\(try await settlement.chargePeriodStart(consumer: consumer, plan: ledger.plan(id: plan, at: TestLedger.start)!, periodStart: TestLedger.periodStart, periodEnd: Timestamp(rfc3339: "2026-12-01T00:00:00Z")!))"
            case .closeDue:
                return "\(try await settlement.closeDuePeriods().map { "\($0.key) \($0.shortfall) \($0.slaCredit)" })"
            case .periodEnd(let consumer, let plan):
                let receipt = try await settlement.chargePeriodEnd(consumer: consumer, plan: ledger.plan(id: plan, at: TestLedger.start)!,
                                                                   periodStart: TestLedger.periodStart, periodEnd: Timestamp(rfc3339: "2026-12-01T00:00:00Z")!)
                return "\(receipt)"
            case .payouts(let weeksBack, let fault):
                // Weeks start on Mondays (TestLedger.start is one) and are paid on the Wednesday after
                // (9 days after their Monday): the last week whose pay date has come, or one before it.
                let days = (clock.now().nanosecondsSinceEpoch - TestLedger.start.nanosecondsSinceEpoch) / 86_400_000_000_000
                let paidWeeks = days >= 2 ? (days - 2) / 7 : -1
                let monday = TestLedger.start.adding(nanoseconds: (paidWeeks - 1 - Int64(weeksBack)) * 7 * 86_400_000_000_000)!.civilDate
                switch fault {
                case .none: break
                case .timeoutAfterApplying: transfers.failNextAfterApplying()
                case .crashBeforeSending: transfers.failNextBeforeApplying()
                }
                do {
                    return "\(try await settlement.executePayouts(week: monday, rail: transfers))"
                } catch let error as SettlementError where fault != .none && error.code == Differential.railUnavailable {
                    if fault == .crashBeforeSending { try await reopen() }
                    // The run is started again (a rerun, or the scheduler's next try).
                    return "\(try await self.settlement.executePayouts(week: monday, rail: transfers))"
                }
            case .subscribe(let consumer, let plan, let id):
                return "\(try await settlement.subscribe(consumer: consumer, plan: plan, id: id))"
            case .cancel(let consumer, let plan):
                return "\(try await settlement.cancel(consumer: consumer, plan: plan))"
            case .tick:
                let run = try await settlement.runClock()
                return "fees \(run.fees), closed \(run.closes.map { "\($0.key) \($0.shortfall) \($0.slaCredit)" })"
            case .crash:
                try await reopen()
                return "reopened"
            case .cutConnections:
                try await subject.cutConnections?(backend)
                return "cut"
            case .retry(let inner):
                // The answer was lost: the same step again under the same key returns the first result.
                _ = try? await perform(inner)
                return try await perform(inner)
            }
        }

        private func reopen() async throws {
            let old = backend
            subject.close?(old)
            let reopened = Settlement(backend: try await subject.open(), catalog: TestLedger.catalog, clock: clock)
            current.withLock { $0 = reopened }
        }

        static func meters(_ cpuMilliseconds: Int64) -> MeterReadings {
            var readings = MeterReadings()
            readings[TestLedger.catalog.meter(named: "cpu_ms")!] = MeterValue(micros: cpuMilliseconds * 1_000_000)
            return readings
        }
    }

    /// A rail that is idempotent by key for ever (what the ledger relies on it for), counts what it
    /// applied per key, and can be told to fail the next call before or after applying it.
    final class FakeRail: PaymentRail, PurchaseRail {
        private struct State {
            /// Per key, the amount applied once (a repeat of the key is answered, not applied again).
            var applied: [String: Int64] = [:]
            var failBefore = false
            var failAfter = false
        }
        private let state = Mutex(State())

        func failNextAfterApplying() { state.withLock { $0.failAfter = true } }
        func failNextBeforeApplying() { state.withLock { $0.failBefore = true } }
        func disarm() {
            state.withLock {
                $0.failBefore = false
                $0.failAfter = false
            }
        }

        private func apply(_ key: String, _ micros: Int64) throws -> String {
            try state.withLock { state in
                if state.failBefore {
                    state.failBefore = false
                    throw SettlementError(Differential.railUnavailable, "the rail was not reached (the process stopped before sending)")
                }
                if state.applied[key] == nil { state.applied[key] = micros }
                if state.failAfter {
                    state.failAfter = false
                    throw SettlementError(Differential.railUnavailable, "the rail applied it, then the answer timed out")
                }
                return "fake:\(key)"
            }
        }

        func send(_ transfer: PayoutTransfer) async throws -> String { try apply(transfer.idempotencyKey, transfer.amount.micros) }

        func charge(_ purchase: CreditPurchase) async throws -> CreditPaymentOutcome {
            .succeeded(reference: try apply(purchase.idempotencyKey, purchase.amount.micros))
        }

        func count() -> Int { state.withLock { $0.applied.count } }
        func summary() -> String {
            state.withLock { state in state.applied.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        }
    }
}

/// One step of a differential run, decoded from a random word: mostly the credit lifecycle, with
/// period lines, payout runs (some with a rail fault), late settles and faults mixed in.
public indirect enum DifferentialStep: Sendable, CustomStringConvertible {
    public enum PayoutFault: Sendable, Equatable { case none, timeoutAfterApplying, crashBeforeSending }

    case purchase(consumer: String, cents: Int64, key: String)
    case railPurchase(consumer: String, cents: Int64, key: String, timesOut: Bool)
    /// `longHold`: a TTL of a day rather than the default 15 minutes (so some holds outlive a day's jump).
    case reserve(execution: String, consumer: String, plan: String, longHold: Bool)
    case meter(execution: String, cpuMilliseconds: Int64)
    case settle(execution: String, cpuMilliseconds: Int64, failed: Bool, daysLate: Int)
    case release(execution: String)
    case advance(seconds: Int64, sweep: Bool)
    case periodStart(consumer: String, plan: String)
    case periodEnd(consumer: String, plan: String)
    /// `closeDuePeriods()` at the clock's time.
    case closeDue
    /// The payout run of the last week that has ended (`weeksBack` 0), or of a week before it.
    case payouts(weeksBack: Int, fault: PayoutFault)
    /// `Settlement.subscribe` at the clock's time (the id is the step's, so a retry reuses it).
    case subscribe(consumer: String, plan: String, id: String)
    case cancel(consumer: String, plan: String)
    /// The period clock (`Settlement.runClock`) at the clock's time.
    case tick
    case crash
    case cutConnections
    case retry(DifferentialStep)

    static let consumers = ["cus_a", "cus_b", "cus_c"]
    static let plans = ["flat", "metered", "ent"]

    /// Few ids and keys, so that repeats (replays, conflicts, settles of released holds) happen often.
    public init(word: Int, index: Int) {
        var bits = UInt64(truncatingIfNeeded: word)
        func take(_ count: UInt64) -> Int {
            defer { bits /= count }
            return Int(bits % count)
        }
        let kind = take(32)
        let consumer = Self.consumers[take(3)]
        // A new or reused id for a reserve; for the steps on a hold, mostly one of the open holds.
        let execution = "exe_\(take(40))"
        let onHold = take(4) == 0 ? "exe_\(take(40))" : "open:\(take(16))"
        switch kind {
        case 0...3:
            // The amount follows the key (a repeat is a replay), but one purchase in four changes it (a conflict).
            let key = take(12)
            self = .purchase(consumer: consumer, cents: Int64(500 * (key + 1) + (take(4) == 0 ? 1 : 0)), key: "buy_\(consumer)_\(key)")
        case 4, 5: self = .railPurchase(consumer: consumer, cents: Int64(take(4_000) + 1), key: "card_\(take(6))", timesOut: take(2) == 0)
        case 6...11: self = .reserve(execution: execution, consumer: consumer, plan: Self.plans[take(3)], longHold: take(2) == 0)
        case 12, 13: self = .meter(execution: onHold, cpuMilliseconds: Int64(take(40_000)))
        case 14...18:
            let late = take(4) == 0
            self = .settle(execution: onHold, cpuMilliseconds: Int64(take(40_000)), failed: take(6) == 0, daysLate: late ? 7 + take(7) : 0)
        case 19: self = .release(execution: onHold)
        case 21: self = .advance(seconds: Int64(take(1_200)), sweep: take(2) == 0)
        // Days at a time, so that weeks end and their payouts run within a sequence.
        case 20, 22: self = .advance(seconds: Int64(86_400 + take(4 * 86_400)), sweep: take(2) == 0)
        // Period lines: the fee (the period registered), its end charged directly, or every due period closed
        // (late settles, days late, then land in closed periods: adjustment lines).
        case 23:
            let plan = take(2) == 0 ? "metered" : "ent"
            self = [.periodStart(consumer: consumer, plan: plan), .periodEnd(consumer: consumer, plan: plan), .closeDue][take(3)]
        case 24...26:
            let fault: PayoutFault = [.none, .timeoutAfterApplying, .crashBeforeSending][take(3)]
            self = .payouts(weeksBack: take(4) == 0 ? 1 : 0, fault: fault)
        case 27: self = .crash
        case 28: self = .cutConnections
        // Live subscriptions: subscribe (the same plan, another of the agent: a replacement), cancel, the clock.
        case 29:
            let plan = ["metered", "metered-max", "ent"][take(3)]
            self = [.subscribe(consumer: consumer, plan: plan, id: "sub_\(index)"), .cancel(consumer: consumer, plan: plan), .tick][take(3)]
        default:
            // A step whose answer was lost, sent again (only steps that carry a key or converge:
            // moving the clock twice is another step, not a retry).
            let inner = DifferentialStep(word: Int(truncatingIfNeeded: bits), index: index)
            switch inner {
            case .purchase, .railPurchase, .reserve, .meter, .settle, .release, .periodStart, .periodEnd, .closeDue, .subscribe, .cancel, .tick:
                self = .retry(inner)
            default: self = .crash
            }
        }
    }

    var isFault: Bool {
        switch self {
        case .crash, .cutConnections, .retry: return true
        case .railPurchase(_, _, _, let timesOut): return timesOut
        case .payouts(_, let fault): return fault != .none
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .purchase(let c, let cents, let key): return "purchase(\(c), \(cents)c, \(key))"
        case .railPurchase(let c, let cents, let key, let timesOut): return "railPurchase(\(c), \(cents)c, \(key)\(timesOut ? ", times out" : ""))"
        case .reserve(let e, let c, let p, let long): return "reserve(\(e), \(c), \(p)\(long ? ", a day" : ""))"
        case .meter(let e, let cpu): return "meter(\(e), \(cpu)ms)"
        case .settle(let e, let cpu, let failed, let late): return "settle(\(e), \(cpu)ms\(failed ? ", failed" : "")\(late > 0 ? ", \(late) days late" : ""))"
        case .release(let e): return "release(\(e))"
        case .advance(let s, let sweep): return "advance(\(s)s\(sweep ? ", sweep" : ""))"
        case .periodStart(let c, let p): return "periodStart(\(c), \(p))"
        case .periodEnd(let c, let p): return "periodEnd(\(c), \(p))"
        case .closeDue: return "closeDue"
        case .subscribe(let c, let p, let id): return "subscribe(\(c), \(p), \(id))"
        case .cancel(let c, let p): return "cancel(\(c), \(p))"
        case .tick: return "tick"
        case .payouts(let back, let fault): return "payouts(last ended week\(back > 0 ? " - \(back)" : ""), \(fault))"
        case .crash: return "crash"
        case .cutConnections: return "cutConnections"
        case .retry(let inner): return "retry(\(inner))"
        }
    }
}
