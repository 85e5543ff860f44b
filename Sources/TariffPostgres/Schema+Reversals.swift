extension Schema {
    /// Migration 9: purchases paid through a rail (written `pending` before the card is charged),
    /// refunds and lost disputes (settlement.md, "Money that reconciles"). Each step is one
    /// function mirroring `LedgerSteps+Reversals.swift` rule for rule; every step that moves a
    /// consumer's credits locks the consumer's row first (the schema's lock order), which also
    /// serialises every refund and dispute of one purchase. Account kinds: refunded 20, disputed 21,
    /// dispute_losses 22. Purchase states: pending 0, succeeded 1, failed 2; reversal states the same.
    static let v9: [String] = [
        """
        CREATE TABLE purchases (
            key text PRIMARY KEY, consumer text NOT NULL, amount bigint NOT NULL CHECK (amount > 0),
            payer text NOT NULL, reference text, state smallint NOT NULL, created_at bigint NOT NULL
        )
        """,
        "CREATE INDEX purchases_by_reference ON purchases (reference) WHERE reference IS NOT NULL",
        "CREATE INDEX purchases_by_date ON purchases (created_at)",
        """
        CREATE TABLE reversals (
            key text PRIMARY KEY, kind text NOT NULL, purchase text NOT NULL, consumer text NOT NULL,
            amount bigint NOT NULL CHECK (amount > 0), from_available bigint NOT NULL CHECK (from_available >= 0),
            loss bigint NOT NULL CHECK (loss >= 0), reference text, state smallint NOT NULL, fingerprint text NOT NULL, at bigint NOT NULL,
            CHECK (from_available + loss = amount)
        )
        """,
        "CREATE INDEX reversals_by_purchase ON reversals (purchase)",
        """
        CREATE FUNCTION tariff_begin_purchase(p_key text, p_fingerprint text, p_consumer text, p_amount bigint, p_payer text, p_now bigint,
                                              OUT o_record purchases, OUT o_is_new boolean) LANGUAGE plpgsql AS $$
        DECLARE op record;
        BEGIN
            SELECT * INTO o_record FROM purchases WHERE key = p_key;
            IF FOUND THEN
                IF o_record.consumer <> p_consumer OR o_record.amount <> p_amount OR o_record.payer <> p_payer THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('purchase key ''%s'' was already used for %s by %s', p_key, tariff_money(o_record.amount), o_record.consumer));
                END IF;
                o_is_new := false; RETURN;
            END IF;
            SELECT fingerprint, at INTO op FROM operations WHERE key = 'purchase:' || p_key;
            IF FOUND THEN
                IF op.fingerprint <> p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('purchase key ''%s'' was already used with other parameters (%s)', p_key, op.fingerprint));
                END IF;
                o_record := ROW(p_key, p_consumer, p_amount, p_payer, NULL::text, 1::smallint, op.at)::purchases;
                o_is_new := false; RETURN;
            END IF;
            IF p_amount <= 0 THEN PERFORM tariff_refuse('invalid_amount', 'a purchase must be positive'); END IF;
            -- A concurrent insert of the same key fails here (unique_violation): the retry finds it.
            INSERT INTO purchases (key, consumer, amount, payer, reference, state, created_at)
            VALUES (p_key, p_consumer, p_amount, p_payer, NULL, 0, p_now) RETURNING * INTO o_record;
            o_is_new := true;
        END $$
        """,
        """
        CREATE FUNCTION tariff_update_purchase(p_key text, p_reference text, p_state smallint) RETURNS SETOF purchases LANGUAGE plpgsql AS $$
        DECLARE p purchases;
        BEGIN
            SELECT * INTO p FROM purchases WHERE key = p_key FOR UPDATE;
            IF NOT FOUND THEN
                PERFORM tariff_refuse('unknown_purchase', format('no purchase through a rail was recorded under ''%s''', p_key));
            END IF;
            IF p_reference IS NOT NULL THEN
                IF p.reference IS NOT NULL AND p.reference <> p_reference THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('purchase ''%s'' is paid by %s, not %s', p_key, p.reference, p_reference));
                END IF;
                p.reference := p_reference;
            END IF;
            IF p_state = 1 AND p.state IN (0, 2) THEN
                IF NOT EXISTS (SELECT 1 FROM operations WHERE key = 'purchase:' || p_key) THEN
                    PERFORM tariff_refuse('invalid_input', format('purchase ''%s'' cannot be marked paid before its credits are added', p_key));
                END IF;
                p.state := 1;
            ELSIF p_state = 2 AND p.state = 0 THEN
                p.state := 2;
            END IF;
            RETURN QUERY UPDATE purchases SET reference = p.reference, state = p.state WHERE key = p_key RETURNING *;
        END $$
        """,
        // LedgerSteps.reversible and remaining: a paid purchase, and what is left of it.
        """
        CREATE FUNCTION tariff_reversible(p_purchase text, p_what text, OUT o_purchase purchases, OUT o_left bigint) LANGUAGE plpgsql AS $$
        BEGIN
            SELECT * INTO o_purchase FROM purchases WHERE key = p_purchase;
            IF NOT FOUND THEN
                PERFORM tariff_refuse('unknown_purchase', format('no purchase paid through a rail was recorded under ''%s''', p_purchase));
            END IF;
            IF o_purchase.state <> 1 OR o_purchase.reference IS NULL THEN
                PERFORM tariff_refuse('invalid_input', format('purchase ''%s'' is %s: %s needs a paid purchase', p_purchase,
                                      CASE o_purchase.state WHEN 0 THEN 'pending' WHEN 2 THEN 'failed' ELSE 'succeeded' END, p_what));
            END IF;
            o_left := o_purchase.amount - (SELECT coalesce(sum(amount), 0) FROM reversals WHERE purchase = p_purchase AND state <> 2);
            IF o_left < 0 THEN PERFORM tariff_refuse('out_of_range', format('purchase ''%s'' has more taken back than its amount', p_purchase)); END IF;
        END $$
        """,
        """
        CREATE FUNCTION tariff_refund(p_key text, p_fingerprint text, p_purchase text, p_amount bigint, p_now bigint)
        RETURNS SETOF reversals LANGUAGE plpgsql AS $$
        DECLARE r reversals; found_purchase record; c record;
        BEGIN
            SELECT * INTO r FROM reversals WHERE key = p_key;
            IF FOUND THEN
                IF r.fingerprint <> p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('refund key ''%s'' was already used for %s of purchase ''%s''', substr(p_key, 8), tariff_money(r.amount), r.purchase));
                END IF;
                RETURN NEXT r; RETURN;
            END IF;
            IF p_amount <= 0 THEN PERFORM tariff_refuse('invalid_amount', 'a refund must be positive'); END IF;
            -- The consumer's row first (lock order); the purchase and what is left of it are read under it.
            SELECT p.consumer INTO c FROM purchases p WHERE p.key = p_purchase;
            IF FOUND THEN PERFORM 1 FROM consumers WHERE id = c.consumer FOR UPDATE; END IF;
            SELECT * INTO found_purchase FROM tariff_reversible(p_purchase, 'a refund');
            IF p_amount > found_purchase.o_left THEN
                PERFORM tariff_refuse('invalid_amount', format('purchase ''%s'' of %s has %s left to refund, not %s', p_purchase,
                                      tariff_money((found_purchase.o_purchase).amount), tariff_money(found_purchase.o_left), tariff_money(p_amount)));
            END IF;
            SELECT available, reserved INTO c FROM consumers WHERE id = (found_purchase.o_purchase).consumer;
            IF NOT FOUND THEN
                PERFORM tariff_refuse('unknown_consumer', format('the consumer of purchase ''%s'' has no accounts', p_purchase));
            END IF;
            IF c.reserved > 0 THEN
                PERFORM tariff_expire_due((found_purchase.o_purchase).consumer, p_now);
                SELECT available, reserved INTO c FROM consumers WHERE id = (found_purchase.o_purchase).consumer;
            END IF;
            IF c.available < p_amount THEN
                PERFORM tariff_refuse('insufficient_credits', format('%s has %s available, %s asked back: spent credits are not refundable',
                                      (found_purchase.o_purchase).consumer, tariff_money(c.available), tariff_money(p_amount)));
            END IF;
            UPDATE consumers SET available = available - p_amount WHERE id = (found_purchase.o_purchase).consumer;
            PERFORM tariff_entry(p_key, 1, (found_purchase.o_purchase).consumer, 20, (found_purchase.o_purchase).consumer, p_amount, p_now);
            RETURN QUERY INSERT INTO reversals (key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at)
                VALUES (p_key, 'refund', p_purchase, (found_purchase.o_purchase).consumer, p_amount, p_amount, 0, NULL, 0, p_fingerprint, p_now) RETURNING *;
        END $$
        """,
        """
        CREATE FUNCTION tariff_complete_refund(p_key text, p_reference text, p_failed boolean, p_now bigint)
        RETURNS SETOF reversals LANGUAGE plpgsql AS $$
        DECLARE r reversals;
        BEGIN
            SELECT * INTO r FROM reversals WHERE key = p_key;
            IF NOT FOUND OR r.kind <> 'refund' THEN
                PERFORM tariff_refuse('invalid_input', format('no refund was recorded under ''%s''', p_key));
            END IF;
            PERFORM 1 FROM consumers WHERE id = r.consumer FOR UPDATE;
            SELECT * INTO r FROM reversals WHERE key = p_key FOR UPDATE;
            IF r.state <> 0 THEN RETURN NEXT r; RETURN; END IF;
            IF p_failed THEN
                PERFORM tariff_expire_due(r.consumer, p_now);
                UPDATE consumers SET available = available + r.amount WHERE id = r.consumer;
                PERFORM tariff_entry(p_key, 20, r.consumer, 1, r.consumer, r.amount, p_now);
                RETURN QUERY UPDATE reversals SET state = 2 WHERE key = p_key RETURNING *;
            ELSE
                RETURN QUERY UPDATE reversals SET state = 1, reference = p_reference WHERE key = p_key RETURNING *;
            END IF;
        END $$
        """,
        """
        CREATE FUNCTION tariff_dispute_lost(p_key text, p_fingerprint text, p_purchase text, p_amount bigint, p_dispute text, p_now bigint)
        RETURNS SETOF reversals LANGUAGE plpgsql AS $$
        DECLARE r reversals; found_purchase record; c record; who text; from_available bigint; loss bigint;
        BEGIN
            SELECT * INTO r FROM reversals WHERE key = p_key;
            IF FOUND THEN
                IF r.fingerprint <> p_fingerprint THEN
                    PERFORM tariff_refuse('idempotency_conflict', format('dispute ''%s'' was already recorded for %s of purchase ''%s''', p_dispute, tariff_money(r.amount), r.purchase));
                END IF;
                RETURN NEXT r; RETURN;
            END IF;
            IF p_amount <= 0 THEN PERFORM tariff_refuse('invalid_amount', 'a disputed amount must be positive'); END IF;
            SELECT p.consumer INTO who FROM purchases p WHERE p.key = p_purchase;
            IF who IS NOT NULL THEN PERFORM 1 FROM consumers WHERE id = who FOR UPDATE; END IF;
            SELECT * INTO found_purchase FROM tariff_reversible(p_purchase, 'a dispute');
            IF p_amount > found_purchase.o_left THEN
                PERFORM tariff_refuse('invalid_amount', format('purchase ''%s'' of %s has %s left, less than the dispute''s %s', p_purchase,
                                      tariff_money((found_purchase.o_purchase).amount), tariff_money(found_purchase.o_left), tariff_money(p_amount)));
            END IF;
            SELECT available, reserved INTO c FROM consumers WHERE id = who;
            IF NOT FOUND THEN
                PERFORM tariff_refuse('unknown_consumer', format('the consumer of purchase ''%s'' has no accounts', p_purchase));
            END IF;
            IF c.reserved > 0 THEN
                PERFORM tariff_expire_due(who, p_now);
                SELECT available, reserved INTO c FROM consumers WHERE id = who;
            END IF;
            from_available := least(c.available, p_amount);
            loss := p_amount - from_available;
            IF from_available > 0 THEN
                UPDATE consumers SET available = available - from_available WHERE id = who;
                PERFORM tariff_entry(p_key, 1, who, 21, who, from_available, p_now);
            END IF;
            IF loss > 0 THEN PERFORM tariff_entry(p_key, 22, '', 21, who, loss, p_now); END IF;
            RETURN QUERY INSERT INTO reversals (key, kind, purchase, consumer, amount, from_available, loss, reference, state, fingerprint, at)
                VALUES (p_key, 'dispute', p_purchase, who, p_amount, from_available, loss, p_dispute, 1, p_fingerprint, p_now) RETURNING *;
        END $$
        """,
    ]
}
