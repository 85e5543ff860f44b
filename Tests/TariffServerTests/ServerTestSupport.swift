import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Synchronization
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement
import TariffSQLite

/// The repository's root (for the sample catalog).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Log lines captured from a server (to check no secret ever reaches them).
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "tariff.serve.test") { _ in CapturingHandler(logs: self) }
    }
}

struct CapturingHandler: LogHandler {
    let logs: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        logs.append("\(level) \(message) \(merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}

/// An HTTP answer as the client saw it.
struct Answer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    /// A string field of the JSON body (amounts are strings).
    func string(_ key: String) -> String? { json?[key] as? String }
    var code: String? { string("code") }
}

/// A `tariff serve` in this process on a free loopback port, over a ledger the test chooses.
final class TestServer: Sendable {
    let service: TariffService
    let port: Int
    let logs: CapturedLogs
    let adminKey: String
    private let task: Task<Void, any Error>

    /// Every secret a test handed to a server, checked against its logs and answers.
    static let secrets = Mutex<Set<String>>([])

    static func start(backend: (any SettlementBackend)? = nil, store: (any ServiceStore)? = nil, testClock: Timestamp? = nil,
                      webhookSecret: String? = nil, stripeAccount: String? = nil, rail: ServiceRail? = nil,
                      plans: String = repositoryRoot + "/plans", rules: String = repositoryRoot + "/rules",
                      keyCacheMilliseconds: UInt64 = 1_000, options: ListenOptions = ListenOptions(port: 0)) async throws -> TestServer {
        let backend = backend ?? InMemoryBackend(currency: Currency(code: "USD")!)
        let store = store ?? (backend as? any ServiceStore) ?? InMemoryServiceStore(outbox: backend as? any WebhookOutbox)
        let logs = CapturedLogs()
        let adminKey = APIKeys.newSecret()
        secrets.withLock { _ = $0.insert(adminKey) }
        if let webhookSecret { secrets.withLock { _ = $0.insert(webhookSecret) } }
        let railLog = try LogRail(path: NSTemporaryDirectory() + "tariff-serve-rail-\(UUID().uuidString).log")
        let configuration = ServiceConfiguration(backend: backend, store: store, plansDirectory: plans, rulesDirectory: rules,
                                                 rail: rail ?? .log(railLog),
                                                 adminKey: adminKey, testClockStart: testClock, webhookSecret: webhookSecret, stripeAccount: stripeAccount,
                                                 logger: logs.logger, keyCacheMilliseconds: keyCacheMilliseconds)
        let service = try TariffService(configuration: configuration)
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await TariffHTTPServer.runUntilCancelled(service: service, options: options) { continuation.yield($0) } }
        var port = 0
        for await value in stream { port = value; break }
        return TestServer(service: service, port: port, logs: logs, adminKey: adminKey, task: task)
    }

    private init(service: TariffService, port: Int, logs: CapturedLogs, adminKey: String, task: Task<Void, any Error>) {
        self.service = service
        self.port = port
        self.logs = logs
        self.adminKey = adminKey
        self.task = task
    }

    /// Stops the server and checks that no secret reached its logs.
    func stop() async {
        task.cancel()
        _ = await task.result
        let secrets = Self.secrets.withLock { $0 }
        for line in logs.all {
            for secret in secrets { #expect(!line.contains(secret), "a secret reached the log: \(line.prefix(80))") }
            #expect(!line.lowercased().contains("bearer "), "an Authorization value reached the log")
        }
    }

    /// Creates a key in the server's store (its secret registered for the log check).
    func key(_ role: APIKeyRecord.Role, consumer: String? = nil) async throws -> String {
        let (_, secret) = try await APIKeys.create(role: role, consumer: consumer, name: "test", in: service.configuration.store, now: SystemClock().now())
        Self.secrets.withLock { _ = $0.insert(secret) }
        return secret
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func send(_ method: String, _ path: String, key: String? = nil, json: String? = nil, headers: [String: String] = [:],
              contentType: String? = "application/json") async throws -> Answer {
        try await HTTP.send(method, base + path, key: key, body: json.map { Data($0.utf8) }, headers: headers, contentType: contentType)
    }
}

/// URLSession (FoundationNetworking), one ephemeral session: a real HTTP/1.1 client over loopback.
enum HTTP {
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        // The race tests run 64 clients at once.
        configuration.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: configuration)
    }()

    static func send(_ method: String, _ url: String, key: String? = nil, body: Data? = nil, headers: [String: String] = [:],
                     contentType: String? = "application/json") async throws -> Answer {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields[String(describing: name).lowercased()] = String(describing: value) }
        let answer = Answer(status: http.statusCode, headers: fields, body: String(decoding: data, as: UTF8.self))
        // Every answer must carry one of the statuses the document lists for its operation.
        if let path = URL(string: url)?.path, let template = Route.match(path: path, in: Route.routes(testClock: true)).first(where: { $0.route.method == method })?.route.template {
            #expect(OpenAPIDocumentIndex.shared.allows(method: method, template: template, status: answer.status),
                    "\(method) \(template) answered \(answer.status), which the OpenAPI document does not list")
        }
        let secrets = TestServer.secrets.withLock { $0 }
        for secret in secrets { #expect(!answer.body.contains(secret), "a secret reached an answer") }
        return answer
    }
}

/// The document's operations and their statuses.
final class OpenAPIDocumentIndex: Sendable {
    static let shared = OpenAPIDocumentIndex()
    /// "METHOD template" -> statuses.
    let operations: [String: Set<Int>]

    init() {
        var operations: [String: Set<Int>] = [:]
        let document = (try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8))) as? [String: Any] ?? [:]
        for (path, item) in document["paths"] as? [String: Any] ?? [:] {
            for (method, operation) in item as? [String: Any] ?? [:] {
                let responses = (operation as? [String: Any])?["responses"] as? [String: Any] ?? [:]
                operations["\(method.uppercased()) \(path)"] = Set(responses.keys.compactMap { Int($0) })
            }
        }
        self.operations = operations
    }

    func allows(method: String, template: String, status: Int) -> Bool {
        if status == 405 { return true }
        return operations["\(method) \(template)"]?.contains(status) ?? false
    }
}

func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "tariff-serve-\(UUID().uuidString)-\(name)"
}
