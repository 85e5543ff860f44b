extension Schema {
    /// Migration 15: two closes of one period under one key, at once (two servers' clocks). The
    /// close of migration 10 looked for its key among the operations, then at the period: when the
    /// other close committed between those two statements, it saw the period closed but not its
    /// own key, and refused with `idempotency_conflict` where it should have answered the first
    /// close's result (the conformance test of eight concurrent clocks failed about one run in
    /// ten). The period found closed, the key is looked for again: the other close wrote both in
    /// one transaction, so the second look sees it. The rest of the function is migration 10's.
    static let v15: [String] = [
        """
        CREATE OR REPLACE FUNCTION tariff_close_period(
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
                    -- Closed between the two statements (READ COMMITTED: each sees what was
                    -- committed when it began) by a close of this same key: a replay, not a conflict.
                    PERFORM 1 FROM operations WHERE key = p_key;
                    applied := FOUND;
                    IF NOT applied THEN
                        PERFORM tariff_refuse('idempotency_conflict', format('the period %s was already closed', replace(p_period_key, chr(31), '/')));
                    END IF;
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
        """
    ]
}
