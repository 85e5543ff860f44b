import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement

/// service.md's table of who may call what, as one table: every endpoint x every role (no key,
/// admin, runtime, a consumer key of the consumer named, a consumer key of another consumer),
/// with the status expected. A consumer key naming another consumer gets exactly what an unknown
/// id gets (404), never 403, so it cannot learn whether the other consumer exists.
@Suite("Authorization matrix")
struct AuthorizationMatrixTests {
    enum Caller: CaseIterable { case none, admin, runtime, own, other }

    struct Row {
        var name: String
        /// Builds the request for one caller (a fresh execution id where the call consumes it).
        var request: @Sendable (Caller, TestServer, Int) async throws -> (method: String, path: String, body: String?, headers: [String: String])
        /// none, admin, runtime, own, other.
        var expected: [Int]
    }

    static let rows: [Row] = [
        Row(name: "GET /v1/balance", request: { _, _, _ in ("GET", "/v1/balance?consumer=cus_a", nil, [:]) }, expected: [401, 200, 200, 200, 404]),
        Row(name: "POST /v1/purchases", request: { _, _, n in ("POST", "/v1/purchases", #"{"consumer":"cus_a","amount":"1"}"#, ["Idempotency-Key": "m\(n)"]) },
            expected: [401, 201, 403, 201, 404]),
        Row(name: "PUT /v1/consumers/{id}", request: { _, _, _ in ("PUT", "/v1/consumers/cus_a", #"{"low_balance":"5"}"#, [:]) }, expected: [401, 200, 403, 403, 403]),
        Row(name: "PUT /v1/consumers/{id}/auto-top-up", request: { _, _, _ in ("PUT", "/v1/consumers/cus_a/auto-top-up", #"{"below":"1","amount":"5"}"#, [:]) },
            expected: [401, 200, 403, 200, 404]),
        Row(name: "GET /v1/usage", request: { _, _, _ in ("GET", "/v1/usage?consumer=cus_a", nil, [:]) }, expected: [401, 200, 200, 200, 404]),
        Row(name: "POST /v1/quotes", request: { _, _, _ in ("POST", "/v1/quotes", #"{"plan":"research-payg","consumer":"cus_a"}"#, [:]) },
            expected: [401, 200, 200, 200, 404]),
        Row(name: "GET /v1/plans", request: { _, _, _ in ("GET", "/v1/plans", nil, [:]) }, expected: [401, 200, 200, 200, 200]),
        Row(name: "POST /v1/executions", request: { _, _, n in ("POST", "/v1/executions", "{\"execution\":\"r\(n)\",\"consumer\":\"cus_a\",\"agent\":\"agt_research\"}", [:]) },
            expected: [401, 201, 201, 403, 403]),
        Row(name: "POST /v1/executions/{id}/meter", request: { _, server, n in
            try await reserve(server, "mt\(n)")
            return ("POST", "/v1/executions/mt\(n)/meter", #"{"meters":{"cpu_ms":10}}"#, [:])
        }, expected: [401, 200, 200, 403, 403]),
        Row(name: "POST /v1/executions/{id}/settle", request: { _, server, n in
            try await reserve(server, "st\(n)")
            return ("POST", "/v1/executions/st\(n)/settle", #"{"ended_at":"2026-11-02T10:00:00Z","meters":{"cpu_ms":10}}"#, [:])
        }, expected: [401, 200, 200, 403, 403]),
        Row(name: "POST /v1/executions/{id}/release", request: { _, server, n in
            try await reserve(server, "rl\(n)")
            return ("POST", "/v1/executions/rl\(n)/release", nil, [:])
        }, expected: [401, 200, 200, 403, 403]),
        Row(name: "GET /v1/executions/{id}", request: { _, _, _ in ("GET", "/v1/executions/seen", nil, [:]) }, expected: [401, 200, 200, 200, 404]),
        Row(name: "GET /v1/payouts", request: { _, _, _ in ("GET", "/v1/payouts?week=2026-11-02", nil, [:]) }, expected: [401, 200, 403, 403, 403]),
        Row(name: "POST /v1/payouts/{week}/execute", request: { _, _, _ in ("POST", "/v1/payouts/2020-01-06/execute", nil, [:]) },
            expected: [401, 200, 403, 403, 403]),
        // Admin only: a cent of cus_a's seed purchase (bought through the log rail) back to its card, a new key each time.
        Row(name: "POST /v1/refunds", request: { _, _, n in ("POST", "/v1/refunds", #"{"purchase":"seed","consumer":"cus_a","amount":"0.01"}"#, ["Idempotency-Key": "rf\(n)"]) },
            expected: [401, 201, 403, 403, 403]),
        Row(name: "GET /v1/ledger/verify", request: { _, _, _ in ("GET", "/v1/ledger/verify", nil, [:]) }, expected: [401, 200, 403, 403, 403]),
        Row(name: "POST /v1/catalog/reload", request: { _, _, _ in ("POST", "/v1/catalog/reload", nil, [:]) }, expected: [401, 200, 403, 403, 403]),
        // Events out: admin only (each admin call adds an endpoint).
        Row(name: "POST /v1/webhooks", request: { _, _, _ in ("POST", "/v1/webhooks", #"{"url":"https://example.com/hook","events":["balance.low"]}"#, [:]) },
            expected: [401, 201, 403, 403, 403]),
        // Signed by Stripe, not keyed: this server has no webhook secret, so every delivery is refused alike.
        Row(name: "POST /v1/webhooks/stripe", request: { _, _, _ in ("POST", "/v1/webhooks/stripe", "{}", [:]) }, expected: [400, 400, 400, 400, 400]),
        // The first subscribe (admin's) creates it; the next ones answer it unchanged (200); another consumer's key: 404.
        Row(name: "POST /v1/subscriptions", request: { _, _, _ in ("POST", "/v1/subscriptions", #"{"consumer":"cus_a","plan":"research-pro"}"#, [:]) },
            expected: [401, 201, 200, 200, 404]),
        Row(name: "GET /v1/subscriptions", request: { _, _, _ in ("GET", "/v1/subscriptions?consumer=cus_a", nil, [:]) }, expected: [401, 200, 200, 200, 404]),
        // cus_a's subscription by its id: canceled by the first caller, answered unchanged after; another consumer's key: 404, as an unknown id.
        Row(name: "DELETE /v1/subscriptions/{id}", request: { _, server, _ in
            let listed = try await server.send("GET", "/v1/subscriptions?consumer=cus_a", key: server.adminKey, json: nil)
            let id = listed.body.split(separator: "\"").drop { $0 != "id" }.dropFirst(2).first.map(String.init) ?? "missing"
            return ("DELETE", "/v1/subscriptions/\(id)", nil, [:])
        }, expected: [401, 200, 200, 200, 404]),
        // A link to cus_a's page: the runtime may make one; a consumer key may not, not even for itself.
        Row(name: "POST /v1/portal/links", request: { _, _, _ in ("POST", "/v1/portal/links", #"{"consumer":"cus_a"}"#, [:]) },
            expected: [401, 201, 201, 403, 403]),
        // A fresh link to cus_a's page each time (made by admin), revoked by the caller.
        Row(name: "DELETE /v1/portal/links/{id}", request: { _, server, _ in
            let made = try await server.send("POST", "/v1/portal/links", key: server.adminKey, json: #"{"consumer":"cus_a"}"#)
            return ("DELETE", "/v1/portal/links/\(made.string("id") ?? "missing")", nil, [:])
        }, expected: [401, 200, 200, 403, 403]),
        // The page takes no key: the signed token is its authorization, whoever sends it (a key sent along changes nothing).
        Row(name: "GET /portal/{token}", request: { _, server, _ in
            let made = try await server.send("POST", "/v1/portal/links", key: server.adminKey, json: #"{"consumer":"cus_a"}"#)
            return ("GET", URL(string: made.string("url") ?? "http://x/portal/missing")?.path ?? "/portal/missing", nil, [:])
        }, expected: [200, 200, 200, 200, 200]),
        Row(name: "GET /healthz", request: { _, _, _ in ("GET", "/healthz", nil, [:]) }, expected: [200, 200, 200, 200, 200]),
        Row(name: "GET /readyz", request: { _, _, _ in ("GET", "/readyz", nil, [:]) }, expected: [200, 200, 200, 200, 200]),
        Row(name: "GET /metrics", request: { _, _, _ in ("GET", "/metrics", nil, [:]) }, expected: [200, 200, 200, 200, 200]),
        Row(name: "GET /openapi.json", request: { _, _, _ in ("GET", "/openapi.json", nil, [:]) }, expected: [200, 200, 200, 200, 200]),
    ]

    static func reserve(_ server: TestServer, _ execution: String) async throws {
        let answer = try await server.send("POST", "/v1/executions", key: server.adminKey,
                                           json: "{\"execution\":\"\(execution)\",\"consumer\":\"cus_a\",\"agent\":\"agt_research\"}")
        #expect(answer.status == 201)
    }

    @Test("every endpoint x every role x own / other consumer")
    func matrix() async throws {
        let server = try await TestServer.start()
        let admin = server.adminKey
        let runtime = try await server.key(.runtime)
        let own = try await server.key(.consumer, consumer: "cus_a")
        let other = try await server.key(.consumer, consumer: "cus_b")
        for consumer in ["cus_a", "cus_b"] {
            #expect(try await server.send("POST", "/v1/purchases", key: admin, json: "{\"consumer\":\"\(consumer)\",\"amount\":\"100\"}",
                                          headers: ["Idempotency-Key": "seed"]).status == 201)
        }
        try await Self.reserve(server, "seen")
        // Every route of the router is in the table, and nothing else.
        #expect(Set(Self.rows.map(\.name)) == Set(Route.table.map { "\($0.method) \($0.template)" }))
        var counter = 0
        for row in Self.rows {
            for (index, caller) in Caller.allCases.enumerated() {
                counter += 1
                let (method, path, body, headers) = try await row.request(caller, server, counter)
                let key: String? = switch caller {
                case .none: nil
                case .admin: admin
                case .runtime: runtime
                case .own: own
                case .other: other
                }
                let answer = try await server.send(method, path, key: key, json: body, headers: headers)
                #expect(answer.status == row.expected[index], "\(row.name) as \(caller): \(answer.status) \(answer.body.prefix(160))")
                if answer.status == 404 && caller == .other { #expect(answer.code == "not_found") }
            }
        }
        await server.stop()
    }
}
