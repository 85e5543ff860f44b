import Foundation
import GRDB
import Tariff
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// `verify` is the oracle every scenario, the conservation property and the replay tests lean on,
/// so each of its checks is shown failing here: a real ledger is written through the lifecycle,
/// then broken in exactly one way behind the ledger's back (raw SQL on the SQLite file, with the
/// append-only triggers dropped and CHECK constraints ignored where the break needs it; the same
/// break applied to the rows the in-memory backend hands `verify`), and `verify` must name the
/// invariant of settlement.md that the break violates, and only the ones it sensibly drags along.
/// (The SQLite ledgers here skip the fsync at commit, `.normal`: what is checked is the rows, not
/// durability, and the suite stays fast on a busy disk.)
@Suite("verify against broken ledgers")
struct VerifyTamperingTests {
    static func money(_ text: String) -> Money { TestLedger.money(text) }

    // MARK: The ledger every break starts from

    /// Writes the base ledger (values worked out by hand below) and returns its settlement.
    ///
    /// - cus_a buys 100.00; exe_1 and exe_2 on `flat` (7.00 each), exe_4 reserved and still held (7.00):
    ///   available 100 - 7 - 7 - 7 = 79.00, reserved 7.00. acct_flat earns 2 x 80% x 7.00 = 11.20.
    /// - cus_b buys 30.00; the `metered` fee 10.00 on 2026-11-01 (creator 8.00, dated in the week of
    ///   2026-10-26); exe_m uses 22,345 ms = 22.345 CU, 12.345 beyond the 10 included, at 0.50:
    ///   6.1725 (creator 4.938, platform 0.925875, processing 0.308625). Available 30 - 10 - 6.1725 = 13.8275.
    /// - cus_c buys 3.00; the `ent` fee 100.00 takes the 3.00 and leaves 97.00 uncollected (creator 2.40).
    /// - Payouts of the week of 2026-11-02 (minimum 10.00): acct_flat 11.20; acct_metered carries
    ///   8.00 in from the week before (below the minimum) + 4.938 = 12.938, floored to 12.93 (rounding
    ///   would pay 12.94, more than was earned); acct_ent has no line in that week.
    static func writeBaseLedger(_ backend: any SettlementBackend) async throws -> Settlement {
        let ledger = try await TestLedger.make(BackendFactory(name: "given") { _ in backend })
        let (settlement, clock) = (ledger.settlement, ledger.clock)
        try await ledger.purchase("cus_a", "100.00", key: "buy-a")
        for execution in ["exe_1", "exe_2"] {
            try await ledger.reserve(execution, "cus_a", plan: "flat")
            try await ledger.settle(execution)
        }
        try await ledger.reserve("exe_4", "cus_a", plan: "flat", ttl: .seconds(7 * 86_400))
        try await ledger.purchase("cus_b", "30.00", key: "buy-b")
        try await settlement.chargePeriodStart(consumer: "cus_b", plan: ledger.plan("metered"), periodStart: TestLedger.periodStart)
        try await ledger.reserve("exe_m", "cus_b", plan: "metered")
        try await ledger.settle("exe_m", cpuMilliseconds: 22_345)
        try await ledger.purchase("cus_c", "3.00", key: "buy-c")
        try await settlement.chargePeriodStart(consumer: "cus_c", plan: ledger.plan("ent"), periodStart: TestLedger.periodStart)
        clock.set(Timestamp(rfc3339: "2026-11-11T00:00:00Z")!)
        let week = try #require(Timestamp(date: "2026-11-02")?.civilDate)
        _ = try await settlement.executePayouts(week: week, rail: ReferenceRail())
        return settlement
    }

    @Test("the base ledger holds the hand-worked values and passes every invariant", arguments: ["memory", "sqlite"])
    func baseLedger(_ kind: String) async throws {
        let backend: any SettlementBackend = kind == "memory" ? InMemoryBackend(currency: TestLedger.usd)
            : try SQLiteBackend(path: Backends.temporaryLedgerPath(), currency: TestLedger.usd, durability: .normal)
        let settlement = try await Self.writeBaseLedger(backend)
        let snapshot = try await backend.snapshot()
        func consumer(_ id: String) -> ConsumerRecord? { snapshot.consumers.first { $0.id == id } }
        #expect(consumer("cus_a") == ConsumerRecord(id: "cus_a", available: Self.money("79.00"), reserved: Self.money("7.00")))
        #expect(consumer("cus_b") == ConsumerRecord(id: "cus_b", available: Self.money("13.8275"), reserved: .zero))
        #expect(consumer("cus_c") == ConsumerRecord(id: "cus_c", available: .zero, reserved: .zero))
        let metered = try #require(snapshot.charges.first { $0.execution == "exe_m" })
        #expect(metered.charged == Self.money("6.1725"))
        #expect(metered.split == SplitShares(creator: Self.money("4.938"), platform: Self.money("0.925875"), processing: Self.money("0.308625")))
        let enterpriseFee = try #require(snapshot.charges.first { $0.consumer == "cus_c" })
        #expect(enterpriseFee.billed == Self.money("100.00") && enterpriseFee.charged == Self.money("3.00") && enterpriseFee.uncollected == Self.money("97.00"))
        #expect(snapshot.payouts.map(\.key) == ["payout:acct_flat:2026-11-02", "payout:acct_metered:2026-11-02"])
        #expect(snapshot.payouts.map(\.amount) == [Self.money("11.20"), Self.money("12.93")])
        let report = try await settlement.verify()
        // settlement.md's invariants in order (later issues append more).
        #expect(report.invariants.map(\.number).starts(with: [1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }

    // MARK: The breaks

    /// One way of breaking the ledger: the SQL run on the SQLite file, and the same change made to
    /// the in-memory ledger's rows.
    struct Break: Sendable, CustomTestStringConvertible {
        var name: String
        /// The invariants `verify` must report broken, and no other.
        var broken: [Int]
        /// Words the failure of the first broken invariant must contain (which check fired).
        var mentions: String
        var sql: [String]
        var memory: @Sendable (inout LedgerSnapshot) -> Void
        var testDescription: String { "\(broken): \(name)" }
    }

    static let t0 = TestLedger.start
    static func index(_ entries: [Entry], _ operation: String, debit: Account.Kind? = nil) -> Int {
        entries.firstIndex { $0.operation == operation && (debit == nil || $0.debit.kind == debit) } ?? -1
    }

    static let breaks: [Break] = [
        Break(name: "entries reordered so that a hold is taken before the credits that cover it were bought", broken: [1],
              mentions: "available:cus_a went to -7.000000",
              sql: [
                    // Swap the purchase of cus_a (the first entry) with the reserve of exe_1 (the second).
                    "UPDATE entries SET sequence = -1 WHERE operation = 'purchase:buy-a'",
                    "UPDATE entries SET sequence = 1 WHERE operation = 'reserve:exe_1'",
                    "UPDATE entries SET sequence = 2 WHERE sequence = -1"],
              memory: { ledger in
                  let purchase = index(ledger.entries, "purchase:buy-a"), reserve = index(ledger.entries, "reserve:exe_1")
                  (ledger.entries[purchase].sequence, ledger.entries[reserve].sequence) = (ledger.entries[reserve].sequence, ledger.entries[purchase].sequence)
                  ledger.entries.swapAt(purchase, reserve)
              }),
        Break(name: "a negative available balance", broken: [1, 2], mentions: "cus_c holds -0.000001 available",
              sql: ["UPDATE consumers SET available = -1 WHERE id = 'cus_c'"],
              memory: { ledger in
                  ledger.consumers[ledger.consumers.firstIndex { $0.id == "cus_c" }!].available = Money(micros: -1)
              }),
        Break(name: "a live hold that holds more than the reserve moved", broken: [2], mentions: "reserved 7.010000",
              sql: ["UPDATE holds SET amount = amount + 10000 WHERE execution = 'exe_4'"],
              memory: { ledger in
                  let hold = ledger.holds.firstIndex { $0.execution == "exe_4" }!
                  ledger.holds[hold].amount = Money(micros: ledger.holds[hold].amount.micros + 10_000)
              }),
        Break(name: "a purchase recorded for more than its entry moved", broken: [2], mentions: "purchases 100.010000",
              sql: ["UPDATE operations SET result = '100010000' || substr(result, instr(result, ',')) WHERE key = 'purchase:buy-a'"],
              memory: { ledger in
                  let operation = ledger.operations.firstIndex { $0.key == "purchase:buy-a" }!
                  ledger.operations[operation].result[0] += 10_000
              }),
        Break(name: "a charge line whose shares do not add up to it", broken: [3], mentions: "shares add up to 7.000001",
              sql: ["UPDATE charges SET platform_share = platform_share + 1 WHERE execution = 'exe_1'"],
              memory: { ledger in
                  let line = ledger.charges.firstIndex { $0.execution == "exe_1" }!
                  ledger.charges[line].split.platform = Money(micros: ledger.charges[line].split.platform.micros + 1)
              }),
        Break(name: "a line whose billed - charged is not its uncollected", broken: [3], mentions: "billed 7.000001, charged 7.000000, uncollected 0.000000",
              sql: ["UPDATE charges SET billed = billed + 1 WHERE execution = 'exe_1'"],
              memory: { ledger in
                  let line = ledger.charges.firstIndex { $0.execution == "exe_1" }!
                  ledger.charges[line].billed = Money(micros: ledger.charges[line].billed.micros + 1)
              }),
        Break(name: "money written to the platform's account with no charge line", broken: [4], mentions: "platform 4.975876",
              sql: ["INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES ('tampered', 7, 'cus_c', 5, '', 1, 0)"],
              memory: { ledger in
                  ledger.entries.append(Entry(sequence: Int64(ledger.entries.count + 1), operation: "tampered", debit: Account(.uncollected, "cus_c"),
                                              credit: Account(.platform), amount: Money(micros: 1), at: t0))
              }),
        Break(name: "an amount written off that no line left uncollected", broken: [4], mentions: "lines leave 97.000000 uncollected, entries 97.000001",
              sql: ["INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES ('tampered', 7, 'cus_c', 8, '', 1, 0)"],
              memory: { ledger in
                  ledger.entries.append(Entry(sequence: Int64(ledger.entries.count + 1), operation: "tampered", debit: Account(.uncollected, "cus_c"),
                                              credit: Account(.writtenOff), amount: Money(micros: 1), at: t0))
              }),
        Break(name: "an execution charged twice (its line, its share entries and the balance, all consistent)", broken: [5],
              mentions: "execution exe_1 was charged 2 times",
              sql: ["""
                    INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                        creator_share, platform_share, processing_share, failed, dated_at)
                    SELECT operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                        creator_share, platform_share, processing_share, failed, dated_at FROM charges WHERE execution = 'exe_1'
                    """,
                    """
                    INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at)
                    SELECT operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at FROM entries WHERE operation = 'settle:exe_1' AND debit_kind = 1
                    """,
                    "UPDATE consumers SET available = available - 7000000 WHERE id = 'cus_a'"],
              memory: { ledger in
                  let line = ledger.charges.first { $0.execution == "exe_1" }!
                  ledger.charges.append(line)
                  for entry in ledger.entries where entry.operation == "settle:exe_1" && entry.debit.kind == .available { ledger.entries.append(entry) }
                  let consumer = ledger.consumers.firstIndex { $0.id == "cus_a" }!
                  ledger.consumers[consumer].available = Money(micros: ledger.consumers[consumer].available.micros - 7_000_000)
              }),
        Break(name: "a purchase key applied twice (a second entry and the balance)", broken: [2, 5], mentions: "purchase entries total 200.000000",
              sql: ["""
                    INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at)
                    SELECT operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at FROM entries WHERE operation = 'purchase:buy-a'
                    """,
                    "UPDATE consumers SET available = available + 100000000 WHERE id = 'cus_a'"],
              memory: { ledger in
                  ledger.entries.append(ledger.entries[index(ledger.entries, "purchase:buy-a")])
                  let consumer = ledger.consumers.firstIndex { $0.id == "cus_a" }!
                  ledger.consumers[consumer].available = Money(micros: ledger.consumers[consumer].available.micros + 100_000_000)
              }),
        Break(name: "a period key applied twice (its fee line, share entries and the balance, all consistent)", broken: [5],
              mentions: "period-start:",
              sql: ["""
                    INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                        creator_share, platform_share, processing_share, failed, dated_at)
                    SELECT operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                        creator_share, platform_share, processing_share, failed, dated_at FROM charges WHERE consumer = 'cus_b' AND kind = 'fee'
                    """,
                    """
                    INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at)
                    SELECT operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at FROM entries
                    WHERE operation LIKE 'period-start:%' AND debit_kind = 1 AND debit_owner = 'cus_b'
                    """,
                    "UPDATE consumers SET available = available - 10000000 WHERE id = 'cus_b'"],
              memory: { ledger in
                  let line = ledger.charges.first { $0.consumer == "cus_b" && $0.kind == .fee }!
                  ledger.charges.append(line)
                  for entry in ledger.entries where entry.operation == line.operation && entry.debit.kind == .available { ledger.entries.append(entry) }
                  let consumer = ledger.consumers.firstIndex { $0.id == "cus_b" }!
                  ledger.consumers[consumer].available = Money(micros: ledger.consumers[consumer].available.micros - 10_000_000)
              }),
        Break(name: "a charged execution whose hold says released", broken: [5], mentions: "execution exe_1 was charged but its hold is not settled",
              sql: ["UPDATE holds SET state = 2 WHERE execution = 'exe_1'"],
              memory: { ledger in
                  ledger.holds[ledger.holds.firstIndex { $0.execution == "exe_1" }!].state = .released
              }),
        Break(name: "a creator paid twice for one week", broken: [8],
              mentions: "payout:acct_flat:2026-11-02:again is recorded for acct_flat, week 2026-11-02",
              sql: ["INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference) VALUES ('payout:acct_flat:2026-11-02:again', 'acct_flat', '2026-11-02', '2026-11-11', 20000000, 0, NULL)",
                    "INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES ('payout:acct_flat:2026-11-02:again', 3, 'acct_flat', 4, 'acct_flat', 20000000, 0)"],
              memory: { ledger in
                  ledger.payouts.append(PayoutRecord(key: "payout:acct_flat:2026-11-02:again", creator: "acct_flat", weekStart: Timestamp(date: "2026-11-02")!.civilDate,
                                                     payDate: Timestamp(date: "2026-11-11")!.civilDate, amount: Money(micros: 20_000_000), recordedAt: t0))
                  ledger.payouts.sort { $0.key < $1.key }
                  ledger.entries.append(Entry(sequence: Int64(ledger.entries.count + 1), operation: "payout:acct_flat:2026-11-02:again",
                                              debit: Account(.earnings, "acct_flat"), credit: Account(.paidOut, "acct_flat"), amount: Money(micros: 20_000_000), at: t0))
              }),
        Break(name: "a failed payout whose amount never went back to earnings", broken: [6],
              mentions: "payout:acct_flat:2026-11-02 gave back 11.200000, its compensating entries 0.000000",
              sql: ["UPDATE payouts SET failure = 'refused', returned = amount, reference = NULL WHERE creator = 'acct_flat'"],
              memory: { ledger in
                  let payout = ledger.payouts.firstIndex { $0.creator == "acct_flat" }!
                  ledger.payouts[payout].failure = "refused"
                  ledger.payouts[payout].returned = ledger.payouts[payout].amount
                  ledger.payouts[payout].reference = nil
              }),
        Break(name: "a payout row that says more than its entry paid", broken: [6], mentions: "acct_flat earned 11.200000 but was paid 11.210000",
              sql: ["UPDATE payouts SET amount = amount + 10000 WHERE creator = 'acct_flat'"],
              memory: { ledger in
                  let payout = ledger.payouts.firstIndex { $0.creator == "acct_flat" }!
                  ledger.payouts[payout].amount = Money(micros: ledger.payouts[payout].amount.micros + 10_000)
              }),
        Break(name: "a payout in fractions of a cent", broken: [8], mentions: "pays 2.345678: payouts are positive whole units of USD",
              sql: ["INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference) VALUES ('payout:acct_ent:2026-10-26', 'acct_ent', '2026-10-26', '2026-11-04', 2345678, 0, NULL)",
                    "INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at) VALUES ('payout:acct_ent:2026-10-26', 3, 'acct_ent', 4, 'acct_ent', 2345678, 0)"],
              memory: { ledger in
                  ledger.payouts.append(PayoutRecord(key: "payout:acct_ent:2026-10-26", creator: "acct_ent", weekStart: Timestamp(date: "2026-10-26")!.civilDate,
                                                     payDate: Timestamp(date: "2026-11-04")!.civilDate, amount: Money(micros: 2_345_678), recordedAt: t0))
                  ledger.entries.append(Entry(sequence: Int64(ledger.entries.count + 1), operation: "payout:acct_ent:2026-10-26",
                                              debit: Account(.earnings, "acct_ent"), credit: Account(.paidOut, "acct_ent"), amount: Money(micros: 2_345_678), at: t0))
              }),
    ]

    static func check(_ report: VerificationReport, _ broken: Break, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let failing = report.invariants.filter { !$0.holds }
        #expect(failing.map(\.number) == broken.broken, "\(failing)", sourceLocation: sourceLocation)
        let first = failing.first?.failures.joined(separator: "\n") ?? ""
        #expect(first.contains(broken.mentions), "invariant \(broken.broken.first ?? 0) should mention '\(broken.mentions)': \(first)", sourceLocation: sourceLocation)
    }

    @Test("SQLite: a ledger broken behind the ledger's back fails verify, naming the invariant", arguments: breaks)
    func sqlite(_ broken: Break) async throws {
        let path = Backends.temporaryLedgerPath()
        let backend = try SQLiteBackend(path: path, currency: TestLedger.usd, durability: .normal)
        let settlement = try await Self.writeBaseLedger(backend)
        #expect(try await settlement.verify().passed)
        let queue = try DatabaseQueue(path: path)
        try await queue.writeWithoutTransaction { db in
            // Bypass the store's own guards: the append-only triggers and the CHECK constraints.
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            for trigger in ["entries_are_append_only_update", "entries_are_append_only_delete", "charges_are_append_only_update", "charges_are_append_only_delete"] {
                try db.execute(sql: "DROP TRIGGER IF EXISTS \(trigger)")
            }
            try db.inTransaction {
                for statement in broken.sql { try db.execute(sql: statement) }
                return .commit
            }
        }
        try queue.close()
        Self.check(try await settlement.verify(), broken)
    }

    @Test("in memory: the same breaks of the rows verify reads fail it the same way", arguments: breaks)
    func memory(_ broken: Break) async throws {
        let inner = InMemoryBackend(currency: TestLedger.usd)
        _ = try await Self.writeBaseLedger(inner)
        let tampered = Settlement(backend: TamperedBackend(inner: inner, tamper: broken.memory), catalog: TestLedger.catalog)
        Self.check(try await tampered.verify(), broken)
    }

    // MARK: Payouts are floored, never rounded

    @Test("a payout is floored to the cent: 12.938 earned pays 12.93 and carries 0.008", arguments: ["memory", "sqlite"])
    func payoutsFloor(_ kind: String) async throws {
        let backend: any SettlementBackend = kind == "memory" ? InMemoryBackend(currency: TestLedger.usd)
            : try SQLiteBackend(path: Backends.temporaryLedgerPath(), currency: TestLedger.usd, durability: .normal)
        let settlement = try await Self.writeBaseLedger(backend)
        let lines = try await settlement.payouts(week: try #require(Timestamp(date: "2026-11-02")?.civilDate))
        let metered = try #require(lines.first { $0.creator == "acct_metered" })
        // Earnings of the week 4.938 (carried in: 8.00 from the fee of 2026-11-01); 12.938 -> 12.93.
        #expect(metered.earnings == Self.money("4.938") && metered.amount == Self.money("12.93") && metered.carried == Self.money("0.008"))
        #expect(metered.status == .paid)
    }
}

/// A rail that accepts every transfer (its reference is the key).
struct ReferenceRail: PaymentRail {
    func send(_ transfer: PayoutTransfer) async throws -> String { "tr_" + transfer.idempotencyKey }
}

/// The in-memory ledger as `verify` reads it, with a break applied to its rows: every step goes to
/// the real backend; only the snapshot (what `verify` checks) is altered.
struct TamperedBackend: SettlementBackend {
    let inner: InMemoryBackend
    let tamper: @Sendable (inout LedgerSnapshot) -> Void
    var currency: Currency { inner.currency }

    func snapshot() async throws -> LedgerSnapshot {
        var snapshot = await inner.snapshot()
        tamper(&snapshot)
        return snapshot
    }

    func purchase(_ command: PurchaseCommand) async throws -> PurchaseReceipt { try await inner.purchase(command) }
    func balance(consumer: String, at now: Timestamp) async throws -> Balance { try await inner.balance(consumer: consumer, at: now) }
    func reserve(_ command: ReserveCommand) async throws -> Hold { try await inner.reserve(command) }
    func periodState(_ key: PeriodKey) async throws -> PeriodState { await inner.periodState(key) }
    func hold(execution: String) async throws -> HoldRecord? { await inner.hold(execution: execution) }
    func extendHold(_ command: ExtendCommand) async throws -> MeterReceipt { try await inner.extendHold(command) }
    func settle(_ command: SettleCommand, pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) async throws -> SettleReceipt {
        try await inner.settle(command, pricing: pricing)
    }
    func release(_ command: ReleaseCommand) async throws -> ReleaseReceipt { try await inner.release(command) }
    func chargePeriod(_ command: PeriodChargeCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await inner.chargePeriod(command, lines: lines)
    }
    func expireHolds(at now: Timestamp) async throws -> Int { try await inner.expireHolds(at: now) }
    func recordPayout(_ command: PayoutCommand) async throws -> PayoutStep { try await inner.recordPayout(command) }
    func failPayout(key: String, reason: String, now: Timestamp) async throws -> PayoutRecord { try await inner.failPayout(key: key, reason: reason, now: now) }
    func reversePayout(key: String, reversedTotal: Money, transfer: String, now: Timestamp) async throws -> PayoutRecord {
        try await inner.reversePayout(key: key, reversedTotal: reversedTotal, transfer: transfer, now: now)
    }
    func releaseCreator(_ creator: String) async throws -> Bool { try await inner.releaseCreator(creator) }
    func creatorHolds() async throws -> [CreatorHold] { await inner.creatorHolds() }
    func markPayoutSent(key: String, reference: String) async throws { try await inner.markPayoutSent(key: key, reference: reference) }
    func payouts(weekStart: CivilDate) async throws -> [PayoutRecord] { await inner.payouts(weekStart: weekStart) }
    func chargeRecords(_ query: ChargeQuery) async throws -> [ChargeRecord] { await inner.chargeRecords(query) }
    func beginPurchase(_ command: PendingPurchaseCommand) async throws -> PendingPurchaseReceipt { try await inner.beginPurchase(command) }
    func updatePurchase(key: String, reference: String?, state: PurchaseRecord.State) async throws -> PurchaseRecord {
        try await inner.updatePurchase(key: key, reference: reference, state: state)
    }
    func purchaseRecord(key: String) async throws -> PurchaseRecord? { await inner.purchaseRecord(key: key) }
    func purchaseRecord(reference: String) async throws -> PurchaseRecord? { await inner.purchaseRecord(reference: reference) }
    func refund(_ command: RefundCommand) async throws -> ReversalRecord { try await inner.refund(command) }
    func completeRefund(key: String, reference: String?, failed: Bool, now: Timestamp) async throws -> ReversalRecord {
        try await inner.completeRefund(key: key, reference: reference, failed: failed, now: now)
    }
    func disputeLost(_ command: DisputeCommand) async throws -> ReversalRecord { try await inner.disputeLost(command) }
    func openPeriod(_ record: PeriodCloseRecord) async throws -> PeriodCloseRecord { try await inner.openPeriod(record) }
    func closePeriod(_ command: PeriodCloseCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        try await inner.closePeriod(command, lines: lines)
    }
    func periodCloses() async throws -> [PeriodCloseRecord] { await inner.periodCloses() }
    func subscribe(_ command: SubscribeCommand) async throws -> SubscribeReceipt { try await inner.subscribe(command) }
    func cancelSubscription(id: String, at: Timestamp) async throws -> SubscriptionRecord { try await inner.cancelSubscription(id: id, at: at) }
    func advanceSubscription(id: String, chargedPeriods: Int) async throws -> SubscriptionRecord {
        try await inner.advanceSubscription(id: id, chargedPeriods: chargedPeriods)
    }
    func subscriptions(consumer: String?) async throws -> [SubscriptionRecord] { await inner.subscriptions(consumer: consumer) }
    func subscription(id: String) async throws -> SubscriptionRecord? { await inner.subscription(id: id) }
    func dueSubscriptions(at now: Timestamp) async throws -> [SubscriptionRecord] { await inner.dueSubscriptions(at: now) }
}
