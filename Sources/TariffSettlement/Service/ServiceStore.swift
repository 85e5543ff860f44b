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

/// A request's hold on an idempotency key while it is being answered, kept in the answers table
/// (status 0, the claim in the fingerprint) so every server sharing the ledger sees it.
public struct AnswerClaim: Sendable, Hashable {
    /// Unique per request.
    public var token: String
    /// When it was claimed, by the claiming server's wall clock (claims are about real time).
    public var claimedAtNanoseconds: Int64
    public init(token: String, claimedAtNanoseconds: Int64) {
        self.token = token
        self.claimedAtNanoseconds = claimedAtNanoseconds
    }

    /// What the row's fingerprint holds while the claim lasts: `claim:NANOS:TOKEN`.
    public var fingerprint: String { "claim:\(claimedAtNanoseconds):\(token)" }
    /// The claim time of a placeholder's fingerprint (nil for anything else).
    public static func claimedAt(fingerprint: String) -> Int64? {
        let parts = fingerprint.split(separator: ":", maxSplits: 2)
        guard parts.count == 3, parts[0] == "claim" else { return nil }
        return Int64(parts[1])
    }
    /// The status of a claim's placeholder row: never an HTTP status.
    public static let placeholderStatus = 0

    public enum Outcome: Sendable, Hashable {
        /// This request answers the key.
        case claimed
        /// The key was answered already.
        case answered(StoredAnswer)
        /// Another request holds it (and its claim is not stale).
        case busy
    }

    /// The decision every store makes on the row it found (nil: none), in one place.
    public func decide(on existing: StoredAnswer?, staleAfterNanoseconds: Int64) -> (outcome: Outcome, takeOver: Bool) {
        guard let existing else { return (.claimed, false) }
        guard existing.status == Self.placeholderStatus else { return (.answered(existing), false) }
        let claimedAt = Self.claimedAt(fingerprint: existing.fingerprint) ?? .min
        let (age, overflow) = claimedAtNanoseconds.subtractingReportingOverflow(claimedAt)
        return overflow || age > staleAfterNanoseconds ? (.claimed, true) : (.busy, false)
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
    /// The stored answer under `key` (a claim in flight is no answer: nil).
    func answer(key: String) async throws -> StoredAnswer?
    /// Claims `key` for the request that will answer it, so a request with the same key on any
    /// server sharing this store waits instead of answering twice (service.md, "Idempotency": a
    /// key in flight waits, then `request_in_progress`). A claim older than `staleAfterNanoseconds`
    /// (its server died mid-request) is taken over. Atomic: of two racing claims one wins.
    func claimAnswer(key: String, claim: AnswerClaim, staleAfterNanoseconds: Int64) async throws -> AnswerClaim.Outcome
    /// Replaces the claim by its answer; when the claim was taken over and answered by another,
    /// returns that answer instead (the first answer stays the answer).
    func completeClaim(_ claim: AnswerClaim, with answer: StoredAnswer) async throws -> StoredAnswer
    /// Drops the claim (the request failed: only successful answers are kept).
    func abandonClaim(key: String, claim: AnswerClaim) async throws
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
    /// Auto top-up settings (`AutoTopUpStore`).
    let autoTopUpRows = InMemoryAutoTopUps()
    /// Where a declined top-up's `auto_top_up.failed` goes: the `memory:` ledger's outbox, which
    /// lives in its backend (SQLite and PostgreSQL write it with the failure, in one transaction).
    let outbox: (any WebhookOutbox)?

    public init(outbox: (any WebhookOutbox)? = nil) {
        self.outbox = outbox
    }

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

    public func answer(key: String) async throws -> StoredAnswer? {
        state.withLock { state in state.answers[key].flatMap { $0.status == AnswerClaim.placeholderStatus ? nil : $0 } }
    }

    public func claimAnswer(key: String, claim: AnswerClaim, staleAfterNanoseconds: Int64) async throws -> AnswerClaim.Outcome {
        state.withLock { state in
            let (outcome, _) = claim.decide(on: state.answers[key], staleAfterNanoseconds: staleAfterNanoseconds)
            if outcome == .claimed { state.answers[key] = StoredAnswer(key: key, fingerprint: claim.fingerprint, status: AnswerClaim.placeholderStatus, body: "") }
            return outcome
        }
    }

    public func completeClaim(_ claim: AnswerClaim, with answer: StoredAnswer) async throws -> StoredAnswer {
        state.withLock { state in
            if let stored = state.answers[answer.key], stored.status != AnswerClaim.placeholderStatus { return stored }
            state.answers[answer.key] = answer
            return answer
        }
    }

    public func abandonClaim(key: String, claim: AnswerClaim) async throws {
        state.withLock { state in
            if let stored = state.answers[key], stored.status == AnswerClaim.placeholderStatus, stored.fingerprint == claim.fingerprint {
                state.answers[key] = nil
            }
        }
    }

    public func saveConsumerSettings(_ settings: ConsumerSettings) async throws { state.withLock { $0.settings[settings.consumer] = settings } }

    public func consumerSettings(_ consumer: String) async throws -> ConsumerSettings? { state.withLock { $0.settings[consumer] } }
}
