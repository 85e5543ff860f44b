import Foundation
import Synchronization
import Testing
import Tariff
@testable import TariffServer

/// Two `tariff serve` processes on one PostgreSQL ledger behave as one service. Needs
/// `TARIFF_TEST_POSTGRES_URL` (`.ci/run` starts a throwaway server and runs `--filter PostgresServerTests`).
enum ServicePostgres {
    static let url = ProcessInfo.processInfo.environment["TARIFF_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
}

@Suite("PostgreSQL: two tariff serve processes, one ledger", .serialized,
       .enabled(if: ServicePostgres.url != nil, "TARIFF_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against (.ci/run starts one)"))
struct ServicePostgresServerTests {
    static var url: String? { ServicePostgres.url }

    /// The server's URL with a new, empty schema.
    static func freshURL() -> String {
        let base = url ?? "postgres://postgres@127.0.0.1:5432/postgres"
        let schema = "s_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return base + (base.contains("?") ? "&" : "?") + "pool=16&schema=\(schema)"
    }

    /// The sample catalog plus `seven`: the default per-call plan of agt_seven, 7.00 a run (its hold is 7.00).
    static func catalog(in directory: String) throws -> (plans: String, rules: String) {
        try FileManager.default.copyItem(atPath: repositoryRoot + "/plans", toPath: directory + "/plans")
        try FileManager.default.copyItem(atPath: repositoryRoot + "/rules", toPath: directory + "/rules")
        try """
            plan: seven
            agent: agt_seven
            creator: acct_seven
            currency: USD
            default: true
            model: per_call
            per_call:
              fee: 7.00
            """.write(toFile: directory + "/plans/seven.yaml", atomically: true, encoding: .utf8)
        return (directory + "/plans", directory + "/rules")
    }

    final class Tally: Sendable {
        private let counts = Mutex<[Int: Int]>([:])
        func add(_ status: Int) { counts.withLock { $0[status, default: 0] += 1 } }
        var all: [Int: Int] { counts.withLock { $0 } }
    }

    @Test("64 clients x 200 reserves of 7.00 on 10,000.00 over both servers: exactly 1,428 held; replays answered alike by either")
    func race() async throws {
        let directory = temporaryPath("pg-serve")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (plans, rules) = try Self.catalog(in: directory)
        let adminKey = APIKeys.newSecret()
        TestServer.secrets.withLock { _ = $0.insert(adminKey) }
        try adminKey.write(toFile: directory + "/admin.key", atomically: true, encoding: .utf8)
        let ledger = Self.freshURL()
        let arguments = ["--ledger", ledger, "--plans", plans, "--rules", rules, "--admin-key-file", directory + "/admin.key",
                         "--rail-log", directory + "/rail.log"]
        async let startedA = ServeProcess.start(arguments, directory: directory)
        async let startedB = ServeProcess.start(arguments, directory: directory)
        let servers = try await [startedA, startedB]

        // A key made by `tariff keys create` on the ledger works on both servers; revoked, both refuse it within 1 s.
        let created = try runTariff(["keys", "create", "--role", "runtime", "--name", "rt", "--ledger", ledger, "--format", "json"])
        #expect(created.status == 0, "\(created.error)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])
        let runtimeKey = try #require(object["key"] as? String)
        TestServer.secrets.withLock { _ = $0.insert(runtimeKey) }
        for server in servers { #expect(try await HTTP.send("GET", server.base + "/v1/plans", key: runtimeKey).status == 200) }
        #expect(try runTariff(["keys", "revoke", try #require(object["id"] as? String), "--ledger", ledger]).status == 0)
        try await Task.sleep(for: .milliseconds(1_100))
        for server in servers { #expect(try await HTTP.send("GET", server.base + "/v1/plans", key: runtimeKey).status == 401) }

        // A purchase on one server, replayed on the other: the first answer, marked replayed.
        let bought = try await HTTP.send("POST", servers[0].base + "/v1/purchases", key: adminKey, body: Data(#"{"consumer":"cus_race","amount":"10000"}"#.utf8),
                                         headers: ["Idempotency-Key": "race-credits"])
        #expect(bought.status == 201)
        let replayed = try await HTTP.send("POST", servers[1].base + "/v1/purchases", key: adminKey, body: Data(#"{"consumer":"cus_race","amount":"10000.00"}"#.utf8),
                                           headers: ["Idempotency-Key": "race-credits"])
        #expect(replayed.status == 201)
        #expect(replayed.body == bought.body)
        #expect(replayed.headers["idempotent-replayed"] == "true")

        // A reserve made through one server, sent again through the other: the same hold, replayed.
        #expect(try await HTTP.send("POST", servers[0].base + "/v1/purchases", key: adminKey, body: Data(#"{"consumer":"cus_replay","amount":"7"}"#.utf8),
                                    headers: ["Idempotency-Key": "k"]).status == 201)
        let reserve = Data(#"{"execution":"replayed","consumer":"cus_replay","agent":"agt_seven"}"#.utf8)
        let held = try await HTTP.send("POST", servers[0].base + "/v1/executions", key: adminKey, body: reserve)
        #expect(held.status == 201)
        let heldAgain = try await HTTP.send("POST", servers[1].base + "/v1/executions", key: adminKey, body: reserve)
        #expect(heldAgain.status == 201)
        #expect(heldAgain.body == held.body)
        #expect(heldAgain.headers["idempotent-replayed"] == "true")
        let settle = Data(#"{"ended_at":"2026-11-02T10:00:00Z"}"#.utf8)
        let settled = try await HTTP.send("POST", servers[1].base + "/v1/executions/replayed/settle", key: adminKey, body: settle)
        let settledAgain = try await HTTP.send("POST", servers[0].base + "/v1/executions/replayed/settle", key: adminKey, body: settle)
        #expect(settled.status == 200)
        #expect(settled.string("charged") == "7.000000")
        #expect(settledAgain.body == settled.body)
        #expect(settledAgain.headers["idempotent-replayed"] == "true")

        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<64 {
                let base = servers[client % 2].base
                group.addTask {
                    for run in 0..<200 {
                        let answer = try await HTTP.send("POST", base + "/v1/executions", key: adminKey,
                                                         body: Data("{\"execution\":\"race_\(client)_\(run)\",\"consumer\":\"cus_race\",\"agent\":\"agt_seven\"}".utf8))
                        tally.add(answer.status)
                    }
                }
            }
            try await group.waitForAll()
        }
        // 10,000.00 / 7.00 = 1,428 holds (1,428 x 7.00 = 9,996.00; 4.00 is left, short of a 1,429th).
        #expect(tally.all == [201: 1_428, 402: 64 * 200 - 1_428], "\(tally.all)")
        for server in servers {
            let balance = try await HTTP.send("GET", server.base + "/v1/balance?consumer=cus_race", key: adminKey)
            #expect(balance.string("available") == "4.000000")
            #expect(balance.string("reserved") == "9996.000000")
        }
        let verify = try await HTTP.send("GET", servers[1].base + "/v1/ledger/verify", key: adminKey)
        #expect(verify.json?["ok"] as? Bool == true)
        for server in servers { await server.stop() }
    }
}
