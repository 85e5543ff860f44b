import GRDB
import Tariff
import TariffSettlement

/// The service's keys, answers and consumer settings in the ledger's file (migration `v2: service`).
/// Small, rare writes: straight through the pool, outside the ledger's group-commit writer.
extension SQLiteBackend: ServiceStore {
    func serviceWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await writablePool().write(body) } catch let error as SettlementError { throw error } catch {
            throw SettlementError(.storage, "writing the service tables failed: \(error)")
        }
    }

    func serviceRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch {
            throw SettlementError(.storage, "reading the service tables failed: \(error)")
        }
    }

    static func key(from row: Row) -> APIKeyRecord? {
        guard let role = APIKeyRecord.Role(rawValue: row["role"]) else { return nil }
        let revoked: Int64? = row["revoked_at"]
        return APIKeyRecord(id: row["id"], role: role, consumer: row["consumer"], name: row["name"], hash: row["hash"],
                            createdAt: Timestamp(nanosecondsSinceEpoch: row["created_at"]), revokedAt: revoked.map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    public func insertKey(_ record: APIKeyRecord) async throws {
        try await serviceWrite { db in
            let exists = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM api_keys WHERE id = ? OR hash = ?", arguments: [record.id, record.hash]) ?? 0
            guard exists == 0 else { throw SettlementError(.idempotencyConflict, "a key with this id or hash exists") }
            try db.execute(sql: "INSERT INTO api_keys (id, role, consumer, name, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [record.id, record.role.rawValue, record.consumer, record.name, record.hash, record.createdAt.nanosecondsSinceEpoch,
                                       record.revokedAt?.nanosecondsSinceEpoch])
        }
    }

    public func keys() async throws -> [APIKeyRecord] {
        try await serviceRead { db in try Row.fetchAll(db, sql: "SELECT * FROM api_keys ORDER BY created_at, id").compactMap(Self.key) }
    }

    public func key(hash: String) async throws -> APIKeyRecord? {
        try await serviceRead { db in try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE hash = ?", arguments: [hash]).flatMap(Self.key) }
    }

    public func revokeKey(id: String, at: Timestamp) async throws -> APIKeyRecord? {
        try await serviceWrite { db in
            try db.execute(sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [at.nanosecondsSinceEpoch, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id]).flatMap(Self.key)
        }
    }

    public func keepAnswer(_ answer: StoredAnswer) async throws -> StoredAnswer {
        try await serviceWrite { db in
            try db.execute(sql: "INSERT OR IGNORE INTO api_answers (key, fingerprint, status, body) VALUES (?, ?, ?, ?)",
                           arguments: [answer.key, answer.fingerprint, answer.status, answer.body])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM api_answers WHERE key = ?", arguments: [answer.key]) else { return answer }
            return StoredAnswer(key: row["key"], fingerprint: row["fingerprint"], status: row["status"], body: row["body"])
        }
    }

    public func answer(key: String) async throws -> StoredAnswer? {
        try await serviceRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_answers WHERE key = ? AND status <> ?", arguments: [key, AnswerClaim.placeholderStatus]).map {
                StoredAnswer(key: $0["key"], fingerprint: $0["fingerprint"], status: $0["status"], body: $0["body"])
            }
        }
    }

    private static func storedAnswer(_ db: Database, key: String) throws -> StoredAnswer? {
        try Row.fetchOne(db, sql: "SELECT * FROM api_answers WHERE key = ?", arguments: [key]).map {
            StoredAnswer(key: $0["key"], fingerprint: $0["fingerprint"], status: $0["status"], body: $0["body"])
        }
    }

    public func claimAnswer(key: String, claim: AnswerClaim, staleAfterNanoseconds: Int64) async throws -> AnswerClaim.Outcome {
        // One write transaction: the read and the claim are atomic against every other writer.
        try await serviceWrite { db in
            let existing = try Self.storedAnswer(db, key: key)
            let (outcome, _) = claim.decide(on: existing, staleAfterNanoseconds: staleAfterNanoseconds)
            if outcome == .claimed {
                try db.execute(sql: "INSERT OR REPLACE INTO api_answers (key, fingerprint, status, body) VALUES (?, ?, ?, '')",
                               arguments: [key, claim.fingerprint, AnswerClaim.placeholderStatus])
            }
            return outcome
        }
    }

    public func completeClaim(_ claim: AnswerClaim, with answer: StoredAnswer) async throws -> StoredAnswer {
        try await serviceWrite { db in
            if let stored = try Self.storedAnswer(db, key: answer.key), stored.status != AnswerClaim.placeholderStatus { return stored }
            try db.execute(sql: "INSERT OR REPLACE INTO api_answers (key, fingerprint, status, body) VALUES (?, ?, ?, ?)",
                           arguments: [answer.key, answer.fingerprint, answer.status, answer.body])
            return answer
        }
    }

    public func abandonClaim(key: String, claim: AnswerClaim) async throws {
        try await serviceWrite { db in
            try db.execute(sql: "DELETE FROM api_answers WHERE key = ? AND status = ? AND fingerprint = ?",
                           arguments: [key, AnswerClaim.placeholderStatus, claim.fingerprint])
        }
    }

    public func saveConsumerSettings(_ settings: ConsumerSettings) async throws {
        try await serviceWrite { db in
            try db.execute(sql: """
                INSERT INTO consumer_settings (consumer, stripe_customer, low_balance) VALUES (?, ?, ?)
                ON CONFLICT (consumer) DO UPDATE SET stripe_customer = excluded.stripe_customer, low_balance = excluded.low_balance
                """, arguments: [settings.consumer, settings.stripeCustomer, settings.lowBalance?.micros])
        }
    }

    public func consumerSettings(_ consumer: String) async throws -> ConsumerSettings? {
        try await serviceRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM consumer_settings WHERE consumer = ?", arguments: [consumer]).map { row in
                let low: Int64? = row["low_balance"]
                return ConsumerSettings(consumer: row["consumer"], stripeCustomer: row["stripe_customer"], lowBalance: low.map(Money.init(micros:)))
            }
        }
    }
}
