import PostgresNIO
import Tariff
import TariffSettlement

/// The portal's signing secret and links in the ledger's database (migration 13), so every
/// `tariff serve` on one PostgreSQL ledger accepts the same links; and a consumer's purchases
/// for its page (an indexed query instead of the ledger's snapshot).
extension PostgresBackend: PortalStore, PurchaseListing {
    static let portalLinkColumns = "id, kind, subject, created_at, expires_at, revoked_at"

    static func portalLink(_ row: PostgresRandomAccessRow) throws -> PortalLinkRecord {
        guard let subject = PortalLinkRecord.Subject(kind: try row[1].decode(String.self), id: try row[2].decode(String.self)) else {
            throw SettlementError(.storage, "a portal link row holds an unknown kind")
        }
        return PortalLinkRecord(id: try row[0].decode(String.self), subject: subject,
                                createdAt: Timestamp(nanosecondsSinceEpoch: try row[3].decode(Int64.self)),
                                expiresAt: Timestamp(nanosecondsSinceEpoch: try row[4].decode(Int64.self)),
                                revokedAt: try row[5].decode(Int64?.self).map(Timestamp.init(nanosecondsSinceEpoch:)))
    }

    public func portalSecret(storingIfAbsent candidate: String) async throws -> String {
        try await step { [self] in
            // Of two servers inserting at once, one row wins and both read it back.
            _ = try await rows("INSERT INTO portal_secret (id, secret) VALUES (1, \(candidate)) ON CONFLICT (id) DO NOTHING")
            guard let row = try await rows("SELECT secret FROM portal_secret WHERE id = 1").first else {
                throw SettlementError(.storage, "the portal secret could not be read back")
            }
            return try row[0].decode(String.self)
        }
    }

    public func insertPortalLink(_ link: PortalLinkRecord) async throws {
        let kind = link.subject.kind, subject = link.subject.id
        let created = link.createdAt.nanosecondsSinceEpoch, expires = link.expiresAt.nanosecondsSinceEpoch, revoked = link.revokedAt?.nanosecondsSinceEpoch
        let inserted = try await step { [self] in
            try await rows("""
                INSERT INTO portal_links (id, kind, subject, created_at, expires_at, revoked_at)
                VALUES (\(link.id), \(kind), \(subject), \(created), \(expires), \(revoked))
                ON CONFLICT DO NOTHING RETURNING id
                """)
        }
        guard !inserted.isEmpty else { throw SettlementError(.idempotencyConflict, "a portal link with this id exists") }
    }

    public func portalLink(id: String) async throws -> PortalLinkRecord? {
        try await step { [self] in
            try await rows("SELECT \(unescaped: Self.portalLinkColumns) FROM portal_links WHERE id = \(id)").first.map(Self.portalLink)
        }
    }

    public func revokePortalLink(id: String, at: Timestamp) async throws -> PortalLinkRecord? {
        let instant = at.nanosecondsSinceEpoch
        return try await step { [self] in
            _ = try await rows("UPDATE portal_links SET revoked_at = \(instant) WHERE id = \(id) AND revoked_at IS NULL")
            return try await rows("SELECT \(unescaped: Self.portalLinkColumns) FROM portal_links WHERE id = \(id)").first.map(Self.portalLink)
        }
    }

    public func purchases(consumer: String, limit: Int) async throws -> [PurchaseRecord] {
        let count = Int64(limit)
        return try await step { [self] in
            try await rows("""
                SELECT \(unescaped: Self.purchaseColumns) FROM purchases WHERE consumer = \(consumer)
                ORDER BY created_at DESC, key COLLATE "C" DESC LIMIT \(count)
                """).map(Self.purchase)
        }
    }
}
