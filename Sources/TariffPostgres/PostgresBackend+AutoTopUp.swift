import PostgresNIO
import Tariff
import TariffSettlement

/// Auto top-up settings on the shared ledger (migration 14). Two servers checking one consumer at
/// once both read the same `version`; the `UPDATE ... WHERE version = $read` of one of them finds
/// no row, so only one starts a purchase.
extension PostgresBackend: AutoTopUpStore {
    static let autoTopUpColumns = "consumer, below, amount, state, crossings, claimed_at, failure, version, updated_at"

    static func autoTopUp(_ row: PostgresRandomAccessRow) throws -> AutoTopUpSetting {
        AutoTopUpSetting(consumer: try row[0].decode(String.self), below: Money(micros: try row[1].decode(Int64.self)),
                         amount: Money(micros: try row[2].decode(Int64.self)),
                         state: try StoredValue.decode(AutoTopUpSetting.State.self, try row[3].decode(String.self), column: "auto_top_up.state"),
                         crossings: try row[4].decode(Int64.self), claimedAt: try row[5].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)),
                         failure: try row[6].decode(String?.self), version: try row[7].decode(Int64.self),
                         updatedAt: Timestamp(nanosecondsSinceEpoch: try row[8].decode(Int64.self)))
    }

    public func saveAutoTopUp(consumer: String, below: Money, amount: Money, now: Timestamp) async throws -> AutoTopUpSetting {
        try await step { [self] in
            try await pool.withTransaction { [self] connection in
                let existing = try await rows("SELECT \(unescaped: Self.autoTopUpColumns) FROM auto_top_up WHERE consumer = \(consumer) FOR UPDATE",
                                              on: connection).first.map(Self.autoTopUp)
                let saved = AutoTopUpRules.saved(existing, consumer: consumer, below: below, amount: amount, now: now)
                _ = try await rows("""
                    INSERT INTO auto_top_up (\(unescaped: Self.autoTopUpColumns))
                    VALUES (\(saved.consumer), \(saved.below.micros), \(saved.amount.micros), \(saved.state.rawValue), \(saved.crossings),
                            \(saved.claimedAt?.nanosecondsSinceEpoch), \(saved.failure), \(saved.version), \(saved.updatedAt.nanosecondsSinceEpoch))
                    ON CONFLICT (consumer) DO UPDATE SET below = excluded.below, amount = excluded.amount, state = excluded.state,
                        crossings = excluded.crossings, claimed_at = excluded.claimed_at, failure = excluded.failure, version = excluded.version,
                        updated_at = excluded.updated_at
                    """, on: connection)
                return saved
            }
        }
    }

    public func autoTopUp(consumer: String) async throws -> AutoTopUpSetting? {
        let read = try await step { [self] in
            try await rows("SELECT \(unescaped: Self.autoTopUpColumns) FROM auto_top_up WHERE consumer = \(consumer)")
        }
        return try read.first.map(Self.autoTopUp)
    }

    public func autoTopUps() async throws -> [AutoTopUpSetting] {
        let read = try await step { [self] in
            try await rows("SELECT \(unescaped: Self.autoTopUpColumns) FROM auto_top_up WHERE state <> 'failed' ORDER BY consumer COLLATE \"C\"")
        }
        return try read.map(Self.autoTopUp)
    }

    public func replaceAutoTopUp(_ next: AutoTopUpSetting, expectedVersion: Int64) async throws -> Bool {
        let written = try await step { [self] in
            try await rows("""
                UPDATE auto_top_up SET below = \(next.below.micros), amount = \(next.amount.micros), state = \(next.state.rawValue),
                    crossings = \(next.crossings), claimed_at = \(next.claimedAt?.nanosecondsSinceEpoch), failure = \(next.failure),
                    version = \(next.version), updated_at = \(next.updatedAt.nanosecondsSinceEpoch)
                WHERE consumer = \(next.consumer) AND version = \(expectedVersion)
                RETURNING 1
                """)
        }
        return written.count == 1
    }

    public func completeAutoTopUp(consumer: String, crossing: Int64, now: Timestamp) async throws {
        _ = try await step { [self] in
            try await rows("""
                UPDATE auto_top_up SET state = 'spent', failure = NULL, claimed_at = NULL, version = version + 1, updated_at = \(now.nanosecondsSinceEpoch)
                WHERE consumer = \(consumer) AND state = 'in_flight' AND crossings = \(crossing)
                """)
        }
    }

    /// The one place a declined auto top-up is recorded on PostgreSQL, with its
    /// `auto_top_up.failed` event, in one transaction (service.md: no event lost or invented by a crash).
    @discardableResult
    public func recordAutoTopUpFailure(consumer: String, crossing: Int64, reason: String, now: Timestamp) async throws -> Bool {
        try await step { [self] in
            try await pool.withTransaction { [self] connection in
                let recorded = try await rows("""
                    UPDATE auto_top_up SET state = 'failed', failure = \(reason), claimed_at = NULL, version = version + 1,
                        updated_at = \(now.nanosecondsSinceEpoch)
                    WHERE consumer = \(consumer) AND state = 'in_flight' AND crossings = \(crossing)
                    RETURNING amount
                    """, on: connection)
                guard let row = recorded.first else { return false }
                try await emitEvent(.autoTopUpFailed(consumer: consumer, crossing: crossing, amount: Money(micros: try row[0].decode(Int64.self)),
                                                     reason: reason), on: connection)
                return true
            }
        }
    }

}
