import Tariff

/// A delivery row of the in-memory ledger, with its schedule and lease.
struct MemoryDelivery: Sendable {
    var delivery: WebhookDelivery
    var nextAttemptAt: Timestamp
    var leaseOwner: String?
    var leaseUntil: Timestamp?
}

extension MemoryState {
    /// Whether an endpoint not removed takes the event's type.
    func isListened(_ draft: EventDraft) -> Bool {
        endpoints.contains { $0.removedAt == nil && $0.events.contains(draft.type.rawValue) }
    }

    /// Appends an event and a pending delivery for every endpoint that takes its type.
    mutating func appendEvent(_ draft: EventDraft) -> OutboxEvent {
        let created = SystemClock().now().nanosecondsSinceEpoch / 1_000_000_000
        let event = OutboxEvent(sequence: Int64(events.count + 1), type: draft.type.rawValue, subject: draft.subject, created: created, data: draft.data)
        events.append(event)
        for endpoint in endpoints where endpoint.removedAt == nil && endpoint.events.contains(event.type) {
            deliveries.append(MemoryDelivery(
                delivery: WebhookDelivery(id: Int64(deliveries.count + 1), endpoint: endpoint.id, url: endpoint.url, secret: endpoint.secret, event: event,
                                          state: .pending, attempts: 0, firstFailureAt: nil, lastError: nil),
                nextAttemptAt: Timestamp(nanosecondsSinceEpoch: 0), leaseOwner: nil, leaseUntil: nil))
        }
        return event
    }
}

extension InMemoryBackend: WebhookOutbox {
    public func emit(_ draft: EventDraft) -> OutboxEvent {
        withState { $0.appendEvent(draft) }
    }

    public func outboxEvents(after: Int64, limit: Int) -> [OutboxEvent] {
        withState { state in Array(state.events.lazy.filter { $0.sequence > after }.prefix(max(limit, 0))) }
    }

    public func setDefaultLowBalance(_ threshold: Money) {
        withState { $0.defaultLowBalance = threshold }
    }

    public func setLowBalance(consumer: String, threshold: Money?) {
        withState { $0.lowBalances[ByteKey(consumer)] = threshold }
    }

    public func addWebhookEndpoint(_ endpoint: WebhookEndpoint) throws {
        try withState { state in
            guard !state.endpoints.contains(where: { $0.id == endpoint.id }) else {
                throw SettlementError(.idempotencyConflict, "an endpoint with id \(endpoint.id) exists")
            }
            state.endpoints.append(endpoint)
        }
    }

    public func webhookEndpoints() -> [WebhookEndpoint] {
        withState { state in state.endpoints.filter { $0.removedAt == nil } }
    }

    public func removeWebhookEndpoint(id: String, at: Timestamp) -> WebhookEndpoint? {
        withState { state in
            guard let index = state.endpoints.firstIndex(where: { $0.id == id && $0.removedAt == nil }) else { return nil }
            state.endpoints[index].removedAt = at
            state.deliveries.removeAll { $0.delivery.endpoint == id && $0.delivery.state == .pending }
            return state.endpoints[index]
        }
    }

    public func claimDeliveries(now: Timestamp, owner: String, leaseUntil: Timestamp, limit: Int) -> [WebhookDelivery] {
        withState { state in
            var heads = Set<String>()
            var claimed: [WebhookDelivery] = []
            for index in state.deliveries.indices where state.deliveries[index].delivery.state == .pending && claimed.count < limit {
                let row = state.deliveries[index]
                // Only the oldest pending delivery of its (endpoint, subject) may go: order per consumer.
                let head = row.delivery.endpoint + "\u{0}" + row.delivery.event.subject
                guard heads.insert(head).inserted else { continue }
                guard row.nextAttemptAt <= now, row.leaseUntil.map({ $0 <= now }) ?? true else { continue }
                state.deliveries[index].leaseOwner = owner
                state.deliveries[index].leaseUntil = leaseUntil
                claimed.append(row.delivery)
            }
            return claimed
        }
    }

    public func finishDelivery(id: Int64, owner: String, result: DeliveryResult, now: Timestamp) {
        withState { state in
            guard let index = state.deliveries.firstIndex(where: { $0.delivery.id == id }), state.deliveries[index].leaseOwner == owner,
                  state.deliveries[index].delivery.state == .pending else { return }
            state.deliveries[index].leaseOwner = nil
            state.deliveries[index].leaseUntil = nil
            state.deliveries[index].delivery.attempts += 1
            switch result {
            case .delivered:
                state.deliveries[index].delivery.state = .delivered
            case .retry(let next, let first, let error):
                state.deliveries[index].nextAttemptAt = next
                state.deliveries[index].delivery.firstFailureAt = first
                state.deliveries[index].delivery.lastError = error
            case .failed(let first, let error):
                state.deliveries[index].delivery.state = .failed
                state.deliveries[index].delivery.firstFailureAt = first
                state.deliveries[index].delivery.lastError = error
            }
        }
    }

    public func failedDeliveries() -> [WebhookDelivery] {
        withState { state in state.deliveries.map(\.delivery).filter { $0.state == .failed } }
    }
}
