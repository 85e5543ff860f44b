import Tariff
import TariffSettlement
import Testing

/// The pure comparison behind `tariff ledger reconcile` (settlement.md, "Reconciliation"): every
/// expected difference below is written by hand from the two lists.
@Suite("Reconciliation: ledger records against rail objects")
struct ReconciliationTests {
    static let usd = Currency(code: "USD")!
    static let from = Timestamp(rfc3339: "2026-11-01T00:00:00Z")!
    static let to = Timestamp(rfc3339: "2026-12-01T00:00:00Z")!

    static func at(_ text: String) -> Timestamp { Timestamp(rfc3339: text)! }
    static func money(_ text: String) -> Money { (try? Money(parsing: Substring(text))) ?? Money(micros: Int64.min) }

    static func compare(_ ledger: [LedgerMovement], _ rail: [RailMovement]) -> ReconciliationReport {
        Reconciliation.compare(ledger: ledger, rail: rail, currency: usd, from: from, to: to)
    }

    /// A purchase `buy-1` of 100.00 paid by pi_1, a refund `refund:r-1` of 25.00 by re_2, a lost
    /// dispute dp_3 of 20.00 on pi_1, a payout of 12.62 by tr_4: each with its rail object.
    static let ledger = [
        LedgerMovement(kind: .purchase, key: "buy-1", railKey: "buy-1", reference: "pi_1", amount: money("100.00"), at: at("2026-11-02T10:00:00Z")),
        LedgerMovement(kind: .refund, key: "refund:r-1", railKey: "r-1", reference: "re_2", amount: money("25.00"), at: at("2026-11-03T10:00:00Z")),
        LedgerMovement(kind: .dispute, key: "dispute:dp_3", railKey: nil, reference: "dp_3", amount: money("20.00"), at: at("2026-11-20T10:00:00Z")),
        LedgerMovement(kind: .payout, key: "payout:acct_1:2026-11-02", railKey: "payout:acct_1:2026-11-02", reference: "tr_4",
                       amount: money("12.62"), at: at("2026-11-11T08:00:00Z")),
    ]
    static let rail = [
        RailMovement(kind: .purchase, id: "pi_1", key: "buy-1", amount: money("100.00"), currency: "usd", at: at("2026-11-02T10:00:01Z")),
        RailMovement(kind: .refund, id: "re_2", key: "r-1", amount: money("25.00"), currency: "usd", at: at("2026-11-03T10:00:01Z")),
        // Opened before the range, lost (and recorded) inside it.
        RailMovement(kind: .dispute, id: "dp_3", key: nil, payment: "pi_1", amount: money("20.00"), currency: "usd", at: at("2026-10-25T10:00:00Z")),
        RailMovement(kind: .payout, id: "tr_4", key: "payout:acct_1:2026-11-02", amount: money("12.62"), currency: "usd", at: at("2026-11-11T08:00:01Z")),
    ]

    @Test("every record matched by its reference, each kind counted: clean")
    func clean() {
        let report = Self.compare(Self.ledger, Self.rail)
        #expect(report.isClean)
        #expect(report.differences.isEmpty)
        #expect(report.ledgerCounts == [.purchase: 1, .refund: 1, .dispute: 1, .payout: 1])
        // The dispute was created before the range: compared (matched), not counted among the range's objects.
        #expect(report.railCounts == [.purchase: 1, .refund: 1, .payout: 1])
        #expect(report.ignored == 0)
    }

    @Test("an object only on the rail, a record only in the ledger, and an amount that differs: one difference each")
    func eachKindOfDifference() {
        var rail = Self.rail
        rail.removeAll { $0.id == "tr_4" }                   // the payout's transfer is missing
        rail[1].amount = Self.money("24.00")                 // the refund moved 24.00, not 25.00
        rail.append(RailMovement(kind: .purchase, id: "pi_9", key: "buy-9", amount: Self.money("5.00"), currency: "usd",
                                 at: Self.at("2026-11-05T00:00:00Z")))  // charged, never credited
        let report = Self.compare(Self.ledger, rail)
        #expect(!report.isClean)
        #expect(report.differences.map(\.issue) == [.amountDiffers, .missingInLedger, .missingOnRail]) // by time: 11-03, 11-05, 11-11
        let refund = report.differences[0]
        #expect(refund.kind == .refund && refund.key == "refund:r-1" && refund.reference == "re_2")
        #expect(refund.ledgerAmount == Self.money("25.00") && refund.railAmount == Self.money("24.00") && refund.railCurrency == nil)
        let charged = report.differences[1]
        #expect(charged.kind == .purchase && charged.key == "buy-9" && charged.reference == "pi_9")
        #expect(charged.ledgerAmount == nil && charged.railAmount == Self.money("5.00"))
        let payout = report.differences[2]
        #expect(payout.kind == .payout && payout.key == "payout:acct_1:2026-11-02" && payout.reference == "tr_4")
        #expect(payout.ledgerAmount == Self.money("12.62") && payout.railAmount == nil)
    }

    @Test("a second object for one record (a purchase charged twice) is a difference; the first is matched")
    func duplicate() {
        var rail = Self.rail
        rail.append(RailMovement(kind: .purchase, id: "pi_7", key: "buy-1", amount: Self.money("100.00"), currency: "usd", at: Self.at("2026-11-09T00:00:00Z")))
        let report = Self.compare(Self.ledger, rail)
        #expect(report.differences.count == 1)
        #expect(report.differences.first?.issue == .missingInLedger)
        #expect(report.differences.first?.reference == "pi_7")
        #expect(report.differences.first?.railAmount == Self.money("100.00"))
        // The extra one created before the one the ledger stored: still the extra one that is listed.
        var earlier = Self.rail
        earlier.append(RailMovement(kind: .purchase, id: "pi_0", key: "buy-1", amount: Self.money("100.00"), currency: "usd", at: Self.at("2026-11-02T09:59:00Z")))
        let first = Self.compare(Self.ledger, earlier)
        #expect(first.differences.map(\.issue) == [.missingInLedger] && first.differences.first?.reference == "pi_0")
        // Two objects with the key of a record that stored none (its answer was lost): the first created is matched.
        var noReference = Self.ledger
        noReference[0].reference = nil
        let unnamed = Self.compare(noReference, rail)
        #expect(unnamed.differences.map(\.issue) == [.missingInLedger] && unnamed.differences.first?.reference == "pi_7")
    }

    @Test("a record with no reference yet (a payout whose answer was lost) matches by the key in metadata")
    func byKey() {
        var ledger = Self.ledger
        ledger[3].reference = nil
        ledger[1].reference = nil
        #expect(Self.compare(ledger, Self.rail).isClean)
    }

    @Test("the range: what lies outside is used for matching only")
    func range() {
        // A record dated just before `to`, its object just after: matched, clean.
        let ledger = [LedgerMovement(kind: .purchase, key: "late", railKey: "late", reference: "pi_5", amount: Self.money("10.00"), at: Self.at("2026-11-30T23:59:59Z"))]
        let rail = [RailMovement(kind: .purchase, id: "pi_5", key: "late", amount: Self.money("10.00"), currency: "usd", at: Self.at("2026-12-01T00:00:01Z"))]
        #expect(Self.compare(ledger, rail).isClean)
        // A record only in the ledger before `from`, an object only on the rail at `to`: neither is listed.
        let before = [LedgerMovement(kind: .refund, key: "refund:old", railKey: "old", reference: "re_0", amount: Self.money("1.00"), at: Self.at("2026-10-31T23:59:59Z"))]
        let after = [RailMovement(kind: .purchase, id: "pi_8", key: "next", amount: Self.money("3.00"), currency: "usd", at: Self.to)]
        let report = Self.compare(before, after)
        #expect(report.isClean)
        #expect(report.ledgerCounts.isEmpty && report.railCounts.isEmpty)
        // The same, inside: both listed.
        let inside = Self.compare([LedgerMovement(kind: .refund, key: "refund:old", railKey: "old", reference: "re_0", amount: Self.money("1.00"), at: Self.from)],
                                  [RailMovement(kind: .purchase, id: "pi_8", key: "next", amount: Self.money("3.00"), currency: "usd", at: Self.at("2026-11-30T23:59:59Z"))])
        #expect(inside.differences.map(\.issue) == [.missingOnRail, .missingInLedger])
    }

    @Test("objects that are not Tariff's are ignored; a lost dispute of a Tariff purchase's payment is not")
    func ignored() {
        var rail = Self.rail
        // A payment made outside Tariff, and a dispute of it: no key, nothing in the ledger refers to them.
        rail.append(RailMovement(kind: .purchase, id: "pi_50", key: nil, amount: Self.money("70.00"), currency: "usd", at: Self.at("2026-11-04T00:00:00Z")))
        rail.append(RailMovement(kind: .dispute, id: "dp_51", key: nil, payment: "pi_50", amount: Self.money("70.00"), currency: "usd", at: Self.at("2026-11-06T00:00:00Z")))
        // A lost dispute of buy-1's payment the ledger never heard of (its webhook was lost).
        rail.append(RailMovement(kind: .dispute, id: "dp_52", key: nil, payment: "pi_1", amount: Self.money("30.00"), currency: "usd", at: Self.at("2026-11-07T00:00:00Z")))
        let report = Self.compare(Self.ledger, rail)
        #expect(report.ignored == 2)
        #expect(report.differences.count == 1)
        #expect(report.differences.first?.issue == .missingInLedger && report.differences.first?.kind == .dispute)
        #expect(report.differences.first?.reference == "dp_52" && report.differences.first?.railAmount == Self.money("30.00"))
    }

    @Test("the same amount in another currency differs")
    func currency() {
        var rail = Self.rail
        rail[0].currency = "eur"
        let report = Self.compare(Self.ledger, rail)
        #expect(report.differences.count == 1)
        #expect(report.differences.first?.issue == .amountDiffers && report.differences.first?.railCurrency == "eur")
        #expect(report.differences.first?.ledgerAmount == Self.money("100.00") && report.differences.first?.railAmount == Self.money("100.00"))
    }

    @Test("the ledger's movements from a snapshot: succeeded purchases, counting refunds, disputes, payouts not failed at their net amount")
    func fromSnapshot() {
        let t = Self.at("2026-11-02T10:00:00Z")
        var snapshot = LedgerSnapshot(currency: Self.usd, consumers: [], holds: [], entries: [], charges: [], operations: [], payouts: [], periods: [], purchases: [])
        snapshot.purchases = [PurchaseRecord(key: "buy-1", consumer: "cus_1", amount: Self.money("100.00"), payer: "cus_x", reference: "pi_1", state: .succeeded, createdAt: t),
                              PurchaseRecord(key: "buy-2", consumer: "cus_1", amount: Self.money("9.00"), payer: "cus_x", reference: "pi_2", state: .failed, createdAt: t),
                              PurchaseRecord(key: "buy-3", consumer: "cus_1", amount: Self.money("8.00"), payer: "cus_x", reference: nil, state: .pending, createdAt: t)]
        snapshot.reversals = [
            ReversalRecord(key: "refund:r-1", kind: .refund, purchase: "buy-1", consumer: "cus_1", amount: Self.money("25.00"), fromAvailable: Self.money("25.00"),
                           loss: .zero, reference: "re_2", state: .succeeded, fingerprint: "f", at: t),
            ReversalRecord(key: "refund:r-2", kind: .refund, purchase: "buy-1", consumer: "cus_1", amount: Self.money("5.00"), fromAvailable: Self.money("5.00"),
                           loss: .zero, reference: "refused", state: .failed, fingerprint: "f", at: t),
            ReversalRecord(key: "dispute:dp_3", kind: .dispute, purchase: "buy-1", consumer: "cus_1", amount: Self.money("20.00"), fromAvailable: Self.money("15.00"),
                           loss: Self.money("5.00"), reference: "dp_3", state: .succeeded, fingerprint: "f", at: t),
        ]
        let week = Timestamp(date: "2026-11-02")!.civilDate, pay = Timestamp(date: "2026-11-11")!.civilDate
        snapshot.payouts = [
            PayoutRecord(key: "payout:acct_1:2026-11-02", creator: "acct_1", weekStart: week, payDate: pay, amount: Self.money("12.62"), recordedAt: t,
                         reference: "tr_4", returned: Self.money("2.62")),
            PayoutRecord(key: "payout:acct_2:2026-11-02", creator: "acct_2", weekStart: week, payDate: pay, amount: Self.money("3.00"), recordedAt: t,
                         failure: "refused", returned: Self.money("3.00")),
        ]
        let movements = Reconciliation.ledgerMovements(snapshot)
        #expect(movements.map(\.key) == ["buy-1", "refund:r-1", "dispute:dp_3", "payout:acct_1:2026-11-02"])
        #expect(movements.map(\.railKey) == ["buy-1", "r-1", nil, "payout:acct_1:2026-11-02"])
        #expect(movements.map(\.reference) == ["pi_1", "re_2", "dp_3", "tr_4"])
        // The payout's 12.62 less the 2.62 reversed.
        #expect(movements.map(\.amount) == [Self.money("100.00"), Self.money("25.00"), Self.money("20.00"), Self.money("10.00")])
    }
}
