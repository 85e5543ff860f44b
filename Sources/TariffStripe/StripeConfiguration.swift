import Foundation
import Tariff
import TariffSettlement

/// Where the Stripe rail sends its requests and how hard it retries.
public struct StripeConfiguration: Sendable {
    /// `https://api.stripe.com` in production; a local server (localstripe, the tests' fake) otherwise.
    public var apiBase: String
    public var secretKey: StripeSecretKey
    /// Attempts per request, the first included: a transient failure (429, 5xx, a timeout, a lost
    /// connection) is tried again under the same idempotency key until this many were made.
    public var maximumAttempts: Int
    /// The wait before the second attempt; each later wait doubles, up to `maximumBackoffMilliseconds`.
    public var initialBackoffMilliseconds: Int64
    public var maximumBackoffMilliseconds: Int64
    /// How long one attempt may wait for Stripe's answer before it counts as a timeout.
    public var requestTimeoutMilliseconds: Int64
    /// How long one request may take in all, its retries and their waits included: a Stripe that
    /// never answers fails within this (60 s by default), whatever `maximumAttempts` says.
    public var totalTimeoutMilliseconds: Int64
    /// The largest answer read from Stripe (1 MiB; Stripe's objects are a few KiB): a longer one is
    /// refused as it arrives, so a broken or hostile endpoint cannot fill the memory.
    public var maximumResponseBytes: Int

    public static let defaultAPIBase = "https://api.stripe.com"

    public init(apiBase: String = StripeConfiguration.defaultAPIBase, secretKey: StripeSecretKey, maximumAttempts: Int = 4,
                initialBackoffMilliseconds: Int64 = 500, maximumBackoffMilliseconds: Int64 = 8_000, requestTimeoutMilliseconds: Int64 = 30_000,
                totalTimeoutMilliseconds: Int64 = 60_000, maximumResponseBytes: Int = 1 << 20) {
        self.apiBase = apiBase
        self.secretKey = secretKey
        self.maximumAttempts = maximumAttempts
        self.initialBackoffMilliseconds = initialBackoffMilliseconds
        self.maximumBackoffMilliseconds = maximumBackoffMilliseconds
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
        self.totalTimeoutMilliseconds = totalTimeoutMilliseconds
        self.maximumResponseBytes = maximumResponseBytes
    }

    /// The configuration of cli.md: the key from `keyFile` or `STRIPE_SECRET_KEY`, the base from
    /// `STRIPE_API_BASE` (default `https://api.stripe.com`).
    /// - throws: `invalid_input` for a missing key or a base that is not an http(s) URL.
    public static func load(keyFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StripeConfiguration {
        let key = try StripeSecretKey.load(file: keyFile, environment: environment)
        let base = environment["STRIPE_API_BASE"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultAPIBase
        let configuration = StripeConfiguration(apiBase: base, secretKey: key)
        try configuration.validate()
        return configuration
    }

    /// - throws: `invalid_input` for a base that is not http(s), plain http to a host that is not
    ///   loopback, or limits out of range.
    public func validate() throws {
        guard let url = URL(string: apiBase), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw SettlementError(.invalidInput, "STRIPE_API_BASE must be an http(s) URL such as https://api.stripe.com, not '\(Redaction.url(apiBase))'")
        }
        // Every request carries the secret key in its Authorization header: over plain http it may
        // only go to this machine (the tests' fakes, localstripe), never across a network.
        if scheme == "http", let host = url.host, !LoopbackHost.contains(host) {
            throw SettlementError(.invalidInput, "refusing to send the Stripe secret key in clear to '\(Redaction.url(apiBase))': "
                                  + "STRIPE_API_BASE must be https:// (plain http:// is allowed to a loopback host only: localhost, 127.0.0.1, [::1])")
        }
        guard (1...10).contains(maximumAttempts) else { throw SettlementError(.invalidInput, "the Stripe rail makes 1 to 10 attempts per request") }
        guard initialBackoffMilliseconds >= 0, maximumBackoffMilliseconds >= initialBackoffMilliseconds, maximumBackoffMilliseconds <= 60_000 else {
            throw SettlementError(.invalidInput, "Stripe backoff must be 0 to 60,000 ms, the first wait at most the longest")
        }
        guard (1...300_000).contains(requestTimeoutMilliseconds), (1...600_000).contains(totalTimeoutMilliseconds) else {
            throw SettlementError(.invalidInput, "a Stripe request timeout is 1 ms to 5 minutes, all attempts together at most 10 minutes")
        }
        guard (1_024...(64 << 20)).contains(maximumResponseBytes) else {
            throw SettlementError(.invalidInput, "the largest Stripe answer read is 1 KiB to 64 MiB")
        }
    }

    /// The wait before attempt `attempt + 1` (attempt 1 is the first): 500, 1,000, 2,000 ms, ... capped.
    func backoffMilliseconds(afterAttempt attempt: Int) -> Int64 {
        var wait = initialBackoffMilliseconds
        for _ in 1..<max(attempt, 1) {
            if wait >= maximumBackoffMilliseconds / 2 { return maximumBackoffMilliseconds }
            wait *= 2
        }
        return min(wait, maximumBackoffMilliseconds)
    }
}
