import ArgumentParser
import Foundation
import Logging
import Tariff
import TariffPostgres
import TariffServer
import TariffSettlement
import TariffSQLite
import TariffStripe

/// `tariff serve`: the billing layer as an HTTP service (service.md).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve balances, purchases, quotes and the execution lifecycle over HTTP (service.md).",
        discussion: """
            Every request but /healthz, /readyz, /metrics, /openapi.json and the Stripe webhook carries Authorization: Bearer KEY \
            (tariff keys create). SIGTERM or SIGINT drains and exits 0; SIGHUP recompiles the catalog (the old one stays on errors). \
            The Stripe webhook reads STRIPE_WEBHOOK_SECRET (and STRIPE_ACCOUNT_ID, the platform's account).
            """
    )

    @Option(help: "HOST:PORT to listen on (port 0: any free port).")
    var listen: String = "127.0.0.1:8080"

    @OptionGroup var ledger: LedgerOptions

    @Option(help: "The payment rail of purchases and payouts: log or stripe.")
    var rail: String = "log"

    @Option(name: .customLong("rail-log"), help: "Where the log rail writes, one JSON object a line (default: standard error).")
    var railLog: String?

    @OptionGroup var stripe: StripeRailOptions

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTPS.")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("admin-key-file"), help: "A file holding one more admin key (never printed or logged).")
    var adminKeyFile: String?

    @Flag(name: .customLong("allow-plain-http"), help: "Listen on a non-loopback address without TLS (behind a TLS-terminating proxy).")
    var allowPlainHTTP = false

    @Flag(name: .customLong("public-metrics"), help: "Answer /metrics to any client, not only loopback ones.")
    var publicMetrics = false

    @Option(name: .customLong("test-clock"), help: "Start a stopped clock at this RFC 3339 instant; POST /v1/clock moves it (tests).")
    var testClock: String?

    func validate() throws {
        guard rail == "log" || rail == "stripe" else { throw ValidationError("--rail is log or stripe") }
        if let testClock, Timestamp(rfc3339: testClock) == nil { throw ValidationError("--test-clock takes an RFC 3339 timestamp") }
        guard Self.hostAndPort(listen) != nil else { throw ValidationError("--listen is HOST:PORT, e.g. 127.0.0.1:8080") }
    }

    static func hostAndPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() throws {
        let (host, port) = Self.hostAndPort(listen)!
        let options = ListenOptions(host: host, port: port, tlsCertificate: tlsCertificate, tlsKey: tlsKey, allowPlainHTTP: allowPlainHTTP)
        do { try options.validate() } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        var adminKey: String?
        if let adminKeyFile {
            guard let text = try? String(contentsOfFile: adminKeyFile, encoding: .utf8) else {
                printError("error: cannot read --admin-key-file \(adminKeyFile)")
                throw ExitCode(2)
            }
            adminKey = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard adminKey?.isEmpty == false else {
                printError("error: --admin-key-file \(adminKeyFile) is empty")
                throw ExitCode(2)
            }
        }
        let serviceRail: ServiceRail
        do {
            serviceRail = rail == "stripe" ? .stripe(try stripe.rail()) : .log(try railLog.map { try LogRail(path: $0) } ?? LogRail())
        } catch let error as SettlementError {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let environment = ProcessInfo.processInfo.environment
        let livemode = (environment["STRIPE_SECRET_KEY"] ?? "").hasPrefix("sk_live_")
        let (backend, store) = try ledgerStep { [ledger] in try await ledger.serviceBackend() }
        var logger = Logger(label: "tariff.serve")
        logger.logLevel = .info
        let configuration = ServiceConfiguration(
            backend: backend, store: store, plansDirectory: ledger.catalog.plans, rulesDirectory: ledger.catalog.rules,
            plugins: ledger.catalog.plugins.registry, rail: serviceRail, adminKey: adminKey, publicMetrics: publicMetrics,
            testClockStart: testClock.flatMap { Timestamp(rfc3339: $0) }, webhookSecret: environment["STRIPE_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 },
            stripeAccount: environment["STRIPE_ACCOUNT_ID"].flatMap { $0.isEmpty ? nil : $0 }, livemode: livemode, logger: logger)
        let service: TariffService
        do { service = try TariffService(configuration: configuration) } catch let error as ServiceStartError {
            for diagnostic in error.diagnostics where diagnostic.severity == .error { printError(diagnostic.description) }
            printError("error: the catalog has errors; tariff serve does not start (run 'tariff check')")
            throw ExitCode(1)
        }
        let scheme = options.usesTLS ? "https" : "http"
        let shownHost = host.contains(":") ? "[\(host)]" : host
        do {
            try runBlocking {
                try await TariffHTTPServer.run(service: service, options: options) { port in
                    // Unbuffered: a supervisor (or a test) reads the port from this line at once.
                    FileHandle.standardOutput.write(Data("listening on \(scheme)://\(shownHost):\(port)\n".utf8))
                }
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        if let postgres = backend as? PostgresBackend { postgres.shutdown() }
    }
}

extension LedgerOptions {
    /// The backend and the service store beside it (the same database; `memory:` keeps keys for the process's life).
    func serviceBackend() async throws -> (any SettlementBackend, any ServiceStore) {
        let backend = try await backend()
        if let store = backend as? any ServiceStore { return (backend, store) }
        return (backend, InMemoryServiceStore(outbox: backend as? any WebhookOutbox))
    }
}
