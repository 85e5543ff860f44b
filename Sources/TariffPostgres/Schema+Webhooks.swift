extension Schema {
    /// Migration 12: events out (service.md, "Events out (webhooks)"). The outbox is written by
    /// triggers on the rows the steps write, so each event is in the transaction of the change
    /// that causes it: a refused (rolled back) step writes none, a committed one cannot lose it.
    /// The rules are `EventRules`' (TariffSettlement), the same as the in-memory ledger's and
    /// SQLite's `v7: webhooks`. Self-contained: it only adds tables, functions and triggers.
    /// The functions keep the ledger's schema (`SET search_path FROM CURRENT`): a trigger fires
    /// for any writer, whatever its own search path.
    static let v12: [String] = [
        "CREATE TABLE webhook_config (key text PRIMARY KEY, value bigint NOT NULL)",
        "INSERT INTO webhook_config (key, value) VALUES ('low_balance', 10000000)",
        "CREATE TABLE webhook_events (sequence bigserial PRIMARY KEY, type text NOT NULL, subject text NOT NULL, created bigint NOT NULL, data text NOT NULL)",
        """
        CREATE TABLE webhook_endpoints (
            id text PRIMARY KEY, url text NOT NULL, events text NOT NULL, secret text NOT NULL, created_at bigint NOT NULL, removed_at bigint
        )
        """,
        """
        CREATE TABLE webhook_deliveries (
            id bigserial PRIMARY KEY, endpoint text NOT NULL, event bigint NOT NULL, subject text NOT NULL,
            state smallint NOT NULL DEFAULT 0, attempts int NOT NULL DEFAULT 0, next_attempt_at bigint NOT NULL DEFAULT 0,
            first_failure_at bigint, last_error text, lease_owner text, lease_until bigint
        )
        """,
        "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint, subject, event) WHERE state = 0",
        // The outbox's writer: one event and a pending delivery per endpoint that takes its type.
        """
        CREATE FUNCTION tariff_emit(p_type text, p_subject text, p_data json) RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        DECLARE seq bigint;
        BEGIN
            INSERT INTO webhook_events (type, subject, created, data)
            VALUES (p_type, p_subject, floor(extract(epoch FROM clock_timestamp()))::bigint, p_data::text) RETURNING sequence INTO seq;
            INSERT INTO webhook_deliveries (endpoint, event, subject)
            SELECT id, seq, p_subject FROM webhook_endpoints
            WHERE removed_at IS NULL AND position(',' || p_type || ',' IN events) > 0 ORDER BY created_at, id;
            RETURN seq;
        END $$
        """,
        """
        CREATE FUNCTION tariff_low_balance(p_consumer text) RETURNS bigint LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
        SELECT coalesce((SELECT low_balance FROM consumer_settings WHERE consumer = p_consumer),
                        (SELECT value FROM webhook_config WHERE key = 'low_balance'), 10000000) $$
        """,
        // A consumer's accounts open at 0: an insert is a move from 0.
        """
        CREATE FUNCTION tariff_webhook_balance() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        DECLARE old_available bigint := 0; t bigint; d json;
        BEGIN
            IF TG_OP = 'UPDATE' THEN old_available := OLD.available; END IF;
            IF old_available = NEW.available THEN RETURN NULL; END IF;
            t := tariff_low_balance(NEW.id);
            d := json_build_object('consumer', NEW.id, 'available_micros', NEW.available, 'threshold_micros', t);
            IF old_available >= t AND NEW.available < t THEN PERFORM tariff_emit('balance.low', NEW.id, d); END IF;
            IF old_available > 0 AND NEW.available = 0 THEN PERFORM tariff_emit('credits.depleted', NEW.id, d); END IF;
            IF old_available < t AND NEW.available >= t THEN PERFORM tariff_emit('balance.recovered', NEW.id, d); END IF;
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER webhook_balance AFTER INSERT OR UPDATE OF available ON consumers FOR EACH ROW EXECUTE FUNCTION tariff_webhook_balance()",
        """
        CREATE FUNCTION tariff_webhook_purchase() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            PERFORM tariff_emit('purchase.succeeded', NEW.credit_owner,
                                json_build_object('consumer', NEW.credit_owner, 'amount_micros', NEW.amount, 'operation', NEW.operation));
            RETURN NULL;
        END $$
        """,
        """
        CREATE TRIGGER webhook_purchase AFTER INSERT ON entries FOR EACH ROW WHEN (NEW.debit_kind = 0 AND NEW.credit_kind = 1)
        EXECUTE FUNCTION tariff_webhook_purchase()
        """,
        """
        CREATE FUNCTION tariff_webhook_refused() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        DECLARE reason text;
        BEGIN
            -- A recorded refusal: inserted refused, or (the reserve of migration 4) inserted, then refused.
            IF TG_OP = 'INSERT' OR (OLD.state <> 4 AND NEW.state = 4) THEN
                IF NEW.state <> 4 THEN RETURN NULL; END IF;
                reason := 'insufficient_credits';
            ELSE
                IF OLD.refusal IS NOT NULL OR NEW.refusal IS NULL THEN RETURN NULL; END IF;
                reason := NEW.refusal;
            END IF;
            PERFORM tariff_emit('execution.refused', NEW.consumer,
                                json_build_object('consumer', NEW.consumer, 'execution', NEW.execution, 'reason', reason));
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER webhook_refused_reserve AFTER INSERT ON holds FOR EACH ROW WHEN (NEW.state = 4) EXECUTE FUNCTION tariff_webhook_refused()",
        """
        CREATE TRIGGER webhook_refused_settle AFTER UPDATE ON holds FOR EACH ROW
        WHEN ((OLD.refusal IS NULL AND NEW.refusal IS NOT NULL) OR (OLD.state <> 4 AND NEW.state = 4))
        EXECUTE FUNCTION tariff_webhook_refused()
        """,
        """
        CREATE FUNCTION tariff_webhook_renewed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM subscriptions s WHERE s.consumer = NEW.consumer AND s.plan = NEW.plan AND s.start < NEW.dated_at
                       AND (s.ends_at IS NULL OR NEW.dated_at < s.ends_at)) THEN
                PERFORM tariff_emit('subscription.renewed', NEW.consumer,
                                    json_build_object('consumer', NEW.consumer, 'plan', NEW.plan, 'period_start_ns', NEW.dated_at,
                                                      'billed_micros', NEW.billed, 'charged_micros', NEW.charged));
            END IF;
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER webhook_renewed AFTER INSERT ON charges FOR EACH ROW WHEN (NEW.kind = 'fee') EXECUTE FUNCTION tariff_webhook_renewed()",
        """
        CREATE FUNCTION tariff_webhook_payout() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF OLD.reference IS NULL AND NEW.reference IS NOT NULL THEN
                PERFORM tariff_emit('payout.paid', 'creator:' || NEW.creator,
                                    json_build_object('creator', NEW.creator, 'payout', NEW.key, 'amount_micros', NEW.amount, 'reference', NEW.reference));
            END IF;
            IF OLD.failure IS NULL AND NEW.failure IS NOT NULL THEN
                PERFORM tariff_emit('payout.failed', 'creator:' || NEW.creator,
                                    json_build_object('creator', NEW.creator, 'payout', NEW.key, 'amount_micros', NEW.amount, 'reason', NEW.failure));
            END IF;
            RETURN NULL;
        END $$
        """,
        """
        CREATE TRIGGER webhook_payout AFTER UPDATE ON payouts FOR EACH ROW
        WHEN ((OLD.reference IS NULL AND NEW.reference IS NOT NULL) OR (OLD.failure IS NULL AND NEW.failure IS NOT NULL))
        EXECUTE FUNCTION tariff_webhook_payout()
        """,
        """
        CREATE FUNCTION tariff_webhook_closed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF NEW.closed_at IS NULL OR (TG_OP = 'UPDATE' AND OLD.closed_at IS NOT NULL) THEN RETURN NULL; END IF;
            PERFORM tariff_emit('period.closed', NEW.consumer,
                                json_build_object('consumer', NEW.consumer, 'plan', NEW.plan, 'period_start_ns', NEW.period_start,
                                                  'period_end_ns', NEW.period_end, 'shortfall_micros', NEW.shortfall, 'sla_credit_micros', NEW.sla_credit));
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER webhook_closed AFTER INSERT OR UPDATE ON period_closes FOR EACH ROW EXECUTE FUNCTION tariff_webhook_closed()",
    ]
}
