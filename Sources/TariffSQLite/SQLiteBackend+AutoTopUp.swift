import GRDB
import Tariff
import TariffSettlement

/// Auto top-up settings in the ledger's file (migration `v9: auto top-up`); each method is one
/// write transaction, and every change of state is a compare-and-set on `version`.
extension SQLiteBackend: AutoTopUpStore {
    static func autoTopUp(from row: Row) throws -> AutoTopUpSetting {
        let claimed: Int64? = row["claimed_at"]
        return AutoTopUpSetting(consumer: row["consumer"], below: Money(micros: row["below"]), amount: Money(micros: row["amount"]),
                                state: try StoredValue.decode(AutoTopUpSetting.State.self, row["state"] as String, column: "auto_top_up.state"),
                                crossings: row["crossings"], claimedAt: claimed.map(Timestamp.init(nanosecondsSinceEpoch:)), failure: row["failure"],
                                version: row["version"], updatedAt: Timestamp(nanosecondsSinceEpoch: row["updated_at"]))
    }

    private static func write(_ setting: AutoTopUpSetting, in db: Database) throws {
        try db.execute(sql: """
            INSERT INTO auto_top_up (consumer, below, amount, state, crossings, claimed_at, failure, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (consumer) DO UPDATE SET below = excluded.below, amount = excluded.amount, state = excluded.state, crossings = excluded.crossings,
                claimed_at = excluded.claimed_at, failure = excluded.failure, version = excluded.version, updated_at = excluded.updated_at
            """, arguments: [setting.consumer, setting.below.micros, setting.amount.micros, setting.state.rawValue, setting.crossings,
                             setting.claimedAt?.nanosecondsSinceEpoch, setting.failure, setting.version, setting.updatedAt.nanosecondsSinceEpoch])
    }

    public func saveAutoTopUp(consumer: String, below: Money, amount: Money, now: Timestamp) async throws -> AutoTopUpSetting {
        try await serviceWrite { db in
            let existing = try Row.fetchOne(db, sql: "SELECT * FROM auto_top_up WHERE consumer = ?", arguments: [consumer]).map(Self.autoTopUp(from:))
            let saved = AutoTopUpRules.saved(existing, consumer: consumer, below: below, amount: amount, now: now)
            try Self.write(saved, in: db)
            return saved
        }
    }

    public func autoTopUp(consumer: String) async throws -> AutoTopUpSetting? {
        try await serviceRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM auto_top_up WHERE consumer = ?", arguments: [consumer]).map(Self.autoTopUp(from:))
        }
    }

    public func autoTopUps() async throws -> [AutoTopUpSetting] {
        try await serviceRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM auto_top_up WHERE state <> 'failed' ORDER BY consumer").map(Self.autoTopUp(from:))
        }
    }

    public func replaceAutoTopUp(_ next: AutoTopUpSetting, expectedVersion: Int64) async throws -> Bool {
        try await serviceWrite { db in
            try db.execute(sql: """
                UPDATE auto_top_up SET below = ?, amount = ?, state = ?, crossings = ?, claimed_at = ?, failure = ?, version = ?, updated_at = ?
                WHERE consumer = ? AND version = ?
                """, arguments: [next.below.micros, next.amount.micros, next.state.rawValue, next.crossings, next.claimedAt?.nanosecondsSinceEpoch,
                                 next.failure, next.version, next.updatedAt.nanosecondsSinceEpoch, next.consumer, expectedVersion])
            return db.changesCount == 1
        }
    }

    public func completeAutoTopUp(consumer: String, crossing: Int64, now: Timestamp) async throws {
        try await serviceWrite { db in
            try db.execute(sql: """
                UPDATE auto_top_up SET state = 'spent', failure = NULL, claimed_at = NULL, version = version + 1, updated_at = ?
                WHERE consumer = ? AND state = 'in_flight' AND crossings = ?
                """, arguments: [now.nanosecondsSinceEpoch, consumer, crossing])
        }
    }

    /// The one place a declined auto top-up is recorded on SQLite, with its `auto_top_up.failed`
    /// event, in one write transaction (service.md: no event lost or invented by a crash).
    @discardableResult
    public func recordAutoTopUpFailure(consumer: String, crossing: Int64, reason: String, now: Timestamp) async throws -> Bool {
        try await serviceWrite { db in
            // RETURNING: the amount of the row just failed, without reading it again.
            guard let amount = try Int64.fetchOne(db, sql: """
                UPDATE auto_top_up SET state = 'failed', failure = ?, claimed_at = NULL, version = version + 1, updated_at = ?
                WHERE consumer = ? AND state = 'in_flight' AND crossings = ?
                RETURNING amount
                """, arguments: [reason, now.nanosecondsSinceEpoch, consumer, crossing]) else { return false }
            try Self.insertEvent(.autoTopUpFailed(consumer: consumer, crossing: crossing,
                                                  amount: Money(micros: amount), reason: reason), db)
            return true
        }
    }

}
