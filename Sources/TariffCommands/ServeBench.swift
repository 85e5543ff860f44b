import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Tariff
import TariffServer
import TariffSettlement
import TariffSQLite

/// `tariff bench serve` (issue 11): reserve -> settle lifecycles over HTTP/1.1 keep-alive on
/// loopback against a `tariff serve` in this process on a durable SQLite ledger, next to the
/// in-process `ledger-sqlite` figure of the same run; and `GET /v1/balance` requests per second.
///
/// The load generator runs on the same machine: lifecycles from blocking-socket client threads
/// (one connection each, a request at a time, so a lifecycle's latency is what a runtime sees),
/// balances from wrk when it is installed (else from the same client threads).
enum ServeBench {
    static let consumers = 1_000

    static func run(_ catalog: CompiledCatalog, plans: String, rules: String, connections: Int, seconds: Int, ledgerLifecycles: Int) throws -> [BenchmarkResult] {
        let inProcess = try LedgerBench.sqlite(catalog, lifecycles: ledgerLifecycles, repetitions: 1, seed: 7)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-bench-serve-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        guard let agent = catalog.planIDs.lazy.compactMap({ id -> String? in
            guard let handle = catalog.versions(of: id).last else { return nil }
            let plan = catalog.plan(handle)
            return plan.model == "per_call" && plan.isDefault && plan.currency.code == "USD" ? plan.agent : nil
        }).first else { throw InputError("the serve benchmark needs an agent with a default per-call plan in USD") }

        var generator = SystemRandomNumberGenerator()
        let adminKey = "tk_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let backend = try SQLiteBackend(path: directory.appendingPathComponent("serve.sqlite").path, currency: Currency(code: "USD")!, durability: .full)
        let railLog = try LogRail(path: directory.appendingPathComponent("rail.log").path)
        var quiet = Logger(label: "tariff.bench.serve")
        quiet.logLevel = .critical
        let service = try TariffService(configuration: ServiceConfiguration(backend: backend, store: backend, plansDirectory: plans, rulesDirectory: rules,
                                                                             rail: .log(railLog), adminKey: adminKey, logger: quiet))
        let port = Mutex(0)
        let server = Task { try await TariffHTTPServer.runUntilCancelled(service: service, options: ListenOptions(port: 0)) { found in port.withLock { $0 = found } } }
        defer { server.cancel() }
        while port.withLock({ $0 }) == 0 { usleep(10_000) }
        let listening = port.withLock { $0 }
        try runBlocking {
            let settlement = Settlement(backend: backend, catalog: catalog)
            for consumer in 0..<consumers {
                try await settlement.purchase(consumer: "cus_\(consumer)", amount: Money(micros: 100_000 * 1_000_000), idempotencyKey: "bench-\(consumer)")
            }
        }

        // Lifecycles: a warm-up second, then the measured run.
        _ = try lifecycles(port: listening, key: adminKey, agent: agent, connections: connections, seconds: 1, tag: "warm")
        let measured = try lifecycles(port: listening, key: adminKey, agent: agent, connections: connections, seconds: seconds, tag: "run")
        let rate = Double(measured.count) / measured.elapsed
        let sorted = measured.latencies.sorted()
        func percentile(_ p: Int) -> Double { sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, sorted.count * p / 100)]) / 1e6 }
        let share = Int(rate / Double(max(inProcess.value, 1)) * 100)

        // Balances: wrk when installed.
        let balances = try balanceRate(port: listening, key: adminKey, connections: connections, seconds: seconds, directory: directory)
        let workloadCommon = "loopback, HTTP/1.1 keep-alive, \(connections) connections, SQLite WAL synchronous=FULL; the load generator shares the machine's \(ProcessInfo.processInfo.activeProcessorCount) cores with the server"
        return [
            inProcess,
            BenchmarkResult(name: "serve-lifecycles", unit: "lifecycles/s", value: Int(rate), target: inProcess.value / 2, higherIsBetter: true,
                            allocationsPerExecution: nil,
                            workload: "reserve -> settle over HTTP (POST /v1/executions, POST /v1/executions/{id}/settle), \(measured.count) lifecycles in \(seconds) s over \(consumers) consumers; \(workloadCommon); target: 50% of ledger-sqlite in this run",
                            extraRequirementMet: measured.failures == 0,
                            extra: [("percent_of_ledger_sqlite", .integer(Int64(share))), ("p50_ms", .number(String(format: "%.3f", percentile(50)))),
                                    ("p99_ms", .number(String(format: "%.3f", percentile(99)))), ("failures", .integer(Int64(measured.failures)))]),
            BenchmarkResult(name: "serve-lifecycle-p50", unit: "µs", value: Int(percentile(50) * 1000), target: 10_000, higherIsBetter: false,
                            allocationsPerExecution: nil, workload: "latency of one reserve -> settle lifecycle (two requests) seen by a client", extraRequirementMet: true),
            BenchmarkResult(name: "serve-lifecycle-p99", unit: "µs", value: Int(percentile(99) * 1000), target: 50_000, higherIsBetter: false,
                            allocationsPerExecution: nil, workload: "latency of one reserve -> settle lifecycle (two requests) seen by a client", extraRequirementMet: true),
            BenchmarkResult(name: "serve-balance", unit: "requests/s", value: Int(balances.rate), target: 20_000, higherIsBetter: true, allocationsPerExecution: nil,
                            workload: "GET /v1/balance?consumer=cus_1 by \(balances.tool); \(workloadCommon)", extraRequirementMet: true),
        ]
    }

    struct Measured {
        var count: Int
        var failures: Int
        var elapsed: Double
        var latencies: [UInt64]
    }

    /// Client threads, one keep-alive connection each, running lifecycles until the time is up.
    static func lifecycles(port: Int, key: String, agent: String, connections: Int, seconds: Int, tag: String) throws -> Measured {
        let results = Mutex<[(count: Int, failures: Int, latencies: [UInt64])]>([])
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds) * 1_000_000_000
        for worker in 0..<connections {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                var count = 0, failures = 0
                var latencies: [UInt64] = []
                latencies.reserveCapacity(4_096)
                guard let connection = LoopbackConnection(port: port) else {
                    results.withLock { $0.append((0, 1, [])) }
                    return
                }
                var index = 0
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    let execution = "\(tag)_\(worker)_\(index)"
                    let consumer = "cus_\((worker * 7919 + index) % consumers)"
                    let began = DispatchTime.now().uptimeNanoseconds
                    let reserve = connection.exchange(method: "POST", path: "/v1/executions", key: key,
                                                      body: "{\"execution\":\"\(execution)\",\"consumer\":\"\(consumer)\",\"agent\":\"\(agent)\"}")
                    let settle = connection.exchange(method: "POST", path: "/v1/executions/\(execution)/settle", key: key,
                                                     body: "{\"ended_at\":\"2026-11-02T10:00:00Z\",\"meters\":{\"cpu_ms\":1200}}")
                    if reserve == 201 && settle == 200 {
                        count += 1
                        latencies.append(DispatchTime.now().uptimeNanoseconds - began)
                    } else {
                        failures += 1
                        if reserve == nil || settle == nil { break }
                    }
                    index += 1
                }
                results.withLock { $0.append((count, failures, latencies)) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let all = results.withLock { $0 }
        return Measured(count: all.reduce(0) { $0 + $1.count }, failures: all.reduce(0) { $0 + $1.failures }, elapsed: elapsed,
                        latencies: all.flatMap(\.latencies))
    }

    static func balanceRate(port: Int, key: String, connections: Int, seconds: Int, directory: URL) throws -> (rate: Double, tool: String) {
        let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first { FileManager.default.isExecutableFile(atPath: $0) }
        if let wrk {
            // The key goes in a script file (mode 0600), not on a command line other users could read.
            let script = directory.appendingPathComponent("auth.lua").path
            FileManager.default.createFile(atPath: script, contents: Data("wrk.headers[\"Authorization\"] = \"Bearer \(key)\"\n".utf8),
                                           attributes: [.posixPermissions: 0o600])
            let process = Process()
            process.executableURL = URL(fileURLWithPath: wrk)
            process.arguments = ["-t", "2", "-c", String(connections), "-d", "\(seconds)s", "-s", script, "http://127.0.0.1:\(port)/v1/balance?consumer=cus_1"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let non2xx = text.split(separator: "\n").first { $0.contains("Non-2xx") }
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
               let rate = Double(line.dropFirst("Requests/sec:".count).trimmingCharacters(in: .whitespaces)), non2xx == nil {
                return (rate, "wrk (2 threads)")
            }
        }
        // No wrk: the client threads.
        let count = Mutex(0)
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds) * 1_000_000_000
        for _ in 0..<connections {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let connection = LoopbackConnection(port: port) else { return }
                var done = 0
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    guard connection.exchange(method: "GET", path: "/v1/balance?consumer=cus_1", key: key, body: nil) == 200 else { break }
                    done += 1
                }
                count.withLock { $0 += done }
            }.start()
        }
        group.wait()
        return (Double(count.withLock { $0 }) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9), "Swift client threads (wrk is not installed)")
    }
}

/// One blocking HTTP/1.1 keep-alive connection to 127.0.0.1 (the benchmark's client).
final class LoopbackConnection {
    let socket: Int32
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    private var pending: [UInt8] = []

    init?(port: Int) {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var one: Int32 = 1
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if connected != 0 {
            close(socket)
            return nil
        }
    }

    deinit { close(socket) }

    /// Sends one request and reads its whole answer; the status, or nil when the connection failed.
    func exchange(method: String, path: String, key: String, body: String?) -> Int? {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\n"
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { request += "\r\n" }
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return nil }
            sent += written
        }
        // Read the head, then Content-Length bytes of body.
        while true {
            if let end = headEnd() {
                let head = String(decoding: pending[..<end], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 "), let status = Int(head.dropFirst(9).prefix(3)) else { return nil }
                var length = 0
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
                while pending.count < end + 4 + length { guard fill() else { return nil } }
                pending.removeFirst(end + 4 + length)
                return status
            }
            guard fill() else { return nil }
        }
    }

    private func headEnd() -> Int? {
        guard pending.count >= 4 else { return nil }
        for index in 0...(pending.count - 4) where pending[index] == 13 && pending[index + 1] == 10 && pending[index + 2] == 13 && pending[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func fill() -> Bool {
        let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        pending.append(contentsOf: buffer[0..<count])
        return true
    }
}
