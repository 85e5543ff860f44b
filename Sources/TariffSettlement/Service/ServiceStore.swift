import Synchronization
import Tariff

// What `tariff serve` keeps beside the ledger, in the same database (so every server sharing a
// PostgreSQL ledger sees the same keys and answers): API keys (as SHA-256 hashes only), the first
// successful answer of each idempotent request, and each consumer's settings.

/// An API key as stored: never the key itself, only its SHA-256 hash.
public struct APIKeyRecord: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable, CaseIterable {
        /// Everything.
        case admin
        /// The agent runtime: balances, quotes, the execution lifecycle.
        case runtime
        /// One consumer's own calls (`consumer` names it).
        case consumer
    }

    /// `key_` and 24 hex digits: what `tariff keys list` shows and `revoke` takes.
    public var id: String
    public var role: Role
    /// The consumer a `consumer` key is bound to (nil for the other roles).
    public var consumer: String?
    /// A person's label (`ops`, `runtime-eu`).
    public var name: String
    /// Lowercase hex SHA-256 of the whole key text (`tk_...`).
    public var hash: String
    public var createdAt: Timestamp
    public var revokedAt: Timestamp?

    public init(id: String, role: Role, consumer: String?, name: String, hash: String, createdAt: Timestamp, revokedAt: Timestamp? = nil) {
        self.id = id
        self.role = role
        self.consumer = consumer
        self.name = name
        self.hash = hash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// The first successful answer to an idempotent request (a purchase under its `Idempotency-Key`).
public struct StoredAnswer: Sendable, Hashable {
    /// Scoped by the server (`purchase:CONSUMER-DIGEST`): two consumers may use the same key.
    public var key: String
    /// The parsed request's parameters: another body under the same key is a conflict.
    public var fingerprint: String
    public var status: Int
    public var body: String
    public init(key: String, fingerprint: String, status: Int, body: String) {
        self.key = key
        self.fingerprint = fingerprint
        self.status = status
        self.body = body
    }
}

/// A consumer's service settings (`PUT /v1/consumers/{id}`).
public struct ConsumerSettings: Sendable, Hashable {
    public var consumer: String
    /// The Stripe customer its purchases are charged to (`cus_...`).
    public var stripeCustomer: String?
    /// Below this `available`, a `balance.low` event is due (service.md).
    public var lowBalance: Money?
    public init(consumer: String, stripeCustomer: String? = nil, lowBalance: Money? = nil) {
        self.consumer = consumer
        self.stripeCustomer = stripeCustomer
        self.lowBalance = lowBalance
    }
}

/// Where the service keeps its keys, answers and consumer settings: beside the ledger, in every
/// backend (in-memory for the process's life, SQLite and PostgreSQL in their own tables, added
/// by a versioned migration). Every method is atomic.
public protocol ServiceStore: Sendable {
    /// - throws: `idempotency_conflict` when the id or the hash already exists; `storage`.
    func insertKey(_ record: APIKeyRecord) async throws
    /// Every key, oldest first.
    func keys() async throws -> [APIKeyRecord]
    /// The key with this hash, revoked or not.
    func key(hash: String) async throws -> APIKeyRecord?
    /// Marks the key revoked (a second revoke keeps the first instant); nil when no key has that id.
    func revokeKey(id: String, at: Timestamp) async throws -> APIKeyRecord?
    /// Stores `answer` unless one is stored under its key already; returns the one stored (the
    /// first writer wins, so two servers racing on one key answer the same).
    func keepAnswer(_ answer: StoredAnswer) async throws -> StoredAnswer
    func answer(key: String) async throws -> StoredAnswer?
    func saveConsumerSettings(_ settings: ConsumerSettings) async throws
    func consumerSettings(_ consumer: String) async throws -> ConsumerSettings?
}

/// The `memory:` ledger's service store: kept for the process's life.
public final class InMemoryServiceStore: ServiceStore {
    private struct State {
        var keys: [APIKeyRecord] = []
        var answers: [String: StoredAnswer] = [:]
        var settings: [String: ConsumerSettings] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func insertKey(_ record: APIKeyRecord) async throws {
        try state.withLock { state in
            guard !state.keys.contains(where: { $0.id == record.id || $0.hash == record.hash }) else {
                throw SettlementError(.idempotencyConflict, "a key with this id or hash exists")
            }
            state.keys.append(record)
        }
    }

    public func keys() async throws -> [APIKeyRecord] { state.withLock { $0.keys } }

    public func key(hash: String) async throws -> APIKeyRecord? { state.withLock { state in state.keys.first { $0.hash == hash } } }

    public func revokeKey(id: String, at: Timestamp) async throws -> APIKeyRecord? {
        state.withLock { state in
            guard let index = state.keys.firstIndex(where: { $0.id == id }) else { return nil }
            if state.keys[index].revokedAt == nil { state.keys[index].revokedAt = at }
            return state.keys[index]
        }
    }

    public func keepAnswer(_ answer: StoredAnswer) async throws -> StoredAnswer {
        state.withLock { state in
            if let stored = state.answers[answer.key] { return stored }
            state.answers[answer.key] = answer
            return answer
        }
    }

    public func answer(key: String) async throws -> StoredAnswer? { state.withLock { $0.answers[key] } }

    public func saveConsumerSettings(_ settings: ConsumerSettings) async throws { state.withLock { $0.settings[settings.consumer] = settings } }

    public func consumerSettings(_ consumer: String) async throws -> ConsumerSettings? { state.withLock { $0.settings[consumer] } }
}
