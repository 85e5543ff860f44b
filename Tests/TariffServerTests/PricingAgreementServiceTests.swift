import Foundation
import Testing
import Tariff
import TariffReplay
import TariffServer
import TariffSettlement
import TariffSettlementTesting
import TariffSimulation

/// Issue 15: one plan and one set of executions priced identically by quote, the plan tests,
/// simulate, the ledger replay and the service, with a WebAssembly rule and a meter reading the
/// plan's metering does not weigh. The plan is examples/wasm's `translate-quick`: a per-call fee of
/// 0.004 and the Wasm rule `inference_minimum` (a run with two or more inference calls is charged
/// at least 0.01). The service bills per-call plans live (subscriptions are issue 16's), so the
/// per-call plan is the one all five paths can price.
@Suite("One plan priced alike by quote, test, simulate, replay and the service", .serialized)
struct PricingAgreementServiceTests {
    static let folder = repositoryRoot + "/examples/wasm"

    /// Each execution with its meters (JSON), its charge and compute units worked out by hand from
    /// examples/wasm/rules/metering.yaml (cpu_ms 0.001, memory_mb_s 0.0001, inference_calls 0.5 CU;
    /// `gpu_ms` is weighed by nothing: it adds no CU and no charge).
    static let executions: [(id: String, status: String, meters: String, charge: String, computeUnits: String)] = [
        ("q1", "succeeded", #"{"cpu_ms":2000,"inference_calls":1}"#, "0.004000", "2.500"),        // one call: the fee
        ("q2", "succeeded", #"{"cpu_ms":2000,"inference_calls":2}"#, "0.010000", "3.000"),        // two calls: the floor
        ("q3", "succeeded", #"{"inference_calls":3,"gpu_ms":500}"#, "0.010000", "1.500"),         // unweighed gpu_ms adds nothing
        ("q4", "succeeded", #"{"cpu_ms":100,"gpu_ms":9000}"#, "0.004000", "0.100"),               // no call, unweighed reading
        ("q5", "failed", #"{"inference_calls":5}"#, "0.000000", "2.500"),                         // a failed run is free before any rule
        ("q6", "succeeded", #"{"inference_calls":2,"memory_mb_s":1000}"#, "0.010000", "1.100"),   // 1 + 0.1 CU, the floor
    ]
    /// 0.004 + 0.01 + 0.01 + 0.004 + 0 + 0.01.
    static let totalMicros: Int64 = 38_000
    static let endedAt = "2026-11-02T12:00:00Z"

    static func catalog() throws -> CompiledCatalog {
        let compilation = CatalogLoader.compile(plansDirectory: folder + "/plans", rulesDirectory: folder + "/rules")
        return try #require(compilation.catalog, "\(compilation.diagnostics)")
    }

    static func money(_ text: String) throws -> Money { try Money(parsing: Substring(text)) }

    static func meters(_ json: String) throws -> [(name: String, value: MeterValue)] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Int])
        return object.sorted { $0.key < $1.key }.map { ($0.key, MeterValue(micros: Int64($0.value) * 1_000_000)) }
    }

    static func trace() throws -> String {
        var lines = [#"{"type":"purchase","at":"2026-11-02T08:00:00Z","consumer":"cus_q","amount":"10.00"}"#]
        for execution in executions {
            lines.append(#"{"type":"execution","id":"\#(execution.id)","consumer":"cus_q","agent":"agt_translate_quick","started_at":"\#(endedAt)","ended_at":"\#(endedAt)","status":"\#(execution.status)","meters":\#(execution.meters)}"#)
        }
        let path = temporaryPath("agreement-trace") + ".jsonl"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("quote, the plan tests, simulate and replay: the hand-computed charges")
    func inProcess() async throws {
        let catalog = try Self.catalog()
        let at = try #require(Timestamp(rfc3339: Self.endedAt))
        for execution in Self.executions {
            let quote = try catalog.quote(QuoteRequest(planID: "translate-quick", at: at, meters: try Self.meters(execution.meters),
                                                       failed: execution.status == "failed"))
            #expect(quote.result.charge == (try Self.money(execution.charge)), "\(execution.id)")
            #expect(quote.result.computeUnits.description == execution.computeUnits, "\(execution.id)")
            // A reading no weight covers is said, not silently dropped (plans.md, "Rule plugins").
            #expect(quote.warnings.isEmpty == !execution.meters.contains("gpu_ms"), "\(execution.id): \(quote.warnings)")
        }
        let outcomes = PlanTestRunner.run(catalog).filter { $0.plan == "translate-quick" }
        #expect(outcomes.count == 3)
        #expect(outcomes.allSatisfy { $0.passed })

        let trace = try Self.trace()
        let simulated = try Simulator.run(trace: trace, catalog: catalog, options: SimulationOptions())
        #expect(simulated.priced == 6)
        #expect(simulated.totals.charged == Money(micros: Self.totalMicros))
        let replayed = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: InMemoryBackend(currency: Currency(code: "USD")!),
                                                  options: SimulationOptions())
        #expect(replayed.simulation.totals.charged == Money(micros: Self.totalMicros))
        #expect(replayed.balances.first { $0.consumer == "cus_q" }?.available == Money(micros: 10_000_000 - Self.totalMicros))
    }

    @Test("the service: quotes, then reserve and settle each execution, charge what the others price")
    func service() async throws {
        let server = try await TestServer.start(testClock: Timestamp(rfc3339: Self.endedAt)!, plans: Self.folder + "/plans", rules: Self.folder + "/rules")
        let admin = server.adminKey
        let runtime = try await server.key(.runtime)
        let consumer = try await server.key(.consumer, consumer: "cus_q")
        #expect(try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_q","amount":"10.00"}"#,
                                      headers: ["Idempotency-Key": "agreement"]).status == 201)
        for execution in Self.executions {
            let quote = try await server.send("POST", "/v1/quotes", key: consumer,
                                              json: #"{"plan":"translate-quick","meters":\#(execution.meters),"status":"\#(execution.status)"}"#)
            #expect(quote.status == 200, "\(quote.body)")
            #expect(quote.string("charge") == execution.charge, "\(execution.id)")
            #expect(quote.string("compute_units") == execution.computeUnits, "\(execution.id)")

            let hold = try await server.send("POST", "/v1/executions", key: runtime,
                                             json: #"{"execution":"\#(execution.id)","consumer":"cus_q","agent":"agt_translate_quick"}"#)
            #expect(hold.status == 201, "\(hold.body)")
            #expect(hold.string("plan") == "translate-quick")
            // A running meter says the unweighed reading the same way (the plan found from the hold).
            let metered = try await server.send("POST", "/v1/executions/\(execution.id)/meter", key: runtime,
                                                json: #"{"at":"\#(Self.endedAt)","meters":\#(execution.meters)}"#)
            #expect(metered.status == 200, "\(metered.body)")
            #expect((metered.json?["warnings"] as? [String] ?? []) == (execution.meters.contains("gpu_ms")
                ? ["meter 'gpu_ms' is not weighed by metering 'standard' of plan 'translate-quick'; it adds nothing"] : []), "\(execution.id)")
            let settled = try await server.send("POST", "/v1/executions/\(execution.id)/settle", key: runtime,
                                                json: #"{"ended_at":"\#(Self.endedAt)","status":"\#(execution.status)","meters":\#(execution.meters)}"#)
            #expect(settled.status == 200, "\(settled.body)")
            #expect(settled.string("charged") == execution.charge, "\(execution.id): \(settled.body)")
            #expect(settled.string("uncollected") == "0.000000", "\(execution.id)")
            #expect(settled.string("compute_units") == execution.computeUnits, "\(execution.id)")
            // The unweighed reading is said, as quote says it, not refused and not priced.
            let warnings = settled.json?["warnings"] as? [String] ?? []
            #expect(warnings == (execution.meters.contains("gpu_ms")
                ? ["meter 'gpu_ms' is not weighed by metering 'standard' of plan 'translate-quick'; it adds nothing"] : []), "\(execution.id)")
            #expect((quote.json?["warnings"] as? [String] ?? []) == warnings, "\(execution.id)")
        }
        let balance = try await server.send("GET", "/v1/balance", key: consumer)
        #expect(balance.string("available") == "9.962000") // 10.00 - 0.038
        #expect(balance.string("reserved") == "0.000000")
        let verify = try await server.send("GET", "/v1/ledger/verify", key: admin)
        #expect(verify.json?["ok"] as? Bool == true, "\(verify.body)")
        await server.stop()
    }
}
