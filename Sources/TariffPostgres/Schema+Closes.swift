extension Schema {
    /// Migration 10: period close (settlement.md, "Periods close"), mirroring
    /// `PeriodCloses.swift` rule for rule. A close charges the end lines through
    /// `tariff_charge_period` (its idempotency, locks and staleness checks) and records the period
    /// closed in the same transaction, bumping the period state's version so that a settle priced
    /// against the open period goes stale and is priced again. Adjustments are computed by the
    /// caller under the consumer's row lock (the settle's transaction) and written by
    /// `tariff_adjust_period`.
    static let v10: [String] = [
        """
        CREATE TABLE period_closes (
            key text PRIMARY KEY, consumer text NOT NULL, plan text NOT NULL, version bigint NOT NULL,
            agent text NOT NULL, creator text NOT NULL, period_start bigint NOT NULL, period_end bigint NOT NULL, closed_at bigint,
            fees bigint NOT NULL, commitment bigint, shortfall bigint NOT NULL CHECK (shortfall >= 0),
            sla_credit bigint NOT NULL CHECK (sla_credit <= 0),
            CHECK (period_start <= period_end)
        )
        """,
        "CREATE INDEX period_closes_open ON period_closes (period_end) WHERE closed_at IS NULL",
        """
        CREATE FUNCTION tariff_open_period(p_key text, p_consumer text, p_plan text, p_version bigint, p_agent text, p_creator text,
                                           p_start bigint, p_end bigint, p_fees bigint, p_commitment bigint) RETURNS void LANGUAGE sql AS $$
            INSERT INTO period_closes (key, consumer, plan, version, agent, creator, period_start, period_end, closed_at, fees, commitment, shortfall, sla_credit)
            VALUES (p_key, p_consumer, p_plan, p_version, p_agent, p_creator, p_start, p_end, NULL, p_fees, p_commitment, 0, 0)
            ON CONFLICT (key) DO NOTHING
        $$
        """,
        """
        CREATE FUNCTION tariff_close_period(
            p_key text, p_fingerprint text, p_consumer text, p_agent text, p_creator text, p_plan text, p_version bigint,
            p_period_key text, p_period_version bigint, p_exact_available bigint, p_dated_at bigint, p_now bigint,
            p_kinds text[], p_billed bigint[], p_charged bigint[], p_uncollected bigint[],
            p_creator_shares bigint[], p_platform_shares bigint[], p_processing_shares bigint[],
            p_start bigint, p_fees bigint, p_commitment bigint,
            OUT o_billed bigint, OUT o_charged bigint, OUT o_uncollected bigint) LANGUAGE plpgsql AS $$
        DECLARE applied boolean; pc record; v_shortfall bigint := 0; v_credit bigint := 0; i int;
        BEGIN
            PERFORM 1 FROM operations WHERE key = p_key;
            applied := FOUND;
            IF NOT applied THEN
                SELECT closed_at INTO pc FROM period_closes WHERE key = p_period_key;
                IF FOUND AND pc.closed_at IS NOT NULL THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('the period %s was already closed', replace(p_period_key, chr(31), '/')));
                END IF;
            END IF;
            SELECT * INTO o_billed, o_charged, o_uncollected FROM tariff_charge_period(p_key, p_fingerprint, p_consumer, p_agent, p_creator, p_plan,
                p_version, p_period_key, p_period_version, p_exact_available, p_dated_at, p_now, p_kinds, p_billed, p_charged, p_uncollected,
                p_creator_shares, p_platform_shares, p_processing_shares);
            -- Closed already, or a ledger upgraded from before closes (its end lines charged, no record): nothing more.
            IF applied THEN RETURN; END IF;
            SELECT closed_at INTO pc FROM period_closes WHERE key = p_period_key FOR UPDATE;
            IF FOUND AND pc.closed_at IS NOT NULL THEN RETURN; END IF;
            FOR i IN 1 .. coalesce(cardinality(p_kinds), 0) LOOP
                IF p_kinds[i] = 'shortfall' THEN v_shortfall := v_shortfall + p_billed[i];
                ELSIF p_kinds[i] = 'sla_credit' THEN v_credit := v_credit + p_billed[i]; END IF;
            END LOOP;
            INSERT INTO period_closes (key, consumer, plan, version, agent, creator, period_start, period_end, closed_at, fees, commitment, shortfall, sla_credit)
            VALUES (p_period_key, p_consumer, p_plan, p_version, p_agent, p_creator, p_start, p_dated_at, p_now, p_fees, p_commitment, v_shortfall, v_credit)
            ON CONFLICT (key) DO UPDATE SET period_end = excluded.period_end, closed_at = excluded.closed_at, shortfall = excluded.shortfall,
                sla_credit = excluded.sla_credit;
            INSERT INTO period_states (key, used_compute_units, usage_charges, executions, succeeded, failed, version)
            VALUES (p_period_key, 0, 0, 0, 0, 0, 1)
            ON CONFLICT (key) DO UPDATE SET version = period_states.version + 1;
        END $$
        """,
        // Writes a late settle's adjustment lines, computed by the caller under the consumer's row
        // lock in the settle's transaction (LedgerSteps.applyAdjustments).
        """
        CREATE FUNCTION tariff_adjust_period(
            p_period_key text, p_execution text, p_consumer text, p_now bigint,
            p_kinds text[], p_billed bigint[], p_charged bigint[], p_uncollected bigint[],
            p_creator_shares bigint[], p_platform_shares bigint[], p_processing_shares bigint[],
            p_shortfall bigint, p_sla_credit bigint) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE pc period_closes; operation text := 'adjust:' || p_execution; i int;
        BEGIN
            SELECT * INTO pc FROM period_closes WHERE key = p_period_key FOR UPDATE;
            IF NOT FOUND OR pc.closed_at IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'stale', HINT = 'tariff-stale';
            END IF;
            FOR i IN 1 .. coalesce(cardinality(p_kinds), 0) LOOP
                UPDATE consumers SET available = available - p_charged[i] WHERE id = p_consumer;
                PERFORM tariff_share_entries(p_consumer, pc.creator, p_creator_shares[i], p_platform_shares[i], p_processing_shares[i], operation, p_now);
                IF p_uncollected[i] > 0 THEN PERFORM tariff_entry(operation, 7, p_consumer, 8, '', p_uncollected[i], p_now);
                ELSIF p_uncollected[i] < 0 THEN PERFORM tariff_entry(operation, 8, '', 7, p_consumer, -p_uncollected[i], p_now); END IF;
                INSERT INTO charges (operation, kind, consumer, agent, creator, plan, version, execution, compute_units, billed, charged, uncollected,
                                     creator_share, platform_share, processing_share, failed, dated_at)
                VALUES (operation, p_kinds[i], pc.consumer, pc.agent, pc.creator, pc.plan, pc.version, p_execution, 0, p_billed[i], p_charged[i],
                        p_uncollected[i], p_creator_shares[i], p_platform_shares[i], p_processing_shares[i], false, pc.period_end);
            END LOOP;
            UPDATE period_closes SET shortfall = p_shortfall, sla_credit = p_sla_credit WHERE key = p_period_key;
        END $$
        """,
        // The sweep in byte order of the consumers' ids (COLLATE "C", as every other listing), the
        // order memory and SQLite sweep in (LedgerSteps.expireHolds), whatever the database's collation.
        """
        CREATE OR REPLACE FUNCTION tariff_expire_sweep(p_now bigint, p_limit int, OUT o_expired bigint, OUT o_consumers int) LANGUAGE plpgsql AS $$
        DECLARE c record;
        BEGIN
            o_expired := 0; o_consumers := 0;
            FOR c IN SELECT id FROM consumers
                     WHERE id IN (SELECT DISTINCT consumer FROM holds WHERE state = 0 AND expires_at <= p_now)
                     ORDER BY id COLLATE "C" LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
                o_expired := o_expired + tariff_expire_due(c.id, p_now);
                o_consumers := o_consumers + 1;
            END LOOP;
        END $$
        """,
    ]
}
