import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TariffSettlement

/// Sends form-encoded requests to Stripe's API with the platform's key, an `Idempotency-Key` on
/// every POST, and retries with exponential backoff.
///
/// Why URLSession (FoundationNetworking, libcurl on Linux) rather than AsyncHTTPClient: the rail
/// makes a handful of small, sequential requests per run (one transfer per creator, one charge per
/// purchase), where an event-loop client's throughput buys nothing, and URLSession ships with the
/// toolchain: no SwiftNIO graph to build (minutes on a 2-core CI machine) and no event loop group to
/// start and shut down in a short-lived CLI.
///
/// Retries: HTTP 429, every 5xx, 409 `idempotency_key_in_use` (the first attempt is still being
/// processed), timeouts and lost connections are tried again under the same key, so Stripe applies
/// the request once however many attempts reach it. Stripe's `Stripe-Should-Retry` header, when
/// present, overrides that guess. Everything else is final and mapped to a `SettlementError`.
public struct StripeClient: Sendable {
    public let configuration: StripeConfiguration
    private let owner: SessionOwner
    private var session: URLSession { owner.session }

    /// Invalidates the session when the last copy of the client goes: an URLSession keeps its
    /// delegate queue and (on Linux) a libcurl handle until invalidated.
    final class SessionOwner: Sendable {
        let session: URLSession
        init(_ session: URLSession) { self.session = session }
        deinit { session.finishTasksAndInvalidate() }
    }

    /// - throws: `invalid_input` for a configuration out of range.
    public init(configuration: StripeConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        // TimeInterval is seconds as a Double: a duration, never money.
        sessionConfiguration.timeoutIntervalForRequest = Double(configuration.requestTimeoutMilliseconds) / 1_000
        sessionConfiguration.timeoutIntervalForResource = Double(configuration.requestTimeoutMilliseconds) / 1_000
        sessionConfiguration.httpCookieStorage = nil
        sessionConfiguration.urlCache = nil
        owner = SessionOwner(URLSession(configuration: sessionConfiguration))
    }

    /// `POST path` with `form`, under `idempotencyKey`; the JSON of the 2xx answer.
    /// `what` names the operation in error messages ("the transfer payout:acct_1:2026-11-02").
    /// - throws: `payment_declined`, `idempotency_conflict`, `rail_rejected`, `rail_authentication`,
    ///   `rail_unavailable` (after every retry), `invalid_input` (a bad path).
    public func post(_ path: String, _ form: FormBody, idempotencyKey: String, what: String) async throws -> Data {
        guard let url = URL(string: configuration.apiBase.trimmingSuffix("/") + path) else {
            throw SettlementError(.invalidInput, "cannot form a Stripe URL for \(path)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = Data(form.encoded.utf8)
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer " + configuration.secretKey.value, forHTTPHeaderField: "Authorization")
        request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        var lastFailure = ""
        for attempt in 1...configuration.maximumAttempts {
            if attempt > 1 { try await Task.sleep(for: .milliseconds(configuration.backoffMilliseconds(afterAttempt: attempt - 1))) }
            let data: Data
            let response: URLResponse
            do {
                (data, response) = try await session.data(for: request)
            } catch let error as URLError where Self.isTransient(error) {
                lastFailure = Self.describe(error)
                continue
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw SettlementError(.railUnavailable, configuration.secretKey.redacting("\(what) could not be sent to Stripe: \(error)"))
            }
            guard let http = response as? HTTPURLResponse else {
                lastFailure = "an answer that is not HTTP"
                continue
            }
            if (200..<300).contains(http.statusCode) { return data }
            let failure = StripeFailure(status: http.statusCode, body: data)
            var retry = http.statusCode == 429 || http.statusCode >= 500 || failure.code == "idempotency_key_in_use"
            if let advice = http.value(forHTTPHeaderField: "Stripe-Should-Retry") { retry = advice == "true" }
            guard retry else { throw failure.settlementError(what: what, key: configuration.secretKey) }
            lastFailure = "HTTP \(http.statusCode)" + (failure.code.map { " \($0)" } ?? "")
        }
        throw SettlementError(.railUnavailable, configuration.secretKey.redacting(
            "\(what) did not reach Stripe after \(configuration.maximumAttempts) attempts (last: \(lastFailure)); "
            + "running it again is safe: it is sent under the same idempotency key"))
    }

    /// Timeouts and network failures: the request may or may not have been applied, so it is sent
    /// again under the same key. A cancelled task or a malformed URL is not retried.
    static func isTransient(_ error: URLError) -> Bool {
        switch error.code {
        case .cancelled, .badURL, .unsupportedURL, .userAuthenticationRequired, .userCancelledAuthentication: false
        default: true
        }
    }

    static func describe(_ error: URLError) -> String {
        switch error.code {
        case .timedOut: "a timeout"
        case .cannotConnectToHost: "connection refused"
        case .networkConnectionLost: "the connection was lost"
        default: "network error \(error.code.rawValue)"
        }
    }
}

/// Stripe's error body, `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"..."}}`,
/// and what it means for the ledger.
struct StripeFailure: Sendable {
    struct Body: Decodable {
        struct Detail: Decodable {
            var type: String?
            var code: String?
            var decline_code: String?
            var message: String?
            var param: String?
        }
        var error: Detail
    }

    var status: Int
    var type: String?
    var code: String?
    var declineCode: String?
    var message: String?
    var param: String?

    init(status: Int, body: Data) {
        self.status = status
        let detail = try? JSONDecoder().decode(Body.self, from: body).error
        type = detail?.type
        code = detail?.code
        declineCode = detail?.decline_code
        message = detail?.message
        param = detail?.param
    }

    init(status: Int, type: String?, code: String?, declineCode: String?, message: String?) {
        self.status = status
        self.type = type
        self.code = code
        self.declineCode = declineCode
        self.message = message
    }

    /// The decline reason to show: Stripe's `decline_code` (`insufficient_funds`), else its `code`.
    var reason: String { declineCode ?? code ?? "declined" }

    func settlementError(what: String, key: StripeSecretKey) -> SettlementError {
        let said = message.map { key.redacting($0) }
        if status == 401 || status == 403 || type == "authentication_error" || type == "permission_error" {
            // Stripe's message for a bad key quotes part of it: not repeated.
            return SettlementError(.railAuthentication, "Stripe refused the secret key for \(what) (HTTP \(status)); check STRIPE_SECRET_KEY or --stripe-key-file")
        }
        if type == "idempotency_error" {
            return SettlementError(.idempotencyConflict, "\(what): Stripe already saw this idempotency key with other parameters" + (said.map { " (\($0))" } ?? ""))
        }
        if status == 402 || type == "card_error" || code == "card_declined" {
            return SettlementError(.paymentDeclined, "\(what) was declined by Stripe: \(reason)" + (said.map { " (\($0))" } ?? ""))
        }
        if status == 429 || status >= 500 {
            return SettlementError(.railUnavailable, "\(what): Stripe answered HTTP \(status)" + (said.map { " (\($0))" } ?? ""))
        }
        var text = "Stripe refused \(what) (HTTP \(status)"
        if let code { text += ", \(code)" }
        if let param { text += ", parameter \(param)" }
        text += ")"
        if let said { text += ": \(said)" }
        return SettlementError(.railRejected, text)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
