import GRDB
import Tariff
import TariffSettlement

/// Events out in the ledger's file (migration `v7: webhooks`): the steps' triggers write the
/// outbox, those of the events an endpoint listens to (`EventTriggers`, `v10`); these are the worker's and `tariff webhooks`' reads and writes (small and rare: through
/// the pool, outside the ledger's group-commit writer; SQLite serialises the two writers).
extension SQLiteBackend: WebhookOutbox {
    private func webhookWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await writablePool().write(body) } catch let error as SettlementError { throw error } catch {
            throw SettlementError(.storage, "writing the webhook tables failed: \(error)")
        }
    }

    private func webhookRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch {
            throw SettlementError(.storage, "reading the webhook tables failed: \(error)")
        }
    }

    static func event(_ row: Row, prefix: String = "") -> OutboxEvent {
        OutboxEvent(sequence: row[prefix + "sequence"], type: row[prefix + "type"], subject: row[prefix + "subject"], created: row[prefix + "created"],
                    data: row[prefix + "data"])
    }

    /// Writes one event in the caller's transaction (the worker's triggers fan it out).
    static func insertEvent(_ draft: EventDraft, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO webhook_events (type, subject, created, data) VALUES (?, ?, CAST(strftime('%s', 'now') AS INTEGER), ?)",
                       arguments: [draft.type.rawValue, draft.subject, draft.data])
    }

    public func emit(_ draft: EventDraft) async throws -> OutboxEvent {
        try await webhookWrite { db in
            try Self.insertEvent(draft, db)
            let sequence = db.lastInsertedRowID
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM webhook_events WHERE sequence = ?", arguments: [sequence]) else {
                throw SettlementError(.storage, "the event just written is missing")
            }
            return Self.event(row)
        }
    }

    public func outboxEvents(after: Int64, limit: Int) async throws -> [OutboxEvent] {
        try await webhookRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_events WHERE sequence > ? ORDER BY sequence LIMIT ?", arguments: [after, max(limit, 0)])
                .map { Self.event($0) }
        }
    }

    public func setDefaultLowBalance(_ threshold: Money) async throws {
        try await webhookWrite { db in
            try db.execute(sql: "INSERT OR REPLACE INTO webhook_config (key, value) VALUES ('low_balance', ?)", arguments: [threshold.micros])
        }
    }

    /// The triggers read `consumer_settings`, which the service store writes: nothing to keep here.
    public func setLowBalance(consumer: String, threshold: Money?) async throws {}

    static func endpoint(_ row: Row) -> WebhookEndpoint {
        let removed: Int64? = row["removed_at"]
        return WebhookEndpoint(id: row["id"], url: row["url"], events: WebhookEndpoint.events(stored: row["events"]), secret: row["secret"],
                               createdAt: Timestamp(nanosecondsSinceEpoch: row["created_at"]), removedAt: removed.map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    public func addWebhookEndpoint(_ endpoint: WebhookEndpoint) async throws {
        try await webhookWrite { db in
            let exists = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_endpoints WHERE id = ?", arguments: [endpoint.id]) ?? 0
            guard exists == 0 else { throw SettlementError(.idempotencyConflict, "an endpoint with id \(endpoint.id) exists") }
            try db.execute(sql: "INSERT INTO webhook_endpoints (id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [endpoint.id, endpoint.url, endpoint.storedEvents, endpoint.secret, endpoint.createdAt.nanosecondsSinceEpoch])
            // Its events' triggers, in the same transaction: every change committed after it writes them.
            try EventTriggers.followEndpoints(db)
        }
    }

    public func webhookEndpoints() async throws -> [WebhookEndpoint] {
        try await webhookRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_endpoints WHERE removed_at IS NULL ORDER BY created_at, id").map(Self.endpoint)
        }
    }

    public func removeWebhookEndpoint(id: String, at: Timestamp) async throws -> WebhookEndpoint? {
        try await webhookWrite { db in
            try db.execute(sql: "UPDATE webhook_endpoints SET removed_at = ? WHERE id = ? AND removed_at IS NULL", arguments: [at.nanosecondsSinceEpoch, id])
            guard db.changesCount > 0 else { return nil }
            try db.execute(sql: "DELETE FROM webhook_deliveries WHERE endpoint = ? AND state = 0", arguments: [id])
            try EventTriggers.followEndpoints(db)
            return try Row.fetchOne(db, sql: "SELECT * FROM webhook_endpoints WHERE id = ?", arguments: [id]).map(Self.endpoint)
        }
    }

    static let deliveryColumns = """
        d.id AS d_id, d.endpoint AS d_endpoint, d.state AS d_state, d.attempts AS d_attempts, d.first_failure_at AS d_first_failure_at,
        d.last_error AS d_last_error, e.url AS e_url, e.secret AS e_secret,
        ev.sequence AS ev_sequence, ev.type AS ev_type, ev.subject AS ev_subject, ev.created AS ev_created, ev.data AS ev_data
        FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint JOIN webhook_events ev ON ev.sequence = d.event
        """

    static func delivery(_ row: Row) -> WebhookDelivery {
        let first: Int64? = row["d_first_failure_at"]
        return WebhookDelivery(id: row["d_id"], endpoint: row["d_endpoint"], url: row["e_url"], secret: row["e_secret"], event: event(row, prefix: "ev_"),
                               state: WebhookDelivery.State(rawValue: row["d_state"]) ?? .pending, attempts: row["d_attempts"],
                               firstFailureAt: first.map(Timestamp.init(nanosecondsSinceEpoch:)), lastError: row["d_last_error"])
    }

    public func claimDeliveries(now: Timestamp, owner: String, leaseUntil: Timestamp, limit: Int) async throws -> [WebhookDelivery] {
        try await webhookWrite { db in
            // One write transaction: the read and the leases are atomic against every other writer.
            let rows = try Row.fetchAll(db, sql: """
                SELECT \(Self.deliveryColumns)
                WHERE d.state = 0 AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.state = 0 AND p.endpoint = d.endpoint AND p.subject = d.subject AND p.event < d.event)
                ORDER BY d.event, d.id LIMIT ?
                """, arguments: [now.nanosecondsSinceEpoch, now.nanosecondsSinceEpoch, max(limit, 0)])
            let claimed = rows.map(Self.delivery)
            for delivery in claimed {
                try db.execute(sql: "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE id = ?",
                               arguments: [owner, leaseUntil.nanosecondsSinceEpoch, delivery.id])
            }
            return claimed
        }
    }

    public func finishDelivery(id: Int64, owner: String, result: DeliveryResult, now: Timestamp) async throws {
        try await webhookWrite { db in
            let (state, next, first, error) = Self.columns(of: result)
            try db.execute(sql: """
                UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = COALESCE(?, next_attempt_at),
                first_failure_at = COALESCE(?, first_failure_at), last_error = COALESCE(?, last_error), lease_owner = NULL, lease_until = NULL
                WHERE id = ? AND lease_owner = ? AND state = 0
                """, arguments: [state, next, first, error, id, owner])
        }
    }

    /// The columns a result writes: state, next attempt, first failure, error.
    static func columns(of result: DeliveryResult) -> (Int, Int64?, Int64?, String?) {
        switch result {
        case .delivered: (WebhookDelivery.State.delivered.rawValue, nil, nil, nil)
        case .retry(let next, let first, let error): (WebhookDelivery.State.pending.rawValue, next.nanosecondsSinceEpoch, first.nanosecondsSinceEpoch, error)
        case .failed(let first, let error): (WebhookDelivery.State.failed.rawValue, nil, first.nanosecondsSinceEpoch, error)
        }
    }

    public func failedDeliveries() async throws -> [WebhookDelivery] {
        try await webhookRead { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.deliveryColumns) WHERE d.state = 2 ORDER BY d.event, d.id").map(Self.delivery)
        }
    }
}
