import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Tariff
import TariffSettlement
import TariffSQLite
import Testing
@testable import TariffServer

/// A receiver of events on loopback (Hummingbird, in this process) that checks each delivery's
/// signature with the scheme service.md documents, written here from the text (not the server's
/// code): `t=UNIX_SECONDS,v1=HEX`, HEX the HMAC-SHA256 under the secret of `UNIX_SECONDS.BODY`.
final class EventReceiver: Sendable {
    struct Delivery: Sendable {
        var id: String
        var type: String
        var subject: String
        var sequence: Int
        var body: String
    }
    private struct State {
        var secret = ""
        var refuseFirst = 0
        var requests = 0
        var accepted: [Delivery] = []
        var badSignatures = 0
    }
    private let state = Mutex(State())
    let port: Int
    private let task: Task<Void, any Error>

    private init(port: Int, task: Task<Void, any Error>, refuseFirst: Int) {
        self.port = port
        self.task = task
        state.withLock { $0.refuseFirst = refuseFirst }
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var accepted: [Delivery] { state.withLock { $0.accepted } }
    var requests: Int { state.withLock { $0.requests } }
    var badSignatures: Int { state.withLock { $0.badSignatures } }
    func use(secret: String) { state.withLock { $0.secret = secret } }

    /// Checks a signature header against a body: what a receiver does with the documented scheme.
    static func verify(header: String, body: [UInt8], secret: String) -> Bool {
        var timestamp: String?, signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { return false }
            if pair[0] == "t" { timestamp = pair[1] } else if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, Int64(timestamp) != nil else { return false }
        let signed = Array((timestamp + ".").utf8) + body
        let expected = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Array(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
        return signatures.contains(expected)
    }

    static func start(port: Int = 0, refuseFirst: Int) async throws -> EventReceiver {
        let box = Mutex<EventReceiver?>(nil)
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let body = Array(buffer.readableBytesView)
            let header = request.headers[HTTPField.Name("Tariff-Signature")!] ?? ""
            guard let receiver = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return receiver.receive(header: header, body: body)
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) })
        let task = Task { try await app.runService() }
        var bound = 0
        for await value in stream { bound = value; break }
        let receiver = EventReceiver(port: bound, task: task, refuseFirst: refuseFirst)
        box.withLock { $0 = receiver }
        return receiver
    }

    private func receive(header: String, body: [UInt8]) -> Response {
        state.withLock { state in
            state.requests += 1
            guard Self.verify(header: header, body: body, secret: state.secret) else {
                state.badSignatures += 1
                return Response(status: .unauthorized)
            }
            if state.requests <= state.refuseFirst { return Response(status: .serviceUnavailable) }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any], let id = object["id"] as? String,
                  let type = object["type"] as? String, object["created"] is NSNumber, let data = object["data"] as? [String: Any],
                  let sequence = Int(id.dropFirst(4)) else { return Response(status: .badRequest) }
            let subject = (data["consumer"] as? String) ?? ("creator:" + ((data["creator"] as? String) ?? ""))
            state.accepted.append(Delivery(id: id, type: type, subject: subject, sequence: sequence, body: String(decoding: body, as: UTF8.self)))
            return Response(status: .ok)
        }
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }
}

@Suite("Webhook deliveries", .serialized)
struct WebhookDeliveryTests {
    static let start = Timestamp(rfc3339: "2026-11-02T10:00:00Z")!

    enum Ledger: String, CaseIterable, Sendable { case memory, sqlite }

    static func backend(_ ledger: Ledger) throws -> any SettlementBackend {
        switch ledger {
        case .memory: InMemoryBackend(currency: Currency(code: "USD")!)
        case .sqlite: try SQLiteBackend(path: temporaryPath("webhooks") + ".sqlite", currency: Currency(code: "USD")!)
        }
    }

    /// Runs the worker's rounds, moving the test clock 31 s whenever a round had nothing due,
    /// until `done` or 200 rounds.
    static func deliver(_ worker: WebhookDeliveryWorker, clock: ManualClock, until done: () -> Bool) async throws {
        for _ in 0..<200 where !done() {
            if try await worker.runOnce() == 0 { clock.advance(by: .seconds(31)) }
        }
    }

    @Test("a receiver refusing the first three deliveries gets every event, in order per consumer, each id once after dedup",
          arguments: Ledger.allCases)
    func refusedThenDelivered(_ ledger: Ledger) async throws {
        let receiver = try await EventReceiver.start(refuseFirst: 3)
        let server = try await TestServer.start(backend: try Self.backend(ledger), testClock: Self.start)
        let added = try await server.send("POST", "/v1/webhooks", key: server.adminKey,
                                          json: "{\"url\":\"\(receiver.url)\",\"events\":[\"balance.low\",\"credits.depleted\",\"balance.recovered\",\"execution.refused\",\"purchase.succeeded\"]}")
        #expect(added.status == 201, "\(added.body)")
        let secret = try #require(added.string("secret"))
        TestServer.secrets.withLock { _ = $0.insert(secret) }
        #expect(secret.hasPrefix("whsec_") && added.string("id")?.hasPrefix("whe_") == true)
        receiver.use(secret: secret)
        // Not for a runtime key, nor with an unknown event.
        let runtime = try await server.key(.runtime)
        #expect(try await server.send("POST", "/v1/webhooks", key: runtime, json: "{\"url\":\"\(receiver.url)\",\"events\":[\"balance.low\"]}").status == 403)
        let unknown = try await server.send("POST", "/v1/webhooks", key: server.adminKey, json: "{\"url\":\"\(receiver.url)\",\"events\":[\"balance.lo\"]}")
        #expect(unknown.status == 400 && unknown.code == "invalid_input")
        #expect(try await server.send("POST", "/v1/webhooks", key: server.adminKey, json: "{\"url\":\"ftp://x\",\"events\":[\"balance.low\"]}").status == 400)

        // cus_a: 10.00 (purchase.succeeded, balance.recovered at the 10.00 threshold), then three
        // runs: the first hold takes it below 10.00 (balance.low), the others stay below (nothing).
        // cus_b: 0.01 (purchase.succeeded only), then a reserve of the 0.02 fee: refused.
        for (consumer, amount) in [("cus_a", "10.00"), ("cus_b", "0.01")] {
            let bought = try await server.send("POST", "/v1/purchases", key: server.adminKey, json: "{\"consumer\":\"\(consumer)\",\"amount\":\"\(amount)\"}",
                                               headers: ["Idempotency-Key": "buy-\(consumer)"])
            #expect(bought.status == 201, "\(bought.body)")
        }
        for run in 1...3 {
            let hold = try await server.send("POST", "/v1/executions", key: server.adminKey,
                                             json: "{\"execution\":\"exe_a\(run)\",\"consumer\":\"cus_a\",\"agent\":\"agt_research\"}")
            #expect(hold.status == 201, "\(hold.body)")
            let settle = try await server.send("POST", "/v1/executions/exe_a\(run)/settle", key: server.adminKey,
                                               json: "{\"ended_at\":\"2026-11-02T10:00:00Z\",\"meters\":{\"cpu_ms\":100}}")
            #expect(settle.status == 200, "\(settle.body)")
        }
        let refused = try await server.send("POST", "/v1/executions", key: server.adminKey,
                                            json: "{\"execution\":\"exe_b1\",\"consumer\":\"cus_b\",\"agent\":\"agt_research\"}")
        #expect(refused.status == 402 && refused.code == "insufficient_credits", "\(refused.body)")

        let outbox = try #require(server.service.configuration.backend as? any WebhookOutbox)
        let written = try await outbox.outboxEvents(after: 0, limit: 100)
        let bySubject = Dictionary(grouping: written, by: \.subject).mapValues { $0.map(\.type).sorted() }
        #expect(bySubject == ["cus_a": ["balance.low", "balance.recovered", "purchase.succeeded"],
                              "cus_b": ["execution.refused", "purchase.succeeded"]])

        let worker = try #require(server.service.webhookWorker())
        let clock = try #require(server.service.manualClock)
        try await Self.deliver(worker, clock: clock) { Set(receiver.accepted.map(\.id)).count >= written.count }
        await worker.shutdown()
        let accepted = receiver.accepted
        #expect(receiver.requests >= written.count + 3, "three refused, then each at least once")
        #expect(receiver.badSignatures == 0)
        // Each id once after deduplication, and every event written, nothing else.
        var seen = Set<String>(), firstArrivals: [EventReceiver.Delivery] = []
        for delivery in accepted where seen.insert(delivery.id).inserted { firstArrivals.append(delivery) }
        #expect(Set(firstArrivals.map(\.id)) == Set(written.map(\.id)))
        // In the order written, per consumer.
        for subject in ["cus_a", "cus_b"] {
            let order = firstArrivals.filter { $0.subject == subject }.map(\.sequence)
            #expect(order == written.filter { $0.subject == subject }.map { Int($0.sequence) }, "\(subject): \(order)")
        }
        // Each body is the outbox's event, byte for byte.
        for delivery in firstArrivals {
            #expect(delivery.body == written.first { $0.id == delivery.id }?.body)
        }
        #expect(try await outbox.failedDeliveries().isEmpty)
        await server.stop()
        await receiver.stop()
    }

    @Test("a receiver checking signatures accepts each delivery and rejects a tampered one")
    func tamperedSignature() async throws {
        let receiver = try await EventReceiver.start(refuseFirst: 0)
        let server = try await TestServer.start(testClock: Self.start)
        let added = try await server.send("POST", "/v1/webhooks", key: server.adminKey,
                                          json: "{\"url\":\"\(receiver.url)\",\"events\":[\"purchase.succeeded\"]}")
        let secret = try #require(added.string("secret"))
        TestServer.secrets.withLock { _ = $0.insert(secret) }
        receiver.use(secret: secret)
        _ = try await server.send("POST", "/v1/purchases", key: server.adminKey, json: "{\"consumer\":\"cus_t\",\"amount\":\"5.00\"}",
                                  headers: ["Idempotency-Key": "t-1"])
        let worker = try #require(server.service.webhookWorker())
        try await Self.deliver(worker, clock: try #require(server.service.manualClock)) { !receiver.accepted.isEmpty }
        await worker.shutdown()
        let delivery = try #require(receiver.accepted.first)
        #expect(receiver.badSignatures == 0 && delivery.type == "purchase.succeeded")
        // The same signature over a body with one byte changed, or under another secret, is rejected.
        let signature = WebhookSignature.header(secret: secret, unixSeconds: 1_800_000_000, body: delivery.body)
        #expect(EventReceiver.verify(header: signature, body: Array(delivery.body.utf8), secret: secret))
        let tampered = delivery.body.replacingOccurrences(of: "5000000", with: "9000000")
        #expect(tampered != delivery.body)
        #expect(!EventReceiver.verify(header: signature, body: Array(tampered.utf8), secret: secret))
        #expect(!EventReceiver.verify(header: signature, body: Array(delivery.body.utf8), secret: secret + "x"))
        // Sent to the receiver: refused (401), not counted as a delivery.
        let answer = try await HTTP.send("POST", receiver.url, body: Data(tampered.utf8), headers: ["Tariff-Signature": signature])
        #expect(answer.status == 401 && receiver.badSignatures == 1 && receiver.accepted.count == 1)
        await server.stop()
        await receiver.stop()
    }

    @Test("deliveries that fail for 72 h are given up and listed; one that succeeds on the way is not")
    func givenUpAfter72Hours() async throws {
        let server = try await TestServer.start(testClock: Self.start)
        // A receiver that answers 503 to everything.
        let closed = try await EventReceiver.start(refuseFirst: 1_000)
        let url = closed.url
        let added = try await server.send("POST", "/v1/webhooks", key: server.adminKey, json: "{\"url\":\"\(url)\",\"events\":[\"purchase.succeeded\"]}")
        TestServer.secrets.withLock { _ = $0.insert(added.string("secret") ?? "") }
        closed.use(secret: added.string("secret") ?? "")
        _ = try await server.send("POST", "/v1/purchases", key: server.adminKey, json: "{\"consumer\":\"cus_f\",\"amount\":\"5.00\"}",
                                  headers: ["Idempotency-Key": "f-1"])
        let worker = try #require(server.service.webhookWorker())
        let clock = try #require(server.service.manualClock)
        let outbox = try #require(server.service.configuration.backend as? any WebhookOutbox)
        // Waits of 30 s, 60 s, ... 6 h: the attempt at or after 72 h of failures is the last.
        var attempts = 0
        for _ in 0..<100 {
            attempts += try await worker.runOnce()
            if try await !outbox.failedDeliveries().isEmpty { break }
            clock.advance(by: .seconds(WebhookBackoff.longestWaitSeconds))
        }
        await worker.shutdown()
        let failed = try await outbox.failedDeliveries()
        #expect(failed.count == 1 && failed.first?.event.type == "purchase.succeeded" && failed.first?.attempts == attempts)
        #expect(failed.first?.firstFailureAt == Self.start)
        // 72 h / 6 h = 12 waits after the first failure: 13 attempts.
        #expect(attempts == 13 && closed.requests == 13 && closed.badSignatures == 0)
        await server.stop()
        await closed.stop()
    }
}

/// A `tariff serve` process killed (SIGKILL) after a change and before its event was delivered:
/// the event is in the ledger's outbox, and the next server delivers it.
@Suite("Webhook deliveries across a kill", .serialized)
struct WebhookKillTests {
    @Test("a server killed between the change and the delivery delivers it after restart")
    func killedBeforeDelivery() async throws {
        let directory = temporaryPath("webhook-kill")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let adminKey = APIKeys.newSecret()
        TestServer.secrets.withLock { _ = $0.insert(adminKey) }
        try adminKey.write(toFile: directory + "/admin.key", atomically: true, encoding: .utf8)
        let ledger = "sqlite:\(directory)/ledger.sqlite"
        // The receiver's port, known before it listens: while the first server runs nothing
        // answers there, so its attempts fail (and wait 30 s of its test clock before the next).
        let probe = try await EventReceiver.start(refuseFirst: 0)
        let port = probe.port
        await probe.stop()
        let url = "http://127.0.0.1:\(port)/hook"
        // The endpoint, added by the command line (the secret printed once on standard output).
        let added = try runTariff(["webhooks", "add", url, "--events", "purchase.succeeded,balance.recovered", "--ledger", ledger])
        #expect(added.status == 0, "\(added.error)")
        let secret = added.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("whsec_") && added.error.contains("shown this once"))
        TestServer.secrets.withLock { _ = $0.insert(secret) }
        let listed = try runTariff(["webhooks", "list", "--ledger", ledger, "--format", "json"])
        #expect(listed.status == 0 && listed.output.contains(url) && !listed.output.contains(secret))

        let arguments = ["--ledger", ledger, "--admin-key-file", directory + "/admin.key", "--rail-log", directory + "/rail.log",
                         "--test-clock", "2026-11-02T10:00:00Z"]
        let first = try await ServeProcess.start(arguments, directory: directory)
        let bought = try await HTTP.send("POST", first.base + "/v1/purchases", key: adminKey, body: Data(#"{"consumer":"cus_k","amount":"25.00"}"#.utf8),
                                         headers: ["Idempotency-Key": "k-1"])
        #expect(bought.status == 201)
        first.signal(SIGKILL)
        _ = await first.wait()

        let receiver = try await EventReceiver.start(port: port, refuseFirst: 0)
        receiver.use(secret: secret)
        let second = try await ServeProcess.start(arguments, directory: directory)
        // Past any wait and lease the first server left (its clock stood at the start too).
        let moved = try await HTTP.send("POST", second.base + "/v1/clock", key: adminKey, body: Data(#"{"now":"2026-11-02T10:05:00Z"}"#.utf8))
        #expect(moved.status == 200, "\(moved.body)")
        for _ in 0..<200 where Set(receiver.accepted.map(\.id)).count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        let types = receiver.accepted.map(\.type)
        // Opening at 0: purchase.succeeded, then balance.recovered (25.00 >= 10.00), in the order written.
        #expect(Set(types) == ["purchase.succeeded", "balance.recovered"] && Set(receiver.accepted.map(\.id)).count == 2, "\(types)")
        #expect(receiver.accepted.map(\.sequence) == receiver.accepted.map(\.sequence).sorted())
        #expect(receiver.badSignatures == 0)
        await second.stop()
        await receiver.stop()
        let failures = try runTariff(["webhooks", "failures", "--ledger", ledger])
        #expect(failures.status == 0 && failures.output.contains("no failed deliveries"))
        let removed = try runTariff(["webhooks", "remove", "whe_nope", "--ledger", ledger])
        #expect(removed.status == 2)
        for log in [first.errorLog, second.errorLog] { #expect(!log.contains(secret) && !log.contains(adminKey)) }
    }
}
