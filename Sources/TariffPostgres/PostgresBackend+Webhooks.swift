import PostgresNIO
import Tariff
import TariffSettlement

/// Events out in the ledger's database (migration 12): the steps' triggers write the outbox; these
/// are the delivery worker's and `tariff webhooks`' reads and writes. Several servers on one
/// ledger claim deliveries with `FOR UPDATE SKIP LOCKED` and a lease, so no two hold one at once.
extension PostgresBackend: WebhookOutbox {
    static let eventColumns = "sequence, type, subject, created, data"

    static func event(_ row: PostgresRandomAccessRow, from index: Int = 0) throws -> OutboxEvent {
        OutboxEvent(sequence: try row[index].decode(Int64.self), type: try row[index + 1].decode(String.self), subject: try row[index + 2].decode(String.self),
                    created: try row[index + 3].decode(Int64.self), data: try row[index + 4].decode(String.self))
    }

    /// Writes one event through `tariff_emit_always` (whether or not an endpoint listens), on `connection` when
    /// the caller's transaction must hold it. - returns: its sequence.
    @discardableResult
    func emitEvent(_ draft: EventDraft, on connection: LeasedConnection? = nil) async throws -> Int64 {
        let type = draft.type.rawValue, subject = draft.subject, data = draft.data
        return try await row("SELECT tariff_emit_always(\(type), \(subject), \(data)::json)", on: connection)[0].decode(Int64.self)
    }

    public func emit(_ draft: EventDraft) async throws -> OutboxEvent {
        try await step { [self] in
            // Two statements: the one that writes the event does not see its own row.
            let sequence = try await emitEvent(draft)
            let rows = try await rows("SELECT \(unescaped: Self.eventColumns) FROM webhook_events WHERE sequence = \(sequence)")
            guard let row = rows.first else { throw SettlementError(.storage, "the event just written is missing") }
            return try Self.event(row)
        }
    }

    public func outboxEvents(after: Int64, limit: Int) async throws -> [OutboxEvent] {
        let count = Int64(max(limit, 0))
        return try await step { [self] in
            try await rows("SELECT \(unescaped: Self.eventColumns) FROM webhook_events WHERE sequence > \(after) ORDER BY sequence LIMIT \(count)")
                .map { try Self.event($0) }
        }
    }

    public func setDefaultLowBalance(_ threshold: Money) async throws {
        let micros = threshold.micros
        _ = try await step { [self] in
            try await rows("""
                INSERT INTO webhook_config (key, value) VALUES ('low_balance', \(micros)) ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """)
        }
    }

    /// The triggers read `consumer_settings`, which the service store writes: nothing to keep here.
    public func setLowBalance(consumer: String, threshold: Money?) async throws {}

    static let endpointColumns = "id, url, events, secret, created_at, removed_at"

    static func endpoint(_ row: PostgresRandomAccessRow) throws -> WebhookEndpoint {
        WebhookEndpoint(id: try row[0].decode(String.self), url: try row[1].decode(String.self), events: WebhookEndpoint.events(stored: try row[2].decode(String.self)),
                        secret: try row[3].decode(String.self), createdAt: Timestamp(nanosecondsSinceEpoch: try row[4].decode(Int64.self)),
                        removedAt: try row[5].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    public func addWebhookEndpoint(_ endpoint: WebhookEndpoint) async throws {
        let events = endpoint.storedEvents, created = endpoint.createdAt.nanosecondsSinceEpoch
        let inserted = try await step { [self] in
            try await rows("""
                INSERT INTO webhook_endpoints (id, url, events, secret, created_at) VALUES (\(endpoint.id), \(endpoint.url), \(events), \(endpoint.secret), \(created))
                ON CONFLICT DO NOTHING RETURNING id
                """)
        }
        guard !inserted.isEmpty else { throw SettlementError(.idempotencyConflict, "an endpoint with id \(endpoint.id) exists") }
    }

    public func webhookEndpoints() async throws -> [WebhookEndpoint] {
        try await step { [self] in
            try await rows("SELECT \(unescaped: Self.endpointColumns) FROM webhook_endpoints WHERE removed_at IS NULL ORDER BY created_at, id").map(Self.endpoint)
        }
    }

    public func removeWebhookEndpoint(id: String, at: Timestamp) async throws -> WebhookEndpoint? {
        let instant = at.nanosecondsSinceEpoch
        return try await pool.withTransaction { [self] connection in
            let removed = try await rows("""
                UPDATE webhook_endpoints SET removed_at = \(instant) WHERE id = \(id) AND removed_at IS NULL RETURNING \(unescaped: Self.endpointColumns)
                """, on: connection)
            guard let row = removed.first else { return nil }
            _ = try await rows("DELETE FROM webhook_deliveries WHERE endpoint = \(id) AND state = 0", on: connection)
            return try Self.endpoint(row)
        }
    }

    static let deliveryColumns = """
        d.id, d.endpoint, d.state, d.attempts, d.first_failure_at, d.last_error, e.url, e.secret,
        ev.sequence, ev.type, ev.subject, ev.created, ev.data
        FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint JOIN webhook_events ev ON ev.sequence = d.event
        """

    static func delivery(_ row: PostgresRandomAccessRow) throws -> WebhookDelivery {
        WebhookDelivery(id: try row[0].decode(Int64.self), endpoint: try row[1].decode(String.self), url: try row[6].decode(String.self),
                        secret: try row[7].decode(String.self), event: try event(row, from: 8),
                        state: WebhookDelivery.State(rawValue: Int(try row[2].decode(Int16.self))) ?? .pending, attempts: Int(try row[3].decode(Int32.self)),
                        firstFailureAt: try row[4].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)), lastError: try row[5].decode(String?.self))
    }

    public func claimDeliveries(now: Timestamp, owner: String, leaseUntil: Timestamp, limit: Int) async throws -> [WebhookDelivery] {
        let instant = now.nanosecondsSinceEpoch, until = leaseUntil.nanosecondsSinceEpoch, count = Int64(max(limit, 0))
        return try await step { [self] in
            // Compare-and-set: the rows are locked (others skip them) and leased in one statement;
            // a lease still running keeps a row from every other server.
            let claimed = try await rows("""
                UPDATE webhook_deliveries SET lease_owner = \(owner), lease_until = \(until)
                WHERE id IN (
                    SELECT d.id FROM webhook_deliveries d
                    WHERE d.state = 0 AND d.next_attempt_at <= \(instant) AND (d.lease_until IS NULL OR d.lease_until <= \(instant))
                    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.state = 0 AND p.endpoint = d.endpoint AND p.subject = d.subject
                                    AND p.event < d.event)
                    ORDER BY d.event, d.id LIMIT \(count) FOR UPDATE SKIP LOCKED)
                AND state = 0 AND (lease_until IS NULL OR lease_until <= \(instant))
                RETURNING id
                """)
            let ids = try claimed.map { try $0[0].decode(Int64.self) }
            guard !ids.isEmpty else { return [] }
            return try await rows("SELECT \(unescaped: Self.deliveryColumns) WHERE d.id = ANY(\(ids)) ORDER BY d.event, d.id").map(Self.delivery)
        }
    }

    public func finishDelivery(id: Int64, owner: String, result: DeliveryResult, now: Timestamp) async throws {
        let state: Int16, next: Int64?, first: Int64?, error: String?
        switch result {
        case .delivered: (state, next, first, error) = (1, nil, nil, nil)
        case .retry(let at, let firstFailure, let message): (state, next, first, error) = (0, at.nanosecondsSinceEpoch, firstFailure.nanosecondsSinceEpoch, message)
        case .failed(let firstFailure, let message): (state, next, first, error) = (2, nil, firstFailure.nanosecondsSinceEpoch, message)
        }
        _ = try await step { [self] in
            try await rows("""
                UPDATE webhook_deliveries SET state = \(state), attempts = attempts + 1, next_attempt_at = coalesce(\(next), next_attempt_at),
                first_failure_at = coalesce(\(first), first_failure_at), last_error = coalesce(\(error), last_error), lease_owner = NULL, lease_until = NULL
                WHERE id = \(id) AND lease_owner = \(owner) AND state = 0
                """)
        }
    }

    public func failedDeliveries() async throws -> [WebhookDelivery] {
        try await step { [self] in
            try await rows("SELECT \(unescaped: Self.deliveryColumns) WHERE d.state = 2 ORDER BY d.event, d.id").map(Self.delivery)
        }
    }
}
