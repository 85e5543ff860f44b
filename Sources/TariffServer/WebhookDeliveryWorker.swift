import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import Tariff
import TariffSettlement

/// `Tariff-Signature: t=UNIX_SECONDS,v1=HEX`: HEX is HMAC-SHA256 under the endpoint's secret of
/// the bytes `UNIX_SECONDS`, `.`, then the raw body (service.md).
public enum WebhookSignature {
    public static let headerName = "Tariff-Signature"

    public static func header(secret: String, unixSeconds: Int64, body: String) -> String {
        "t=\(unixSeconds),v1=" + hex(secret: secret, unixSeconds: unixSeconds, body: Array(body.utf8))
    }

    static func hex(secret: String, unixSeconds: Int64, body: [UInt8]) -> String {
        var message = Array(String(unixSeconds).utf8)
        message.append(UInt8(ascii: "."))
        message.append(contentsOf: body)
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }
}

/// Sends the outbox's deliveries (service.md, "Events out"): claims the due ones under a lease
/// (each the oldest pending of its endpoint and subject, so a consumer's events arrive in the
/// order written), POSTs each with its signature, and records delivered (any 2xx), or a retry
/// after `WebhookBackoff`'s wait, or failed once 72 h of retries have passed. At least once: a
/// server killed after the POST and before the record sends it again after its lease runs out.
///
/// HTTP through AsyncHTTPClient: the server already runs on SwiftNIO, so deliveries share its
/// event loops and a connection pool per receiver, with connect and read timeouts and redirects
/// refused (a receiver cannot point the server at another host). URLSession (FoundationNetworking,
/// the Stripe rail's client) would run each delivery through libcurl on its own threads.
public final class WebhookDeliveryWorker: Sendable {
    public let outbox: any WebhookOutbox
    /// Leases and the retry schedule (a test clock moves them).
    let clock: any SettlementClock
    /// The signature's `t`: real time, which receivers compare with their own clocks.
    let signingClock: any SettlementClock
    let owner: String
    let client: HTTPClient
    let logger: Logger
    /// A delivery's whole exchange: past it the attempt failed.
    public static let timeoutSeconds: Int64 = 10
    /// Deliveries claimed per round.
    public static let batch = 32
    /// The most of an answer read (then discarded): only the status counts.
    static let maximumAnswerBytes = 64 * 1024

    public init(outbox: any WebhookOutbox, clock: any SettlementClock, signingClock: any SettlementClock = SystemClock(), logger: Logger) {
        self.outbox = outbox
        self.clock = clock
        self.signingClock = signingClock
        self.logger = logger
        owner = "worker_" + UUID().uuidString.lowercased()
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(5), read: .seconds(Self.timeoutSeconds)))
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// One round: claims what is due and sends it; how many deliveries were attempted.
    @discardableResult
    public func runOnce() async throws -> Int {
        let now = clock.now()
        let lease = now.adding(nanoseconds: WebhookBackoff.leaseSeconds * 1_000_000_000) ?? now
        let claimed = try await outbox.claimDeliveries(now: now, owner: owner, leaseUntil: lease, limit: Self.batch)
        // Each claimed delivery is the head of its own (endpoint, subject): sending them at once keeps every order.
        await withTaskGroup(of: Void.self) { group in
            for delivery in claimed {
                group.addTask { await self.attempt(delivery) }
            }
        }
        return claimed.count
    }

    func attempt(_ delivery: WebhookDelivery) async {
        let failure = await send(delivery)
        let now = clock.now()
        let result = failure.map { WebhookBackoff.afterFailure(attempts: delivery.attempts + 1, firstFailureAt: delivery.firstFailureAt, now: now, error: $0) }
            ?? .delivered
        do {
            try await outbox.finishDelivery(id: delivery.id, owner: owner, result: result, now: now)
        } catch {
            // The lease runs out and the delivery is sent again: at least once.
            logger.warning("webhook delivery not recorded; sent again after its lease", metadata: ["event": .string(delivery.event.id)])
        }
        switch result {
        case .delivered: break
        case .retry(_, _, let error):
            logger.info("webhook delivery failed; retried", metadata: ["endpoint": .string(delivery.endpoint), "event": .string(delivery.event.id),
                                                                     "error": .string(error)])
        case .failed(_, let error):
            logger.warning("webhook delivery given up after 72 h", metadata: ["endpoint": .string(delivery.endpoint), "event": .string(delivery.event.id),
                                                                            "error": .string(error)])
        }
    }

    /// POSTs the event; nil when the receiver answered 2xx, else why not (never the secret or the body).
    func send(_ delivery: WebhookDelivery) async -> String? {
        let body = delivery.event.body
        let seconds = signingClock.now().nanosecondsSinceEpoch / 1_000_000_000
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "tariff-webhooks/1")
        request.headers.add(name: WebhookSignature.headerName, value: WebhookSignature.header(secret: delivery.secret, unixSeconds: seconds, body: body))
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(Self.timeoutSeconds))
            _ = try? await response.body.collect(upTo: Self.maximumAnswerBytes)
            return (200..<300).contains(Int(response.status.code)) ? nil : "HTTP \(response.status.code)"
        } catch {
            return "no answer (\(String(describing: type(of: error))))"
        }
    }

    /// Rounds until the task is cancelled: at once again after a full batch, else after `pollMilliseconds`.
    public func run(pollMilliseconds: Int = 1_000) async {
        while !Task.isCancelled {
            var attempted = 0
            do { attempted = try await runOnce() } catch {
                logger.warning("webhook deliveries could not be claimed; tried again", metadata: ["error": .string((error as? SettlementError)?.code.rawValue ?? "storage")])
            }
            if attempted < Self.batch { try? await Task.sleep(for: .milliseconds(pollMilliseconds)) }
        }
    }

    /// Closes the client's connections.
    public func shutdown() async {
        try? await client.shutdown()
    }
}
