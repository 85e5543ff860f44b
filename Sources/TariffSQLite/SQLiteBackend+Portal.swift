import GRDB
import Tariff
import TariffSettlement

/// The portal's signing secret and links in the ledger's file (migration `v8: portal`), and a
/// consumer's purchases for its page. Small, rare writes: straight through the pool, outside the
/// ledger's group-commit writer, as the service's keys.
extension SQLiteBackend: PortalStore, PurchaseListing {
    private func portalWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await writablePool().write(body) } catch let error as SettlementError { throw error } catch {
            throw SettlementError(.storage, "writing the portal tables failed: \(error)")
        }
    }

    private func portalRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let error as SettlementError { throw error } catch {
            throw SettlementError(.storage, "reading the portal tables failed: \(error)")
        }
    }

    static func portalLink(from row: Row) throws -> PortalLinkRecord {
        guard let subject = PortalLinkRecord.Subject(kind: row["kind"], id: row["subject"]) else {
            throw SettlementError(.storage, "a portal link row holds an unknown kind")
        }
        let revoked: Int64? = row["revoked_at"]
        return PortalLinkRecord(id: row["id"], subject: subject, createdAt: Timestamp(nanosecondsSinceEpoch: row["created_at"]),
                                expiresAt: Timestamp(nanosecondsSinceEpoch: row["expires_at"]), revokedAt: revoked.map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    public func portalSecret(storingIfAbsent candidate: String) async throws -> String {
        // Read first: once made (the usual case) no write transaction is taken.
        if let stored = try await portalRead({ db in try String.fetchOne(db, sql: "SELECT secret FROM portal_secret WHERE id = 1") }) { return stored }
        return try await portalWrite { db in
            try db.execute(sql: "INSERT OR IGNORE INTO portal_secret (id, secret) VALUES (1, ?)", arguments: [candidate])
            return try String.fetchOne(db, sql: "SELECT secret FROM portal_secret WHERE id = 1") ?? candidate
        }
    }

    public func insertPortalLink(_ link: PortalLinkRecord) async throws {
        try await portalWrite { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM portal_links WHERE id = ?", arguments: [link.id]) == 0 else {
                throw SettlementError(.idempotencyConflict, "a portal link with this id exists")
            }
            try db.execute(sql: "INSERT INTO portal_links (id, kind, subject, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [link.id, link.subject.kind, link.subject.id, link.createdAt.nanosecondsSinceEpoch,
                                       link.expiresAt.nanosecondsSinceEpoch, link.revokedAt?.nanosecondsSinceEpoch])
        }
    }

    public func portalLink(id: String) async throws -> PortalLinkRecord? {
        try await portalRead { db in try Row.fetchOne(db, sql: "SELECT * FROM portal_links WHERE id = ?", arguments: [id]).map(Self.portalLink) }
    }

    public func revokePortalLink(id: String, at: Timestamp) async throws -> PortalLinkRecord? {
        try await portalWrite { db in
            try db.execute(sql: "UPDATE portal_links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [at.nanosecondsSinceEpoch, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM portal_links WHERE id = ?", arguments: [id]).map(Self.portalLink)
        }
    }

    public func purchases(consumer: String, limit: Int) async throws -> [PurchaseRecord] {
        try await portalRead { db in
            try Row.fetchAll(db, sql: "SELECT \(SQLiteStore.purchaseColumns) FROM purchases WHERE consumer = ? ORDER BY created_at DESC, key DESC LIMIT ?",
                             arguments: [consumer, limit]).map(SQLiteStore.purchase(from:))
        }
    }
}
