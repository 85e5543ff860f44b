import Tariff

// Events out (service.md, "Events out (webhooks)"): an outbox written in the same transaction as
// the ledger change that causes each event, the endpoints that receive them, and one delivery row
// per (endpoint, event) that the delivery worker claims, retries with backoff and marks delivered
// or failed. docs/webhooks.md tells the whole design.

/// The event types of service.md.
public enum WebhookEventType: String, Sendable, Hashable, CaseIterable {
    /// `available` fell below the consumer's threshold (`low_balance`).
    case balanceLow = "balance.low"
    /// `available` reached zero.
    case creditsDepleted = "credits.depleted"
    /// `available` rose back to the threshold or above.
    case balanceRecovered = "balance.recovered"
    /// A reserve refused for credits, or a settle refused by pricing (`spend_cap`, `no_plan`).
    case executionRefused = "execution.refused"
    /// A subscription's fee charged for a period after its first.
    case subscriptionRenewed = "subscription.renewed"
    /// A period's end lines charged and the period closed.
    case periodClosed = "period.closed"
    /// A payout confirmed sent by the payment rail.
    case payoutPaid = "payout.paid"
    /// A payout the payment rail refused (its amount went back to earnings).
    case payoutFailed = "payout.failed"
    /// Credits added to a consumer (`purchases -> available`).
    case purchaseSucceeded = "purchase.succeeded"
    /// An off-session top-up declined (emitted by the auto top-up through `WebhookOutbox.emit`).
    case autoTopUpFailed = "auto_top_up.failed"
}

/// One event as the outbox keeps it. `data` is the JSON object text of its `data` member, written
/// by the backend inside the step (amounts are integers of micro-units, `*_micros`: exact, no
/// decimal formatting in SQL).
public struct OutboxEvent: Sendable, Hashable {
    /// The outbox's sequence: the order events were written in (per consumer, the delivery order).
    public var sequence: Int64
    public var type: String
    /// Who the event is about, and what orders its deliveries: the consumer, or `creator:ID`.
    public var subject: String
    /// Unix seconds, by the writer's wall clock.
    public var created: Int64
    public var data: String

    public init(sequence: Int64, type: String, subject: String, created: Int64, data: String) {
        self.sequence = sequence
        self.type = type
        self.subject = subject
        self.created = created
        self.data = data
    }

    /// `evt_` and the sequence: unique in the ledger, what receivers deduplicate on.
    public var id: String { "evt_\(sequence)" }

    /// The bytes POSTed: `{"id","type","created","data"}`.
    public var body: String {
        "{\"id\":\"\(id)\",\"type\":\(JSON.quoted(type)),\"created\":\(created),\"data\":\(data)}"
    }
}

/// An event the caller emits in a transaction of its own: a refusal that wrote nothing, a
/// declined top-up (the rail's answer is the change).
public struct EventDraft: Sendable, Hashable {
    public var type: WebhookEventType
    public var subject: String
    /// (key, value) pairs of `data`, in order.
    public var fields: [(String, JSON)]

    public init(type: WebhookEventType, subject: String, fields: [(String, JSON)]) {
        self.type = type
        self.subject = subject
        self.fields = fields
    }

    public var data: String { JSON.object(fields).rendered }

    public static func == (lhs: EventDraft, rhs: EventDraft) -> Bool {
        lhs.type == rhs.type && lhs.subject == rhs.subject && lhs.data == rhs.data
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        hasher.combine(subject)
        hasher.combine(data)
    }

    /// `auto_top_up.failed`: the top-up of crossing `crossing` (its purchase key
    /// `AutoTopUpSetting.purchaseKey`) of `amount` for `consumer` was declined.
    public static func autoTopUpFailed(consumer: String, crossing: Int64, amount: Money, reason: String) -> EventDraft {
        EventDraft(type: .autoTopUpFailed, subject: consumer,
                   fields: [("consumer", .string(consumer)), ("key", .string(AutoTopUpSetting.purchaseKey(consumer: consumer, crossing: crossing))), ("amount_micros", .integer(amount.micros)),
                            ("reason", .string(reason))])
    }

    /// `execution.refused` for a refusal that wrote no row (a reserve refused for credits).
    public static func executionRefused(consumer: String, execution: String, reason: String) -> EventDraft {
        EventDraft(type: .executionRefused, subject: consumer,
                   fields: [("consumer", .string(consumer)), ("execution", .string(execution)), ("reason", .string(reason))])
    }
}

/// A receiver of events (`tariff webhooks add`).
public struct WebhookEndpoint: Sendable, Hashable {
    /// `whe_` and 24 hex digits.
    public var id: String
    public var url: String
    /// The event types it receives (service.md names), in the order given.
    public var events: [String]
    /// `whsec_...`: HMAC-SHA256 key of its signatures. Shown once, at creation; never logged.
    public var secret: String
    public var createdAt: Timestamp
    public var removedAt: Timestamp?

    public init(id: String, url: String, events: [String], secret: String, createdAt: Timestamp, removedAt: Timestamp? = nil) {
        self.id = id
        self.url = url
        self.events = events
        self.secret = secret
        self.createdAt = createdAt
        self.removedAt = removedAt
    }

    /// Stored as `,a,b,` so a SQL `instr`/`position` of `,TYPE,` matches a whole type.
    public var storedEvents: String { "," + events.joined(separator: ",") + "," }

    public static func events(stored: String) -> [String] { stored.split(separator: ",").map(String.init) }
}

/// One event to one endpoint.
public struct WebhookDelivery: Sendable, Hashable {
    public enum State: Int, Sendable, Hashable {
        case pending = 0, delivered = 1, failed = 2
    }
    public var id: Int64
    public var endpoint: String
    public var url: String
    public var secret: String
    public var event: OutboxEvent
    public var state: State
    /// Attempts made so far.
    public var attempts: Int
    /// The first failed attempt (the 72 h of retries count from it).
    public var firstFailureAt: Timestamp?
    public var lastError: String?

    public init(id: Int64, endpoint: String, url: String, secret: String, event: OutboxEvent, state: State, attempts: Int,
                firstFailureAt: Timestamp?, lastError: String?) {
        self.id = id
        self.endpoint = endpoint
        self.url = url
        self.secret = secret
        self.event = event
        self.state = state
        self.attempts = attempts
        self.firstFailureAt = firstFailureAt
        self.lastError = lastError
    }
}

/// What one attempt of a claimed delivery came to.
public enum DeliveryResult: Sendable, Hashable {
    case delivered
    /// Try again at `nextAttemptAt`.
    case retry(nextAttemptAt: Timestamp, firstFailureAt: Timestamp, error: String)
    /// Given up (72 h of retries): listed by `tariff webhooks failures`.
    case failed(firstFailureAt: Timestamp, error: String)
}

/// The outbox, endpoints and deliveries of a backend (in memory, SQLite, PostgreSQL): what the
/// delivery worker and `tariff webhooks` use. The events themselves are written by the backend's
/// steps (in their transaction); `emit` is for events whose cause wrote nothing.
public protocol WebhookOutbox: Sendable {
    /// Writes one event in a transaction of its own.
    func emit(_ draft: EventDraft) async throws -> OutboxEvent
    /// Events with a sequence above `after`, in order, at most `limit`.
    func outboxEvents(after: Int64, limit: Int) async throws -> [OutboxEvent]
    /// The default threshold of `balance.low` (`rules/` `low_balance`), kept in the ledger so
    /// every writer (servers, `tariff ledger`) applies the same.
    func setDefaultLowBalance(_ threshold: Money) async throws
    /// A consumer's own threshold (`PUT /v1/consumers/{id}` `low_balance`). SQLite and PostgreSQL
    /// read `consumer_settings` (the service store writes it); the in-memory ledger keeps a copy.
    func setLowBalance(consumer: String, threshold: Money?) async throws

    /// - throws: `idempotency_conflict` when the id exists.
    func addWebhookEndpoint(_ endpoint: WebhookEndpoint) async throws
    /// Every endpoint not removed, oldest first.
    func webhookEndpoints() async throws -> [WebhookEndpoint]
    /// Removes an endpoint (its pending deliveries are dropped); nil when none has that id.
    func removeWebhookEndpoint(id: String, at: Timestamp) async throws -> WebhookEndpoint?

    /// Claims up to `limit` due deliveries for `owner` until `leaseUntil`: each the oldest pending
    /// one of its (endpoint, subject), so a subject's events go out in order, and none leased by
    /// another worker whose lease is still running (compare-and-set: two servers never hold one).
    func claimDeliveries(now: Timestamp, owner: String, leaseUntil: Timestamp, limit: Int) async throws -> [WebhookDelivery]
    /// Records an attempt's result, if `owner` still holds the lease (else nothing: another took it).
    func finishDelivery(id: Int64, owner: String, result: DeliveryResult, now: Timestamp) async throws
    /// The deliveries given up, oldest first.
    func failedDeliveries() async throws -> [WebhookDelivery]
}

/// The retry schedule: 30 s after the first failure, doubling, at most 6 h apart, given up once
/// 72 h passed since the first failure (service.md).
public enum WebhookBackoff {
    public static let firstRetrySeconds: Int64 = 30
    public static let longestWaitSeconds: Int64 = 6 * 3600
    public static let giveUpAfterSeconds: Int64 = 72 * 3600
    /// How long a claim lasts: longer than an attempt's timeout, so a live worker keeps it.
    public static let leaseSeconds: Int64 = 60

    /// The wait after `failures` failed attempts (1 = the first): 30 s, 60 s, 120 s, ... capped at 6 h.
    public static func waitSeconds(afterFailures failures: Int) -> Int64 {
        let doublings = min(max(failures - 1, 0), 20)
        return min(firstRetrySeconds << Int64(doublings), longestWaitSeconds)
    }

    /// The result of a failed attempt at `now`.
    public static func afterFailure(attempts: Int, firstFailureAt: Timestamp?, now: Timestamp, error: String) -> DeliveryResult {
        let first = firstFailureAt ?? now
        let elapsed = (now.nanosecondsSinceEpoch &- first.nanosecondsSinceEpoch) / 1_000_000_000
        if elapsed >= giveUpAfterSeconds { return .failed(firstFailureAt: first, error: error) }
        let next = now.adding(nanoseconds: waitSeconds(afterFailures: attempts) * 1_000_000_000) ?? now
        return .retry(nextAttemptAt: next, firstFailureAt: first, error: error)
    }
}

/// The events a step's row writes cause: the rules every backend applies (the in-memory ledger
/// here, SQLite and PostgreSQL in triggers of the same rules: `v7: webhooks`, migration 12).
public enum EventRules {
    /// The default `low_balance` when neither the rules nor the consumer set one: 10.00.
    public static let defaultLowBalance = Money(micros: 10_000_000)

    /// A consumer's `available` moved from `old` to `new` under `threshold`: at most one event per
    /// crossing (low, then depleted when both happen in one step; recovered).
    public static func balanceEvents(consumer: String, old: Money, new: Money, threshold: Money) -> [EventDraft] {
        guard old != new else { return [] }
        var events: [EventDraft] = []
        let fields: [(String, JSON)] = [("consumer", .string(consumer)), ("available_micros", .integer(new.micros)), ("threshold_micros", .integer(threshold.micros))]
        if old >= threshold && new < threshold { events.append(EventDraft(type: .balanceLow, subject: consumer, fields: fields)) }
        if old.micros > 0 && new.micros == 0 { events.append(EventDraft(type: .creditsDepleted, subject: consumer, fields: fields)) }
        if old < threshold && new >= threshold { events.append(EventDraft(type: .balanceRecovered, subject: consumer, fields: fields)) }
        return events
    }

    /// An entry written: credits purchased (`purchases -> available`).
    public static func entryEvents(_ entry: Entry) -> [EventDraft] {
        guard entry.debit.kind == .purchases, entry.credit.kind == .available else { return [] }
        let consumer = entry.credit.owner
        return [EventDraft(type: .purchaseSucceeded, subject: consumer,
                           fields: [("consumer", .string(consumer)), ("amount_micros", .integer(entry.amount.micros)),
                                    ("operation", .string(entry.operation))])]
    }

    /// A hold written: a refusal recorded at reserve, or a settle refused by pricing.
    public static func holdEvents(old: HoldRecord?, new: HoldRecord) -> [EventDraft] {
        let reason: String
        if old == nil, new.state == .refused {
            reason = "insufficient_credits"
        } else if old?.outcome?.refusal == nil, let refusal = new.outcome?.refusal {
            reason = refusal.rawValue
        } else {
            return []
        }
        return [EventDraft.executionRefused(consumer: new.consumer, execution: new.execution, reason: reason)]
    }

    /// A charge line written: a fee of a period after its subscription's first (`subscription.renewed`).
    public static func chargeEvents(_ charge: ChargeRecord, subscriptions: [SubscriptionRecord]) -> [EventDraft] {
        guard charge.kind == .fee else { return [] }
        let renewed = subscriptions.contains { subscription in
            subscription.plan.bytesEqual(charge.plan) && subscription.start < charge.datedAt
                && (subscription.endsAt.map { charge.datedAt < $0 } ?? true)
        }
        guard renewed else { return [] }
        return [EventDraft(type: .subscriptionRenewed, subject: charge.consumer,
                           fields: [("consumer", .string(charge.consumer)), ("plan", .string(charge.plan)),
                                    ("period_start_ns", .integer(charge.datedAt.nanosecondsSinceEpoch)), ("billed_micros", .integer(charge.billed.micros)),
                                    ("charged_micros", .integer(charge.charged.micros))])]
    }

    /// A payout written: confirmed sent, or failed.
    public static func payoutEvents(old: PayoutRecord?, new: PayoutRecord) -> [EventDraft] {
        let subject = "creator:" + new.creator
        let base: [(String, JSON)] = [("creator", .string(new.creator)), ("payout", .string(new.key)), ("amount_micros", .integer(new.amount.micros))]
        if old?.reference == nil, let reference = new.reference {
            return [EventDraft(type: .payoutPaid, subject: subject, fields: base + [("reference", .string(reference))])]
        }
        if old?.failure == nil, let failure = new.failure {
            return [EventDraft(type: .payoutFailed, subject: subject, fields: base + [("reason", .string(failure))])]
        }
        return []
    }

    /// A period registration written: closed.
    public static func closeEvents(old: PeriodCloseRecord?, new: PeriodCloseRecord) -> [EventDraft] {
        guard old?.closedAt == nil, new.closedAt != nil else { return [] }
        return [EventDraft(type: .periodClosed, subject: new.consumer,
                           fields: [("consumer", .string(new.consumer)), ("plan", .string(new.plan)),
                                    ("period_start_ns", .integer(new.start.nanosecondsSinceEpoch)), ("period_end_ns", .integer(new.end.nanosecondsSinceEpoch)),
                                    ("shortfall_micros", .integer(new.shortfall.micros)), ("sla_credit_micros", .integer(new.slaCredit.micros))])]
    }
}
