import GRDB
import TariffSettlement

/// The triggers that write the webhooks' outbox in the transaction of the change that causes each
/// event (service.md, "Events out"), one or two per kind of event.
///
/// Since `v10`, a trigger exists only while an endpoint listens to one of its events: the writer
/// runs a trigger's program for every row of its table it touches, even when its `WHEN` is false,
/// and with every trigger in place the durable ledger lost about a third of its lifecycles per
/// second (docs/performance.md, 2026-12-06). An event nobody listens to could never be delivered
/// (an endpoint receives only events written after it exists), so not writing it loses nothing.
/// Adding or removing an endpoint creates or drops the triggers in the same transaction, so every
/// writer on the file, in this process or another, follows at its next statement (SQLite
/// re-prepares a statement when the schema changed).
enum EventTriggers {
    struct Trigger: Sendable {
        let name: String
        /// The events it writes: it exists while an endpoint listens to any of them.
        let events: [WebhookEventType]
        let sql: String
    }

    /// The threshold of a consumer's balance events: its own, else the ledger's default.
    private static let threshold = """
        COALESCE((SELECT low_balance FROM consumer_settings WHERE consumer = NEW.id),
                 (SELECT value FROM webhook_config WHERE key = 'low_balance'), 10000000)
        """
    private static let createdNow = "CAST(strftime('%s', 'now') AS INTEGER)"
    private static let balance: [WebhookEventType] = [.balanceLow, .creditsDepleted, .balanceRecovered]

    static let all: [Trigger] = [
        // One statement, the threshold read once per balance change (every settle changes one):
        // low, then depleted, then recovered, as `EventRules.balanceEvents` orders them.
        Trigger(name: "webhook_balance", events: balance, sql: """
            CREATE TRIGGER webhook_balance AFTER UPDATE OF available ON consumers WHEN OLD.available != NEW.available BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                SELECT v.type, NEW.id, \(createdNow), json_object('consumer', NEW.id, 'available_micros', NEW.available, 'threshold_micros', th.t)
                FROM (SELECT \(threshold) AS t) AS th,
                     (SELECT 1 AS k, 'balance.low' AS type UNION ALL SELECT 2, 'credits.depleted' UNION ALL SELECT 3, 'balance.recovered') AS v
                WHERE (v.k = 1 AND OLD.available >= th.t AND NEW.available < th.t) OR (v.k = 2 AND OLD.available > 0 AND NEW.available = 0)
                   OR (v.k = 3 AND OLD.available < th.t AND NEW.available >= th.t)
                ORDER BY v.k;
            END;
            """),
        // A consumer's accounts open at 0 (PostgreSQL inserts the row at 0, then updates it).
        Trigger(name: "webhook_balance_opened", events: balance, sql: """
            CREATE TRIGGER webhook_balance_opened AFTER INSERT ON consumers WHEN NEW.available > 0 BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                SELECT 'balance.recovered', NEW.id, \(createdNow), json_object('consumer', NEW.id, 'available_micros', NEW.available, 'threshold_micros', t)
                FROM (SELECT \(threshold) AS t) WHERE 0 < t AND NEW.available >= t;
            END;
            """),
        Trigger(name: "webhook_purchase", events: [.purchaseSucceeded], sql: """
            CREATE TRIGGER webhook_purchase AFTER INSERT ON entries WHEN NEW.debit_kind = 0 AND NEW.credit_kind = 1 BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('purchase.succeeded', NEW.credit_owner, \(createdNow),
                        json_object('consumer', NEW.credit_owner, 'amount_micros', NEW.amount, 'operation', NEW.operation));
            END;
            """),
        Trigger(name: "webhook_refused_reserve", events: [.executionRefused], sql: """
            CREATE TRIGGER webhook_refused_reserve AFTER INSERT ON holds WHEN NEW.state = 4 BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('execution.refused', NEW.consumer, \(createdNow),
                        json_object('consumer', NEW.consumer, 'execution', NEW.execution, 'reason', 'insufficient_credits'));
            END;
            """),
        Trigger(name: "webhook_refused_settle", events: [.executionRefused], sql: """
            CREATE TRIGGER webhook_refused_settle AFTER UPDATE OF refusal ON holds WHEN OLD.refusal IS NULL AND NEW.refusal IS NOT NULL BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('execution.refused', NEW.consumer, \(createdNow),
                        json_object('consumer', NEW.consumer, 'execution', NEW.execution, 'reason', NEW.refusal));
            END;
            """),
        Trigger(name: "webhook_renewed", events: [.subscriptionRenewed], sql: """
            CREATE TRIGGER webhook_renewed AFTER INSERT ON charges WHEN NEW.kind = 'fee' AND EXISTS (
                SELECT 1 FROM subscriptions s WHERE s.consumer = NEW.consumer AND s.plan = NEW.plan AND s.start < NEW.dated_at
                AND (s.ends_at IS NULL OR NEW.dated_at < s.ends_at)) BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('subscription.renewed', NEW.consumer, \(createdNow),
                        json_object('consumer', NEW.consumer, 'plan', NEW.plan, 'period_start_ns', NEW.dated_at, 'billed_micros', NEW.billed,
                                    'charged_micros', NEW.charged));
            END;
            """),
        Trigger(name: "webhook_payout_paid", events: [.payoutPaid], sql: """
            CREATE TRIGGER webhook_payout_paid AFTER UPDATE OF reference ON payouts WHEN OLD.reference IS NULL AND NEW.reference IS NOT NULL BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('payout.paid', 'creator:' || NEW.creator, \(createdNow),
                        json_object('creator', NEW.creator, 'payout', NEW.key, 'amount_micros', NEW.amount, 'reference', NEW.reference));
            END;
            """),
        Trigger(name: "webhook_payout_failed", events: [.payoutFailed], sql: """
            CREATE TRIGGER webhook_payout_failed AFTER UPDATE OF failure ON payouts WHEN OLD.failure IS NULL AND NEW.failure IS NOT NULL BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('payout.failed', 'creator:' || NEW.creator, \(createdNow),
                        json_object('creator', NEW.creator, 'payout', NEW.key, 'amount_micros', NEW.amount, 'reason', NEW.failure));
            END;
            """),
        Trigger(name: "webhook_period_closed_update", events: [.periodClosed], sql: """
            CREATE TRIGGER webhook_period_closed_update AFTER UPDATE OF closed_at ON period_closes WHEN OLD.closed_at IS NULL AND NEW.closed_at IS NOT NULL BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('period.closed', NEW.consumer, \(createdNow),
                        json_object('consumer', NEW.consumer, 'plan', NEW.plan, 'period_start_ns', NEW.period_start, 'period_end_ns', NEW.period_end,
                                    'shortfall_micros', NEW.shortfall, 'sla_credit_micros', NEW.sla_credit));
            END;
            """),
        Trigger(name: "webhook_period_closed_insert", events: [.periodClosed], sql: """
            CREATE TRIGGER webhook_period_closed_insert AFTER INSERT ON period_closes WHEN NEW.closed_at IS NOT NULL BEGIN
                INSERT INTO webhook_events (type, subject, created, data)
                VALUES ('period.closed', NEW.consumer, \(createdNow),
                        json_object('consumer', NEW.consumer, 'plan', NEW.plan, 'period_start_ns', NEW.period_start, 'period_end_ns', NEW.period_end,
                                    'shortfall_micros', NEW.shortfall, 'sla_credit_micros', NEW.sla_credit));
            END;
            """),
    ]

    /// Every trigger, as `v7` created them.
    static var createAll: String { all.map(\.sql).joined(separator: "\n") }

    /// Creates the triggers of the events some endpoint listens to and drops the others, in the
    /// caller's transaction. A schema change only when the set changes: adding a second endpoint
    /// for the same events leaves every writer's prepared statements as they are.
    static func followEndpoints(_ db: Database) throws {
        let listened = Set(try String.fetchAll(db, sql: "SELECT events FROM webhook_endpoints WHERE removed_at IS NULL")
            .flatMap(WebhookEndpoint.events(stored:)))
        let present = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        for trigger in all {
            let wanted = trigger.events.contains { listened.contains($0.rawValue) }
            if wanted, !present.contains(trigger.name) {
                try db.execute(sql: trigger.sql)
            } else if !wanted, present.contains(trigger.name) {
                try db.execute(sql: "DROP TRIGGER \(trigger.name)")
            }
        }
    }
}
