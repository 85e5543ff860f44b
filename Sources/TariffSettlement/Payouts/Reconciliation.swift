import Tariff

// Reconciliation (settlement.md, "Money that reconciles"): the ledger's purchases, refunds,
// disputes and payouts against the payment rail's objects, every difference listed.

/// What a compared record or object is.
public enum ReconciledKind: String, Sendable, Hashable, CaseIterable {
    /// A credit purchase paid through the rail: Stripe's succeeded PaymentIntent.
    case purchase
    /// A refund of a purchase: Stripe's refund.
    case refund
    /// A lost dispute of a purchase's payment: Stripe's dispute with status `lost`.
    case dispute
    /// A creator's weekly payout: Stripe's transfer (net of what was reversed).
    case payout

    /// The order differences of one instant are listed in.
    var rank: Int {
        switch self {
        case .purchase: 0
        case .refund: 1
        case .dispute: 2
        case .payout: 3
        }
    }
}

/// One money movement as the ledger records it.
public struct LedgerMovement: Sendable, Hashable {
    public var kind: ReconciledKind
    /// The ledger's key: the purchase key, `refund:KEY`, `dispute:ID`, `payout:CREATOR:WEEK`.
    public var key: String
    /// The key the rail's object carries in its `metadata` (the purchase key, the refund key, the
    /// payout key); nil for a dispute, which the rail made, not Tariff.
    public var railKey: String?
    /// The rail's id stored with the record (`pi_...`, `re_...`, `dp_...`, `tr_...`), nil until the rail answered.
    public var reference: String?
    /// The amount moved (a payout: net of what went back to earnings).
    public var amount: Money
    /// When the ledger recorded it.
    public var at: Timestamp

    public init(kind: ReconciledKind, key: String, railKey: String?, reference: String?, amount: Money, at: Timestamp) {
        self.kind = kind
        self.key = key
        self.railKey = railKey
        self.reference = reference
        self.amount = amount
        self.at = at
    }
}

/// One money movement as the payment rail reports it.
public struct RailMovement: Sendable, Hashable {
    public var kind: ReconciledKind
    /// The rail's id (`pi_...`, `re_...`, `dp_...`, `tr_...`).
    public var id: String
    /// The ledger key Tariff put in the object's `metadata`; nil when it carries none.
    public var key: String?
    /// For a dispute: the disputed payment (`pi_...`), which names the purchase.
    public var payment: String?
    /// The amount moved, in the ledger's units (a transfer: net of what was reversed).
    public var amount: Money
    /// The currency's code, lower case as Stripe writes it (`usd`).
    public var currency: String
    /// When the rail created it.
    public var at: Timestamp

    public init(kind: ReconciledKind, id: String, key: String?, payment: String? = nil, amount: Money, currency: String, at: Timestamp) {
        self.kind = kind
        self.id = id
        self.key = key
        self.payment = payment
        self.amount = amount
        self.currency = currency
        self.at = at
    }
}

/// One difference between the ledger and the rail.
public struct ReconciliationDifference: Sendable, Hashable {
    public enum Issue: String, Sendable, Hashable {
        /// Recorded in the ledger, no matching object on the rail.
        case missingOnRail = "missing_on_rail"
        /// On the rail (made by Tariff, or a dispute of a Tariff purchase), not in the ledger; also a
        /// second rail object for one ledger record (a purchase charged twice).
        case missingInLedger = "missing_in_ledger"
        /// Both sides have it, for different amounts (or currencies).
        case amountDiffers = "amount_differs"
    }
    public var issue: Issue
    public var kind: ReconciledKind
    /// The ledger's key (nil when only the rail has it).
    public var key: String?
    /// The rail's id (nil when only the ledger has it; the ledger's stored reference, if any, otherwise).
    public var reference: String?
    public var ledgerAmount: Money?
    public var railAmount: Money?
    /// The rail object's currency when it is not the ledger's.
    public var railCurrency: String?
    /// When it happened: the ledger's time when the ledger has it, else the rail's.
    public var at: Timestamp
}

/// What `Reconciliation.compare` found.
public struct ReconciliationReport: Sendable, Hashable {
    public var from: Timestamp
    public var to: Timestamp
    /// Ledger records in `[from, to)` compared, by kind.
    public var ledgerCounts: [ReconciledKind: Int]
    /// Rail objects in `[from, to)` compared, by kind.
    public var railCounts: [ReconciledKind: Int]
    /// Rail objects in the range that are not Tariff's (no Tariff key, no ledger reference to them):
    /// payments made outside Tariff, direct invoices, disputes of such payments. Not compared.
    public var ignored: Int
    /// By time, then kind, then key or id.
    public var differences: [ReconciliationDifference]

    public var isClean: Bool { differences.isEmpty }
}

/// The pure comparison behind `tariff ledger reconcile`.
///
/// Matching, one to one: a rail object is the ledger record of its kind whose stored reference is
/// the object's id; failing that, the one whose key the object carries in `metadata` (a payout
/// recorded whose transfer's answer was lost, a refund still pending); a dispute, which carries no
/// Tariff key, is matched by its id (the ledger keeps the dispute id as the reference). A second
/// object for one record is a difference of its own (`missing_in_ledger`): money moved twice.
///
/// The range: a difference is listed when what it is about lies in `[from, to)`: a record only in
/// the ledger by the ledger's time, an object only on the rail by the rail's time, an amount that
/// differs when either side's time is in the range. Records and objects outside the range are used
/// for matching only, so a purchase recorded at 23:59:59 whose PaymentIntent was created a second
/// later, past the range's end, is not a difference (the caller passes objects from around the range).
public enum Reconciliation {
    public static func compare(ledger: [LedgerMovement], rail: [RailMovement], currency: Currency, from: Timestamp, to: Timestamp) -> ReconciliationReport {
        func inRange(_ instant: Timestamp) -> Bool { from <= instant && instant < to }
        let ledgerCode = currency.code.lowercased()
        // Index the ledger by (kind, reference) and (kind, rail key).
        var byReference: [String: Int] = [:], byKey: [String: Int] = [:]
        for (index, record) in ledger.enumerated() {
            if let reference = record.reference { byReference[record.kind.rawValue + "\u{0}" + reference] = byReference[record.kind.rawValue + "\u{0}" + reference] ?? index }
            if let key = record.railKey { byKey[record.kind.rawValue + "\u{0}" + key] = byKey[record.kind.rawValue + "\u{0}" + key] ?? index }
        }
        // The purchases' payments, to tell a dispute of a Tariff purchase from one of another payment.
        let purchasePayments = Set(ledger.filter { $0.kind == .purchase }.compactMap(\.reference))
        var matched = [Bool](repeating: false, count: ledger.count)
        var differences: [ReconciliationDifference] = []
        var ignored = 0
        var railCounts: [ReconciledKind: Int] = [:]
        // Objects in a stable order (by time, then id), so which of two duplicates is "the second" does not depend on the rail's order.
        let objects = rail.sorted { $0.at != $1.at ? $0.at < $1.at : $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        // Two passes: every object the ledger names by its stored reference first, then the others by
        // their metadata key, so an extra object with a record's key never takes the record from the
        // object the ledger stored (whichever was created first).
        var assigned = [Int?](repeating: nil, count: objects.count)
        for (position, object) in objects.enumerated() {
            if let index = byReference[object.kind.rawValue + "\u{0}" + object.id], !matched[index] {
                matched[index] = true
                assigned[position] = index
            }
        }
        for (position, object) in objects.enumerated() where assigned[position] == nil {
            if let key = object.key, let index = byKey[object.kind.rawValue + "\u{0}" + key], !matched[index] {
                matched[index] = true
                assigned[position] = index
            }
        }
        for (position, object) in objects.enumerated() {
            let index = assigned[position]
            let tariffs = object.key != nil || index != nil || byReference[object.kind.rawValue + "\u{0}" + object.id] != nil
                || (object.kind == .dispute && object.payment.map(purchasePayments.contains) == true)
            guard tariffs else {
                if inRange(object.at) { ignored += 1 }
                continue
            }
            if inRange(object.at) { railCounts[object.kind, default: 0] += 1 }
            guard let index else {
                if inRange(object.at) {
                    differences.append(ReconciliationDifference(issue: .missingInLedger, kind: object.kind, key: object.key, reference: object.id,
                                                                ledgerAmount: nil, railAmount: object.amount,
                                                                railCurrency: object.currency == ledgerCode ? nil : object.currency, at: object.at))
                }
                continue
            }
            let record = ledger[index]
            if (record.amount != object.amount || object.currency != ledgerCode) && (inRange(record.at) || inRange(object.at)) {
                differences.append(ReconciliationDifference(issue: .amountDiffers, kind: object.kind, key: record.key, reference: object.id,
                                                            ledgerAmount: record.amount, railAmount: object.amount,
                                                            railCurrency: object.currency == ledgerCode ? nil : object.currency, at: record.at))
            }
        }
        var ledgerCounts: [ReconciledKind: Int] = [:]
        for (index, record) in ledger.enumerated() where inRange(record.at) {
            ledgerCounts[record.kind, default: 0] += 1
            if !matched[index] {
                differences.append(ReconciliationDifference(issue: .missingOnRail, kind: record.kind, key: record.key, reference: record.reference,
                                                            ledgerAmount: record.amount, railAmount: nil, railCurrency: nil, at: record.at))
            }
        }
        differences.sort { a, b in
            if a.at != b.at { return a.at < b.at }
            if a.kind != b.kind { return a.kind.rank < b.kind.rank }
            return (a.key ?? a.reference ?? "").utf8.lexicographicallyPrecedes((b.key ?? b.reference ?? "").utf8)
        }
        return ReconciliationReport(from: from, to: to, ledgerCounts: ledgerCounts, railCounts: railCounts, ignored: ignored, differences: differences)
    }

    /// The ledger's money movements as the rail should show them, from a snapshot: purchases paid
    /// and credited through a rail (`succeeded`); refunds that still take money back (pending or
    /// confirmed; a refused one gave its credits back); lost disputes; payouts recorded or paid
    /// (a failed one sent nothing), at their net amount. Credits added without a rail
    /// (`purchase` with no payment) have no rail object and are not compared.
    public static func ledgerMovements(_ snapshot: LedgerSnapshot) -> [LedgerMovement] {
        var movements: [LedgerMovement] = []
        for purchase in snapshot.purchases where purchase.state == .succeeded {
            movements.append(LedgerMovement(kind: .purchase, key: purchase.key, railKey: purchase.key, reference: purchase.reference,
                                             amount: purchase.amount, at: purchase.createdAt))
        }
        for reversal in snapshot.reversals where reversal.counts {
            switch reversal.kind {
            case .refund:
                let refundKey = reversal.key.hasPrefix("refund:") ? String(reversal.key.dropFirst("refund:".count)) : reversal.key
                movements.append(LedgerMovement(kind: .refund, key: reversal.key, railKey: refundKey, reference: reversal.reference,
                                                 amount: reversal.amount, at: reversal.at))
            case .dispute:
                let dispute = reversal.reference ?? (reversal.key.hasPrefix("dispute:") ? String(reversal.key.dropFirst("dispute:".count)) : reversal.key)
                movements.append(LedgerMovement(kind: .dispute, key: reversal.key, railKey: nil, reference: dispute, amount: reversal.amount, at: reversal.at))
            }
        }
        for payout in snapshot.payouts where payout.status != .failed {
            movements.append(LedgerMovement(kind: .payout, key: payout.key, railKey: payout.key, reference: payout.reference,
                                             amount: payout.netAmount, at: payout.recordedAt))
        }
        return movements
    }
}

/// A rail that can list what it made, for reconciliation (Stripe: list endpoints by creation time).
public protocol ReconcilingRail: Sendable {
    /// Every object of the four kinds created in `[from, to)` (disputes: in `[disputesFrom, to)`):
    /// succeeded PaymentIntents, refunds that were not refused, lost disputes, transfers (net of
    /// reversals).
    /// - throws: the rail's errors.
    func movements(from: Timestamp, to: Timestamp, disputesFrom: Timestamp) async throws -> [RailMovement]
}

extension Settlement {
    /// How far around the range the rail's objects are read, so an object created just outside the
    /// range still matches its record inside (the ledger records a purchase or a payout before the
    /// rail is called; a rerun may send it days later). Disputes are read further back: a dispute
    /// is created when opened, and recorded in the ledger when it is lost, weeks later.
    public static let reconcileMarginSeconds: Int64 = 7 * 86_400
    public static let reconcileDisputeLookBackSeconds: Int64 = 120 * 86_400

    /// Compares the ledger's purchases, refunds, disputes and payouts in `[from, to)` with the
    /// rail's objects (settlement.md, "Reconciliation"). Reads only.
    /// - throws: `invalid_input` for an empty range; the backend's and the rail's errors.
    public func reconcile(from: Timestamp, to: Timestamp, rail: some ReconcilingRail) async throws -> ReconciliationReport {
        guard from < to else { throw SettlementError(.invalidInput, "the range to reconcile is empty: \(from) is not before \(to)") }
        let snapshot = try await backend.snapshot()
        let margin = Self.reconcileMarginSeconds * 1_000_000_000
        let readFrom = from.adding(nanoseconds: -margin) ?? from, readTo = to.adding(nanoseconds: margin) ?? to
        let disputesFrom = from.adding(nanoseconds: -Self.reconcileDisputeLookBackSeconds * 1_000_000_000) ?? from
        let objects = try await rail.movements(from: readFrom, to: readTo, disputesFrom: disputesFrom)
        return Reconciliation.compare(ledger: Reconciliation.ledgerMovements(snapshot), rail: objects, currency: currency, from: from, to: to)
    }
}
