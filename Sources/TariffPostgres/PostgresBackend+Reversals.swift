import PostgresNIO
import Tariff
import TariffSettlement

// Purchases through a rail, refunds and lost disputes (migration 9): one function per step.
extension PostgresBackend {
    static let purchaseColumns = "key, consumer, amount, payer, reference, state, created_at"
    static let reversalColumns = "key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at"

    static func purchase(_ row: PostgresRandomAccessRow) throws -> PurchaseRecord {
        PurchaseRecord(key: try row[0].decode(String.self), consumer: try row[1].decode(String.self), amount: Money(micros: try row[2].decode(Int64.self)),
                       payer: try row[3].decode(String.self), reference: try row[4].decode(String?.self),
                       state: try .stored(Int(try row[5].decode(Int16.self))), createdAt: Timestamp(nanosecondsSinceEpoch: try row[6].decode(Int64.self)))
    }

    static func reversal(_ row: PostgresRandomAccessRow) throws -> ReversalRecord {
        ReversalRecord(key: try row[0].decode(String.self), kind: try .stored(try row[1].decode(String.self)), purchase: try row[2].decode(String.self),
                       consumer: try row[3].decode(String.self), amount: Money(micros: try row[4].decode(Int64.self)),
                       fromAvailable: Money(micros: try row[5].decode(Int64.self)), loss: Money(micros: try row[6].decode(Int64.self)),
                       reference: try row[7].decode(String?.self), state: try .stored(Int(try row[8].decode(Int16.self))),
                       fingerprint: try row[9].decode(String.self), at: Timestamp(nanosecondsSinceEpoch: try row[10].decode(Int64.self)))
    }

    public func beginPurchase(_ command: PendingPurchaseCommand) async throws -> PendingPurchaseReceipt {
        let row = try await step { [self] in
            try await self.row("""
                SELECT (r.o_record).key, (r.o_record).consumer, (r.o_record).amount, (r.o_record).payer, (r.o_record).reference, (r.o_record).state,
                       (r.o_record).created_at, r.o_is_new
                FROM tariff_begin_purchase(\(command.key), \(command.fingerprint), \(command.consumer), \(command.amount.micros), \(command.payer),
                                           \(command.now.nanosecondsSinceEpoch)) AS r
                """)
        }
        return PendingPurchaseReceipt(record: try Self.purchase(row), isNew: try row[7].decode(Bool.self))
    }

    public func updatePurchase(key: String, reference: String?, state: PurchaseRecord.State) async throws -> PurchaseRecord {
        let stateNumber = Int16(state.rawValue)
        let row = try await step { [self] in
            try await self.row("SELECT \(unescaped: Self.purchaseColumns) FROM tariff_update_purchase(\(key), \(reference), \(stateNumber))")
        }
        return try Self.purchase(row)
    }

    public func purchaseRecord(key: String) async throws -> PurchaseRecord? {
        let read = try await step { [self] in try await rows("SELECT \(unescaped: Self.purchaseColumns) FROM purchases WHERE key = \(key)") }
        return try read.first.map(Self.purchase)
    }

    public func purchaseRecord(reference: String) async throws -> PurchaseRecord? {
        let read = try await step { [self] in
            try await rows("SELECT \(unescaped: Self.purchaseColumns) FROM purchases WHERE reference = \(reference) ORDER BY key COLLATE \"C\" LIMIT 1")
        }
        return try read.first.map(Self.purchase)
    }

    public func refund(_ command: RefundCommand) async throws -> ReversalRecord {
        let key = "refund:" + command.key
        let row = try await step { [self] in
            try await self.row("""
                SELECT \(unescaped: Self.reversalColumns) FROM tariff_refund(\(key), \(command.fingerprint), \(command.purchase), \(command.amount.micros),
                \(command.now.nanosecondsSinceEpoch))
                """)
        }
        return try Self.reversal(row)
    }

    public func completeRefund(key: String, reference: String?, failed: Bool, now: Timestamp) async throws -> ReversalRecord {
        let row = try await step { [self] in
            try await self.row("""
                SELECT \(unescaped: Self.reversalColumns) FROM tariff_complete_refund(\(key), \(reference), \(failed), \(now.nanosecondsSinceEpoch))
                """)
        }
        return try Self.reversal(row)
    }

    public func disputeLost(_ command: DisputeCommand) async throws -> ReversalRecord {
        let key = "dispute:" + command.dispute
        let row = try await step { [self] in
            try await self.row("""
                SELECT \(unescaped: Self.reversalColumns) FROM tariff_dispute_lost(\(key), \(command.fingerprint), \(command.purchase), \(command.amount.micros),
                \(command.dispute), \(command.now.nanosecondsSinceEpoch))
                """)
        }
        return try Self.reversal(row)
    }
}
