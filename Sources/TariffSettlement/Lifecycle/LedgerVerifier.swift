import Tariff

/// The result of `verify`: each invariant of settlement.md and what broke it.
public struct VerificationReport: Sendable, Hashable {
    public struct Invariant: Sendable, Hashable {
        /// As numbered in settlement.md.
        public var number: Int
        public var name: String
        /// Empty when the invariant holds (at most 20 listed per invariant, then a count).
        public var failures: [String]
        public var holds: Bool { failures.isEmpty }
    }

    public var invariants: [Invariant]
    public var entries: Int
    public var charges: Int
    public var passed: Bool { invariants.allSatisfy(\.holds) }
}

/// Checks a ledger's rows against settlement.md's invariants, each from sources kept apart: the
/// consumer rows' running balances, the entries, the charge records, the holds, the operations and
/// the payouts. Every sum is formed in Int128, so a corrupt ledger cannot trap the check.
enum LedgerVerifier {
    static func verify(_ ledger: LedgerSnapshot, schedule: PayoutSchedule) -> VerificationReport {
        var report = VerificationReport(invariants: [], entries: ledger.entries.count, charges: ledger.charges.count)
        let balances = ledger.balances
        func balance(_ account: Account) -> Int128 { balances[account] ?? 0 }

        // 1. No consumer's available or reserved is ever negative: replay the entries in order.
        var failures = Failures()
        var running: [Account: Int128] = [:]
        for entry in ledger.entries {
            if entry.amount.micros <= 0 { failures.add("entry \(entry.sequence) moves \(entry.amount): entries are positive") }
            if entry.debit == entry.credit { failures.add("entry \(entry.sequence) debits and credits \(entry.debit)") }
            let debited = running[entry.debit, default: 0] - Int128(entry.amount.micros)
            running[entry.debit] = debited
            running[entry.credit, default: 0] += Int128(entry.amount.micros)
            if entry.debit.kind == .available || entry.debit.kind == .reserved, debited < 0 {
                failures.add("\(entry.debit) went to \(Self.text(debited)) at entry \(entry.sequence) (\(entry.operation))")
            }
        }
        for consumer in ledger.consumers {
            if consumer.available.micros < 0 || consumer.reserved.micros < 0 {
                failures.add("\(consumer.id) holds \(consumer.available) available, \(consumer.reserved) reserved")
            }
            if Int128(consumer.available.micros) != balance(Account(.available, consumer.id)) {
                failures.add("\(consumer.id)'s available \(consumer.available) differs from its entries' \(Self.text(balance(Account(.available, consumer.id))))")
            }
            if Int128(consumer.reserved.micros) != balance(Account(.reserved, consumer.id)) {
                failures.add("\(consumer.id)'s reserved \(consumer.reserved) differs from its entries' \(Self.text(balance(Account(.reserved, consumer.id))))")
            }
        }
        report.invariants.append(.init(number: 1, name: "no available or reserved balance is ever negative", failures: failures.list))

        // 2. purchases - refunds - dispute debits - charged - reserved = available (settlement.md, restated for
        // reversals; a credit-back is a negative charge), from separate sources: the operations, the
        // reversal records, the charge records and the holds, against the consumer rows.
        failures = Failures()
        var purchased: [ByteKey: Int128] = [:], charged: [ByteKey: Int128] = [:], held: [ByteKey: Int128] = [:]
        // The purchase entry names the consumer; the operation keeps the amount.
        var purchaseConsumer: [ByteKey: String] = [:]
        for entry in ledger.entries where entry.credit.kind == .available && entry.debit.kind == .purchases {
            purchaseConsumer[ByteKey(entry.operation)] = entry.credit.owner
        }
        for operation in ledger.operations where operation.key.hasPrefix("purchase:") {
            purchased[ByteKey(purchaseConsumer[ByteKey(operation.key)] ?? ""), default: 0] += Int128(operation.result.first ?? 0)
        }
        for record in ledger.charges { charged[ByteKey(record.consumer), default: 0] += Int128(record.charged.micros) }
        for hold in ledger.holds where hold.state == .active { held[ByteKey(hold.consumer), default: 0] += Int128(hold.amount.micros) }
        var refunded: [ByteKey: Int128] = [:], disputeDebits: [ByteKey: Int128] = [:], disputed: [ByteKey: Int128] = [:], losses = Int128(0)
        for reversal in ledger.reversals where reversal.counts {
            switch reversal.kind {
            case .refund: refunded[ByteKey(reversal.consumer), default: 0] += Int128(reversal.amount.micros)
            case .dispute:
                disputeDebits[ByteKey(reversal.consumer), default: 0] += Int128(reversal.fromAvailable.micros)
                disputed[ByteKey(reversal.consumer), default: 0] += Int128(reversal.amount.micros)
                losses += Int128(reversal.loss.micros)
            }
        }
        for consumer in ledger.consumers {
            let id = ByteKey(consumer.id)
            let expected = (purchased[id] ?? 0) - (refunded[id] ?? 0) - (disputeDebits[id] ?? 0) - (charged[id] ?? 0) - (held[id] ?? 0)
            if expected != Int128(consumer.available.micros) {
                failures.add("\(id): purchases \(Self.text(purchased[id] ?? 0)) - refunds \(Self.text(refunded[id] ?? 0)) - dispute debits \(Self.text(disputeDebits[id] ?? 0)) - charged \(Self.text(charged[id] ?? 0)) - reserved \(Self.text(held[id] ?? 0)) = \(Self.text(expected)), but available is \(consumer.available)")
            }
            if balance(Account(.refunded, id.string)) != (refunded[id] ?? 0) {
                failures.add("\(id): refund entries total \(Self.text(balance(Account(.refunded, id.string)))), refunds \(Self.text(refunded[id] ?? 0))")
            }
            if balance(Account(.disputed, id.string)) != (disputed[id] ?? 0) {
                failures.add("\(id): dispute entries total \(Self.text(balance(Account(.disputed, id.string)))), lost disputes \(Self.text(disputed[id] ?? 0))")
            }
            if -balance(Account(.purchases, id.string)) != (purchased[id] ?? 0) {
                failures.add("\(id): purchase entries total \(Self.text(-balance(Account(.purchases, id.string)))), purchases \(Self.text(purchased[id] ?? 0))")
            }
        }
        if -balance(Account(.disputeLosses)) != losses {
            failures.add("dispute_losses entries total \(Self.text(-balance(Account(.disputeLosses)))), the disputes' losses \(Self.text(losses))")
        }
        report.invariants.append(.init(number: 2, name: "purchases - refunds - dispute debits - charged - reserved = available", failures: failures.list))

        // 3. Every charge line's shares add up to it; what was not collected is billed - charged.
        failures = Failures()
        for record in ledger.charges {
            let shares = Int128(record.split.creator.micros) + Int128(record.split.platform.micros) + Int128(record.split.processing.micros)
            if shares != Int128(record.charged.micros) {
                failures.add("line \(record.sequence) (\(record.operation)) charged \(record.charged) but its shares add up to \(Self.text(shares))")
            }
            if Int128(record.billed.micros) - Int128(record.charged.micros) != Int128(record.uncollected.micros) {
                failures.add("line \(record.sequence) billed \(record.billed), charged \(record.charged), uncollected \(record.uncollected)")
            }
            if record.billed.micros > 0, record.charged.micros < 0 || record.charged > record.billed {
                failures.add("line \(record.sequence) charged \(record.charged) of \(record.billed)")
            }
        }
        report.invariants.append(.init(number: 3, name: "every charge line's three shares add up to it", failures: failures.list))

        // 4. Conservation: total charged = creator earnings + platform + processing (entries), and
        // the books balance (every account together sums to zero).
        failures = Failures()
        let totalCharged = ledger.charges.reduce(Int128(0)) { $0 + Int128($1.charged.micros) }
        var creators = Int128(0), platform = Int128(0), processing = Int128(0), everything = Int128(0)
        for (account, value) in balances {
            everything += value
            switch account.kind {
            case .earnings, .paidOut: creators += value
            case .platform: platform += value
            case .processing: processing += value
            default: break
            }
        }
        if totalCharged != creators + platform + processing {
            failures.add("charged \(Self.text(totalCharged)) but creators \(Self.text(creators)) + platform \(Self.text(platform)) + processing \(Self.text(processing)) = \(Self.text(creators + platform + processing))")
        }
        let totalUncollected = ledger.charges.reduce(Int128(0)) { $0 + Int128($1.uncollected.micros) }
        if totalUncollected != balance(Account(.writtenOff)) {
            failures.add("lines leave \(Self.text(totalUncollected)) uncollected, entries \(Self.text(balance(Account(.writtenOff))))")
        }
        if everything != 0 { failures.add("the accounts sum to \(Self.text(everything)), not 0") }
        report.invariants.append(.init(number: 4, name: "total charged = creator earnings + platform + processing", failures: failures.list))

        // 5. Each execution settled at most once; each key applied at most once.
        failures = Failures()
        var executionLines: [ByteKey: Int] = [:]
        for record in ledger.charges where record.kind == .execution { executionLines[ByteKey(record.execution ?? ""), default: 0] += 1 }
        for (execution, count) in executionLines where count > 1 { failures.add("execution \(execution) was charged \(count) times") }
        var holdsByExecution: [ByteKey: HoldRecord] = [:]
        for hold in ledger.holds {
            if holdsByExecution[ByteKey(hold.execution)] != nil { failures.add("execution \(hold.execution) has two holds") }
            holdsByExecution[ByteKey(hold.execution)] = hold
        }
        for (execution, count) in executionLines where count == 1 {
            if holdsByExecution[execution]?.state != .settled { failures.add("execution \(execution) was charged but its hold is not settled") }
        }
        for hold in ledger.holds where hold.state == .settled && hold.outcome?.refusal == nil && executionLines[ByteKey(hold.execution)] == nil {
            failures.add("execution \(hold.execution) was settled without its charge line")
        }
        var entriesByOperation: [ByteKey: Int] = [:]
        for entry in ledger.entries { entriesByOperation[ByteKey(entry.operation), default: 0] += 1 }
        for operation in ledger.operations where operation.key.hasPrefix("purchase:") && entriesByOperation[ByteKey(operation.key)] != 1 {
            failures.add("\(operation.key) wrote \(entriesByOperation[ByteKey(operation.key)] ?? 0) entries")
        }
        for payout in ledger.payouts where entriesByOperation[ByteKey(payout.key)] != 1 {
            failures.add("\(payout.key) wrote \(entriesByOperation[ByteKey(payout.key)] ?? 0) entries")
        }
        // A period key (fees, period-end lines) is applied once: its lines add up to the one result
        // recorded under it. Lines written twice under one key (or under no recorded key) do not.
        var periodLines: [ByteKey: [Int128]] = [:]
        for record in ledger.charges where record.kind != .execution && !record.kind.isAdjustment {
            let sums = periodLines[ByteKey(record.operation)] ?? [0, 0, 0]
            periodLines[ByteKey(record.operation)] = [sums[0] + Int128(record.billed.micros), sums[1] + Int128(record.charged.micros),
                                             sums[2] + Int128(record.uncollected.micros)]
        }
        var results: [ByteKey: [Int64]] = [:]
        for operation in ledger.operations { results[ByteKey(operation.key)] = operation.result }
        for (key, sums) in periodLines.sorted(by: { $0.key < $1.key }) where results[key]?.map({ Int128($0) }) != sums {
            failures.add("\(key) wrote lines of billed \(Self.text(sums[0])), charged \(Self.text(sums[1])), uncollected \(Self.text(sums[2])), "
                         + "but was applied once for \(results[key].map { $0.map { Self.text(Int128($0)) }.joined(separator: ", ") } ?? "nothing")")
        }
        for (keys, what) in [(ledger.operations.map(\.key), "operation"), (ledger.payouts.map(\.key), "payout")] where Set(keys.map(ByteKey.init)).count != keys.count {
            failures.add("an \(what) key was applied twice")
        }
        report.invariants.append(.init(number: 5, name: "each execution settled at most once, each key applied at most once", failures: failures.list))

        // 6 (restated for a ledger with reversals). For every creator, paid out (net of what went
        // back) + owed = earnings: the shares of its charge lines = its payouts' amounts less what
        // went back + the balance of its earnings account; the paid_out account holds exactly the
        // net paid; what each payout gave back is the compensating entries written under its key.
        failures = Failures()
        var earned: [ByteKey: Int128] = [:]
        for record in ledger.charges { earned[ByteKey(record.creator), default: 0] += Int128(record.split.creator.micros) }
        var netPaid: [ByteKey: Int128] = [:]
        for payout in ledger.payouts { netPaid[ByteKey(payout.creator), default: 0] += Int128(payout.amount.micros) - Int128(payout.returned.micros) }
        var compensated: [ByteKey: Int128] = [:]
        for entry in ledger.entries where entry.debit.kind == .paidOut && entry.credit.kind == .earnings {
            guard let colon = entry.operation.firstIndex(of: ":") else {
                failures.add("entry \(entry.sequence) (\(entry.operation)) moves paid_out back to earnings outside a payout")
                continue
            }
            compensated[ByteKey(String(entry.operation[entry.operation.index(after: colon)...])), default: 0] += Int128(entry.amount.micros)
        }
        for creator in Set(earned.keys).union(netPaid.keys).sorted() {
            let owed = balance(Account(.earnings, creator.string)), paid = netPaid[creator] ?? 0
            if (earned[creator] ?? 0) != paid + owed {
                failures.add("\(creator) earned \(Self.text(earned[creator] ?? 0)) but was paid \(Self.text(paid)) net and owes \(Self.text(owed))")
            }
            if balance(Account(.paidOut, creator.string)) != paid {
                failures.add("\(creator)'s paid-out entries total \(Self.text(balance(Account(.paidOut, creator.string)))), its payouts \(Self.text(paid)) net")
            }
        }
        for payout in ledger.payouts {
            if payout.returned.micros < 0 || payout.returned > payout.amount {
                failures.add("\(payout.key) gave back \(payout.returned) of \(payout.amount)")
            }
            if (compensated[ByteKey(payout.key)] ?? 0) != Int128(payout.returned.micros) {
                failures.add("\(payout.key) gave back \(payout.returned), its compensating entries \(Self.text(compensated[ByteKey(payout.key)] ?? 0))")
            }
            if payout.failure != nil, payout.returned != payout.amount {
                failures.add("\(payout.key) failed but gave back only \(payout.returned) of \(payout.amount)")
            }
        }
        report.invariants.append(.init(number: 6, name: "for every creator, paid out (net of reversals) + owed = earnings", failures: failures.list))

        // 7. No purchase is refunded or disputed beyond its amount; every refund and dispute names a
        // paid purchase of its consumer.
        failures = Failures()
        var purchasesByKey: [ByteKey: PurchaseRecord] = [:]
        for purchase in ledger.purchases { purchasesByKey[ByteKey(purchase.key)] = purchase }
        var taken: [ByteKey: Int128] = [:]
        for reversal in ledger.reversals where reversal.counts {
            guard let purchase = purchasesByKey[ByteKey(reversal.purchase)] else {
                failures.add("\(reversal.key) takes back \(reversal.amount) of purchase '\(reversal.purchase)', which was never paid through a rail")
                continue
            }
            if purchase.state != .succeeded { failures.add("\(reversal.key) takes back \(reversal.amount) of purchase '\(purchase.key)', which is \(purchase.state)") }
            if !purchase.consumer.bytesEqual(reversal.consumer) {
                failures.add("\(reversal.key) takes back from \(reversal.consumer) a purchase of \(purchase.consumer)")
            }
            if Int128(reversal.fromAvailable.micros) + Int128(reversal.loss.micros) != Int128(reversal.amount.micros) {
                failures.add("\(reversal.key) of \(reversal.amount) is \(reversal.fromAvailable) from available and \(reversal.loss) lost")
            }
            taken[ByteKey(purchase.key), default: 0] += Int128(reversal.amount.micros)
        }
        for (key, total) in taken.sorted(by: { $0.key < $1.key }) {
            if let purchase = purchasesByKey[key], total > Int128(purchase.amount.micros) {
                failures.add("purchase '\(key)' of \(purchase.amount) was refunded and disputed for \(Self.text(total))")
            }
        }
        report.invariants.append(.init(number: 7, name: "no purchase is refunded or disputed beyond its amount", failures: failures.list))

        // 8. No payout was sent for a zero amount or twice for one creator and week: every payout is
        // positive and a whole number of the currency's smallest unit, its key is its creator's and
        // week's, one per creator and week, and one that failed was never confirmed sent.
        failures = Failures()
        let unit = Int64(PowerOfTen.int128(Money.fractionalDigits - min(ledger.currency.minorUnitDigits, Money.fractionalDigits)))
        var weeks: [ByteKey: String] = [:]
        for payout in ledger.payouts {
            if payout.amount.micros <= 0 || payout.amount.micros % unit != 0 {
                failures.add("\(payout.key) pays \(payout.amount): payouts are positive whole units of \(ledger.currency.code)")
            }
            if payout.key != Settlement.payoutKey(creator: payout.creator, weekStart: payout.weekStart) {
                failures.add("\(payout.key) is recorded for \(payout.creator), week \(payout.weekStart)")
            }
            if schedule.week(startingOn: payout.weekStart) == nil {
                failures.add("\(payout.key) names a week that does not start on \(schedule.calendar.weekStarts.fullName)")
            }
            let creatorWeek = ByteKey(payout.creator + "\u{1F}" + payout.weekStart.description)
            if let other = weeks[creatorWeek] { failures.add("\(payout.key) and \(other) pay \(payout.creator) twice for the week of \(payout.weekStart)") }
            weeks[creatorWeek] = payout.key
            if payout.failure != nil, payout.reference != nil { failures.add("\(payout.key) failed but is marked sent (\(payout.reference ?? ""))") }
        }
        report.invariants.append(.init(number: 8, name: "no payout sent for zero or twice for one creator and week", failures: failures.list))

        // 9. Every adjustment line belongs to a closed period (dated at its end, after its close),
        // and each closed period's total before SLA credits (fee + usage + shortfall, less what
        // adjustments credited back) is max(commitment, fee + usage charges), from its lines; its
        // record holds what its shortfall and SLA lines add up to.
        failures = Failures()
        // Executions and adjustments belong to the period their hold was priced in; end lines
        // to the period of their consumer and plan that ends where they are dated.
        var periodIndex: [ByteKey: Int] = [:], periodsOf: [ByteKey: [Int]] = [:]
        for (index, record) in ledger.closes.enumerated() {
            periodIndex[ByteKey(record.key)] = index
            periodsOf[ByteKey(record.consumer + "\u{1F}" + record.plan), default: []].append(index)
        }
        var usage = [Int128](repeating: 0, count: ledger.closes.count), shortfall = usage, credit = usage
        if !ledger.closes.isEmpty {
            for charge in ledger.charges where charge.kind != .fee {
                let found: Int?
                if charge.kind == .execution || charge.kind.isAdjustment {
                    let hold = charge.execution.flatMap { holdsByExecution[ByteKey($0)] }
                    found = hold.flatMap { hold in
                        hold.periodStart.flatMap { periodIndex[ByteKey(PeriodKey(consumer: hold.consumer, plan: hold.plan, start: $0).rawValue)] }
                    }
                } else {
                    found = periodsOf[ByteKey(charge.consumer + "\u{1F}" + charge.plan)]?.first { ledger.closes[$0].end == charge.datedAt }
                }
                guard let index = found, !charge.kind.isAdjustment || (ledger.closes[index].isClosed && ledger.closes[index].end == charge.datedAt) else {
                    if charge.kind.isAdjustment { failures.add("adjustment line \(charge.sequence) (\(charge.operation)) belongs to no closed period") }
                    continue
                }
                let billed = Int128(charge.billed.micros)
                switch charge.kind {
                case .execution: usage[index] += billed
                case .shortfall, .shortfallAdjustment: shortfall[index] += billed
                case .slaCredit, .slaAdjustment: credit[index] += billed
                case .fee: break
                }
            }
        }
        for (index, period) in ledger.closes.enumerated() where period.isClosed {
            let name = "\(SafeText.escaping(period.consumer))/\(SafeText.escaping(period.plan))/\(period.start.rfc3339)"
            // The fees its end lines were computed over (what its start lines billed).
            let billed = Int128(period.fees.micros) + usage[index]
            let expected = max(Int128(period.commitment?.micros ?? 0), billed)
            if billed + shortfall[index] != expected {
                failures.add("period \(name): fee + usage \(Self.text(billed)) + shortfall \(Self.text(shortfall[index])) = \(Self.text(billed + shortfall[index])), "
                             + "not max(commitment, fee + usage) = \(Self.text(expected))")
            }
            if shortfall[index] != Int128(period.shortfall.micros) || credit[index] != Int128(period.slaCredit.micros) {
                failures.add("period \(name) records shortfall \(period.shortfall) and SLA credit \(period.slaCredit); its lines add up to "
                             + "\(Self.text(shortfall[index])) and \(Self.text(credit[index]))")
            }
        }
        report.invariants.append(.init(number: 9, name: "every adjustment line belongs to a closed period; a closed period totals max(commitment, fee + usage)",
                                       failures: failures.list))
        return report
    }

    static func text(_ micros: Int128) -> String { DecimalText.format(micros, fractionalDigits: Money.fractionalDigits) }

    /// At most 20 failures listed per invariant, then how many more.
    struct Failures {
        private(set) var all: [String] = []
        private var more = 0
        mutating func add(_ failure: String) {
            if all.count < 20 { all.append(failure) } else { more += 1 }
        }
        var list: [String] { more == 0 ? all : all + ["... and \(more) more"] }
    }
}
