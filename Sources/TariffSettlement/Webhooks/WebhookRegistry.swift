import Tariff

/// Endpoints as `tariff webhooks add` and `POST /v1/webhooks` create them: the checks and the
/// random id and secret, in one place for the CLI and the server.
public enum WebhookRegistry {
    /// The longest URL accepted, in UTF-8 bytes.
    public static let maximumURLBytes = 2_048
    /// Endpoints per ledger: every event fans out to each, inside the step that writes it.
    public static let maximumEndpoints = 64

    /// A new endpoint for `url` and `events` (service.md names, each once), with a fresh id and
    /// signing secret.
    /// - throws: `invalid_input` for a URL that is not http(s), too long or holds spaces or control
    ///   characters; for no events, an unknown or repeated one.
    public static func makeEndpoint(url: String, events: [String], now: Timestamp) throws -> WebhookEndpoint {
        try validate(url: url)
        guard !events.isEmpty else { throw SettlementError(.invalidInput, "name the events to send, e.g. balance.low,credits.depleted") }
        var seen = Set<String>()
        for event in events {
            guard WebhookEventType(rawValue: event) != nil else {
                let known = WebhookEventType.allCases.map(\.rawValue).joined(separator: ", ")
                throw SettlementError(.invalidInput, "unknown event '\(event.prefix(64))' (known: \(known))")
            }
            guard seen.insert(event).inserted else { throw SettlementError(.invalidInput, "event '\(event)' is named twice") }
        }
        return WebhookEndpoint(id: "whe_" + randomHex(bytes: 12), url: url, events: events, secret: "whsec_" + randomHex(bytes: 32), createdAt: now)
    }

    /// Adds an endpoint to `outbox`, refusing past `maximumEndpoints`.
    public static func add(url: String, events: [String], to outbox: any WebhookOutbox, now: Timestamp) async throws -> WebhookEndpoint {
        let endpoint = try makeEndpoint(url: url, events: events, now: now)
        guard try await outbox.webhookEndpoints().count < maximumEndpoints else {
            throw SettlementError(.invalidInput, "a ledger has at most \(maximumEndpoints) webhook endpoints; remove one first")
        }
        try await outbox.addWebhookEndpoint(endpoint)
        return endpoint
    }

    static func validate(url: String) throws {
        guard url.utf8.count <= maximumURLBytes else { throw SettlementError(.invalidInput, "a webhook URL is at most \(maximumURLBytes) bytes") }
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw SettlementError(.invalidInput, "a webhook URL starts with https:// (or http://)")
        }
        guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0.value < 0x80 }) else {
            throw SettlementError(.invalidInput, "a webhook URL holds no spaces, control or non-ASCII characters (percent-encode them)")
        }
        let rest = url.drop { $0 != "/" }.dropFirst(2)
        guard let host = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first, !host.isEmpty, !host.contains("@") else {
            throw SettlementError(.invalidInput, "a webhook URL names a host (and no user or password)")
        }
    }

    static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        for _ in 0..<count {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text += String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }
        return text
    }
}
