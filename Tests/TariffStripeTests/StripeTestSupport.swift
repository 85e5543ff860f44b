import Foundation
import Tariff
import TariffSettlement
@testable import TariffStripe

enum StripeTestSupport {
    static let usd = Currency(code: "USD")!
    static let jpy = Currency(code: "JPY")!

    static func money(_ text: String) -> Money { (try? Money(parsing: Substring(text))) ?? Money(micros: Int64.min) }

    /// A rail with short backoffs, so failure tests take a fraction of a second; the timeout is long
    /// (10 s) unless a test is about timeouts, so a loaded machine does not turn a slow answer into a retry.
    /// The total deadline is 10 minutes: the suites run in parallel on two cores, and a task can wait
    /// a minute for a thread, which the default 60 s would count against the retries.
    static func rail(_ base: String, key: String = FakeStripe.secretKey, attempts: Int = 4, timeoutMilliseconds: Int64 = 10_000) throws -> StripeRail {
        try StripeRail(configuration: StripeConfiguration(apiBase: base, secretKey: StripeSecretKey(key), maximumAttempts: attempts,
                                                          initialBackoffMilliseconds: 10, maximumBackoffMilliseconds: 40,
                                                          requestTimeoutMilliseconds: timeoutMilliseconds, totalTimeoutMilliseconds: 600_000))
    }

    static func transfer(_ creator: String, _ amount: String, week: String = "2026-11-02", currency: Currency = usd) -> PayoutTransfer {
        PayoutTransfer(idempotencyKey: "payout:\(creator):\(week)", destination: creator, amount: money(amount), currency: currency, transferGroup: week)
    }

    /// Form fields of a request body, by name.
    static func fields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for (name, value) in FormBody.decode(body) ?? [] { fields[name] = value }
        return fields
    }
}
