import GRDB

/// The ledger's schema, versioned from the first release: each release appends migrations and
/// never edits a shipped one (GRDB's `DatabaseMigrator` records which ran in `grdb_migrations`).
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: ledger") { db in
            try db.execute(sql: """
                CREATE TABLE ledger_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
                -- Running balances of each consumer, checked against the entries by verify. The CHECKs
                -- make an overdraft impossible even for a buggy writer.
                CREATE TABLE consumers (
                    id TEXT PRIMARY KEY NOT NULL,
                    available INTEGER NOT NULL CHECK (available >= 0),
                    reserved INTEGER NOT NULL CHECK (reserved >= 0)
                ) WITHOUT ROWID;
                CREATE TABLE holds (
                    execution TEXT PRIMARY KEY NOT NULL,
                    consumer TEXT NOT NULL, plan TEXT NOT NULL, version INTEGER NOT NULL, period_start INTEGER,
                    estimate INTEGER NOT NULL, amount INTEGER NOT NULL CHECK (amount >= 0),
                    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state INTEGER NOT NULL,
                    fingerprint TEXT NOT NULL, closing_fingerprint TEXT, closed_at INTEGER,
                    billed INTEGER, charged INTEGER, uncollected INTEGER,
                    creator_share INTEGER, platform_share INTEGER, processing_share INTEGER,
                    compute_units INTEGER, refusal TEXT, released INTEGER
                ) WITHOUT ROWID;
                -- Expiry reads only active holds (a partial index: only live holds are in it, so the
                -- sweep over every consumer reads it whole and stays small).
                CREATE INDEX holds_active_by_consumer ON holds (consumer, expires_at) WHERE state = 0;
                CREATE TABLE entries (
                    sequence INTEGER PRIMARY KEY,
                    operation TEXT NOT NULL,
                    debit_kind INTEGER NOT NULL, debit_owner TEXT NOT NULL,
                    credit_kind INTEGER NOT NULL, credit_owner TEXT NOT NULL,
                    amount INTEGER NOT NULL CHECK (amount > 0),
                    at INTEGER NOT NULL
                );
                CREATE TABLE charges (
                    sequence INTEGER PRIMARY KEY,
                    operation TEXT NOT NULL, kind TEXT NOT NULL,
                    consumer TEXT NOT NULL, agent TEXT NOT NULL, creator TEXT NOT NULL, plan TEXT NOT NULL, version INTEGER NOT NULL,
                    execution TEXT, compute_units INTEGER NOT NULL,
                    billed INTEGER NOT NULL, charged INTEGER NOT NULL, uncollected INTEGER NOT NULL,
                    creator_share INTEGER NOT NULL, platform_share INTEGER NOT NULL, processing_share INTEGER NOT NULL,
                    failed INTEGER NOT NULL, dated_at INTEGER NOT NULL,
                    CHECK (creator_share + platform_share + processing_share = charged)
                );
                -- Usage windows and payout weeks read charge lines by date.
                CREATE INDEX charges_by_date ON charges (dated_at);
                CREATE TABLE period_states (
                    key TEXT PRIMARY KEY NOT NULL,
                    used_compute_units INTEGER NOT NULL, usage_charges INTEGER NOT NULL,
                    executions INTEGER NOT NULL, succeeded INTEGER NOT NULL, failed INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE operations (
                    key TEXT PRIMARY KEY NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL, at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE payouts (
                    key TEXT PRIMARY KEY NOT NULL, creator TEXT NOT NULL, week_start TEXT NOT NULL, pay_date TEXT NOT NULL,
                    amount INTEGER NOT NULL CHECK (amount > 0), recorded_at INTEGER NOT NULL, reference TEXT
                ) WITHOUT ROWID;
                CREATE INDEX payouts_by_week ON payouts (week_start);
                -- Entries and charge lines are append-only: the database refuses to change them.
                CREATE TRIGGER entries_are_append_only_update BEFORE UPDATE ON entries BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
                CREATE TRIGGER entries_are_append_only_delete BEFORE DELETE ON entries BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
                CREATE TRIGGER charges_are_append_only_update BEFORE UPDATE ON charges BEGIN SELECT RAISE(ABORT, 'charge lines are append-only'); END;
                CREATE TRIGGER charges_are_append_only_delete BEFORE DELETE ON charges BEGIN SELECT RAISE(ABORT, 'charge lines are append-only'); END;
                """)
        }
        // `tariff serve`: API keys (SHA-256 hashes only), the first answer of each idempotent
        // request, and consumers' settings, beside the ledger so every reader of it sees them.
        migrator.registerMigration("v2: service") { db in
            try db.execute(sql: """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY NOT NULL, role TEXT NOT NULL, consumer TEXT, name TEXT NOT NULL,
                    hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER
                ) WITHOUT ROWID;
                CREATE TABLE api_answers (
                    key TEXT PRIMARY KEY NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE consumer_settings (
                    consumer TEXT PRIMARY KEY NOT NULL, stripe_customer TEXT, low_balance INTEGER
                ) WITHOUT ROWID;
                """)
        }
        // Payouts from the ledger (settlement.md, "Money that reconciles"): a payout the rail
        // refused is `failed` with its reason and what went back to earnings (`returned`); the
        // payout step sums a creator's shares by date and its payouts by creator.
        migrator.registerMigration("v3: payouts") { db in
            try db.execute(sql: """
                ALTER TABLE payouts ADD COLUMN failure TEXT;
                ALTER TABLE payouts ADD COLUMN returned INTEGER NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= amount);
                CREATE INDEX payouts_by_creator ON payouts (creator);
                CREATE INDEX charges_by_creator ON charges (creator, dated_at);
                -- Creators whose payouts are held (a reversed transfer) until an admin releases them.
                CREATE TABLE creator_holds (creator TEXT PRIMARY KEY NOT NULL, reason TEXT NOT NULL, since INTEGER NOT NULL) WITHOUT ROWID;
                """)
        }
        // Purchases paid through a rail, written `pending` before the card is charged, and the
        // refunds and lost disputes that take money back from them (settlement.md, "Money that reconciles").
        migrator.registerMigration("v4: reversals") { db in
            try db.execute(sql: """
                CREATE TABLE purchases (
                    key TEXT PRIMARY KEY NOT NULL, consumer TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount > 0),
                    payer TEXT NOT NULL, reference TEXT, state INTEGER NOT NULL, created_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX purchases_by_reference ON purchases (reference) WHERE reference IS NOT NULL;
                CREATE INDEX purchases_by_date ON purchases (created_at);
                CREATE TABLE reversals (
                    key TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, purchase TEXT NOT NULL, consumer TEXT NOT NULL,
                    amount INTEGER NOT NULL CHECK (amount > 0), from_available INTEGER NOT NULL CHECK (from_available >= 0),
                    loss INTEGER NOT NULL CHECK (loss >= 0), reference TEXT, state INTEGER NOT NULL, fingerprint TEXT NOT NULL, at INTEGER NOT NULL,
                    CHECK (from_available + loss = amount)
                ) WITHOUT ROWID;
                CREATE INDEX reversals_by_purchase ON reversals (purchase);
                """)
        }
        // Period close (settlement.md, "Periods close"): each subscription or enterprise period the
        // ledger was told of (open, with its scheduled end) or closed (its end lines charged, then
        // followed by its adjustments); a late settle sums the consumer's uncollected lines.
        migrator.registerMigration("v5: period closes") { db in
            try db.execute(sql: """
                CREATE TABLE period_closes (
                    key TEXT PRIMARY KEY NOT NULL, consumer TEXT NOT NULL, plan TEXT NOT NULL, version INTEGER NOT NULL,
                    agent TEXT NOT NULL, creator TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER NOT NULL, closed_at INTEGER,
                    fees INTEGER NOT NULL, commitment INTEGER, shortfall INTEGER NOT NULL CHECK (shortfall >= 0),
                    sla_credit INTEGER NOT NULL CHECK (sla_credit <= 0),
                    CHECK (period_start <= period_end)
                ) WITHOUT ROWID;
                CREATE INDEX period_closes_open ON period_closes (period_end) WHERE closed_at IS NULL;
                -- Partial: only the lines still owed (rare), so writing an ordinary charge line
                -- does not touch it (a full index on every charge cost `bench ledger-sqlite` a third).
                CREATE INDEX charges_owed_by_consumer ON charges (consumer) WHERE uncollected != 0;
                """)
        }
        // Live subscriptions (service.md, "Live subscriptions and the period clock"): each
        // consumer's subscriptions, how far the period clock charged them, and when the next fee is due.
        migrator.registerMigration("v6: subscriptions") { db in
            try db.execute(sql: """
                CREATE TABLE subscriptions (
                    id TEXT PRIMARY KEY NOT NULL, consumer TEXT NOT NULL, plan TEXT NOT NULL, agent TEXT NOT NULL, unit TEXT NOT NULL,
                    start INTEGER NOT NULL, ends_at INTEGER, ending TEXT, charged_periods INTEGER NOT NULL CHECK (charged_periods >= 0),
                    next_period_start INTEGER, created_at INTEGER NOT NULL,
                    CHECK (ends_at IS NULL OR ends_at >= start)
                ) WITHOUT ROWID;
                CREATE INDEX subscriptions_by_consumer ON subscriptions (consumer, start);
                -- The clock's sweep reads only the subscriptions with a fee to charge.
                CREATE INDEX subscriptions_due ON subscriptions (next_period_start) WHERE next_period_start IS NOT NULL;
                """)
        }
        // Events out (service.md, "Events out (webhooks)"): the outbox, written by triggers in the
        // transaction of the change that causes each event (so a rolled-back step writes none), the
        // endpoints and one delivery row per (endpoint, event). The rules are `EventRules`'.
        migrator.registerMigration("v7: webhooks") { db in
            try db.execute(sql: Self.webhooks)
        }
        // The portal (service.md, "The portal"): the secret that signs its links (one row, made by
        // the first server that needs it) and the links, so every server on the ledger accepts a
        // link any of them made and refuses one any of them revoked; a consumer's page lists its
        // purchases newest first.
        migrator.registerMigration("v8: portal") { db in
            try db.execute(sql: """
                CREATE TABLE portal_secret (id INTEGER PRIMARY KEY CHECK (id = 1), secret TEXT NOT NULL);
                CREATE TABLE portal_links (
                    id TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('consumer', 'creator')), subject TEXT NOT NULL,
                    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER,
                    CHECK (expires_at > created_at)
                ) WITHOUT ROWID;
                CREATE INDEX purchases_by_consumer ON purchases (consumer, created_at);
                """)
        }
        // Auto top-up (service.md, "Auto top-up"): each consumer's setting and the state of its
        // crossings, changed by compare-and-set on `version` (`AutoTopUpSetting`).
        migrator.registerMigration("v9: auto top-up") { db in
            try db.execute(sql: """
                CREATE TABLE auto_top_up (
                    consumer TEXT PRIMARY KEY NOT NULL, below INTEGER NOT NULL CHECK (below >= 0), amount INTEGER NOT NULL CHECK (amount > 0),
                    state TEXT NOT NULL, crossings INTEGER NOT NULL CHECK (crossings >= 0), claimed_at INTEGER, failure TEXT,
                    version INTEGER NOT NULL, updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        // The event triggers exist only while an endpoint listens to one of their events
        // (`EventTriggers`: a trigger costs the writer on every row of its table, even when its
        // `WHEN` is false). Creating or removing an endpoint creates or drops them with it.
        migrator.registerMigration("v10: event triggers follow the endpoints") { db in
            for trigger in EventTriggers.all { try db.execute(sql: "DROP TRIGGER IF EXISTS \(trigger.name)") }
            try EventTriggers.followEndpoints(db)
        }
        return migrator
    }

    static let webhooks = """
        CREATE TABLE webhook_config (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO webhook_config (key, value) VALUES ('low_balance', 10000000);
        CREATE TABLE webhook_events (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, subject TEXT NOT NULL, created INTEGER NOT NULL, data TEXT NOT NULL
        );
        CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY NOT NULL, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
            created_at INTEGER NOT NULL, removed_at INTEGER
        ) WITHOUT ROWID;
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, event INTEGER NOT NULL, subject TEXT NOT NULL,
            state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL DEFAULT 0,
            first_failure_at INTEGER, last_error TEXT, lease_owner TEXT, lease_until INTEGER
        );
        -- The worker reads the head of each (endpoint, subject) among pending deliveries only.
        CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint, subject, event) WHERE state = 0;
        CREATE TRIGGER webhook_fan_out AFTER INSERT ON webhook_events BEGIN
            INSERT INTO webhook_deliveries (endpoint, event, subject)
            SELECT id, NEW.sequence, NEW.subject FROM webhook_endpoints
            WHERE removed_at IS NULL AND instr(events, ',' || NEW.type || ',') > 0 ORDER BY created_at, id;
        END;
        \(EventTriggers.createAll)
        """

    /// Every table, for dumps (tests compare a dump before and after a refused operation).
    static let tables = ["ledger_meta", "consumers", "holds", "entries", "charges", "period_states", "operations", "payouts", "creator_holds",
                         "purchases", "reversals", "period_closes", "subscriptions"]
}
