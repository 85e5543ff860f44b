import Foundation
import Tariff
import TariffSettlement

/// The platform's Stripe secret key (`sk_live_...`, `sk_test_...`, `rk_...`).
///
/// It is never printed: its description, debug description and mirror all read `sk_***`, so a key
/// that reaches a log line, an error message or a test failure through string interpolation shows
/// nothing. Only `StripeClient` reads `value`, to build the `Authorization` header.
public struct StripeSecretKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String

    /// - throws: `invalid_input` for an empty key or one with whitespace or control characters
    ///   (a key file's trailing newline is trimmed first).
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw SettlementError(.invalidInput, "the Stripe secret key is empty") }
        guard trimmed.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            // Says nothing of the key's content: even a malformed key may be most of a real one.
            throw SettlementError(.invalidInput, "the Stripe secret key holds spaces or characters outside printable ASCII")
        }
        value = trimmed
    }

    /// The largest key file read (`--stripe-key-file`).
    public static let maximumKeyFileBytes = 4_096

    public var description: String { "sk_***" }
    public var debugDescription: String { "sk_***" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// The key from `--stripe-key-file FILE` when given, else from `STRIPE_SECRET_KEY`.
    /// - throws: `invalid_input` when neither is set or the file cannot be read (the message names
    ///   the file and the variable, never the key).
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StripeSecretKey {
        if let file {
            // Bounded: a key is about 100 bytes; a 1 GB file (or /dev/zero) is refused after 4 KiB.
            let bytes: [UInt8]
            do throws(BoundedRead.Failure) {
                bytes = try BoundedRead.bytes(atPath: file, maximumBytes: maximumKeyFileBytes)
            } catch {
                let why = error == .tooLarge(maximumBytes: maximumKeyFileBytes) ? "it is larger than \(maximumKeyFileBytes) bytes" : "\(error)"
                throw SettlementError(.invalidInput, "cannot read the Stripe key file '\(SafeText.escaping(file))': \(why)")
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw SettlementError(.invalidInput, "the Stripe key file '\(SafeText.escaping(file))' is not UTF-8 text")
            }
            return try StripeSecretKey(text)
        }
        guard let text = environment["STRIPE_SECRET_KEY"], !text.isEmpty else {
            throw SettlementError(.invalidInput, "the Stripe rail needs a secret key: set STRIPE_SECRET_KEY or pass --stripe-key-file FILE")
        }
        return try StripeSecretKey(text)
    }

    /// `text` with every occurrence of the key replaced by `sk_***`: applied to anything Stripe or
    /// the network says before it becomes an error message (Stripe quotes part of a bad key back).
    func redacting(_ text: String) -> String {
        text.replacingOccurrences(of: value, with: "sk_***")
    }
}
