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
/// The load generator runs on the same machine: lifecycles from one client thread per core, each
/// driving its share of the connections with poll(2), a request at a time on each connection (so a
/// lifecycle's latency is what a runtime sees); balances from wrk when it is installed (else from
/// blocking client threads, one per connection).
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
        let cpuPerLifecycle = measured.count == 0 ? 0 : Int(measured.cpuNanoseconds / UInt64(measured.count) / 1_000)

        // Balances: wrk when installed.
        let balances = try balanceRate(port: listening, key: adminKey, connections: connections, seconds: seconds, directory: directory)
        let workloadCommon = "loopback, HTTP/1.1 keep-alive, \(connections) connections, SQLite WAL synchronous=FULL; the load generator shares the machine's \(ProcessInfo.processInfo.activeProcessorCount) cores with the server"
        return [
            inProcess,
            BenchmarkResult(name: "serve-lifecycles", unit: "lifecycles/s", value: Int(rate), target: inProcess.value / 2, higherIsBetter: true,
                            allocationsPerExecution: nil,
                            workload: "reserve -> settle over HTTP (POST /v1/executions, POST /v1/executions/{id}/settle), \(measured.count) lifecycles in \(seconds) s over \(consumers) consumers, \(cpuPerLifecycle) µs of CPU (server and client) each; \(workloadCommon); target: 50% of ledger-sqlite in this run",
                            extraRequirementMet: measured.failures == 0,
                            extra: [("percent_of_ledger_sqlite", .integer(Int64(share))), ("p50_ms", .number(String(format: "%.3f", percentile(50)))),
                                    ("p99_ms", .number(String(format: "%.3f", percentile(99)))), ("failures", .integer(Int64(measured.failures))),
                                    ("cpu_us_per_lifecycle", .integer(Int64(cpuPerLifecycle)))]),
            BenchmarkResult(name: "serve-lifecycle-p50", unit: "µs", value: Int(percentile(50) * 1000), target: 10_000, higherIsBetter: false,
                            allocationsPerExecution: nil, workload: "latency of one reserve -> settle lifecycle (two requests) seen by a client", extraRequirementMet: true),
            BenchmarkResult(name: "serve-lifecycle-p99", unit: "µs", value: Int(percentile(99) * 1000), target: 50_000, higherIsBetter: false,
                            allocationsPerExecution: nil, workload: "latency of one reserve -> settle lifecycle (two requests) seen by a client", extraRequirementMet: true),
            BenchmarkResult(name: "serve-balance", unit: "requests/s", value: Int(balances.rate), target: 20_000, higherIsBetter: true, allocationsPerExecution: nil,
                            workload: "GET /v1/balance?consumer=cus_1 by \(balances.tool), \(balances.cpuMicrosecondsPerRequest) µs of this process's CPU each; \(workloadCommon)",
                            extraRequirementMet: true, extra: [("cpu_us_per_request", .integer(Int64(balances.cpuMicrosecondsPerRequest)))]),
        ]
    }

    struct Measured {
        var count: Int
        var failures: Int
        var elapsed: Double
        var latencies: [UInt64]
        /// CPU time of the whole process (server and client threads) over the run: on a shared
        /// machine the figure that depends least on the neighbours.
        var cpuNanoseconds: UInt64 = 0
    }

    /// CPU time this process has used, all threads.
    static func processCPUNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Lifecycles from a few client threads (one per core at most), each driving its share of the
    /// keep-alive connections with poll(2), a request at a time on each connection. A thread per
    /// connection (64 blocking threads) paid a wake-up and a context switch for every answer on the
    /// same two cores as the server; here one poll returns every connection answered since the last.
    static func lifecycles(port: Int, key: String, agent: String, connections: Int, seconds: Int, tag: String) throws -> Measured {
        let results = Mutex<[(count: Int, failures: Int, latencies: [UInt64])]>([])
        let group = DispatchGroup()
        let cpuBefore = processCPUNanoseconds()
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds) * 1_000_000_000
        let threads = max(1, min(connections, ProcessInfo.processInfo.activeProcessorCount))
        for thread in 0..<threads {
            let owned = Array(stride(from: thread, to: connections, by: threads))
            group.enter()
            let worker = Thread {
                defer { group.leave() }
                let outcome = LifecycleClient(port: port, key: key, agent: agent, workers: owned, tag: tag).run(until: deadline)
                results.withLock { $0.append(outcome) }
            }
            worker.stackSize = 1 << 20
            worker.start()
        }
        group.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let all = results.withLock { $0 }
        return Measured(count: all.reduce(0) { $0 + $1.count }, failures: all.reduce(0) { $0 + $1.failures }, elapsed: elapsed,
                        latencies: all.flatMap(\.latencies), cpuNanoseconds: processCPUNanoseconds() - cpuBefore)
    }

    /// Balances per second, by wrk when installed (then the CPU per request is the server's alone),
    /// else by the client threads (server and client).
    static func balanceRate(port: Int, key: String, connections: Int, seconds: Int, directory: URL) throws -> (rate: Double, tool: String, cpuMicrosecondsPerRequest: Int) {
        let cpuBefore = processCPUNanoseconds()
        let measured = try balanceRequests(port: port, key: key, connections: connections, seconds: seconds, directory: directory)
        let requests = measured.rate * Double(seconds)
        let cpu = requests < 1 ? 0 : Int(Double(processCPUNanoseconds() - cpuBefore) / requests / 1_000)
        return (measured.rate, measured.tool, cpu)
    }

    static func balanceRequests(port: Int, key: String, connections: Int, seconds: Int, directory: URL) throws -> (rate: Double, tool: String) {
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
        guard send(method: method, path: path, key: key, body: body) else { return nil }
        while true {
            switch receive(waiting: true) {
            case .answered(let status): return status
            case .failed: return nil
            case .partial: continue
            }
        }
    }

    /// Sends one request whole (small requests on loopback: one `send`, as a rule).
    func send(method: String, path: String, key: String, body: String?) -> Bool {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\n"
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { request += "\r\n" }
        return request.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            var sent = 0
            while sent < bytes.count {
                let written = Glibc.send(socket, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
                guard written > 0 else { return false }
                sent += written
            }
            return true
        } ?? false
    }

    enum Received { case answered(Int), partial, failed }

    /// Reads what has arrived (waiting for it when `waiting`, else only what is there) and takes one
    /// whole answer off the front: its status.
    func receive(waiting: Bool = false) -> Received {
        if let status = takeAnswer() { return status }
        let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, waiting ? 0 : Int32(MSG_DONTWAIT)) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .partial }
        guard count > 0 else { return .failed }
        pending.append(contentsOf: buffer[0..<count])
        return takeAnswer() ?? .partial
    }

    /// The first answer in `pending` when it arrived whole (removed), by its bytes: the status line,
    /// then `Content-Length` bytes of body after the head.
    private func takeAnswer() -> Received? {
        let found = pending.withUnsafeBufferPointer { bytes -> (status: Int, total: Int)?? in
            guard bytes.count >= 16 else { return .some(nil) }
            var end = -1
            var index = 0
            while index + 3 < bytes.count {
                if bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 { end = index; break }
                index += 1
            }
            guard end >= 0 else { return .some(nil) }
            // "HTTP/1.1 201 ..."
            let prefix: [UInt8] = Array("HTTP/1.1 ".utf8)
            guard end >= 12, (0..<9).allSatisfy({ bytes[$0] == prefix[$0] }) else { return nil }
            var status = 0
            for offset in 9..<12 {
                let digit = Int(bytes[offset]) - 48
                guard (0...9).contains(digit) else { return nil }
                status = status * 10 + digit
            }
            // Content-Length, its name in any case, at the start of a line of the head.
            let name: [UInt8] = Array("\r\ncontent-length:".utf8)
            var length = 0
            var line = 0
            while line + name.count <= end + 2 {
                if (0..<name.count).allSatisfy({ (bytes[line + $0] | (bytes[line + $0] >= 65 && bytes[line + $0] <= 90 ? 0x20 : 0)) == name[$0] }) {
                    var digit = line + name.count
                    while digit < end, bytes[digit] == 32 { digit += 1 }
                    while digit < end, bytes[digit] >= 48, bytes[digit] <= 57 {
                        length = length * 10 + Int(bytes[digit]) - 48
                        digit += 1
                    }
                    break
                }
                line += 1
            }
            let total = end + 4 + length
            return bytes.count >= total ? (status, total) : .some(nil)
        }
        switch found {
        case .none: return .failed
        case .some(.none): return nil
        case .some(.some(let answer)):
            pending.removeFirst(answer.total)
            return .answered(answer.status)
        }
    }
}

/// One client thread's connections, each running reserve -> settle lifecycles one request at a
/// time, multiplexed with poll(2).
struct LifecycleClient {
    let port: Int
    let key: String
    let agent: String
    /// The worker numbers (one connection each) this thread drives: they name the executions.
    let workers: [Int]
    let tag: String

    private struct Slot {
        let connection: LoopbackConnection
        let worker: Int
        var index = 0
        var settling = false
        var began: UInt64 = 0
    }

    func run(until deadline: UInt64) -> (count: Int, failures: Int, latencies: [UInt64]) {
        var count = 0, failures = 0
        var latencies: [UInt64] = []
        latencies.reserveCapacity(65_536)
        var slots: [Slot] = []
        for worker in workers {
            guard let connection = LoopbackConnection(port: port) else { failures += 1; continue }
            slots.append(Slot(connection: connection, worker: worker))
        }
        var polled = slots.map { pollfd(fd: $0.connection.socket, events: Int16(POLLIN), revents: 0) }
        var live = slots.count
        var open = [Bool](repeating: true, count: slots.count)
        func close(_ index: Int) {
            open[index] = false
            polled[index].fd = -1
            live -= 1
        }
        func sendNext(_ index: Int) {
            let slot = slots[index]
            let execution = "\(tag)_\(slot.worker)_\(slot.index)"
            let sent: Bool
            if slot.settling {
                sent = slot.connection.send(method: "POST", path: "/v1/executions/\(execution)/settle", key: key,
                                            body: "{\"ended_at\":\"2026-11-02T10:00:00Z\",\"meters\":{\"cpu_ms\":1200}}")
            } else {
                let consumer = "cus_\((slot.worker * 7919 + slot.index) % ServeBench.consumers)"
                slots[index].began = DispatchTime.now().uptimeNanoseconds
                sent = slot.connection.send(method: "POST", path: "/v1/executions", key: key,
                                            body: "{\"execution\":\"\(execution)\",\"consumer\":\"\(consumer)\",\"agent\":\"\(agent)\"}")
            }
            if !sent {
                failures += 1
                close(index)
            }
        }
        for index in slots.indices { sendNext(index) }
        while live > 0 {
            let ready = poll(&polled, nfds_t(polled.count), 100)
            if ready < 0 && errno != EINTR { break }
            let now = DispatchTime.now().uptimeNanoseconds
            for index in polled.indices where open[index] && polled[index].revents != 0 {
                polled[index].revents = 0
                let answer = slots[index].connection.receive()
                guard case .answered(let status) = answer else {
                    if case .failed = answer { failures += 1; close(index) }
                    continue
                }
                if slots[index].settling {
                    if status == 200 {
                        count += 1
                        latencies.append(now - slots[index].began)
                    } else {
                        failures += 1
                    }
                    slots[index].settling = false
                    slots[index].index += 1
                } else if status == 201 {
                    slots[index].settling = true
                } else {
                    failures += 1
                    slots[index].index += 1
                }
                if now >= deadline && !slots[index].settling { close(index) } else { sendNext(index) }
            }
        }
        return (count, failures, latencies)
    }
}
