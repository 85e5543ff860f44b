extension Schema {
    /// Migration 11: live subscriptions (service.md, "Live subscriptions and the period clock"),
    /// the rows of `SubscriptionRecord`. The decisions are `SubscriptionRules`' (in Swift), applied
    /// in one transaction under the consumer's advisory lock (`PostgresBackend+Subscriptions.swift`).
    static let v11: [String] = [
        """
        CREATE TABLE subscriptions (
            id text PRIMARY KEY, consumer text NOT NULL, plan text NOT NULL, agent text NOT NULL, unit text NOT NULL,
            start bigint NOT NULL, ends_at bigint, ending text, charged_periods bigint NOT NULL CHECK (charged_periods >= 0),
            next_period_start bigint, created_at bigint NOT NULL,
            CHECK (ends_at IS NULL OR ends_at >= start)
        )
        """,
        "CREATE INDEX subscriptions_by_consumer ON subscriptions (consumer, start)",
        // The clock's sweep reads only the subscriptions with a fee to charge.
        "CREATE INDEX subscriptions_due ON subscriptions (next_period_start) WHERE next_period_start IS NOT NULL",
    ]
}
