import PostgresNIO
import Tariff
import TariffSettlement

/// The service's keys, answers and consumer settings in the ledger's database (migration 7), so
/// every `tariff serve` on one PostgreSQL ledger sees the same keys and the same first answers.
extension PostgresBackend: ServiceStore {
    static let keyColumns = "id, role, consumer, name, hash, created_at, revoked_at"

    static func key(_ row: PostgresRandomAccessRow) throws -> APIKeyRecord? {
        guard let role = APIKeyRecord.Role(rawValue: try row[1].decode(String.self)) else { return nil }
        return APIKeyRecord(id: try row[0].decode(String.self), role: role, consumer: try row[2].decode(String?.self), name: try row[3].decode(String.self),
                            hash: try row[4].decode(String.self), createdAt: Timestamp(nanosecondsSinceEpoch: try row[5].decode(Int64.self)),
                            revokedAt: try row[6].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    public func insertKey(_ record: APIKeyRecord) async throws {
        let role = record.role.rawValue, created = record.createdAt.nanosecondsSinceEpoch, revoked = record.revokedAt?.nanosecondsSinceEpoch
        let inserted = try await step { [self] in
            try await rows("""
                INSERT INTO api_keys (id, role, consumer, name, hash, created_at, revoked_at)
                VALUES (\(record.id), \(role), \(record.consumer), \(record.name), \(record.hash), \(created), \(revoked))
                ON CONFLICT DO NOTHING RETURNING id
                """)
        }
        guard !inserted.isEmpty else { throw SettlementError(.idempotencyConflict, "a key with this id or hash exists") }
    }

    public func keys() async throws -> [APIKeyRecord] {
        try await step { [self] in try await rows("SELECT \(unescaped: Self.keyColumns) FROM api_keys ORDER BY created_at, id").compactMap(Self.key) }
    }

    public func key(hash: String) async throws -> APIKeyRecord? {
        try await step { [self] in try await rows("SELECT \(unescaped: Self.keyColumns) FROM api_keys WHERE hash = \(hash)").first.flatMap(Self.key) }
    }

    public func revokeKey(id: String, at: Timestamp) async throws -> APIKeyRecord? {
        let instant = at.nanosecondsSinceEpoch
        return try await step { [self] in
            _ = try await rows("UPDATE api_keys SET revoked_at = \(instant) WHERE id = \(id) AND revoked_at IS NULL")
            return try await rows("SELECT \(unescaped: Self.keyColumns) FROM api_keys WHERE id = \(id)").first.flatMap(Self.key)
        }
    }

    public func keepAnswer(_ answer: StoredAnswer) async throws -> StoredAnswer {
        let status = Int64(answer.status)
        return try await step { [self] in
            _ = try await rows("""
                INSERT INTO api_answers (key, fingerprint, status, body) VALUES (\(answer.key), \(answer.fingerprint), \(status), \(answer.body))
                ON CONFLICT (key) DO NOTHING
                """)
            guard let row = try await rows("SELECT key, fingerprint, status, body FROM api_answers WHERE key = \(answer.key)").first else { return answer }
            return StoredAnswer(key: try row[0].decode(String.self), fingerprint: try row[1].decode(String.self), status: Int(try row[2].decode(Int32.self)),
                                body: try row[3].decode(String.self))
        }
    }

    public func answer(key: String) async throws -> StoredAnswer? {
        try await step { [self] in
            guard let row = try await rows("SELECT key, fingerprint, status, body FROM api_answers WHERE key = \(key) AND status <> 0").first else { return nil }
            return StoredAnswer(key: try row[0].decode(String.self), fingerprint: try row[1].decode(String.self), status: Int(try row[2].decode(Int32.self)),
                                body: try row[3].decode(String.self))
        }
    }

    // Claims are single statements that compare and set (no transaction spans a round trip), so
    // two servers racing on one key cannot both win: an INSERT that conflicts, or an UPDATE whose
    // WHERE no longer matches, loses.
    public func claimAnswer(key: String, claim: AnswerClaim, staleAfterNanoseconds: Int64) async throws -> AnswerClaim.Outcome {
        try await step { [self] in
            if try await !rows("""
                INSERT INTO api_answers (key, fingerprint, status, body) VALUES (\(key), \(claim.fingerprint), 0, '')
                ON CONFLICT (key) DO NOTHING RETURNING key
                """).isEmpty { return .claimed }
            guard let row = try await rows("SELECT key, fingerprint, status, body FROM api_answers WHERE key = \(key)").first else { return .busy }
            let existing = StoredAnswer(key: try row[0].decode(String.self), fingerprint: try row[1].decode(String.self), status: Int(try row[2].decode(Int32.self)),
                                        body: try row[3].decode(String.self))
            let (outcome, takeOver) = claim.decide(on: existing, staleAfterNanoseconds: staleAfterNanoseconds)
            guard takeOver else { return outcome }
            let taken = try await rows("""
                UPDATE api_answers SET fingerprint = \(claim.fingerprint) WHERE key = \(key) AND status = 0 AND fingerprint = \(existing.fingerprint) RETURNING key
                """)
            return taken.isEmpty ? .busy : .claimed
        }
    }

    public func completeClaim(_ claim: AnswerClaim, with answer: StoredAnswer) async throws -> StoredAnswer {
        let status = Int64(answer.status)
        let replaced = try await step { [self] in
            try await rows("""
                UPDATE api_answers SET fingerprint = \(answer.fingerprint), status = \(status), body = \(answer.body)
                WHERE key = \(answer.key) AND status = 0 RETURNING key
                """)
        }
        // Answered by another (after taking over a claim it thought stale), or the row is gone:
        // the first answer stays the answer.
        return replaced.isEmpty ? try await keepAnswer(answer) : answer
    }

    public func abandonClaim(key: String, claim: AnswerClaim) async throws {
        _ = try await step { [self] in
            try await rows("DELETE FROM api_answers WHERE key = \(key) AND status = 0 AND fingerprint = \(claim.fingerprint)")
        }
    }

    public func saveConsumerSettings(_ settings: ConsumerSettings) async throws {
        let low = settings.lowBalance?.micros
        _ = try await step { [self] in
            try await rows("""
                INSERT INTO consumer_settings (consumer, stripe_customer, low_balance) VALUES (\(settings.consumer), \(settings.stripeCustomer), \(low))
                ON CONFLICT (consumer) DO UPDATE SET stripe_customer = excluded.stripe_customer, low_balance = excluded.low_balance
                """)
        }
    }

    public func consumerSettings(_ consumer: String) async throws -> ConsumerSettings? {
        try await step { [self] in
            guard let row = try await rows("SELECT consumer, stripe_customer, low_balance FROM consumer_settings WHERE consumer = \(consumer)").first else { return nil }
            return ConsumerSettings(consumer: try row[0].decode(String.self), stripeCustomer: try row[1].decode(String?.self),
                                    lowBalance: try row[2].decode(Int64?.self).map(Money.init(micros:)))
        }
    }
}
