import Foundation
import Testing
import Tariff
@testable import TariffCommands
@testable import TariffServer
import TariffSettlement
import TariffSimulation
import TariffSQLite

/// Issue 16's first "must be shown": driven through the HTTP API with the test clock, a month and
/// a half of live subscriptions (a replacement, two cancels) and executions charges, to the
/// micro-unit, what the simulator prices for the same events written as a trace (fees, overage,
/// shortfall, SLA credit), per consumer and per plan; and a small case computed by hand.
@Suite("Live subscriptions and the period clock")
struct LiveSubscriptionTests {
    static let t0 = Timestamp(rfc3339: "2026-11-01T00:00:00Z")!
    /// Not a period boundary of any subscription below, nor within the grace (1h) before one.
    static let end = Timestamp(rfc3339: "2026-12-20T12:00:00Z")!

    static func at(_ t: Timestamp, plus seconds: Int64) -> Timestamp { t.adding(nanoseconds: seconds * 1_000_000_000)! }

    /// One event, as the trace writes it and as the HTTP driver sends it.
    enum Event {
        case purchase(String, String)
        case subscribe(String, String)
        case cancel(String, String)
        case execution(id: String, consumer: String, agent: String, cpu: Int, calls: Int, failed: Bool)
    }

    /// The events in time order (distinct instants): deterministic, from a fixed LCG.
    static func events() -> [(Timestamp, Event)] {
        var list: [(Timestamp, Event)] = []
        for (index, consumer) in ["cus_1", "cus_2", "cus_3", "cus_4", "cus_5"].enumerated() {
            list.append((at(t0, plus: 60 + Int64(index)), .purchase(consumer, "20000.00")))
        }
        list.append((at(t0, plus: 3_600), .subscribe("cus_1", "research-pro")))
        list.append((at(t0, plus: 7_200), .subscribe("cus_2", "research-enterprise")))
        list.append((at(t0, plus: 10_800), .subscribe("cus_3", "research-pro")))
        list.append((at(t0, plus: 14_400), .subscribe("cus_4", "translate-weekly")))
        // The same plan again: ignored by simulate (a warning), answered 200 by the service.
        list.append((at(t0, plus: 18_000), .subscribe("cus_1", "research-pro")))
        list.append((Timestamp(rfc3339: "2026-11-11T05:00:00Z")!, .subscribe("cus_3", "research-enterprise")))
        list.append((Timestamp(rfc3339: "2026-11-13T12:00:00Z")!, .cancel("cus_4", "translate-weekly")))
        list.append((Timestamp(rfc3339: "2026-11-20T00:00:00Z")!, .cancel("cus_1", "research-pro")))
        var state: UInt64 = 2026
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        var instant = at(t0, plus: 20_000)
        var number = 0
        while true {
            instant = at(instant, plus: Int64(4_000 + next(60_000)))
            guard at(instant, plus: 3_600) < end else { break }
            number += 1
            let consumer = "cus_\(1 + next(5))"
            // Now and then the translation agent, which only cus_4's subscription prices (no_plan otherwise).
            let agent = next(6) == 0 ? "agt_translate" : "agt_research"
            list.append((instant, .execution(id: "exe_\(number)", consumer: consumer, agent: agent, cpu: next(2_000_000), calls: next(20),
                                             failed: next(8) == 0)))
        }
        // Distinct instants: nothing to order at one instant.
        precondition(Set(list.map(\.0)).count == list.count)
        return list.sorted { $0.0 < $1.0 }
    }

    static func traceLine(_ time: Timestamp, _ event: Event) -> String {
        switch event {
        case .purchase(let consumer, let amount):
            return #"{"type":"purchase","at":"\#(time.rfc3339)","consumer":"\#(consumer)","amount":"\#(amount)","id":"p_\#(consumer)"}"#
        case .subscribe(let consumer, let plan):
            return #"{"type":"subscribe","at":"\#(time.rfc3339)","consumer":"\#(consumer)","plan":"\#(plan)"}"#
        case .cancel(let consumer, let plan):
            return #"{"type":"cancel","at":"\#(time.rfc3339)","consumer":"\#(consumer)","plan":"\#(plan)"}"#
        case .execution(let id, let consumer, let agent, let cpu, let calls, let failed):
            return #"{"type":"execution","id":"\#(id)","consumer":"\#(consumer)","agent":"\#(agent)","started_at":"\#(time.rfc3339)","ended_at":"\#(time.rfc3339)","status":"\#(failed ? "failed" : "succeeded")","meters":{"cpu_ms":\#(cpu),"inference_calls":\#(calls)}}"#
        }
    }

    /// Drives every event through the server's HTTP API with the test clock; returns the refusals (422) per consumer.
    static func drive(_ server: TestServer, _ events: [(Timestamp, Event)]) async throws -> [String: Int] {
        let admin = server.adminKey
        var refused: [String: Int] = [:]
        var subscriptionIDs: [String: String] = [:]
        for (time, event) in events {
            let moved = try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"\#(time.rfc3339)"}"#)
            #expect(moved.status == 200, "clock: \(moved.body)")
            switch event {
            case .purchase(let consumer, let amount):
                let answer = try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"\#(consumer)","amount":"\#(amount)"}"#,
                                                   headers: ["Idempotency-Key": "p_\(consumer)"])
                #expect(answer.status == 201, "purchase: \(answer.body)")
            case .subscribe(let consumer, let plan):
                let answer = try await server.send("POST", "/v1/subscriptions", key: admin, json: #"{"consumer":"\#(consumer)","plan":"\#(plan)"}"#)
                #expect(answer.status == 201 || answer.status == 200, "subscribe: \(answer.body)")
                if answer.status == 201, let id = answer.string("id") { subscriptionIDs["\(consumer) \(plan)"] = id }
            case .cancel(let consumer, let plan):
                let id = subscriptionIDs["\(consumer) \(plan)"] ?? "missing"
                let answer = try await server.send("DELETE", "/v1/subscriptions/\(id)", key: admin)
                #expect(answer.status == 200 && answer.string("status") == "canceled", "cancel: \(answer.body)")
            case .execution(let id, let consumer, let agent, let cpu, let calls, let failed):
                let reserve = try await server.send("POST", "/v1/executions", key: admin,
                                                    json: #"{"execution":"\#(id)","consumer":"\#(consumer)","agent":"\#(agent)"}"#)
                if reserve.status == 422 {
                    #expect(reserve.code == "no_plan")
                    refused[consumer, default: 0] += 1
                    continue
                }
                #expect(reserve.status == 201, "reserve: \(reserve.body)")
                let settle = try await server.send("POST", "/v1/executions/\(id)/settle", key: admin,
                                                   json: #"{"ended_at":"\#(time.rfc3339)","status":"\#(failed ? "failed" : "succeeded")","meters":{"cpu_ms":\#(cpu),"inference_calls":\#(calls)}}"#)
                #expect(settle.status == 200, "settle: \(settle.body)")
            }
        }
        // Past the last period end inside the window by the grace: every such period is closed.
        let last = try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"\#(at(end, plus: 3_600).rfc3339)"}"#)
        #expect(last.status == 200)
        return refused
    }

    /// The month through the service on `backend`, compared with the simulator on the same events.
    static func compare(backend: any SettlementBackend) async throws {
        let events = events()
        let server = try await TestServer.start(backend: backend, testClock: t0)
        let refused = try await drive(server, events)
        await server.stop()
        try await expectAgreement(backend: backend, events: events, refused: refused)
    }

    /// The simulator's report of `events` (to `end`), and the sample catalog.
    static func simulate(_ events: [(Timestamp, Event)]) throws -> (SimulationReport, CompiledCatalog) {
        let path = temporaryPath("live-subscriptions") + ".jsonl"
        try events.map { traceLine($0.0, $0.1) }.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let compilation = CatalogLoader.compile(plansDirectory: repositoryRoot + "/plans", rulesDirectory: repositoryRoot + "/rules")
        let catalog = try #require(compilation.catalog)
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions(to: end))
        #expect(report.rejected.isEmpty, "\(report.rejected)")
        return (report, catalog)
    }

    /// The ledger's charges agree with the simulator's report of `events`, per consumer and per plan
    /// version and kind, to the micro-unit; `refused` (422 `no_plan` per consumer) with its refusals.
    @discardableResult
    static func expectAgreement(backend: any SettlementBackend, events: [(Timestamp, Event)], refused: [String: Int]) async throws -> SimulationReport {
        let (report, catalog) = try simulate(events)
        let charges = try await backend.chargeRecords(ChargeQuery())
        #expect(charges.allSatisfy { $0.datedAt < end })
        // Per consumer: every line (fees, executions, shortfall, SLA credit), billed, to the micro-unit.
        var ledgerByConsumer: [String: Int64] = [:]
        for charge in charges { ledgerByConsumer[charge.consumer, default: 0] += charge.billed.micros }
        for row in report.consumers {
            #expect(ledgerByConsumer[row.consumer] ?? 0 == row.charged.micros, "\(row.consumer): ledger \(Money(micros: ledgerByConsumer[row.consumer] ?? 0)) simulate \(row.charged)")
            #expect(refused[row.consumer] ?? 0 == row.refused, "\(row.consumer) refusals")
        }
        #expect(Set(report.consumers.map(\.consumer)) == Set(ledgerByConsumer.keys))
        // Per plan version and kind.
        for row in report.plans {
            func sum(_ kinds: Set<ChargeRecord.Kind>) -> Int64 {
                charges.filter { $0.plan == row.plan && $0.version == row.version && kinds.contains($0.kind) }.reduce(0) { $0 + $1.billed.micros }
            }
            #expect(sum([.fee]) == row.fees.micros, "\(row.plan)@\(row.version) fees")
            #expect(sum([.execution]) == row.usage.micros, "\(row.plan)@\(row.version) usage")
            #expect(sum([.shortfall]) == row.shortfall.micros, "\(row.plan)@\(row.version) shortfall")
            #expect(sum([.slaCredit]) == row.slaCredits.micros, "\(row.plan)@\(row.version) SLA credits")
        }
        // The events exercised every kind: fees, overage beyond research-pro's allowance, a
        // shortfall and an SLA credit of research-enterprise, and refusals.
        let enterprise = report.plans.filter { $0.plan == "research-enterprise" }
        #expect(enterprise.contains { $0.shortfall.micros > 0 } && enterprise.contains { $0.slaCredits.micros < 0 }, "\(report.plans)")
        #expect(report.plans.contains { $0.plan == "research-pro" && $0.usage.micros > 0 }, "\(report.plans)")
        #expect(report.plans.contains { $0.plan == "translate-weekly" && $0.fees.micros == 10_000_000 }, "\(report.plans)")
        #expect(refused.values.reduce(0, +) > 0 && report.priced > 50, "priced \(report.priced)")
        FileHandle.standardError.write(Data(("live subscriptions: \(events.count) events, \(report.priced) executions priced, \(refused.values.reduce(0, +)) refused; "
              + report.plans.map { "\($0.plan)@\($0.version) fees \($0.fees) usage \($0.usage) shortfall \($0.shortfall) sla \($0.slaCredits)" }.joined(separator: "; ") + "\n").utf8))
        let verification = try await Settlement(backend: backend, catalog: catalog).verify()
        #expect(verification.passed, "\(verification.invariants.filter { !$0.holds })")
        return report
    }

    @Test("a month and a half through the HTTP API with the test clock (SQLite) charges what simulate prices, per consumer and plan, to the micro-unit")
    func sqliteMatchesSimulate() async throws {
        try await Self.compare(backend: try SQLiteBackend(path: temporaryPath("live-sqlite") + ".sqlite", currency: Currency(code: "USD")!))
    }


    @Test("a small case by hand: research-pro's fee, one CU of overage, the next month's fee, a cancel, no fee after the end")
    func byHand() async throws {
        let backend = InMemoryBackend(currency: Currency(code: "USD")!)
        let server = try await TestServer.start(backend: backend, testClock: Self.t0)
        let admin = server.adminKey
        let own = try await server.key(APIKeyRecord.Role.consumer, consumer: "cus_h")
        let other = try await server.key(APIKeyRecord.Role.consumer, consumer: "cus_x")
        #expect(try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_h","amount":"200.00"}"#,
                                      headers: ["Idempotency-Key": "h1"]).status == 201)
        // research-pro (version 2 from 2026-11-01): 49.00 a month, 10,000 CU included, 0.005 per CU beyond.
        let created = try await server.send("POST", "/v1/subscriptions", key: own, json: #"{"plan":"research-pro"}"#)
        #expect(created.status == 201, "\(created.body)")
        #expect(created.string("status") == "active")
        #expect(created.string("next_fee_at") == "2026-12-01T00:00:00Z")
        let id = try #require(created.string("id"))
        let balance1 = try await server.send("GET", "/v1/balance", key: own)
        #expect(balance1.string("available") == "151.000000")
        // Again: the existing one, 200, nothing charged; another consumer's key cannot see or cancel it.
        let again = try await server.send("POST", "/v1/subscriptions", key: own, json: #"{"consumer":"cus_h","plan":"research-pro"}"#)
        #expect(again.status == 200)
        #expect(again.string("id") == id)
        let foreign = try await server.send("DELETE", "/v1/subscriptions/\(id)", key: other)
        let unknown = try await server.send("DELETE", "/v1/subscriptions/sub_nope", key: other)
        // Exactly as a nonexistent one: the same status and code.
        #expect(foreign.status == 404 && unknown.status == 404 && foreign.code == "not_found" && unknown.code == "not_found")
        let foreignList = try await server.send("GET", "/v1/subscriptions?consumer=cus_h", key: other)
        #expect(foreignList.status == 404)
        let ownList = try await server.send("GET", "/v1/subscriptions", key: other)
        let ownItems = ownList.json?["subscriptions"] as? [Any]
        #expect(ownItems?.isEmpty == true)
        let perCall = try await server.send("POST", "/v1/subscriptions", key: admin, json: #"{"consumer":"cus_h","plan":"research-payg"}"#)
        #expect(perCall.status == 400)
        let unknownPlan = try await server.send("POST", "/v1/subscriptions", key: admin, json: #"{"consumer":"cus_h","plan":"nope"}"#)
        #expect(unknownPlan.status == 404 && unknownPlan.code == "unknown_plan")

        // 10,001 CU in one run (cpu_ms weighs 0.001): 1 CU beyond the allowance, 0.005000.
        let moved = try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-11-10T00:00:00Z"}"#)
        #expect(moved.status == 200)
        let reserve = try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"h1","consumer":"cus_h","agent":"agt_research"}"#)
        #expect(reserve.status == 201, "\(reserve.body)")
        #expect(reserve.string("plan") == "research-pro")
        let settle = try await server.send("POST", "/v1/executions/h1/settle", key: admin,
                                           json: #"{"ended_at":"2026-11-10T00:00:00Z","meters":{"cpu_ms":10001000}}"#)
        #expect(settle.string("charged") == "0.005000", "\(settle.body)")
        // A quote with the consumer is priced against its period: 2 CU more, all beyond the allowance, 0.010000.
        let quote = try await server.send("POST", "/v1/quotes", key: own, json: #"{"agent":"agt_research","meters":{"cpu_ms":2000}}"#)
        #expect(quote.string("plan") == "research-pro" && quote.string("charge") == "0.010000", "\(quote.body)")
        // The clock reaches 2026-12-01: the second fee (151.00 - 0.005 - 49.00).
        let december = try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-12-01T00:00:00Z"}"#)
        #expect(december.json?["fees"] as? Int == 1, "\(december.body)")
        let balance2 = try await server.send("GET", "/v1/balance", key: own)
        #expect(balance2.string("available") == "101.995000")
        // Canceled on 2026-12-05: it ends on 2027-01-01; the clock past it charges nothing more.
        let canceled = try await server.send("DELETE", "/v1/subscriptions/\(id)", key: own)
        #expect(canceled.status == 200, "\(canceled.body)")
        #expect(canceled.string("status") == "canceled")
        #expect(canceled.string("ends_at") == "2027-01-01T00:00:00Z")
        let january = try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2027-01-02T00:00:00Z"}"#)
        #expect(january.json?["fees"] as? Int == 0, "\(january.body)")
        let balance3 = try await server.send("GET", "/v1/balance", key: own)
        #expect(balance3.string("available") == "101.995000")
        let listed = try await server.send("GET", "/v1/subscriptions", key: own)
        let items = listed.json?["subscriptions"] as? [[String: Any]]
        #expect(items?.first?["status"] as? String == "ended", "\(listed.body)")
        // After the end, agt_research is priced by its default per-call plan again.
        let payg = try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"h2","consumer":"cus_h","agent":"agt_research"}"#)
        #expect(payg.string("plan") == "research-payg", "\(payg.body)")
        await server.stop()
    }

    @Test("422 spend_cap on reserve once an enterprise period's usage reached its cap, a settle after it refused (200); the next period prices again")
    func spendCap() async throws {
        let directory = temporaryPath("spend-cap")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/plans", toPath: directory + "/plans")
        try FileManager.default.copyItem(atPath: repositoryRoot + "/rules", toPath: directory + "/rules")
        // 1.00 a month, 0.10 per CU, usage charges capped at 1.00 a period.
        try """
            plan: capped
            agent: agt_capped
            creator: acct_capped
            currency: USD
            model: enterprise
            enterprise:
              period: month
              fee: 1.00
              usage:
                - price: 0.10
              guardrails:
                spend_cap: 1.00
            """.write(toFile: directory + "/plans/capped.yaml", atomically: true, encoding: .utf8)
        let server = try await TestServer.start(testClock: Self.t0, plans: directory + "/plans", rules: directory + "/rules")
        let admin = server.adminKey
        #expect(try await server.send("POST", "/v1/purchases", key: admin, json: #"{"consumer":"cus_c","amount":"10.00"}"#,
                                      headers: ["Idempotency-Key": "c1"]).status == 201)
        // Without a subscription the plan prices nothing.
        let before = try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"c0","consumer":"cus_c","agent":"agt_capped"}"#)
        #expect(before.status == 422 && before.code == "no_plan")
        #expect(try await server.send("POST", "/v1/subscriptions", key: admin, json: #"{"consumer":"cus_c","plan":"capped"}"#).status == 201)
        // 20 CU: 2.00, capped at 1.00.
        #expect(try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"c1","consumer":"cus_c","agent":"agt_capped"}"#).status == 201)
        #expect(try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"c1b","consumer":"cus_c","agent":"agt_capped"}"#).status == 201)
        let settled = try await server.send("POST", "/v1/executions/c1/settle", key: admin,
                                            json: #"{"ended_at":"2026-11-01T00:00:00Z","meters":{"cpu_ms":20000}}"#)
        #expect(settled.string("charged") == "1.000000", "\(settled.body)")
        // A run reserved before the cap was reached and settled after it: 200, refused, nothing charged (service.md).
        let late = try await server.send("POST", "/v1/executions/c1b/settle", key: admin,
                                         json: #"{"ended_at":"2026-11-01T00:00:00Z","meters":{"cpu_ms":1000}}"#)
        #expect(late.status == 200 && late.string("refused") == "spend_cap" && late.string("charged") == "0.000000", "\(late.body)")
        let refused = try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"c2","consumer":"cus_c","agent":"agt_capped"}"#)
        #expect(refused.status == 422 && refused.code == "spend_cap", "\(refused.body)")
        // 10.00 - 1.00 fee - 1.00 usage; nothing held for the refused run.
        let balance = try await server.send("GET", "/v1/balance?consumer=cus_c", key: admin)
        #expect(balance.string("available") == "8.000000" && balance.string("reserved") == "0.000000", "\(balance.body)")
        // A month on: a new period, its fee, and runs priced again.
        #expect(try await server.send("POST", "/v1/clock", key: admin, json: #"{"now":"2026-12-01T00:00:00Z"}"#).status == 200)
        #expect(try await server.send("POST", "/v1/executions", key: admin, json: #"{"execution":"c3","consumer":"cus_c","agent":"agt_capped"}"#).status == 201)
        await server.stop()
    }
}

/// The same month on PostgreSQL, in the suite `.ci/run` runs against its throwaway server (`--filter PostgresServerTests`).
extension ServicePostgresServerTests {
    @Test("live subscriptions: a month and a half through the HTTP API with the test clock (PostgreSQL) charges what simulate prices, to the micro-unit")
    func liveSubscriptionsMatchSimulate() async throws {
        let options = try LedgerOptions.parse(["--ledger", Self.freshURL()])
        try await LiveSubscriptionTests.compare(backend: try await options.backend())
    }
}
