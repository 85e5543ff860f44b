extension Schema {
    /// Migration 13: the portal (service.md, "The portal"): the secret that signs its links (one
    /// row, made by the first server that needs it, `ON CONFLICT DO NOTHING` so two servers
    /// starting together agree) and the links, so every server on the ledger accepts a link any of
    /// them made and refuses one any of them revoked; a consumer's page lists its purchases newest first.
    static let v13: [String] = [
        "CREATE TABLE portal_secret (id smallint PRIMARY KEY CHECK (id = 1), secret text NOT NULL)",
        """
        CREATE TABLE portal_links (
            id text PRIMARY KEY, kind text NOT NULL CHECK (kind IN ('consumer', 'creator')), subject text NOT NULL,
            created_at bigint NOT NULL, expires_at bigint NOT NULL, revoked_at bigint,
            CHECK (expires_at > created_at)
        )
        """,
        "CREATE INDEX purchases_by_consumer ON purchases (consumer, created_at)",
    ]
}
