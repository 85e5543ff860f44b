/// The ledger's schema in PostgreSQL, versioned from the first release: each release appends a
/// migration and never edits a shipped one (`tariff_migrations` records which ran).
///
/// Every lifecycle step is one server-side function (one round trip, one implicit transaction):
/// a refused step raises, and PostgreSQL rolls the whole statement back, so a refusal leaves not a
/// row behind. The functions mirror `LedgerSteps` (the reference semantics) rule for rule, with
/// two differences that concurrency asks for:
///
/// - **Lock order.** Every step that writes to a consumer locks that consumer's row first, then
///   its holds, then its period state. Two steps never wait on each other in opposite orders
///   (no deadlock between steps of this schema), and one consumer's row serialises exactly the
///   steps that must be serial (its balance), while different consumers run in parallel.
/// - **No hot rows but the consumer's.** Creator earnings, platform and processing shares are only
///   ever appended (`entries`); their balances are sums, so no creator's or platform row is
///   updated by every settle.
///
/// Settle and period charges price in Swift (the pricing closure is Swift code): the backend reads
/// the hold, the period state (with its `version`) and `available`, prices, and calls the function
/// with what it read; the function applies only if those are unchanged under the locks and
/// answers `stale` otherwise (nothing written), and the backend prices again. This is the
/// optimistic pricing `SettlementBackend`'s contract allows.
enum Schema {
    struct Migration {
        let version: Int64
        let name: String
        /// One statement each (the extended protocol takes one statement per query).
        let statements: [String]
    }

    /// Every migration, in order. Append only.
    static let migrations: [Migration] = [
        Migration(version: 1, name: "ledger", statements: v1),
        Migration(version: 2, name: "recorded_refusals", statements: v2),
        Migration(version: 3, name: "settle_without_read", statements: v3),
        Migration(version: 4, name: "shorter_consumer_locks", statements: v4),
        Migration(version: 5, name: "reserve_batches", statements: v5),
        Migration(version: 6, name: "settle_batches", statements: v6),
        Migration(version: 7, name: "service", statements: v7),
        Migration(version: 8, name: "payouts", statements: v8),
        Migration(version: 9, name: "reversals", statements: v9),
        Migration(version: 10, name: "period_closes", statements: v10),
        Migration(version: 11, name: "subscriptions", statements: v11),
        Migration(version: 12, name: "webhooks", statements: v12),
        Migration(version: 13, name: "portal", statements: v13),
        Migration(version: 14, name: "auto_top_up", statements: v14),
        Migration(version: 15, name: "close_race", statements: v15),
        Migration(version: 16, name: "listened_events", statements: v16),
    ]

    /// Every table, for dumps (tests compare a dump before and after a refused operation).
    static let tables = ["ledger_meta", "consumers", "holds", "entries", "charges", "period_states", "operations", "payouts", "creator_holds",
                         "purchases", "reversals", "period_closes", "subscriptions"]

    /// Account kinds as `Account.Kind` numbers them (stored as integers).
    /// purchases 0, available 1, reserved 2, earnings 3, paid_out 4, platform 5, processing 6, uncollected 7, written_off 8.
    /// Hold states as `HoldRecord.State`: active 0, settled 1, released 2, expired 3 (refused 4 from migration 2).
    static let v1: [String] = [
        "CREATE TABLE ledger_meta (key text PRIMARY KEY, value text NOT NULL)",
        // Running balances, checked against the entries by verify. The CHECKs make an overdraft
        // impossible even for a buggy writer: the statement fails and nothing is written.
        """
        CREATE TABLE consumers (
            id text PRIMARY KEY,
            available bigint NOT NULL CHECK (available >= 0),
            reserved bigint NOT NULL CHECK (reserved >= 0)
        )
        """,
        """
        CREATE TABLE holds (
            execution text PRIMARY KEY,
            consumer text NOT NULL, plan text NOT NULL, version bigint NOT NULL, period_start bigint,
            estimate bigint NOT NULL, amount bigint NOT NULL CHECK (amount >= 0),
            created_at bigint NOT NULL, expires_at bigint NOT NULL, state smallint NOT NULL,
            fingerprint text NOT NULL, closing_fingerprint text, closed_at bigint,
            billed bigint, charged bigint, uncollected bigint,
            creator_share bigint, platform_share bigint, processing_share bigint,
            compute_units bigint, refusal text, released bigint
        )
        """,
        // Expiry reads only active holds: per consumer, and all of them by time for the sweep.
        "CREATE INDEX holds_active_by_consumer ON holds (consumer, expires_at) WHERE state = 0",
        "CREATE INDEX holds_active_by_expiry ON holds (expires_at) WHERE state = 0",
        """
        CREATE TABLE entries (
            sequence bigserial PRIMARY KEY,
            operation text NOT NULL,
            debit_kind smallint NOT NULL, debit_owner text NOT NULL,
            credit_kind smallint NOT NULL, credit_owner text NOT NULL,
            amount bigint NOT NULL CHECK (amount > 0),
            at bigint NOT NULL
        )
        """,
        "CREATE INDEX entries_by_operation ON entries (operation)",
        """
        CREATE TABLE charges (
            sequence bigserial PRIMARY KEY,
            operation text NOT NULL, kind text NOT NULL,
            consumer text NOT NULL, agent text NOT NULL, creator text NOT NULL, plan text NOT NULL, version bigint NOT NULL,
            execution text, compute_units bigint NOT NULL,
            billed bigint NOT NULL, charged bigint NOT NULL, uncollected bigint NOT NULL,
            creator_share bigint NOT NULL, platform_share bigint NOT NULL, processing_share bigint NOT NULL,
            failed boolean NOT NULL, dated_at bigint NOT NULL,
            CHECK (creator_share::numeric + platform_share + processing_share = charged)
        )
        """,
        "CREATE INDEX charges_by_date ON charges (dated_at)",
        "CREATE INDEX charges_by_consumer ON charges (consumer, dated_at)",
        // `version` counts the writes of a state: the optimistic check of settle and period charges.
        """
        CREATE TABLE period_states (
            key text PRIMARY KEY,
            used_compute_units bigint NOT NULL, usage_charges bigint NOT NULL,
            executions bigint NOT NULL, succeeded bigint NOT NULL, failed bigint NOT NULL,
            version bigint NOT NULL
        )
        """,
        "CREATE TABLE operations (key text PRIMARY KEY, fingerprint text NOT NULL, result bigint[] NOT NULL, at bigint NOT NULL)",
        """
        CREATE TABLE payouts (
            key text PRIMARY KEY, creator text NOT NULL, week_start text NOT NULL, pay_date text NOT NULL,
            amount bigint NOT NULL CHECK (amount > 0), recorded_at bigint NOT NULL, reference text
        )
        """,
        "CREATE INDEX payouts_by_week ON payouts (week_start)",
        // Entries and charge lines are append-only: the database refuses to change them.
        """
        CREATE FUNCTION tariff_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'ledger % rows are append-only', TG_TABLE_NAME; END $$
        """,
        "CREATE TRIGGER entries_are_append_only BEFORE UPDATE OR DELETE ON entries FOR EACH ROW EXECUTE FUNCTION tariff_append_only()",
        "CREATE TRIGGER charges_are_append_only BEFORE UPDATE OR DELETE ON charges FOR EACH ROW EXECUTE FUNCTION tariff_append_only()",

        // A refusal: the hint carries the stable code (`SettlementError.Code`), the message what to fix.
        """
        CREATE FUNCTION tariff_refuse(p_code text, p_message text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = p_message, HINT = 'tariff:' || p_code; END $$
        """,
        """
        CREATE FUNCTION tariff_money(p bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
        SELECT to_char(p::numeric / 1000000, 'FM999999999999990.000000') $$
        """,
        """
        CREATE FUNCTION tariff_entry(p_operation text, p_debit_kind int, p_debit_owner text, p_credit_kind int, p_credit_owner text,
                                     p_amount bigint, p_at bigint) RETURNS void LANGUAGE sql AS $$
        INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at)
        VALUES (p_operation, p_debit_kind, p_debit_owner, p_credit_kind, p_credit_owner, p_amount, p_at) $$
        """,
        // SettlementMath.shareEntries: a positive share from the consumer to the party, a negative one back.
        """
        CREATE FUNCTION tariff_share_entries(p_consumer text, p_creator text, p_creator_share bigint, p_platform_share bigint,
                                             p_processing_share bigint, p_operation text, p_at bigint) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF p_creator_share > 0 THEN PERFORM tariff_entry(p_operation, 1, p_consumer, 3, p_creator, p_creator_share, p_at);
            ELSIF p_creator_share < 0 THEN PERFORM tariff_entry(p_operation, 3, p_creator, 1, p_consumer, -p_creator_share, p_at); END IF;
            IF p_platform_share > 0 THEN PERFORM tariff_entry(p_operation, 1, p_consumer, 5, '', p_platform_share, p_at);
            ELSIF p_platform_share < 0 THEN PERFORM tariff_entry(p_operation, 5, '', 1, p_consumer, -p_platform_share, p_at); END IF;
            IF p_processing_share > 0 THEN PERFORM tariff_entry(p_operation, 1, p_consumer, 6, '', p_processing_share, p_at);
            ELSIF p_processing_share < 0 THEN PERFORM tariff_entry(p_operation, 6, '', 1, p_consumer, -p_processing_share, p_at); END IF;
        END $$
        """,
        // Gives back the consumer's holds past their expiry (LedgerSteps.expireDueHolds). The caller
        // holds the consumer's row lock; the entry is dated at the expiry instant.
        """
        CREATE FUNCTION tariff_expire_due(p_consumer text, p_now bigint) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE h record; total bigint := 0; n bigint := 0;
        BEGIN
            FOR h IN SELECT execution, amount, expires_at FROM holds
                     WHERE consumer = p_consumer AND state = 0 AND expires_at <= p_now ORDER BY execution FOR UPDATE LOOP
                IF h.amount > 0 THEN PERFORM tariff_entry('expire:' || h.execution, 2, p_consumer, 1, p_consumer, h.amount, h.expires_at); END IF;
                UPDATE holds SET state = 3, closed_at = h.expires_at WHERE execution = h.execution;
                total := total + h.amount;
                n := n + 1;
            END LOOP;
            IF total > 0 THEN UPDATE consumers SET reserved = reserved - total, available = available + total WHERE id = p_consumer; END IF;
            RETURN n;
        END $$
        """,
        // LedgerSteps' liveHold: the hold can still be settled, extended or released at p_now.
        """
        CREATE FUNCTION tariff_check_live(p_state smallint, p_expires_at bigint, p_execution text, p_now bigint, p_what text)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF p_state = 1 THEN PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was settled: %s cannot follow', p_execution, p_what));
            ELSIF p_state = 2 THEN PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was released: %s cannot follow', p_execution, p_what));
            ELSIF p_state = 3 OR p_now >= p_expires_at THEN
                PERFORM tariff_refuse('reservation_expired', format('the hold of execution ''%s'' expired at %s', p_execution, p_expires_at));
            END IF;
        END $$
        """,
        """
        CREATE FUNCTION tariff_purchase(p_key text, p_fingerprint text, p_consumer text, p_amount bigint, p_now bigint,
                                        OUT o_amount bigint, OUT o_available bigint) LANGUAGE plpgsql AS $$
        DECLARE op record; c record;
        BEGIN
            SELECT fingerprint, result INTO op FROM operations WHERE key = p_key;
            IF FOUND THEN
                IF op.fingerprint <> p_fingerprint OR cardinality(op.result) <> 2 THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('purchase key ''%s'' was already used with other parameters (%s)', substr(p_key, 10), op.fingerprint));
                END IF;
                o_amount := op.result[1]; o_available := op.result[2];
                RETURN;
            END IF;
            IF p_amount <= 0 THEN PERFORM tariff_refuse('invalid_amount', 'a purchase must be positive'); END IF;
            INSERT INTO consumers (id, available, reserved) VALUES (p_consumer, 0, 0) ON CONFLICT (id) DO NOTHING;
            SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer FOR UPDATE;
            IF c.reserved > 0 THEN PERFORM tariff_expire_due(p_consumer, p_now); END IF;
            -- available + reserved must stay in range too: every hold is given back to available one day.
            UPDATE consumers SET available = available + p_amount WHERE id = p_consumer RETURNING available, reserved INTO c;
            IF c.available::numeric + c.reserved > 9223372036854775807 THEN
                PERFORM tariff_refuse('out_of_range', format('%s''s credits would exceed the ledger''s 64-bit range', p_consumer));
            END IF;
            PERFORM tariff_entry(p_key, 0, p_consumer, 1, p_consumer, p_amount, p_now);
            INSERT INTO operations (key, fingerprint, result, at) VALUES (p_key, p_fingerprint, ARRAY[p_amount, c.available], p_now);
            o_amount := p_amount; o_available := c.available;
        END $$
        """,
        """
        CREATE FUNCTION tariff_reserve(p_execution text, p_fingerprint text, p_consumer text, p_plan text, p_version bigint, p_period_start bigint,
                                       p_amount bigint, p_expires_at bigint, p_now bigint,
                                       OUT o_consumer text, OUT o_amount bigint, OUT o_expires_at bigint) LANGUAGE plpgsql AS $$
        DECLARE h record; c record;
        BEGIN
            SELECT consumer, estimate, expires_at, fingerprint INTO h FROM holds WHERE execution = p_execution;
            IF FOUND THEN
                IF h.fingerprint <> p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was already reserved with other parameters', p_execution));
                END IF;
                o_consumer := h.consumer; o_amount := h.estimate; o_expires_at := h.expires_at;
                RETURN;
            END IF;
            IF p_amount < 0 THEN PERFORM tariff_refuse('invalid_amount', 'a hold cannot be negative'); END IF;
            SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer FOR UPDATE;
            IF NOT FOUND THEN PERFORM tariff_refuse('unknown_consumer', format('no credits were ever purchased for consumer ''%s''', p_consumer)); END IF;
            IF c.reserved > 0 AND tariff_expire_due(p_consumer, p_now) > 0 THEN
                SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer;
            END IF;
            IF c.available < p_amount THEN
                PERFORM tariff_refuse('insufficient_credits', format('%s has %s available, %s needed', p_consumer, tariff_money(c.available), tariff_money(p_amount)));
            END IF;
            UPDATE consumers SET available = available - p_amount, reserved = reserved + p_amount WHERE id = p_consumer;
            IF p_amount > 0 THEN PERFORM tariff_entry('reserve:' || p_execution, 1, p_consumer, 2, p_consumer, p_amount, p_now); END IF;
            INSERT INTO holds (execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint)
            VALUES (p_execution, p_consumer, p_plan, p_version, p_period_start, p_amount, p_amount, p_now, p_expires_at, 0, p_fingerprint);
            o_consumer := p_consumer; o_amount := p_amount; o_expires_at := p_expires_at;
        END $$
        """,
        """
        CREATE FUNCTION tariff_extend(p_execution text, p_required bigint, p_now bigint, OUT o_held bigint, OUT o_exhausted boolean)
        LANGUAGE plpgsql AS $$
        DECLARE h record; c record; needed bigint;
        BEGIN
            SELECT consumer INTO h FROM holds WHERE execution = p_execution;
            IF NOT FOUND THEN PERFORM tariff_refuse('unknown_reservation', format('no hold was placed for execution ''%s''', p_execution)); END IF;
            -- Lock order: the consumer, then the hold.
            SELECT available INTO c FROM consumers WHERE id = h.consumer FOR UPDATE;
            SELECT consumer, amount, state, expires_at INTO h FROM holds WHERE execution = p_execution FOR UPDATE;
            PERFORM tariff_check_live(h.state, h.expires_at, p_execution, p_now, 'a meter sample');
            o_held := h.amount; o_exhausted := false;
            IF p_required <= h.amount THEN RETURN; END IF;
            IF tariff_expire_due(h.consumer, p_now) > 0 THEN SELECT available INTO c FROM consumers WHERE id = h.consumer; END IF;
            needed := p_required - h.amount;
            -- The hold is left as it was: the runtime stops the run and settles what it used.
            IF c.available < needed THEN o_exhausted := true; RETURN; END IF;
            UPDATE consumers SET available = available - needed, reserved = reserved + needed WHERE id = h.consumer;
            UPDATE holds SET amount = p_required WHERE execution = p_execution;
            PERFORM tariff_entry('extend:' || p_execution, 1, h.consumer, 2, h.consumer, needed, p_now);
            o_held := p_required;
        END $$
        """,
        // Settle with the pricing done by the caller against (period version, held, available) as
        // it read them: applied only if they are unchanged under the locks, else o_status = 1 (stale).
        // p_min_available: the collection assumed at least this much available (billed beyond the
        // hold, collected in full); p_exact_available: it assumed exactly this much (collected in part).
        """
        CREATE FUNCTION tariff_settle(
            p_execution text, p_fingerprint text, p_consumer text, p_plan text, p_agent text, p_creator text, p_version bigint,
            p_period_key text, p_period_version bigint, p_expected_held bigint, p_min_available bigint, p_exact_available bigint,
            p_used bigint, p_usage bigint, p_executions bigint, p_succeeded bigint, p_failed_count bigint,
            p_refusal text, p_billed bigint, p_charged bigint, p_uncollected bigint,
            p_creator_share bigint, p_platform_share bigint, p_processing_share bigint, p_compute_units bigint,
            p_failed boolean, p_ended_at bigint, p_now bigint,
            OUT o_status int, OUT o_consumer text, OUT o_billed bigint, OUT o_charged bigint, OUT o_uncollected bigint,
            OUT o_creator_share bigint, OUT o_platform_share bigint, OUT o_processing_share bigint, OUT o_compute_units bigint,
            OUT o_refusal text, OUT o_released bigint) LANGUAGE plpgsql AS $$
        DECLARE h record; c record; found_version bigint; held bigint; operation text := 'settle:' || p_execution;
        BEGIN
            SELECT consumer INTO h FROM holds WHERE execution = p_execution;
            IF NOT FOUND THEN PERFORM tariff_refuse('unknown_reservation', format('no hold was placed for execution ''%s''', p_execution)); END IF;
            o_consumer := h.consumer;
            -- Lock order: the consumer, then its holds, then its period state.
            SELECT available INTO c FROM consumers WHERE id = h.consumer FOR UPDATE;
            SELECT * INTO h FROM holds WHERE execution = p_execution FOR UPDATE;
            o_status := 0;
            IF h.state = 1 THEN
                IF h.closing_fingerprint IS DISTINCT FROM p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was already settled with other parameters', p_execution));
                END IF;
                o_billed := h.billed; o_charged := h.charged; o_uncollected := h.uncollected; o_creator_share := h.creator_share;
                o_platform_share := h.platform_share; o_processing_share := h.processing_share; o_compute_units := h.compute_units;
                o_refusal := h.refusal; o_released := h.released;
                RETURN;
            END IF;
            PERFORM tariff_check_live(h.state, h.expires_at, p_execution, p_now, 'a settle');
            IF h.consumer <> p_consumer OR h.plan <> p_plan THEN
                PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was reserved for %s on plan %s', p_execution, h.consumer, h.plan));
            END IF;
            IF tariff_expire_due(h.consumer, p_now) > 0 THEN SELECT available INTO c FROM consumers WHERE id = h.consumer; END IF;
            SELECT version INTO found_version FROM period_states WHERE key = p_period_key FOR UPDATE;
            held := h.amount;
            IF coalesce(found_version, 0) <> p_period_version OR held <> p_expected_held
               OR (p_min_available IS NOT NULL AND c.available < p_min_available)
               OR (p_exact_available IS NOT NULL AND c.available <> p_exact_available) THEN
                -- Priced against a state that changed since it was read: write nothing, price again.
                -- Raised so the expiries above are rolled back with the rest (a stale answer writes nothing).
                RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'stale', HINT = 'tariff-stale';
            END IF;
            -- Give the whole hold back first, then take the charge from available.
            UPDATE consumers SET reserved = reserved - held, available = available + held WHERE id = h.consumer;
            IF held > 0 THEN PERFORM tariff_entry(operation, 2, h.consumer, 1, h.consumer, held, p_now); END IF;
            o_compute_units := p_compute_units; o_refusal := p_refusal;
            IF p_refusal IS NULL THEN
                UPDATE consumers SET available = available - p_charged WHERE id = h.consumer;
                PERFORM tariff_share_entries(h.consumer, p_creator, p_creator_share, p_platform_share, p_processing_share, operation, p_now);
                IF p_uncollected > 0 THEN PERFORM tariff_entry(operation, 7, h.consumer, 8, '', p_uncollected, p_now); END IF;
                INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                                     creator_share, platform_share, processing_share, failed, dated_at)
                VALUES (operation, 'execution', h.consumer, p_agent, p_creator, p_plan, p_version, p_execution, p_compute_units, p_billed, p_charged,
                        p_uncollected, p_creator_share, p_platform_share, p_processing_share, p_failed, p_ended_at);
                -- A per-call plan keeps no period state (a NULL key): nothing to store.
                IF p_period_key IS NOT NULL THEN
                    INSERT INTO period_states (key, used_compute_units, usage_charges, executions, succeeded, failed, version)
                    VALUES (p_period_key, p_used, p_usage, p_executions, p_succeeded, p_failed_count, 1)
                    ON CONFLICT (key) DO UPDATE SET used_compute_units = excluded.used_compute_units, usage_charges = excluded.usage_charges,
                        executions = excluded.executions, succeeded = excluded.succeeded, failed = excluded.failed, version = period_states.version + 1;
                END IF;
                o_billed := p_billed; o_charged := p_charged; o_uncollected := p_uncollected;
                o_creator_share := p_creator_share; o_platform_share := p_platform_share; o_processing_share := p_processing_share;
                -- What is left of the hold once the charge is taken (0 when the charge used all of it).
                o_released := greatest(0, held - p_charged);
            ELSE
                o_billed := 0; o_charged := 0; o_uncollected := 0; o_creator_share := 0; o_platform_share := 0; o_processing_share := 0;
                o_released := held;
            END IF;
            UPDATE holds SET state = 1, closing_fingerprint = p_fingerprint, closed_at = p_now, billed = o_billed, charged = o_charged,
                uncollected = o_uncollected, creator_share = o_creator_share, platform_share = o_platform_share,
                processing_share = o_processing_share, compute_units = o_compute_units, refusal = o_refusal, released = o_released
            WHERE execution = p_execution;
        END $$
        """,
        """
        CREATE FUNCTION tariff_release(p_execution text, p_now bigint, OUT o_consumer text, OUT o_released bigint) LANGUAGE plpgsql AS $$
        DECLARE h record; c record;
        BEGIN
            SELECT consumer INTO h FROM holds WHERE execution = p_execution;
            IF NOT FOUND THEN PERFORM tariff_refuse('unknown_reservation', format('no hold was placed for execution ''%s''', p_execution)); END IF;
            SELECT available INTO c FROM consumers WHERE id = h.consumer FOR UPDATE;
            SELECT consumer, amount, state, expires_at INTO h FROM holds WHERE execution = p_execution FOR UPDATE;
            o_consumer := h.consumer; o_released := h.amount;
            IF h.state = 2 THEN RETURN; END IF;
            PERFORM tariff_check_live(h.state, h.expires_at, p_execution, p_now, 'a release');
            PERFORM tariff_expire_due(h.consumer, p_now);
            UPDATE consumers SET reserved = reserved - h.amount, available = available + h.amount WHERE id = h.consumer;
            IF h.amount > 0 THEN PERFORM tariff_entry('release:' || p_execution, 2, h.consumer, 1, h.consumer, h.amount, p_now); END IF;
            UPDATE holds SET state = 2, closing_fingerprint = 'release', closed_at = p_now WHERE execution = p_execution;
        END $$
        """,
        // Period lines priced by the caller against (period version, available) as read; stale otherwise.
        """
        CREATE FUNCTION tariff_charge_period(
            p_key text, p_fingerprint text, p_consumer text, p_agent text, p_creator text, p_plan text, p_version bigint,
            p_period_key text, p_period_version bigint, p_exact_available bigint, p_dated_at bigint, p_now bigint,
            p_kinds text[], p_billed bigint[], p_charged bigint[], p_uncollected bigint[],
            p_creator_shares bigint[], p_platform_shares bigint[], p_processing_shares bigint[],
            OUT o_billed bigint, OUT o_charged bigint, OUT o_uncollected bigint) LANGUAGE plpgsql AS $$
        DECLARE op record; c record; found_version bigint; i int;
        BEGIN
            SELECT fingerprint, result INTO op FROM operations WHERE key = p_key;
            IF FOUND THEN
                IF op.fingerprint <> p_fingerprint OR cardinality(op.result) <> 3 THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('key ''%s'' was already used with other parameters', p_key));
                END IF;
                o_billed := op.result[1]; o_charged := op.result[2]; o_uncollected := op.result[3];
                RETURN;
            END IF;
            INSERT INTO consumers (id, available, reserved) VALUES (p_consumer, 0, 0) ON CONFLICT (id) DO NOTHING;
            SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer FOR UPDATE;
            IF c.reserved > 0 AND tariff_expire_due(p_consumer, p_now) > 0 THEN SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer; END IF;
            SELECT version INTO found_version FROM period_states WHERE key = p_period_key FOR UPDATE;
            IF coalesce(found_version, 0) <> p_period_version OR c.available <> p_exact_available THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'stale', HINT = 'tariff-stale';
            END IF;
            o_billed := 0; o_charged := 0; o_uncollected := 0;
            FOR i IN 1 .. coalesce(cardinality(p_kinds), 0) LOOP
                UPDATE consumers SET available = available - p_charged[i] WHERE id = p_consumer;
                PERFORM tariff_share_entries(p_consumer, p_creator, p_creator_shares[i], p_platform_shares[i], p_processing_shares[i], p_key, p_now);
                IF p_uncollected[i] > 0 THEN PERFORM tariff_entry(p_key, 7, p_consumer, 8, '', p_uncollected[i], p_now); END IF;
                INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                                     creator_share, platform_share, processing_share, failed, dated_at)
                VALUES (p_key, p_kinds[i], p_consumer, p_agent, p_creator, p_plan, p_version, NULL, 0, p_billed[i], p_charged[i], p_uncollected[i],
                        p_creator_shares[i], p_platform_shares[i], p_processing_shares[i], false, p_dated_at);
                o_billed := o_billed + p_billed[i]; o_charged := o_charged + p_charged[i]; o_uncollected := o_uncollected + p_uncollected[i];
            END LOOP;
            INSERT INTO operations (key, fingerprint, result, at) VALUES (p_key, p_fingerprint, ARRAY[o_billed, o_charged, o_uncollected], p_now);
        END $$
        """,
        // The sweep: consumers with holds past their expiry, each locked with SKIP LOCKED so that a
        // sweep never waits for (or blocks) a busy consumer: that consumer's own next step gives its
        // holds back, and the next sweep finds the rest. At most p_limit consumers per call.
        """
        CREATE FUNCTION tariff_expire_sweep(p_now bigint, p_limit int, OUT o_expired bigint, OUT o_consumers int) LANGUAGE plpgsql AS $$
        DECLARE c record;
        BEGIN
            o_expired := 0; o_consumers := 0;
            FOR c IN SELECT id FROM consumers
                     WHERE id IN (SELECT DISTINCT consumer FROM holds WHERE state = 0 AND expires_at <= p_now)
                     ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
                o_expired := o_expired + tariff_expire_due(c.id, p_now);
                o_consumers := o_consumers + 1;
            END LOOP;
        END $$
        """,
        """
        CREATE FUNCTION tariff_record_payout(p_key text, p_creator text, p_week text, p_pay_date text, p_amount bigint, p_now bigint)
        RETURNS SETOF payouts LANGUAGE plpgsql AS $$
        DECLARE p payouts;
        BEGIN
            SELECT * INTO p FROM payouts WHERE key = p_key;
            IF FOUND THEN
                IF p.creator <> p_creator OR p.week_start <> p_week OR p.amount <> p_amount THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('payout ''%s'' was already recorded as %s', p_key, tariff_money(p.amount)));
                END IF;
                RETURN NEXT p; RETURN;
            END IF;
            IF p_amount <= 0 THEN PERFORM tariff_refuse('invalid_amount', 'a payout must be positive'); END IF;
            PERFORM tariff_entry(p_key, 3, p_creator, 4, p_creator, p_amount, p_now);
            RETURN QUERY INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference)
                VALUES (p_key, p_creator, p_week, p_pay_date, p_amount, p_now, NULL) RETURNING *;
        END $$
        """,
        """
        CREATE FUNCTION tariff_mark_payout_sent(p_key text, p_reference text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1 FROM payouts WHERE key = p_key FOR UPDATE;
            IF NOT FOUND THEN PERFORM tariff_refuse('invalid_input', format('no payout was recorded under ''%s''', p_key)); END IF;
            UPDATE payouts SET reference = p_reference WHERE key = p_key AND reference IS NULL;
        END $$
        """,
    ]

    /// Recorded refusals (`ReserveCommand.recordsRefusal`): a reserve refused for credits, or for
    /// an unknown consumer, can be kept as the execution id's first result (a hold row in state 4
    /// holding nothing, no entry), so that a replay rerun after a crash is refused the same way
    /// whatever was purchased since. Steps on such a hold are refused for credits.
    static let v2: [String] = [
        """
        CREATE OR REPLACE FUNCTION tariff_check_live(p_state smallint, p_expires_at bigint, p_execution text, p_now bigint, p_what text)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF p_state = 1 THEN PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was settled: %s cannot follow', p_execution, p_what));
            ELSIF p_state = 2 THEN PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was released: %s cannot follow', p_execution, p_what));
            ELSIF p_state = 4 THEN PERFORM tariff_refuse('insufficient_credits', format('execution ''%s'' was refused for credits: nothing is held', p_execution));
            ELSIF p_state = 3 OR p_now >= p_expires_at THEN
                PERFORM tariff_refuse('reservation_expired', format('the hold of execution ''%s'' expired at %s', p_execution, p_expires_at));
            END IF;
        END $$
        """,
        "DROP FUNCTION tariff_reserve(text, text, text, text, bigint, bigint, bigint, bigint, bigint)",
        """
        CREATE FUNCTION tariff_reserve(p_execution text, p_fingerprint text, p_consumer text, p_plan text, p_version bigint, p_period_start bigint,
                                       p_amount bigint, p_expires_at bigint, p_now bigint, p_records_refusal boolean,
                                       OUT o_consumer text, OUT o_amount bigint, OUT o_expires_at bigint, OUT o_refused boolean)
        LANGUAGE plpgsql AS $$
        DECLARE h record; c record; refused boolean := false;
        BEGIN
            o_refused := false;
            SELECT consumer, estimate, expires_at, fingerprint, state INTO h FROM holds WHERE execution = p_execution;
            IF FOUND THEN
                IF h.fingerprint <> p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was already reserved with other parameters', p_execution));
                END IF;
                o_consumer := h.consumer; o_expires_at := h.expires_at;
                IF h.state = 4 THEN o_amount := 0; o_refused := true; ELSE o_amount := h.estimate; END IF;
                RETURN;
            END IF;
            IF p_amount < 0 THEN PERFORM tariff_refuse('invalid_amount', 'a hold cannot be negative'); END IF;
            SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer FOR UPDATE;
            IF NOT FOUND THEN
                IF NOT p_records_refusal THEN
                    PERFORM tariff_refuse('unknown_consumer', format('no credits were ever purchased for consumer ''%s''', p_consumer));
                END IF;
                refused := true;
            ELSE
                IF c.reserved > 0 AND tariff_expire_due(p_consumer, p_now) > 0 THEN
                    SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer;
                END IF;
                IF c.available < p_amount THEN
                    IF NOT p_records_refusal THEN
                        PERFORM tariff_refuse('insufficient_credits', format('%s has %s available, %s needed', p_consumer, tariff_money(c.available),
                                                                             tariff_money(p_amount)));
                    END IF;
                    refused := true;
                END IF;
            END IF;
            o_consumer := p_consumer; o_expires_at := p_expires_at;
            IF refused THEN
                -- The hold row keeps the estimate it was refused for and holds nothing (the expiries above stay written).
                INSERT INTO holds (execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint, closed_at)
                VALUES (p_execution, p_consumer, p_plan, p_version, p_period_start, p_amount, 0, p_now, p_expires_at, 4, p_fingerprint, p_now);
                o_amount := 0; o_refused := true;
                RETURN;
            END IF;
            UPDATE consumers SET available = available - p_amount, reserved = reserved + p_amount WHERE id = p_consumer;
            IF p_amount > 0 THEN PERFORM tariff_entry('reserve:' || p_execution, 1, p_consumer, 2, p_consumer, p_amount, p_now); END IF;
            INSERT INTO holds (execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint)
            VALUES (p_execution, p_consumer, p_plan, p_version, p_period_start, p_amount, p_amount, p_now, p_expires_at, 0, p_fingerprint);
            o_amount := p_amount;
        END $$
        """,
    ]

    /// Settles that need no read first: a per-call plan keeps no period state, so its price is
    /// known before anything is read, and when that price is at most the hold the collection does
    /// not depend on the hold or the balance either (all of it is charged). Such a settle passes a
    /// NULL expected hold and is applied if the hold covers the price; otherwise it is `stale` and
    /// the backend reads and prices as before. Only the staleness check changes (same signature).
    static let v3: [String] = [
        settleFunctionOfV1
            .replacingOccurrences(of: "CREATE FUNCTION tariff_settle(", with: "CREATE OR REPLACE FUNCTION tariff_settle(")
            .replacingOccurrences(of: "OR held <> p_expected_held",
                                  with: "OR (p_expected_held IS NOT NULL AND held <> p_expected_held) OR (p_expected_held IS NULL AND held < p_billed)"),
    ]

    /// Version 1's settle function, as shipped (migrations never change; v3 rewrites one line of it).
    private static var settleFunctionOfV1: String { v1.first { $0.contains("CREATE FUNCTION tariff_settle(") } ?? "" }

    /// Shorter holds of the consumer's row lock, for a hot consumer: every step that writes to a
    /// consumer holds its row from its `FOR UPDATE` to the commit, so what a step does after taking
    /// the lock bounds one consumer's rate. Reserve inserts its hold before taking the lock; settle
    /// inserts its charge line before taking it when the hold it read is active and covers what it
    /// was priced for. Those are new rows nobody reads before the commit; the checks under the lock
    /// are unchanged, and a refusal or a stale answer rolls the early rows back with the rest.
    /// Entries stay under the lock: their sequence must follow the order in which the consumer's
    /// steps took its lock, or a replay of the entries in sequence order (`verify`) could see a
    /// balance go negative between two steps. (Edited before any release: an earlier draft
    /// inserted entries early too, and the conservation property test caught exactly that.) A settle whose hold
    /// changed between its read and its lock (a concurrent settle, meter sample or expiry of the
    /// same execution) answers a serialization failure, which the backend retries. Settle's two
    /// updates of the consumer's row become one (one row version instead of two).
    static let v4: [String] = [
        """
        CREATE OR REPLACE FUNCTION tariff_reserve(p_execution text, p_fingerprint text, p_consumer text, p_plan text, p_version bigint, p_period_start bigint,
                                       p_amount bigint, p_expires_at bigint, p_now bigint, p_records_refusal boolean,
                                       OUT o_consumer text, OUT o_amount bigint, OUT o_expires_at bigint, OUT o_refused boolean)
        LANGUAGE plpgsql AS $$
        DECLARE h record; c record; refused boolean := false;
        BEGIN
            o_refused := false;
            SELECT consumer, estimate, expires_at, fingerprint, state INTO h FROM holds WHERE execution = p_execution;
            IF FOUND THEN
                IF h.fingerprint <> p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was already reserved with other parameters', p_execution));
                END IF;
                o_consumer := h.consumer; o_expires_at := h.expires_at;
                IF h.state = 4 THEN o_amount := 0; o_refused := true; ELSE o_amount := h.estimate; END IF;
                RETURN;
            END IF;
            IF p_amount < 0 THEN PERFORM tariff_refuse('invalid_amount', 'a hold cannot be negative'); END IF;
            -- Before the lock: a concurrent reserve of the same execution waits on this key, then fails and is retried (and finds the hold).
            INSERT INTO holds (execution, consumer, plan, version, period_start, estimate, amount, created_at, expires_at, state, fingerprint)
            VALUES (p_execution, p_consumer, p_plan, p_version, p_period_start, p_amount, p_amount, p_now, p_expires_at, 0, p_fingerprint);
            SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer FOR UPDATE;
            IF NOT FOUND THEN
                IF NOT p_records_refusal THEN
                    PERFORM tariff_refuse('unknown_consumer', format('no credits were ever purchased for consumer ''%s''', p_consumer));
                END IF;
                refused := true;
            ELSE
                IF c.reserved > 0 AND tariff_expire_due(p_consumer, p_now) > 0 THEN
                    SELECT available, reserved INTO c FROM consumers WHERE id = p_consumer;
                END IF;
                IF c.available < p_amount THEN
                    IF NOT p_records_refusal THEN
                        PERFORM tariff_refuse('insufficient_credits', format('%s has %s available, %s needed', p_consumer, tariff_money(c.available),
                                                                             tariff_money(p_amount)));
                    END IF;
                    refused := true;
                END IF;
            END IF;
            o_consumer := p_consumer; o_expires_at := p_expires_at;
            IF refused THEN
                -- Recorded: the hold keeps the estimate it was refused for and holds nothing (no entry is written).
                UPDATE holds SET amount = 0, state = 4, closed_at = p_now WHERE execution = p_execution;
                o_amount := 0; o_refused := true;
                RETURN;
            END IF;
            UPDATE consumers SET available = available - p_amount, reserved = reserved + p_amount WHERE id = p_consumer;
            IF p_amount > 0 THEN PERFORM tariff_entry('reserve:' || p_execution, 1, p_consumer, 2, p_consumer, p_amount, p_now); END IF;
            o_amount := p_amount;
        END $$
        """,
        """
        CREATE OR REPLACE FUNCTION tariff_settle(
            p_execution text, p_fingerprint text, p_consumer text, p_plan text, p_agent text, p_creator text, p_version bigint,
            p_period_key text, p_period_version bigint, p_expected_held bigint, p_min_available bigint, p_exact_available bigint,
            p_used bigint, p_usage bigint, p_executions bigint, p_succeeded bigint, p_failed_count bigint,
            p_refusal text, p_billed bigint, p_charged bigint, p_uncollected bigint,
            p_creator_share bigint, p_platform_share bigint, p_processing_share bigint, p_compute_units bigint,
            p_failed boolean, p_ended_at bigint, p_now bigint,
            OUT o_status int, OUT o_consumer text, OUT o_billed bigint, OUT o_charged bigint, OUT o_uncollected bigint,
            OUT o_creator_share bigint, OUT o_platform_share bigint, OUT o_processing_share bigint, OUT o_compute_units bigint,
            OUT o_refusal text, OUT o_released bigint) LANGUAGE plpgsql AS $$
        DECLARE h record; c record; found_version bigint; held bigint; operation text := 'settle:' || p_execution; early boolean := false;
        BEGIN
            SELECT consumer, state, amount INTO h FROM holds WHERE execution = p_execution;
            IF NOT FOUND THEN PERFORM tariff_refuse('unknown_reservation', format('no hold was placed for execution ''%s''', p_execution)); END IF;
            o_consumer := h.consumer;
            held := h.amount;
            -- The common case, its charge line written before the lock: an active hold, priced as it stands.
            IF h.state = 0 AND h.consumer = p_consumer AND p_refusal IS NULL
               AND (p_expected_held IS NULL AND held >= p_billed OR held = p_expected_held) THEN
                early := true;
                PERFORM tariff_charge_line(operation, h.consumer, p_execution, p_agent, p_creator, p_plan, p_version, p_compute_units, p_billed,
                                           p_charged, p_uncollected, p_creator_share, p_platform_share, p_processing_share, p_failed, p_ended_at);
            END IF;
            -- Lock order: the consumer, then its holds, then its period state.
            SELECT available INTO c FROM consumers WHERE id = h.consumer FOR UPDATE;
            SELECT * INTO h FROM holds WHERE execution = p_execution FOR UPDATE;
            IF early AND (h.state <> 0 OR h.amount <> held) THEN
                -- The hold changed between the read and the lock: undo the early rows; the backend retries.
                RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('the hold of execution ''%s'' changed while it was settled', p_execution);
            END IF;
            o_status := 0;
            IF h.state = 1 THEN
                IF h.closing_fingerprint IS DISTINCT FROM p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was already settled with other parameters', p_execution));
                END IF;
                o_billed := h.billed; o_charged := h.charged; o_uncollected := h.uncollected; o_creator_share := h.creator_share;
                o_platform_share := h.platform_share; o_processing_share := h.processing_share; o_compute_units := h.compute_units;
                o_refusal := h.refusal; o_released := h.released;
                RETURN;
            END IF;
            PERFORM tariff_check_live(h.state, h.expires_at, p_execution, p_now, 'a settle');
            IF h.consumer <> p_consumer OR h.plan <> p_plan THEN
                PERFORM tariff_refuse('idempotency_conflict', format('execution ''%s'' was reserved for %s on plan %s', p_execution, h.consumer, h.plan));
            END IF;
            IF tariff_expire_due(h.consumer, p_now) > 0 THEN SELECT available INTO c FROM consumers WHERE id = h.consumer; END IF;
            SELECT version INTO found_version FROM period_states WHERE key = p_period_key FOR UPDATE;
            held := h.amount;
            IF coalesce(found_version, 0) <> p_period_version
               OR (p_expected_held IS NOT NULL AND held <> p_expected_held) OR (p_expected_held IS NULL AND held < p_billed)
               OR (p_min_available IS NOT NULL AND c.available < p_min_available)
               OR (p_exact_available IS NOT NULL AND c.available <> p_exact_available) THEN
                -- Priced against a state that changed since it was read: write nothing, price again.
                RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'stale', HINT = 'tariff-stale';
            END IF;
            o_compute_units := p_compute_units; o_refusal := p_refusal;
            IF p_refusal IS NULL THEN
                -- The whole hold back, then the charge from available, in one update of the row.
                UPDATE consumers SET reserved = reserved - held, available = available + held - p_charged WHERE id = h.consumer;
                PERFORM tariff_settle_entries(operation, h.consumer, held, p_creator, p_uncollected, p_creator_share, p_platform_share,
                                              p_processing_share, p_now);
                IF NOT early THEN
                    PERFORM tariff_charge_line(operation, h.consumer, p_execution, p_agent, p_creator, p_plan, p_version, p_compute_units, p_billed,
                                               p_charged, p_uncollected, p_creator_share, p_platform_share, p_processing_share, p_failed, p_ended_at);
                END IF;
                -- A per-call plan keeps no period state (a NULL key): nothing to store.
                IF p_period_key IS NOT NULL THEN
                    INSERT INTO period_states (key, used_compute_units, usage_charges, executions, succeeded, failed, version)
                    VALUES (p_period_key, p_used, p_usage, p_executions, p_succeeded, p_failed_count, 1)
                    ON CONFLICT (key) DO UPDATE SET used_compute_units = excluded.used_compute_units, usage_charges = excluded.usage_charges,
                        executions = excluded.executions, succeeded = excluded.succeeded, failed = excluded.failed, version = period_states.version + 1;
                END IF;
                o_billed := p_billed; o_charged := p_charged; o_uncollected := p_uncollected;
                o_creator_share := p_creator_share; o_platform_share := p_platform_share; o_processing_share := p_processing_share;
                -- What is left of the hold once the charge is taken (0 when the charge used all of it).
                o_released := greatest(0, held - p_charged);
            ELSE
                UPDATE consumers SET reserved = reserved - held, available = available + held WHERE id = h.consumer;
                IF held > 0 THEN PERFORM tariff_entry(operation, 2, h.consumer, 1, h.consumer, held, p_now); END IF;
                o_billed := 0; o_charged := 0; o_uncollected := 0; o_creator_share := 0; o_platform_share := 0; o_processing_share := 0;
                o_released := held;
            END IF;
            UPDATE holds SET state = 1, closing_fingerprint = p_fingerprint, closed_at = p_now, billed = o_billed, charged = o_charged,
                uncollected = o_uncollected, creator_share = o_creator_share, platform_share = o_platform_share,
                processing_share = o_processing_share, compute_units = o_compute_units, refusal = o_refusal, released = o_released
            WHERE execution = p_execution;
        END $$
        """,
        // A charged settle's entries in the reference's order, one statement: the hold back, the shares, the uncollected part.
        """
        CREATE FUNCTION tariff_settle_entries(p_operation text, p_consumer text, p_held bigint, p_creator text, p_uncollected bigint,
                                              p_creator_share bigint, p_platform_share bigint, p_processing_share bigint, p_now bigint)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO entries (operation, debit_kind, debit_owner, credit_kind, credit_owner, amount, at)
            SELECT p_operation, d_kind, d_owner, c_kind, c_owner, amount, p_now FROM (VALUES
                (1, 2, p_consumer, 1, p_consumer, p_held),
                (2, CASE WHEN p_creator_share > 0 THEN 1 ELSE 3 END, CASE WHEN p_creator_share > 0 THEN p_consumer ELSE p_creator END,
                    CASE WHEN p_creator_share > 0 THEN 3 ELSE 1 END, CASE WHEN p_creator_share > 0 THEN p_creator ELSE p_consumer END, abs(p_creator_share)),
                (3, CASE WHEN p_platform_share > 0 THEN 1 ELSE 5 END, CASE WHEN p_platform_share > 0 THEN p_consumer ELSE '' END,
                    CASE WHEN p_platform_share > 0 THEN 5 ELSE 1 END, CASE WHEN p_platform_share > 0 THEN '' ELSE p_consumer END, abs(p_platform_share)),
                (4, CASE WHEN p_processing_share > 0 THEN 1 ELSE 6 END, CASE WHEN p_processing_share > 0 THEN p_consumer ELSE '' END,
                    CASE WHEN p_processing_share > 0 THEN 6 ELSE 1 END, CASE WHEN p_processing_share > 0 THEN '' ELSE p_consumer END, abs(p_processing_share)),
                (5, 7, p_consumer, 8, '', p_uncollected)
            ) AS rows (place, d_kind, d_owner, c_kind, c_owner, amount)
            WHERE amount > 0 ORDER BY place;
        END $$
        """,
        """
        CREATE FUNCTION tariff_charge_line(p_operation text, p_consumer text, p_execution text, p_agent text, p_creator text, p_plan text,
                                           p_version bigint, p_compute_units bigint, p_billed bigint, p_charged bigint, p_uncollected bigint,
                                           p_creator_share bigint, p_platform_share bigint, p_processing_share bigint, p_failed boolean,
                                           p_ended_at bigint) RETURNS void LANGUAGE sql AS $$
            INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                                 creator_share, platform_share, processing_share, failed, dated_at)
            VALUES (p_operation, 'execution', p_consumer, p_agent, p_creator, p_plan, p_version, p_execution, p_compute_units, p_billed, p_charged,
                    p_uncollected, p_creator_share, p_platform_share, p_processing_share, p_failed, p_ended_at)
        $$
        """,
    ]

    /// Reserves in batches (`StepBatcher`): several reserves on one consumer in one call and one
    /// commit, each in its own subtransaction so that a refusal (`tariff_refuse`) rolls back that
    /// reserve alone and is answered as its code and message. Any other failure fails the batch,
    /// and the backend runs each reserve alone.
    static let v5: [String] = [
        """
        CREATE FUNCTION tariff_reserve_batch(p_executions text[], p_fingerprints text[], p_consumers text[], p_plans text[], p_versions bigint[],
                                             p_period_starts bigint[], p_amounts bigint[], p_expires_at bigint[], p_now bigint[], p_records_refusal boolean[])
        RETURNS TABLE (o_index int, o_consumer text, o_amount bigint, o_expires_at bigint, o_refused boolean, o_code text, o_message text)
        LANGUAGE plpgsql AS $$
        DECLARE r record; hint text; message text;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_executions, 1), 0) LOOP
                o_index := i;
                BEGIN
                    SELECT * INTO r FROM tariff_reserve(p_executions[i], p_fingerprints[i], p_consumers[i], p_plans[i], p_versions[i], nullif(p_period_starts[i], '-9223372036854775808'::bigint),
                                                        p_amounts[i], p_expires_at[i], p_now[i], p_records_refusal[i]);
                    o_consumer := r.o_consumer; o_amount := r.o_amount; o_expires_at := r.o_expires_at; o_refused := r.o_refused;
                    o_code := NULL; o_message := NULL;
                EXCEPTION WHEN raise_exception THEN
                    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
                    IF hint IS NULL OR hint NOT LIKE 'tariff:%' THEN RAISE; END IF;
                    o_consumer := NULL; o_amount := NULL; o_expires_at := NULL; o_refused := NULL;
                    o_code := substr(hint, 8); o_message := message;
                END;
                RETURN NEXT;
            END LOOP;
        END $$
        """,
    ]

    /// Settles without a read (a per-call plan priced first, see v3) in batches (`StepBatcher`),
    /// like reserves in v5: each in its own subtransaction; a refusal answers its code, a stale
    /// answer (the hold does not cover the price) answers `stale` and that settle is read and
    /// priced alone. Arrays carry no NULLs from the client: an empty refusal is none.
    static let v6: [String] = [
        """
        CREATE FUNCTION tariff_settle_batch(p_executions text[], p_fingerprints text[], p_consumers text[], p_plans text[], p_agents text[],
                                            p_creators text[], p_versions bigint[], p_refusals text[], p_billed bigint[], p_charged bigint[],
                                            p_uncollected bigint[], p_creator_shares bigint[], p_platform_shares bigint[], p_processing_shares bigint[],
                                            p_compute_units bigint[], p_failed boolean[], p_ended_at bigint[], p_now bigint[])
        RETURNS TABLE (o_index int, o_consumer text, o_billed bigint, o_charged bigint, o_uncollected bigint, o_creator_share bigint,
                       o_platform_share bigint, o_processing_share bigint, o_compute_units bigint, o_refusal text, o_released bigint,
                       o_code text, o_message text)
        LANGUAGE plpgsql AS $$
        DECLARE r record; hint text; message text;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_executions, 1), 0) LOOP
                o_index := i;
                BEGIN
                    SELECT * INTO r FROM tariff_settle(p_executions[i], p_fingerprints[i], p_consumers[i], p_plans[i], p_agents[i], p_creators[i],
                        p_versions[i], NULL, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0, nullif(p_refusals[i], ''), p_billed[i], p_charged[i], p_uncollected[i],
                        p_creator_shares[i], p_platform_shares[i], p_processing_shares[i], p_compute_units[i], p_failed[i], p_ended_at[i], p_now[i]);
                    o_consumer := r.o_consumer; o_billed := r.o_billed; o_charged := r.o_charged; o_uncollected := r.o_uncollected;
                    o_creator_share := r.o_creator_share; o_platform_share := r.o_platform_share; o_processing_share := r.o_processing_share;
                    o_compute_units := r.o_compute_units; o_refusal := r.o_refusal; o_released := r.o_released;
                    o_code := NULL; o_message := NULL;
                EXCEPTION WHEN raise_exception THEN
                    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
                    IF hint = 'tariff-stale' THEN o_code := 'stale';
                    ELSIF hint LIKE 'tariff:%' THEN o_code := substr(hint, 8);
                    ELSE RAISE;
                    END IF;
                    o_message := message;
                    o_consumer := NULL; o_billed := NULL; o_charged := NULL; o_uncollected := NULL; o_creator_share := NULL; o_platform_share := NULL;
                    o_processing_share := NULL; o_compute_units := NULL; o_refusal := NULL; o_released := NULL;
                END;
                RETURN NEXT;
            END LOOP;
        END $$
        """,
    ]

    /// `tariff serve`: API keys (SHA-256 hashes only), the first answer of each idempotent request
    /// and consumers' settings, beside the ledger so every server on it sees the same.
    static let v7: [String] = [
        """
        CREATE TABLE api_keys (id text PRIMARY KEY, role text NOT NULL, consumer text, name text NOT NULL,
                               hash text NOT NULL UNIQUE, created_at bigint NOT NULL, revoked_at bigint)
        """,
        "CREATE TABLE api_answers (key text PRIMARY KEY, fingerprint text NOT NULL, status int NOT NULL, body text NOT NULL)",
        "CREATE TABLE consumer_settings (consumer text PRIMARY KEY, stripe_customer text, low_balance bigint)",
    ]

    /// Payouts from the ledger (settlement.md, "Money that reconciles"): the amount is computed in
    /// the step, under a lock on the creator, from the creator's shares dated before the week's end
    /// less everything paid out net of what went back; a refused transfer is `failed` with its
    /// reason and its amount goes back to earnings by a compensating entry.
    static let v8: [String] = [
        "ALTER TABLE payouts ADD COLUMN failure text, ADD COLUMN returned bigint NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= amount)",
        "CREATE INDEX payouts_by_creator ON payouts (creator)",
        "CREATE INDEX charges_by_creator ON charges (creator, dated_at)",
        // o_key is NULL when nothing is due (below the minimum, zero, or a debt).
        """
        CREATE FUNCTION tariff_payout(p_key text, p_creator text, p_week text, p_pay_date text, p_week_end bigint, p_minimum bigint, p_unit bigint,
                                      p_now bigint, OUT o_created boolean, OUT o_key text, OUT o_creator text, OUT o_week text, OUT o_pay_date text,
                                      OUT o_amount bigint, OUT o_recorded_at bigint, OUT o_reference text, OUT o_failure text, OUT o_returned bigint)
        LANGUAGE plpgsql AS $$
        DECLARE p payouts; v_owed numeric; v_amount numeric;
        BEGIN
            -- One creator's payouts are decided one at a time: concurrent runs, of one week or of
            -- several, each see what the others recorded.
            PERFORM pg_advisory_xact_lock(21575, hashtext(p_creator));
            o_created := false;
            SELECT * INTO p FROM payouts WHERE payouts.key = p_key;
            IF FOUND THEN
                IF p.creator <> p_creator OR p.week_start <> p_week THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('payout key ''%s'' was recorded for %s, week %s', p_key, p.creator, p.week_start));
                END IF;
            ELSE
                SELECT coalesce(sum(c.creator_share::numeric), 0) INTO v_owed FROM charges c WHERE c.creator = p_creator AND c.dated_at < p_week_end;
                v_owed := v_owed - coalesce((SELECT sum(q.amount::numeric - q.returned) FROM payouts q WHERE q.creator = p_creator), 0);
                IF v_owed <= 0 THEN RETURN; END IF;
                v_amount := floor(v_owed / greatest(p_unit, 1)) * greatest(p_unit, 1);
                IF v_amount <= 0 OR v_amount < p_minimum THEN RETURN; END IF;
                IF v_amount > 9223372036854775807 THEN
                    PERFORM tariff_refuse('out_of_range', format('a payout of %s is beyond the largest amount (the ledger''s 64-bit range)', v_amount));
                END IF;
                PERFORM tariff_entry(p_key, 3, p_creator, 4, p_creator, v_amount::bigint, p_now);
                INSERT INTO payouts (key, creator, week_start, pay_date, amount, recorded_at, reference, failure, returned)
                    VALUES (p_key, p_creator, p_week, p_pay_date, v_amount::bigint, p_now, NULL, NULL, 0) RETURNING * INTO p;
                o_created := true;
            END IF;
            o_key := p.key; o_creator := p.creator; o_week := p.week_start; o_pay_date := p.pay_date; o_amount := p.amount;
            o_recorded_at := p.recorded_at; o_reference := p.reference; o_failure := p.failure; o_returned := p.returned;
        END $$
        """,
        """
        CREATE FUNCTION tariff_fail_payout(p_key text, p_reason text, p_now bigint) RETURNS SETOF payouts LANGUAGE plpgsql AS $$
        DECLARE p payouts;
        BEGIN
            SELECT * INTO p FROM payouts WHERE key = p_key;
            IF NOT FOUND THEN PERFORM tariff_refuse('invalid_input', format('no payout was recorded under ''%s''', p_key)); END IF;
            PERFORM pg_advisory_xact_lock(21575, hashtext(p.creator));
            SELECT * INTO p FROM payouts WHERE key = p_key FOR UPDATE;
            IF p.failure IS NULL THEN
                IF p.reference IS NOT NULL THEN
                    PERFORM tariff_refuse('invalid_input', format('payout ''%s'' was confirmed sent (%s): it cannot fail', p_key, p.reference));
                END IF;
                IF p.amount - p.returned > 0 THEN
                    PERFORM tariff_entry('payout-failed:' || p_key, 4, p.creator, 3, p.creator, p.amount - p.returned, p_now);
                END IF;
                UPDATE payouts SET failure = p_reason, returned = amount WHERE key = p_key;
            END IF;
            RETURN QUERY SELECT * FROM payouts WHERE key = p_key;
        END $$
        """,
        // A failed payout is never marked sent afterwards.
        """
        CREATE OR REPLACE FUNCTION tariff_mark_payout_sent(p_key text, p_reference text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1 FROM payouts WHERE key = p_key FOR UPDATE;
            IF NOT FOUND THEN PERFORM tariff_refuse('invalid_input', format('no payout was recorded under ''%s''', p_key)); END IF;
            UPDATE payouts SET reference = p_reference WHERE key = p_key AND reference IS NULL AND failure IS NULL;
        END $$
        """,
        // Creators whose payouts are held (a reversed transfer) until an admin releases them.
        "CREATE TABLE creator_holds (creator text PRIMARY KEY, reason text NOT NULL, since bigint NOT NULL)",
        // A reversed transfer: the part of `p_reversed_total` not yet given back goes back to earnings; the creator is held.
        """
        CREATE FUNCTION tariff_reverse_payout(p_key text, p_reversed_total bigint, p_transfer text, p_now bigint) RETURNS SETOF payouts LANGUAGE plpgsql AS $$
        DECLARE p payouts; v_target bigint;
        BEGIN
            SELECT * INTO p FROM payouts WHERE key = p_key;
            IF NOT FOUND THEN PERFORM tariff_refuse('invalid_input', format('no payout was recorded under ''%s''', p_key)); END IF;
            IF p_reversed_total < 0 THEN PERFORM tariff_refuse('invalid_amount', 'a reversed amount cannot be negative'); END IF;
            PERFORM pg_advisory_xact_lock(21575, hashtext(p.creator));
            SELECT * INTO p FROM payouts WHERE key = p_key FOR UPDATE;
            IF p.failure IS NULL THEN
                v_target := least(p_reversed_total, p.amount);
                IF v_target > p.returned THEN
                    PERFORM tariff_entry('payout-reversed:' || p_key, 4, p.creator, 3, p.creator, v_target - p.returned, p_now);
                    UPDATE payouts SET returned = v_target WHERE key = p_key;
                END IF;
                INSERT INTO creator_holds (creator, reason, since)
                    VALUES (p.creator, format('transfer %s of %s was reversed', p_transfer, p_key), p_now) ON CONFLICT (creator) DO NOTHING;
            END IF;
            RETURN QUERY SELECT * FROM payouts WHERE key = p_key;
        END $$
        """,
    ]
}
