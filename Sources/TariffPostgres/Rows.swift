import PostgresNIO
import Tariff
import TariffSettlement

/// Rows of the ledger's tables as the ledger's types (the column lists and their decoding in one place).
enum Rows {
    static let holdColumnNames = [
        "execution", "consumer", "plan", "version", "period_start", "estimate", "amount", "created_at", "expires_at", "state", "fingerprint",
        "closing_fingerprint", "closed_at", "billed", "charged", "uncollected", "creator_share", "platform_share", "processing_share",
        "compute_units", "refusal", "released",
    ]
    static var holdColumnCount: Int { holdColumnNames.count }

    /// The hold columns qualified by a table alias.
    static func holdColumns(_ alias: String) -> String { holdColumnNames.map { "\(alias).\($0)" }.joined(separator: ", ") }

    static func hold(_ row: PostgresRandomAccessRow) throws -> HoldRecord {
        let execution = try row[0].decode(String.self), consumer = try row[1].decode(String.self)
        var outcome: SettleReceipt?
        if let billed = try row[13].decode(Int64?.self) {
            outcome = SettleReceipt(execution: execution, consumer: consumer, billed: Money(micros: billed), charged: Money(micros: try row[14].decode(Int64.self)),
                                    uncollected: Money(micros: try row[15].decode(Int64.self)),
                                    split: SplitShares(creator: Money(micros: try row[16].decode(Int64.self)), platform: Money(micros: try row[17].decode(Int64.self)),
                                                       processing: Money(micros: try row[18].decode(Int64.self))),
                                    computeUnits: ComputeUnits(millis: try row[19].decode(Int64.self)),
                                    refusal: try StoredValue.decode(Refusal.self, try row[20].decode(String?.self), column: "holds.refusal"),
                                    released: Money(micros: try row[21].decode(Int64.self)))
        }
        return HoldRecord(execution: execution, consumer: consumer, plan: try row[2].decode(String.self), version: Int(try row[3].decode(Int64.self)),
                          periodStart: try row[4].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)),
                          estimate: Money(micros: try row[5].decode(Int64.self)), amount: Money(micros: try row[6].decode(Int64.self)),
                          createdAt: Timestamp(nanosecondsSinceEpoch: try row[7].decode(Int64.self)),
                          expiresAt: Timestamp(nanosecondsSinceEpoch: try row[8].decode(Int64.self)),
                          state: try StoredValue.decode(HoldRecord.State.self, Int(try row[9].decode(Int16.self)), column: "holds.state"),
                          fingerprint: try row[10].decode(String.self), closingFingerprint: try row[11].decode(String?.self), outcome: outcome,
                          closedAt: try row[12].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    static func periodState(_ row: PostgresRandomAccessRow, from index: Int) throws -> PeriodState {
        PeriodState(usedComputeUnits: ComputeUnits(millis: try row[index].decode(Int64.self)), usageCharges: Money(micros: try row[index + 1].decode(Int64.self)),
                    executions: try row[index + 2].decode(Int64.self), succeeded: try row[index + 3].decode(Int64.self), failed: try row[index + 4].decode(Int64.self))
    }

    static func entry(_ row: PostgresRandomAccessRow) throws -> Entry {
        Entry(sequence: try row[0].decode(Int64.self), operation: try row[1].decode(String.self),
              debit: Account(try StoredValue.decode(Account.Kind.self, Int(try row[2].decode(Int16.self)), column: "entries.debit_kind"), try row[3].decode(String.self)),
              credit: Account(try StoredValue.decode(Account.Kind.self, Int(try row[4].decode(Int16.self)), column: "entries.credit_kind"), try row[5].decode(String.self)),
              amount: Money(micros: try row[6].decode(Int64.self)), at: Timestamp(nanosecondsSinceEpoch: try row[7].decode(Int64.self)))
    }

    static let chargeColumns = """
        sequence, operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
        creator_share, platform_share, processing_share, failed, dated_at
        """

    static func charge(_ row: PostgresRandomAccessRow) throws -> ChargeRecord {
        ChargeRecord(sequence: try row[0].decode(Int64.self), operation: try row[1].decode(String.self),
                     kind: try StoredValue.decode(ChargeRecord.Kind.self, try row[2].decode(String.self), column: "charges.kind"), consumer: try row[3].decode(String.self),
                     agent: try row[4].decode(String.self), creator: try row[5].decode(String.self), plan: try row[6].decode(String.self),
                     version: Int(try row[7].decode(Int64.self)), execution: try row[8].decode(String?.self),
                     computeUnits: ComputeUnits(millis: try row[9].decode(Int64.self)), billed: Money(micros: try row[10].decode(Int64.self)),
                     charged: Money(micros: try row[11].decode(Int64.self)), uncollected: Money(micros: try row[12].decode(Int64.self)),
                     split: SplitShares(creator: Money(micros: try row[13].decode(Int64.self)), platform: Money(micros: try row[14].decode(Int64.self)),
                                        processing: Money(micros: try row[15].decode(Int64.self))),
                     failed: try row[16].decode(Bool.self), datedAt: Timestamp(nanosecondsSinceEpoch: try row[17].decode(Int64.self)))
    }

    static let payoutColumns = "key, creator, week_start, pay_date, amount, recorded_at, reference, failure, returned"

    /// A payout row (columns in `payoutColumns` order, from `from`).
    static func payout(_ row: PostgresRandomAccessRow) throws -> PayoutRecord? { try payout(row, from: 0) }

    static func payout(_ row: PostgresRandomAccessRow, from first: Int) throws -> PayoutRecord? {
        guard let week = Timestamp(date: try row[first + 2].decode(String.self))?.civilDate,
              let pay = Timestamp(date: try row[first + 3].decode(String.self))?.civilDate else {
            return nil
        }
        return PayoutRecord(key: try row[first].decode(String.self), creator: try row[first + 1].decode(String.self), weekStart: week, payDate: pay,
                            amount: Money(micros: try row[first + 4].decode(Int64.self)),
                            recordedAt: Timestamp(nanosecondsSinceEpoch: try row[first + 5].decode(Int64.self)),
                            reference: try row[first + 6].decode(String?.self), failure: try row[first + 7].decode(String?.self),
                            returned: Money(micros: try row[first + 8].decode(Int64.self)))
    }
}
