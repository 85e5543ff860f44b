import Synchronization
import Tariff

// The portal's links (service.md, "The portal"): read-only links to one consumer's or one
// creator's page, kept beside the ledger with the secret that signs them, so every server sharing
// a PostgreSQL ledger accepts a link any of them made and refuses one any of them revoked.

/// One portal link as stored. The link id is not a secret (it is answered to whoever made the link
/// and revokes it); the token in the URL is the id and an HMAC of the id, the subject and the
/// expiry under the ledger's portal secret, so the id alone opens nothing.
public struct PortalLinkRecord: Sendable, Hashable {
    /// Whose page the link shows.
    public enum Subject: Sendable, Hashable {
        case consumer(String)
        case creator(String)

        /// `consumer` or `creator`.
        public var kind: String {
            switch self {
            case .consumer: "consumer"
            case .creator: "creator"
            }
        }

        /// The consumer's or creator's id.
        public var id: String {
            switch self {
            case .consumer(let id), .creator(let id): id
            }
        }

        /// From the stored kind and id; nil for an unknown kind (a row read back is checked, never guessed).
        public init?(kind: String, id: String) {
            switch kind {
            case "consumer": self = .consumer(id)
            case "creator": self = .creator(id)
            default: return nil
            }
        }
    }

    /// `pl_` and 24 hex digits.
    public var id: String
    public var subject: Subject
    public var createdAt: Timestamp
    /// The link opens nothing from this instant on.
    public var expiresAt: Timestamp
    public var revokedAt: Timestamp?

    public init(id: String, subject: Subject, createdAt: Timestamp, expiresAt: Timestamp, revokedAt: Timestamp? = nil) {
        self.id = id
        self.subject = subject
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether the link still opens its page at `now`: not revoked, not expired.
    public func isOpen(at now: Timestamp) -> Bool { revokedAt == nil && now < expiresAt }
}

/// Where the portal's signing secret and links live: beside the ledger, in the same database
/// (SQLite migration `v8: portal`, PostgreSQL migration 13), or for the process's life with a
/// `memory:` ledger. Every method is atomic.
public protocol PortalStore: Sendable {
    /// The ledger's portal signing secret (lowercase hex): `candidate` is stored if none is yet,
    /// and the stored one is answered, so two servers starting together agree on one secret.
    func portalSecret(storingIfAbsent candidate: String) async throws -> String
    /// - throws: `idempotency_conflict` when a link with this id exists; `storage`.
    func insertPortalLink(_ link: PortalLinkRecord) async throws
    /// The link with this id, revoked or expired or not; nil when none has it.
    func portalLink(id: String) async throws -> PortalLinkRecord?
    /// Marks the link revoked (a second revoke keeps the first instant); nil when no link has that id.
    func revokePortalLink(id: String, at: Timestamp) async throws -> PortalLinkRecord?
}

/// The `memory:` ledger's portal links and secret: kept for the process's life.
public final class InMemoryPortalStore: PortalStore {
    private struct State {
        var secret: String?
        var links: [String: PortalLinkRecord] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func portalSecret(storingIfAbsent candidate: String) async throws -> String {
        state.withLock { state in
            if let secret = state.secret { return secret }
            state.secret = candidate
            return candidate
        }
    }

    public func insertPortalLink(_ link: PortalLinkRecord) async throws {
        try state.withLock { state in
            guard state.links[link.id] == nil else { throw SettlementError(.idempotencyConflict, "a portal link with this id exists") }
            state.links[link.id] = link
        }
    }

    public func portalLink(id: String) async throws -> PortalLinkRecord? { state.withLock { $0.links[id] } }

    public func revokePortalLink(id: String, at: Timestamp) async throws -> PortalLinkRecord? {
        state.withLock { state in
            guard var link = state.links[id] else { return nil }
            if link.revokedAt == nil { link.revokedAt = at }
            state.links[id] = link
            return link
        }
    }
}
