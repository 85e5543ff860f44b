import Foundation
import Synchronization
import Testing
import Tariff
@testable import TariffServer

/// Clients run reserve -> settle lifecycles against a `tariff serve` process on a SQLite ledger
/// while it gets SIGTERM (it drains and exits 0) or SIGKILL; a server started again on the same
/// port and ledger, and the clients' retries under the same execution ids, end with every
/// lifecycle applied exactly once (each consumer's balance is its purchase less 0.02 per
/// lifecycle, nothing reserved) and `tariff ledger verify` passing.
@Suite("Kill tests", .serialized)
struct KillTests {
    static let clients = 8
    static let lifecyclesPerClient = 25

    enum Stop: String, CaseIterable, Sendable { case sigterm, sigkill }

    final class Counter: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    @Test("a server stopped mid-run, clients retrying under the same keys: every lifecycle exactly once", arguments: Stop.allCases)
    func stopMidRun(stop: Stop) async throws {
        let signal = stop == .sigterm ? SIGTERM : SIGKILL
        let directory = temporaryPath("kill")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let adminKey = APIKeys.newSecret()
        TestServer.secrets.withLock { _ = $0.insert(adminKey) }
        try adminKey.write(toFile: directory + "/admin.key", atomically: true, encoding: .utf8)
        let ledger = "sqlite:\(directory)/ledger.sqlite"
        let arguments = ["--ledger", ledger, "--admin-key-file", directory + "/admin.key", "--rail-log", directory + "/rail.log"]
        let first = try await ServeProcess.start(arguments, directory: directory)
        let base = first.base
        for client in 0..<Self.clients {
            let answer = try await HTTP.send("POST", base + "/v1/purchases", key: adminKey, body: Data("{\"consumer\":\"cus_\(client)\",\"amount\":\"100\"}".utf8),
                                             headers: ["Idempotency-Key": "seed"])
            #expect(answer.status == 201)
        }
        let done = Counter()
        let outcome = try await withThrowingTaskGroup(of: [Int].self) { group in
            for client in 0..<Self.clients {
                group.addTask {
                    var statuses: [Int] = []
                    for run in 0..<Self.lifecyclesPerClient {
                        let execution = "exe_\(client)_\(run)"
                        let hold = try await sendRetrying("POST", base + "/v1/executions", key: adminKey,
                                                          json: "{\"execution\":\"\(execution)\",\"consumer\":\"cus_\(client)\",\"agent\":\"agt_research\"}")
                        let settle = try await sendRetrying("POST", base + "/v1/executions/\(execution)/settle", key: adminKey,
                                                            json: "{\"ended_at\":\"2026-11-02T10:00:00Z\",\"meters\":{\"cpu_ms\":100}}")
                        statuses += [hold.status, settle.status]
                        done.add()
                    }
                    return statuses
                }
            }
            // Stop the server a fifth of the way through, then start another on the same port and ledger.
            while done.count < Self.clients * Self.lifecyclesPerClient / 5 { try await Task.sleep(for: .milliseconds(5)) }
            first.signal(signal)
            let ended = await first.wait()
            // The clients were still running when the server went away.
            #expect(done.count < Self.clients * Self.lifecyclesPerClient, "every lifecycle was done before the server stopped")
            if signal == SIGTERM {
                #expect(ended?.status == 0, "SIGTERM: exit \(String(describing: ended)); \(first.errorLog.suffix(300))")
                #expect(ended?.reason == .exit)
            } else {
                #expect(ended?.reason == .uncaughtSignal)
            }
            let second = try await ServeProcess.start(arguments, port: first.port, directory: directory)
            var all: [Int] = []
            for try await statuses in group { all += statuses }
            // Every answer, first or replayed, is a success: 201 for the hold, 200 for the settle.
            #expect(Set(all) == [200, 201], "statuses seen: \(Set(all))")
            for client in 0..<Self.clients {
                let balance = try await HTTP.send("GET", second.base + "/v1/balance?consumer=cus_\(client)", key: adminKey)
                #expect(balance.string("available") == "99.500000", "cus_\(client): \(balance.body)") // 100 - 25 x 0.02
                #expect(balance.string("reserved") == "0.000000")
            }
            let usage = try await HTTP.send("GET", second.base + "/v1/usage?period=3650d&group_by=agent", key: adminKey)
            #expect((usage.json?["data"] as? [[String: Any]])?.first?["executions"] as? Int == Self.clients * Self.lifecyclesPerClient)
            await second.stop()
            return all.count
        }
        #expect(outcome == Self.clients * Self.lifecyclesPerClient * 2)
        let verify = try runTariff(["ledger", "verify", "--ledger", ledger])
        #expect(verify.status == 0, "\(verify.output)")
    }
}
