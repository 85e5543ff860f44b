import PostgresNIO
import Tariff
import TariffSettlement

// Live subscriptions (service.md): `SubscriptionRules` decides in Swift, inside one transaction that
// holds the consumer's advisory lock (two subscribes of one consumer on two servers are serialised,
// so neither misses the other's row), and the rows are written before COMMIT. A retried step after
// a lost answer finds what it wrote (a subscribe answers the subscription it created, unchanged).
extension PostgresBackend {
    static let subscriptionColumns = "id, consumer, plan, agent, unit, start, ends_at, ending, charged_periods, next_period_start, created_at"

    /// A `subscriptions` row (columns in `subscriptionColumns` order).
    /// - throws: `storage` for a unit or ending this build does not know.
    static func subscription(_ row: PostgresRandomAccessRow) throws -> SubscriptionRecord {
        SubscriptionRecord(id: try row[0].decode(String.self), consumer: try row[1].decode(String.self), plan: try row[2].decode(String.self),
                           agent: try row[3].decode(String.self),
                           unit: try StoredValue.decode(PeriodUnit.self, try row[4].decode(String.self), column: "subscriptions.unit"),
                           start: Timestamp(nanosecondsSinceEpoch: try row[5].decode(Int64.self)),
                           endsAt: try row[6].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)),
                           ending: try StoredValue.decode(SubscriptionRecord.Ending.self, try row[7].decode(String?.self), column: "subscriptions.ending"),
                           chargedPeriods: Int(try row[8].decode(Int64.self)),
                           nextPeriodStart: try row[9].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)),
                           createdAt: Timestamp(nanosecondsSinceEpoch: try row[10].decode(Int64.self)))
    }

    /// Runs `body` in a transaction holding the consumer's subscription lock.
    private func underSubscriptionLock<T: Sendable>(_ consumer: String, _ body: @escaping @Sendable (LeasedConnection) async throws -> T) async throws -> T {
        try await step { [self] in
            try await pool.withTransaction { [self] connection in
                _ = try await rows("SELECT pg_advisory_xact_lock(hashtextextended('tariff-subscriptions:' || \(consumer), 0))", on: connection)
                return try await body(connection)
            }
        }
    }

    private func save(_ record: SubscriptionRecord, isNew: Bool, on connection: LeasedConnection) async throws {
        if isNew {
            _ = try await rows("""
                INSERT INTO subscriptions (\(unescaped: Self.subscriptionColumns))
                VALUES (\(record.id), \(record.consumer), \(record.plan), \(record.agent), \(record.unit.rawValue), \(record.start.nanosecondsSinceEpoch),
                        \(record.endsAt?.nanosecondsSinceEpoch), \(record.ending?.rawValue), \(Int64(record.chargedPeriods)),
                        \(record.nextPeriodStart?.nanosecondsSinceEpoch), \(record.createdAt.nanosecondsSinceEpoch))
                """, on: connection)
        } else {
            _ = try await rows("""
                UPDATE subscriptions SET ends_at = \(record.endsAt?.nanosecondsSinceEpoch), ending = \(record.ending?.rawValue),
                    charged_periods = \(Int64(record.chargedPeriods)), next_period_start = \(record.nextPeriodStart?.nanosecondsSinceEpoch)
                WHERE id = \(record.id)
                """, on: connection)
        }
    }

    public func subscribe(_ command: SubscribeCommand) async throws -> SubscribeReceipt {
        try await underSubscriptionLock(command.consumer) { [self] connection in
            let existing = try await rows("""
                SELECT \(unescaped: Self.subscriptionColumns) FROM subscriptions WHERE consumer = \(command.consumer) ORDER BY start, id COLLATE "C"
                """, on: connection).map(Self.subscription)
            let decided = try SubscriptionRules.subscribe(command, existing: existing)
            guard decided.receipt.created else { return decided.receipt }
            if try await !rows("SELECT 1 FROM subscriptions WHERE id = \(command.id)", on: connection).isEmpty {
                throw SettlementError(.idempotencyConflict, "subscription id '\(command.id)' is taken")
            }
            if let old = decided.receipt.replaced { try await save(old, isNew: false, on: connection) }
            if let key = decided.shortenedPeriod {
                let at = command.at.nanosecondsSinceEpoch
                _ = try await rows("""
                    UPDATE period_closes SET period_end = \(at) WHERE key = \(key) AND closed_at IS NULL AND period_end > \(at)
                    """, on: connection)
            }
            try await save(decided.receipt.subscription, isNew: true, on: connection)
            return decided.receipt
        }
    }

    /// The row of `id` locked for update, read first without a lock to learn its consumer.
    private func lockedSubscription(_ id: String, _ change: @escaping @Sendable (SubscriptionRecord) throws -> SubscriptionRecord?) async throws -> SubscriptionRecord {
        guard let found = try await subscription(id: id) else { throw SettlementError(.notFound, "no subscription '\(id)'") }
        return try await underSubscriptionLock(found.consumer) { [self] connection in
            guard let row = try await rows("SELECT \(unescaped: Self.subscriptionColumns) FROM subscriptions WHERE id = \(id) FOR UPDATE", on: connection).first else {
                throw SettlementError(.notFound, "no subscription '\(id)'")
            }
            let record = try Self.subscription(row)
            guard let changed = try change(record) else { return record }
            try await save(changed, isNew: false, on: connection)
            return changed
        }
    }

    public func cancelSubscription(id: String, at: Timestamp) async throws -> SubscriptionRecord {
        try await lockedSubscription(id) { try SubscriptionRules.cancel($0, at: at) }
    }

    public func advanceSubscription(id: String, chargedPeriods: Int) async throws -> SubscriptionRecord {
        try await lockedSubscription(id) { SubscriptionRules.advance($0, chargedPeriods: chargedPeriods) }
    }

    public func subscriptions(consumer: String?) async throws -> [SubscriptionRecord] {
        let read = try await step { [self] in
            try await rows("""
                SELECT \(unescaped: Self.subscriptionColumns) FROM subscriptions WHERE \(consumer)::text IS NULL OR consumer = \(consumer)
                ORDER BY consumer COLLATE "C", start, id COLLATE "C"
                """)
        }
        return try read.map(Self.subscription)
    }

    public func subscription(id: String) async throws -> SubscriptionRecord? {
        let read = try await step { [self] in
            try await rows("SELECT \(unescaped: Self.subscriptionColumns) FROM subscriptions WHERE id = \(id)")
        }
        return try read.first.map(Self.subscription)
    }

    public func dueSubscriptions(at now: Timestamp) async throws -> [SubscriptionRecord] {
        let read = try await step { [self] in
            try await rows("""
                SELECT \(unescaped: Self.subscriptionColumns) FROM subscriptions
                WHERE next_period_start IS NOT NULL AND next_period_start <= \(now.nanosecondsSinceEpoch) ORDER BY id COLLATE "C"
                """)
        }
        return try read.map(Self.subscription)
    }
}
