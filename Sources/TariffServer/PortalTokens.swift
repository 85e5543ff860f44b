import Crypto
import Foundation
import Synchronization
import Tariff
import TariffSettlement

/// The portal's link tokens (service.md, "The portal"): `pl_ID.MAC`, where MAC is the lowercase
/// hex HMAC-SHA256, under the ledger's portal secret, of the link's id, subject and expiry. The id
/// is not a secret (it is answered to whoever made the link and revokes it); without the MAC it
/// opens nothing, and the MAC cannot be made without the secret, which never leaves the ledger.
/// The subject and expiry are the stored link's, so an altered token, an expired link and a
/// revoked one all fail the same way and reveal nothing.
final class PortalTokens: Sendable {
    /// A link opens its page for 24 hours.
    static let lifetimeSeconds: Int64 = 86_400
    /// `pl_` and 24 hex digits (96 random bits: ids never collide in practice; a collision is refused by the store).
    static let idPrefix = "pl_"
    static let idHexDigits = 24
    /// Longer than any token this server makes: a longer path segment is refused before any work.
    static let maximumTokenBytes = 128

    let store: any PortalStore
    /// The secret's bytes once read (it never changes once made).
    private let secret = Mutex<[UInt8]?>(nil)

    init(store: any PortalStore) {
        self.store = store
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return idPrefix + (0..<(idHexDigits / 2)).map { _ in APIKeys.hex(UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// The ledger's signing key: made on first use (32 bytes of the system's cryptographic
    /// generator), stored beside the ledger if none is yet, and the stored one used (two servers
    /// starting together agree on the first written).
    func key() async throws -> SymmetricKey {
        if let known = secret.withLock({ $0 }) { return SymmetricKey(data: known) }
        var generator = SystemRandomNumberGenerator()
        let candidate = (0..<32).map { _ in APIKeys.hex(UInt8.random(in: .min ... .max, using: &generator)) }.joined()
        let stored = try await store.portalSecret(storingIfAbsent: candidate)
        guard let bytes = Self.bytes(hex: stored), bytes.count >= 32 else {
            throw SettlementError(.storage, "the ledger's portal secret is malformed")
        }
        secret.withLock { $0 = bytes }
        return SymmetricKey(data: bytes)
    }

    /// What the MAC covers: a version tag, the id, the subject and the expiry, one per line (no
    /// field can hold a newline: ids are validated keys without control characters).
    static func message(_ link: PortalLinkRecord) -> [UInt8] {
        Array("tariff-portal-v1\n\(link.id)\n\(link.subject.kind):\(link.subject.id)\n\(link.expiresAt.nanosecondsSinceEpoch)".utf8)
    }

    /// The token of a stored link.
    func token(for link: PortalLinkRecord) async throws -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Self.message(link), using: try await key())
        return link.id + "." + mac.map { APIKeys.hex($0) }.joined()
    }

    /// The link a token opens at `now`, or nil when the token is malformed or altered, or the
    /// link unknown, revoked or expired (one answer for all: the caller learns nothing more).
    /// - throws: only when the store cannot be read.
    func openLink(token: String, now: Timestamp) async throws -> PortalLinkRecord? {
        guard token.utf8.count <= Self.maximumTokenBytes else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, Self.isLinkID(parts[0]), let mac = Self.bytes(hex: parts[1]), mac.count == SHA256.byteCount else { return nil }
        guard let link = try await store.portalLink(id: String(parts[0])) else { return nil }
        // Constant time (swift-crypto's comparison): the time taken tells nothing of how much of the MAC matched.
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.message(link), using: try await key()) else { return nil }
        return link.isOpen(at: now) ? link : nil
    }

    static func isLinkID(_ text: Substring) -> Bool {
        text.utf8.count == idPrefix.utf8.count + idHexDigits && text.hasPrefix(idPrefix)
            && text.utf8.dropFirst(idPrefix.utf8.count).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Lowercase hex to bytes; nil for anything else (upper case, odd length, other characters).
    static func bytes(hex text: some StringProtocol) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = lowerHex(digits[index]), let low = lowerHex(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func lowerHex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
