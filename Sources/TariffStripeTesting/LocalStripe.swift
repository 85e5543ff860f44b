import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TariffStripe

/// localstripe (PyPI), started once per test process on 127.0.0.1 and a free port, stopped by a
/// watchdog shell when the test process exits. Tests that need it call `LocalStripe.require()`,
/// which skips them (with the reason) where it is not installed or does not start: `.ci/run`
/// installs it so CI runs them.
public final class LocalStripe: Sendable {
    public let baseURL: String
    /// localstripe accepts any secret key that looks like one.
    public static let secretKey = "sk_test_localstripe_tariff_123"

    private init(baseURL: String) { self.baseURL = baseURL }

    private static let shared: Result<LocalStripe, LocalStripeUnavailable> = start()

    struct LocalStripeUnavailable: Error, CustomStringConvertible { var description: String }

    /// The running server, or a skip that says why there is none.
    public static func require() throws -> LocalStripe {
        switch shared {
        case .success(let server): return server
        case .failure(let reason): try Test.cancel("skipped: \(reason.description)")
        }
    }

    public static func onPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `localstripe` on the PATH, else `python3 -m localstripe` when the module is installed but its
    /// script is not on the PATH (a pip --user install): (program, arguments before the flags).
    public static func command() -> (program: String, prefix: String)? {
        if let script = onPath("localstripe") { return (script, "") }
        guard let python = onPath("python3") else { return nil }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: python)
        probe.arguments = ["-c", "import localstripe"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return nil }
        probe.waitUntilExit()
        return probe.terminationStatus == 0 ? (python, "-m localstripe") : nil
    }

    private static func start() -> Result<LocalStripe, LocalStripeUnavailable> {
        guard let command = command() else {
            return .failure(LocalStripeUnavailable(description: "localstripe is not installed (pip install localstripe); .ci/run installs it"))
        }
        guard let port = freePort() else { return .failure(LocalStripeUnavailable(description: "no free loopback port for localstripe")) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // localstripe runs while this test process lives, and is killed within a second after it exits:
        // with SIGKILL, since it inherits a signal mask from the test runner under which SIGTERM never arrives.
        // $3 is "" or "-m localstripe", split into words on purpose.
        process.arguments = ["-c", "\"$0\" $3 --port \"$1\" --from-scratch >/dev/null 2>&1 & child=$!; "
                             + "while kill -0 \"$2\" 2>/dev/null; do sleep 1; done; kill -KILL $child; wait $child",
                             command.program, String(port), String(getpid()), command.prefix]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            return .failure(LocalStripeUnavailable(description: "localstripe could not be started: \(error)"))
        }
        // Up to 30 s for Python to import aiohttp and listen (seconds on a loaded 2-core machine).
        for _ in 0..<300 {
            if canConnect(port) { return .success(LocalStripe(baseURL: "http://127.0.0.1:\(port)")) }
            usleep(100_000)
        }
        return .failure(LocalStripeUnavailable(description: "localstripe did not listen on 127.0.0.1:\(port) within 30 s"))
    }

    private static func freePort() -> UInt16? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return ok ? UInt16(bigEndian: address.sin_port) : nil
    }

    private static func canConnect(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    // MARK: Fixtures made through localstripe's API

    public var client: StripeClient {
        get throws {
            try StripeClient(configuration: StripeConfiguration(apiBase: baseURL, secretKey: try StripeSecretKey(Self.secretKey),
                                                                initialBackoffMilliseconds: 50, maximumBackoffMilliseconds: 200,
                                                          totalTimeoutMilliseconds: 600_000))
        }
    }

    /// A customer with a card payment method attached: (`cus_...`, `pm_...`).
    public func customer(card number: String) async throws -> (customer: String, paymentMethod: String) {
        struct Object: Decodable { var id: String }
        let client = try client
        let nonce = UUID().uuidString
        let customer = try JSONDecoder().decode(Object.self, from: try await client.post(
            "/v1/customers", FormBody([("email", "buyer@example.com")]), idempotencyKey: "cus-\(nonce)", what: "a customer"))
        let method = try JSONDecoder().decode(Object.self, from: try await client.post(
            "/v1/payment_methods", FormBody([("type", "card"), ("card[number]", number), ("card[exp_month]", "12"), ("card[exp_year]", "2030"),
                                             ("card[cvc]", "123")]), idempotencyKey: "pm-\(nonce)", what: "a payment method"))
        _ = try await client.post("/v1/payment_methods/\(method.id)/attach", FormBody([("customer", customer.id)]),
                                  idempotencyKey: "attach-\(nonce)", what: "an attachment")
        return (customer.id, method.id)
    }

    /// `GET /v1/payment_intents/ID`: what localstripe recorded.
    public func paymentIntent(_ id: String) async throws -> (amount: Int64, currency: String, status: String) {
        struct Intent: Decodable { var amount: Int64; var currency: String; var status: String }
        var request = URLRequest(url: URL(string: "\(baseURL)/v1/payment_intents/\(id)")!)
        request.setValue("Bearer \(Self.secretKey)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        let intent = try JSONDecoder().decode(Intent.self, from: data)
        return (intent.amount, intent.currency, intent.status)
    }
}
