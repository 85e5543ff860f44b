import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Tariff
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
/// Each exchange has its own short-lived session (`BoundedRequest`), whose delegate reads the answer
/// up to `maximumResponseBytes`; the rail makes a handful of requests per run, so a session per
/// request costs nothing that matters.
///
/// Retries: HTTP 429, every 5xx, 409 `idempotency_key_in_use` (the first attempt is still being
/// processed), timeouts and lost connections are tried again under the same key, so Stripe applies
/// the request once however many attempts reach it. Stripe's `Stripe-Should-Retry` header, when
/// present, overrides that guess. Everything else is final and mapped to a `SettlementError`.
public struct StripeClient: Sendable {
    public let configuration: StripeConfiguration

    /// - throws: `invalid_input` for a configuration out of range.
    public init(configuration: StripeConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
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
        request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key")
        return try await exchange(request, what: what)
    }

    /// `GET path?query`: the JSON of the 2xx answer (list and search reads: the look-ups before a
    /// resend). Retried like a POST; a read changes nothing, so it needs no idempotency key.
    /// - throws: as `post`.
    public func get(_ path: String, _ query: FormBody, what: String) async throws -> Data {
        let encoded = query.encoded
        guard let url = URL(string: configuration.apiBase.trimmingSuffix("/") + path + (encoded.isEmpty ? "" : "?" + encoded)) else {
            throw SettlementError(.invalidInput, "cannot form a Stripe URL for \(path)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        return try await exchange(request, what: what)
    }

    /// Sends `request` with the key and the retries and total deadline described above; the 2xx
    /// answer's body.
    func exchange(_ prepared: URLRequest, what: String) async throws -> Data {
        var request = prepared
        request.setValue("Bearer " + configuration.secretKey.value, forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        var lastFailure = ""
        // Every attempt and every wait fits in the total deadline: a Stripe that never answers
        // fails in `totalTimeoutMilliseconds` (60 s by default), not attempts x timeout + waits.
        let deadline = ContinuousClock.now + .milliseconds(configuration.totalTimeoutMilliseconds)
        var attempts = 0
        for attempt in 1...configuration.maximumAttempts {
            if attempt > 1 {
                let wait = Duration.milliseconds(configuration.backoffMilliseconds(afterAttempt: attempt - 1))
                guard ContinuousClock.now + wait < deadline else { break }
                try await Task.sleep(for: wait)
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { break }
            attempts = attempt
            request.timeoutInterval = min(Double(configuration.requestTimeoutMilliseconds) / 1_000, Self.seconds(remaining))
            let data: Data
            let response: URLResponse
            do {
                (data, response) = try await BoundedRequest.send(request, timeoutSeconds: request.timeoutInterval,
                                                                 maximumBytes: configuration.maximumResponseBytes)
            } catch let error as BoundedRequest.TooLarge {
                throw SettlementError(.railUnavailable, "Stripe's answer to \(what) is larger than \(error.limit) bytes: not read")
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
            lastFailure = configuration.secretKey.redacting("HTTP \(http.statusCode)" + (failure.code.map { " \($0)" } ?? ""))
        }
        throw SettlementError(.railUnavailable, configuration.secretKey.redacting(
            "\(what) did not reach Stripe after \(attempts) attempt\(attempts == 1 ? "" : "s") in at most \(configuration.totalTimeoutMilliseconds / 1_000) s (last: \(lastFailure)); "
            + "running it again is safe: it is sent under the same idempotency key"))
    }

    /// A duration in seconds, as URLRequest's timeout takes it (a Double: time, never money).
    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
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
        // Every field Stripe sends back may quote the key (a bad key, a key pasted in a parameter):
        // all of them are redacted, and the whole message again at the end.
        let said = message.map { key.redacting($0) }
        let code = self.code.map { key.redacting($0) }, param = self.param.map { key.redacting($0) }
        let reason = key.redacting(self.reason)
        if status == 401 || status == 403 || type == "authentication_error" || type == "permission_error" {
            // Stripe's message for a bad key quotes part of it: not repeated.
            return SettlementError(.railAuthentication, "Stripe refused the secret key for \(what) (HTTP \(status)); check STRIPE_SECRET_KEY or --stripe-key-file")
        }
        if type == "idempotency_error" {
            return SettlementError(.idempotencyConflict, key.redacting("\(what): Stripe already saw this idempotency key with other parameters" + (said.map { " (\($0))" } ?? "")))
        }
        if status == 402 || type == "card_error" || code == "card_declined" {
            return SettlementError(.paymentDeclined, key.redacting("\(what) was declined by Stripe: \(SafeText.escaping(reason))" + (said.map { " (\($0))" } ?? "")))
        }
        if status == 429 || status >= 500 {
            return SettlementError(.railUnavailable, key.redacting("\(what): Stripe answered HTTP \(status)" + (said.map { " (\($0))" } ?? "")))
        }
        var text = "Stripe refused \(what) (HTTP \(status)"
        if let code { text += ", \(code)" }
        if let param { text += ", parameter \(param)" }
        text += ")"
        if let said { text += ": \(said)" }
        return SettlementError(.railRejected, key.redacting(text))
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}

/// One HTTP exchange whose answer is read up to a bound: the body is collected as it arrives and
/// the transfer cancelled as soon as it passes `maximumBytes` (or as soon as a `Content-Length`
/// says it will), so a 3 GB answer costs at most the bound, not 3 GB.
enum BoundedRequest {
    struct TooLarge: Error { var limit: Int }

    static func send(_ request: URLRequest, timeoutSeconds: Double, maximumBytes: Int) async throws -> (Data, URLResponse) {
        let collector = Collector(limit: maximumBytes)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeoutSeconds
        configuration.timeoutIntervalForResource = timeoutSeconds
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        let session = URLSession(configuration: configuration, delegate: collector, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                collector.start(continuation)
                session.dataTask(with: request).resume()
            }
        } onCancel: {
            session.invalidateAndCancel()
        }
    }

    final class Collector: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let limit: Int
        private let lock = NSLock()
        private var data = Data()
        private var response: URLResponse?
        private var tooLarge = false
        private var continuation: CheckedContinuation<(Data, URLResponse), any Error>?

        init(limit: Int) { self.limit = limit }

        func start(_ continuation: CheckedContinuation<(Data, URLResponse), any Error>) {
            lock.withLock { self.continuation = continuation }
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
            let refuse = response.expectedContentLength > Int64(limit)
            lock.withLock {
                self.response = response
                if refuse { tooLarge = true }
            }
            completionHandler(refuse ? .cancel : .allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            let over: Bool = lock.withLock {
                if tooLarge || self.data.count + data.count > limit {
                    tooLarge = true
                    self.data = Data()
                    return true
                }
                self.data.append(data)
                return false
            }
            if over { dataTask.cancel() }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            let (continuation, result): (CheckedContinuation<(Data, URLResponse), any Error>?, Result<(Data, URLResponse), any Error>) = lock.withLock {
                let continuation = self.continuation
                self.continuation = nil
                if tooLarge { return (continuation, .failure(TooLarge(limit: limit))) }
                if let error { return (continuation, .failure(error)) }
                guard let response else { return (continuation, .failure(URLError(.badServerResponse))) }
                return (continuation, .success((data, response)))
            }
            continuation?.resume(with: result)
        }
    }
}
