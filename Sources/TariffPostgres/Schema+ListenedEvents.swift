extension Schema {
    /// Migration 16: a ledger step writes an event only when an endpoint listens to its type, as
    /// on SQLite (`v10`, where a trigger exists only while an endpoint listens, because each costs
    /// the embedded writer on every row) and in memory: an event nobody listens to could never be
    /// delivered (an endpoint receives only events written after it exists), and the three ledgers
    /// keep one outbox contract. The triggers call `tariff_emit`, which now looks first; `emit`
    /// (an event whose cause wrote nothing: a declined top-up) writes through `tariff_emit_always`.
    static let v16: [String] = [
        // Migration 12's writer, kept under a new name (no copy of its body).
        "ALTER FUNCTION tariff_emit(text, text, json) RENAME TO tariff_emit_always",
        """
        CREATE FUNCTION tariff_emit(p_type text, p_subject text, p_data json) RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE removed_at IS NULL AND position(',' || p_type || ',' IN events) > 0) THEN
                RETURN NULL;
            END IF;
            RETURN tariff_emit_always(p_type, p_subject, p_data);
        END $$
        """,
    ]
}
