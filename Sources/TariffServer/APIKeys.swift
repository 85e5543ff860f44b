import Crypto
import Foundation
import Synchronization
import Tariff
import TariffSettlement

/// API keys: made from 256 random bits, shown once, stored only as their SHA-256 hash.
public enum APIKeys {
    /// `tk_` and 64 hex digits (32 bytes from the system's cryptographic generator).
    static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "tk_" + (0..<32).map { _ in hex(UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "key_" + (0..<12).map { _ in hex(UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    static func hex(_ byte: UInt8) -> String { byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }

    /// Lowercase hex SHA-256 of the key's text. Runs on every keyed request: the 64 digits are
    /// written into one buffer (joining 32 two-digit strings cost 33 allocations a request).
    public static func hash(_ secret: String) -> String {
        let digest = SHA256.hash(data: Array(secret.utf8))
        return String(unsafeUninitializedCapacity: 2 * SHA256.byteCount) { buffer in
            var index = 0
            for byte in digest {
                buffer[index] = hexDigits[Int(byte >> 4)]
                buffer[index + 1] = hexDigits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Creates a key and stores its hash; returns the record and the key (to print once).
    /// - throws: `invalid_input` for a consumer key without a consumer (or another role with one), a bad name.
    public static func create(role: APIKeyRecord.Role, consumer: String?, name: String, in store: any ServiceStore,
                              now: Timestamp) async throws -> (record: APIKeyRecord, secret: String) {
        if role == .consumer {
            guard let consumer else { throw SettlementError(.invalidInput, "a consumer key names its consumer (--consumer ID)") }
            try Settlement.validate(consumer, "consumer id")
        } else if consumer != nil {
            throw SettlementError(.invalidInput, "only a consumer key is bound to a consumer")
        }
        try Settlement.validate(name, "key name")
        let secret = newSecret()
        let record = APIKeyRecord(id: newID(), role: role, consumer: consumer, name: name, hash: hash(secret), createdAt: now)
        try await store.insertKey(record)
        return (record, secret)
    }
}

/// Who a request is, once its key was checked.
struct Principal: Sendable {
    var role: APIKeyRecord.Role
    /// The consumer a consumer key is bound to.
    var consumer: String?
}

/// Checks `Authorization: Bearer KEY` against the store. A key found is remembered for at most
/// `cacheSeconds` (default 1 s), so a revocation on any server sharing the ledger is refused from
/// at most a second later; unknown keys are never remembered (nothing to gain for a guesser).
final class Authenticator: Sendable {
    let store: any ServiceStore
    /// The hash of `--admin-key-file`'s key (never the key).
    let extraAdminHash: String?
    let cacheNanoseconds: UInt64
    private let cache = Mutex<[String: (record: APIKeyRecord, until: UInt64)]>([:])

    init(store: any ServiceStore, extraAdminKey: String?, cacheMilliseconds: UInt64 = 1_000) {
        self.store = store
        extraAdminHash = extraAdminKey.map(APIKeys.hash)
        cacheNanoseconds = cacheMilliseconds * 1_000_000
    }

    /// The principal of a request's `Authorization` header.
    /// - throws: 401 for a missing, malformed, unknown or revoked key; 503 when the store cannot be read.
    func principal(authorization: String?) async throws -> Principal {
        guard let authorization, authorization.utf8.count <= 512 else { throw APIError.unauthorized }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, Self.isBearer(parts[0]) else { throw APIError.unauthorized }
        let secret = Self.trimmed(parts[1])
        guard !secret.isEmpty else { throw APIError.unauthorized }
        let hash = APIKeys.hash(secret)
        if let extraAdminHash, Self.constantTimeEqual(hash, extraAdminHash) { return Principal(role: .admin, consumer: nil) }
        let now = DispatchTime.now().uptimeNanoseconds
        if let cached = cache.withLock({ $0[hash] }), cached.until > now { return Principal(role: cached.record.role, consumer: cached.record.consumer) }
        guard let record = try await store.key(hash: hash), record.revokedAt == nil else {
            _ = cache.withLock { $0.removeValue(forKey: hash) }
            throw APIError.unauthorized
        }
        cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[hash] = (record, now + cacheNanoseconds)
        }
        return Principal(role: record.role, consumer: record.consumer)
    }

    /// `bearer` in any case, without lowercasing a copy (this runs on every keyed request).
    static func isBearer(_ scheme: Substring) -> Bool {
        scheme.utf8.count == 6 && zip(scheme.utf8, "bearer".utf8).allSatisfy { ($0 | 0x20) == $1 }
    }

    /// The key without surrounding whitespace (Foundation's `.whitespaces`, as before). A key of
    /// printable ASCII, as every key `tariff keys create` makes, is taken as it is, with no copy
    /// through Foundation.
    static func trimmed(_ text: Substring) -> String {
        if let first = text.utf8.first, let last = text.utf8.last, (0x21...0x7E).contains(first), (0x21...0x7E).contains(last) {
            return String(text)
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8), b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
