extension Schema {
    /// Migration 14: auto top-up (service.md, "Auto top-up"), the rows of `AutoTopUpSetting`;
    /// every change of state is a compare-and-set on `version` (`PostgresBackend+AutoTopUp.swift`).
    static let v14: [String] = [
        """
        CREATE TABLE auto_top_up (
            consumer text PRIMARY KEY, below bigint NOT NULL CHECK (below >= 0), amount bigint NOT NULL CHECK (amount > 0),
            state text NOT NULL, crossings bigint NOT NULL CHECK (crossings >= 0), claimed_at bigint, failure text,
            version bigint NOT NULL, updated_at bigint NOT NULL
        )
        """,
    ]
}
