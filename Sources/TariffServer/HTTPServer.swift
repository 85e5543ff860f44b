import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Where and how `tariff serve` listens.
public struct ListenOptions: Sendable {
    public var host: String
    /// 0: any free port (tests); the port taken is reported by `onListening`.
    public var port: Int
    /// PEM files of the certificate chain and its private key: HTTPS.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// A non-loopback address without TLS (behind a TLS-terminating proxy on a private network).
    public var allowPlainHTTP: Bool
    public var idleTimeoutSeconds: Int64
    public var headerTimeoutSeconds: Int64
    /// How long SIGTERM/SIGINT wait for requests in flight.
    public var drainSeconds: Int64

    public init(host: String = "127.0.0.1", port: Int = 8080, tlsCertificate: String? = nil, tlsKey: String? = nil, allowPlainHTTP: Bool = false,
                idleTimeoutSeconds: Int64 = 60, headerTimeoutSeconds: Int64 = 10, drainSeconds: Int64 = 30) {
        self.host = host
        self.port = port
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.allowPlainHTTP = allowPlainHTTP
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.drainSeconds = drainSeconds
    }

    public var usesTLS: Bool { tlsCertificate != nil }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// - throws: `ListenError` for half a TLS pair, or a non-loopback address in plain HTTP without `--allow-plain-http`.
    public func validate() throws {
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ListenError("--tls-cert and --tls-key go together") }
        guard (0...65_535).contains(port) else { throw ListenError("a port is 0 to 65535") }
        if !usesTLS && !allowPlainHTTP && !Self.isLoopback(host) {
            throw ListenError("refusing to listen on \(host) without TLS: give --tls-cert and --tls-key, or --allow-plain-http behind a TLS-terminating proxy")
        }
    }
}

public struct ListenError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The request context: Hummingbird's core storage and the peer's address (for `/metrics`).
struct ServiceRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteIsLoopback: Bool

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        switch source.channel.remoteAddress {
        case .v4(let address)?: remoteIsLoopback = address.host.hasPrefix("127.")
        case .v6(let address)?: remoteIsLoopback = address.host == "::1" || address.host.hasPrefix("::ffff:127.")
        case .unixDomainSocket?: remoteIsLoopback = true
        default: remoteIsLoopback = false
        }
    }
}

/// The HTTP face of a `TariffService` on Hummingbird 2.
public enum TariffHTTPServer {
    /// Builds the Hummingbird application.
    static func application(service: TariffService, options: ListenOptions,
                            onListening: @escaping @Sendable (Int) -> Void) throws -> some ApplicationProtocol {
        try options.validate()
        let headerSeconds = options.headerTimeoutSeconds
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [HeaderDeadlineHandler(seconds: headerSeconds)],
                                               idleTimeout: .seconds(options.idleTimeoutSeconds))
        var server: HTTPServerBuilder = .http1(configuration: http1)
        if let certificate = options.tlsCertificate, let key = options.tlsKey {
            let tls: TLSConfiguration
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
                tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            } catch {
                throw ListenError("cannot read the TLS certificate or key: \(error)")
            }
            server = try .tls(server, tlsConfiguration: tls)
        }
        let usesTLS = options.usesTLS
        let responder = CallbackResponder<ServiceRequestContext> { request, context in
            await Self.respond(service: service, request: request, context: context, isTLS: usesTLS)
        }
        // Hummingbird's own logger stays quiet: the service writes its one line per request. Its
        // messages at `critical` go to the service's logger; it sets a request id in the logger's
        // metadata for every request, which a stream handler re-renders each time (~4% of a
        // balance request's CPU in profiles), so the handler here only stores it.
        let quiet = Logger(label: "tariff.serve.http") { _ in CriticalOnlyLogHandler(target: service.configuration.logger) }
        return Application(responder: responder, server: server,
                           configuration: ApplicationConfiguration(address: .hostname(options.host, port: options.port), serverName: nil),
                           onServerRunning: { channel in onListening(channel.localAddress?.port ?? options.port) },
                           logger: quiet)
    }

    /// Runs until SIGTERM or SIGINT (then drains: no new connections, requests in flight finish,
    /// up to `drainSeconds`), reloading the catalog on SIGHUP.
    public static func run(service: TariffService, options: ListenOptions, onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = try application(service: service, options: options, onListening: onListening)
        var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: service.configuration.logger)
        configuration.maximumGracefulShutdownDuration = .seconds(options.drainSeconds)
        let group = ServiceGroup(configuration: configuration)
        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    let compilation = service.reloadCatalog()
                    service.configuration.logger.notice("catalog reload on SIGHUP", metadata: [
                        "result": .string(compilation.catalog == nil ? "errors (the previous catalog keeps pricing)" : "ok"),
                        "errors": .stringConvertible(compilation.errorCount),
                    ])
                }
            }
            // The period clock (service.md): fees and closes charged as time passes. A test clock
            // moves only by `POST /v1/clock`, which runs it itself.
            if service.manualClock == nil {
                tasks.addTask { await service.sweepPeriodClock(everySeconds: TariffService.clockSweepSeconds) }
            }
            // Events out (service.md): the outbox's deliveries, retried on the service's clock.
            tasks.addTask { await service.deliverWebhooks() }
            try await group.run()
            tasks.cancelAll()
        }
    }

    /// Runs until the calling task is cancelled (tests: a server per test, in-process).
    public static func runUntilCancelled(service: TariffService, options: ListenOptions, onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = try application(service: service, options: options, onListening: onListening)
        try await app.run()
    }

    /// A request id: the client's when it is a plain token, else this process's random prefix and a
    /// counter (unique, and no system call per request: reading the kernel's random source for
    /// each request showed in profiles).
    static func requestID(_ incoming: String?) -> String {
        if let incoming, (1...128).contains(incoming.utf8.count),
           incoming.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F }) {
            return incoming
        }
        let count = requestCounter.withLock { value -> UInt64 in
            value &+= 1
            return value
        }
        let suffix = String(count, radix: 16)
        return requestPrefix + String(repeating: "0", count: max(0, 8 - suffix.count)) + suffix
    }

    static let requestPrefix: String = {
        var generator = SystemRandomNumberGenerator()
        let bits = String(generator.next() as UInt64, radix: 16)
        return String(repeating: "0", count: 16 - bits.count) + bits
    }()
    static let requestCounter = Mutex<UInt64>(0)

    static func respond(service: TariffService, request: Request, context: ServiceRequestContext, isTLS: Bool) async -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
        }
        // HTTP/1's Host arrives as the request's authority, not among its fields.
        if headers["host"] == nil, let authority = request.head.authority { headers["host"] = authority }
        let requestID = requestID(headers["x-request-id"])
        var query: [(String, String)] = []
        for (name, value) in request.uri.queryParameters { query.append((String(name), String(value))) }
        let declaredLength = headers["content-length"].flatMap { Int($0) }
        let body = request.body
        let serviceRequest = ServiceRequest(
            method: request.method.rawValue, path: request.uri.path, query: query, headers: headers, remoteIsLoopback: context.remoteIsLoopback,
            readBody: {
                if let declaredLength, declaredLength > TariffService.maximumBodyBytes { throw Self.tooLarge }
                var bytes: [UInt8] = []
                for try await buffer in body {
                    guard bytes.count + buffer.readableBytes <= TariffService.maximumBodyBytes else { throw Self.tooLarge }
                    bytes.append(contentsOf: buffer.readableBytesView)
                }
                return bytes
            }, isTLS: isTLS)
        let (answer, route) = await service.handle(serviceRequest)
        var fields = HTTPFields()
        fields[.contentType] = answer.contentType
        fields[HTTPField.Name("X-Request-Id")!] = requestID
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        if answer.status == 413 { fields[.connection] = "close" }
        let elapsed = Int64(DispatchTime.now().uptimeNanoseconds - started)
        service.metrics.request(route: route, method: request.method.rawValue, status: answer.status, nanoseconds: elapsed)
        service.configuration.logger.info("request", metadata: [
            "method": .string(request.method.rawValue), "route": .string(route), "status": .stringConvertible(answer.status),
            "duration_ms": .string(Self.milliseconds(elapsed)), "request_id": .string(requestID),
        ])
        return Response(status: HTTPResponse.Status(code: answer.status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body)))
    }

    /// `1.234` from nanoseconds, in integers.
    static func milliseconds(_ nanoseconds: Int64) -> String {
        let micros = max(nanoseconds, 0) / 1_000
        let fraction = String(micros % 1_000)
        return "\(micros / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static let tooLarge = APIError(413, "body_too_large", "a body is at most 1 MiB")
}

/// Hummingbird's logger: forwards `critical` messages to the service's logger and only stores
/// metadata (Hummingbird sets a request id per request; nothing below `critical` is written).
struct CriticalOnlyLogHandler: LogHandler {
    let target: Logger
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level {
        get { .critical }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level >= .critical else { return }
        target.log(level: event.level, event.message, metadata: metadata.merging(event.metadata ?? [:]) { $1 }, source: event.source,
                   file: event.file, function: event.function, line: event.line)
    }
}
