import Foundation
import Tariff
import TariffSimulation
import Testing

/// Hand-worked simulations (issue 3): each expectation is computed in the comments.
@Suite("Simulation")
struct SimulationTests {
    typealias F = SimulationFixture

    @Test("a subscription anchored on the 31st, overage, a cancel, then no plan")
    func anchoredOn31st() throws {
        let catalog = try #require(F.catalog())
        let path = try F.trace([
            #"{"type":"purchase","at":"2026-01-01T00:00:00Z","consumer":"cus_1","amount":"100.00"}"#,
            F.event("subscribe", "2026-01-31T10:00:00Z", "cus_1", plan: "pro"),                        // fee 10.00, period to Feb 28 10:00
            F.execution("exe_1", "cus_1", "agt_a", ended: "2026-02-10T00:00:00Z", cpuMilliseconds: 150_000), // 150 CU: 50 over x 0.01 = 0.50
            F.execution("exe_2", "cus_1", "agt_a", ended: "2026-02-28T09:59:59.999Z", cpuMilliseconds: 20_000), // still period 1: 0.20
            F.execution("exe_3", "cus_1", "agt_a", ended: "2026-02-28T10:00:00Z", cpuMilliseconds: 20_000), // period 2 (fee 10.00 first): free
            F.event("cancel", "2026-03-05T00:00:00Z", "cus_1", plan: "pro"),                           // ends Mar 31 10:00, no fee then
            F.execution("exe_4", "cus_1", "agt_a", ended: "2026-04-02T00:00:00Z", cpuMilliseconds: 1_000), // no subscription, no default: no_plan
        ])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect(report.linesRead == 7)
        #expect(report.from == F.at("2026-01-01T00:00:00Z"))
        #expect(report.to == F.at("2026-04-02T00:00:00.000000001Z"))
        #expect((report.priced, report.refused, report.duplicates) == (3, 1, 0))
        #expect(report.totals.charged == F.money("20.70"))
        #expect(report.totals.purchased == F.money("100"))
        // Fee 10 -> 8 / 1.5 / 0.5 twice; 0.50 -> 0.40 / 0.075 / 0.025; 0.20 -> 0.16 / 0.03 / 0.01.
        #expect(report.totals.creator == F.money("16.56"))
        #expect(report.totals.platform == F.money("3.105"))
        #expect(report.totals.processing == F.money("1.035"))
        #expect(report.plans == [SimulationReport.PlanRow(plan: "pro", version: 1, charged: F.money("20.70"), fees: F.money("20"), usage: F.money("0.70"))])
        #expect(report.consumers == [SimulationReport.ConsumerRow(consumer: "cus_1", charged: F.money("20.70"), computeUnits: ComputeUnits(millis: 190_000), executions: 3, refused: 1)])
        // Payouts, minimum 10.00: Sat Jan 31 is in the week of Mon Jan 26 (fee share 8.00: carried);
        // Tue Feb 10 in the week of Feb 9 (0.40: carried, 8.40); Sat Feb 28 in the week of Feb 23
        // (0.16 + 8.00 + 0 = 8.16; due 16.56: paid).
        #expect(report.payouts.map { "\($0.week.weekStart) \($0.week.payDate) \($0.earnings) \($0.amount) \($0.carried)" } == [
            "2026-01-26 2026-02-04 8.000000 0.000000 8.000000",
            "2026-02-09 2026-02-18 0.400000 0.000000 8.400000",
            "2026-02-23 2026-03-04 8.160000 16.560000 0.000000",
        ])
        F.checkInvariants(report)
    }

    @Test("a re-subscribe to another plan of the same agent replaces the first; repeats and bad cancels")
    func replacement() throws {
        let catalog = try #require(F.catalog())
        let path = try F.trace([
            F.event("subscribe", "2026-11-02T00:00:00Z", "cus_1", plan: "pro"),                        // fee 10.00
            F.execution("exe_1", "cus_1", "agt_a", ended: "2026-11-03T00:00:00Z", cpuMilliseconds: 150_000), // 0.50
            F.event("subscribe", "2026-11-10T00:00:00Z", "cus_1", plan: "pro-plus"),                   // pro ends; fee 30.00
            F.execution("exe_2", "cus_1", "agt_a", ended: "2026-11-11T00:00:00Z", cpuMilliseconds: 150_000), // pro-plus allowance: 0
            F.event("subscribe", "2026-11-12T00:00:00Z", "cus_1", plan: "pro-plus"),                   // already subscribed: warning
            F.event("cancel", "2026-11-13T00:00:00Z", "cus_1", plan: "pro"),                           // not active any more: rejected
        ])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect(report.totals.charged == F.money("40.50"))
        #expect(report.plans.map { "\($0.plan) \($0.charged) \($0.fees) \($0.usage)" } == ["pro 10.500000 10.000000 0.500000", "pro-plus 30.000000 30.000000 0.000000"])
        #expect(report.rejected.map(\.line) == [6])
        #expect(report.warnings.map(\.line) == [5])
        F.checkInvariants(report)
    }

    @Test("an enterprise month: commitment shortfall, then the SLA credit over fee + usage + shortfall")
    func enterpriseMonth() throws {
        let catalog = try #require(F.catalog())
        let path = try F.trace([
            F.event("subscribe", "2026-11-01T00:00:00Z", "cus_e", plan: "ent"),                              // fee 100.00
            F.execution("exe_1", "cus_e", "agt_e", ended: "2026-11-05T00:00:00Z", cpuMilliseconds: 1_000_000),  // 1000 CU x 0.01 = 10.00
            F.execution("exe_2", "cus_e", "agt_e", ended: "2026-11-06T00:00:00Z", cpuMilliseconds: 500_000, status: "failed"), // free
        ])
        // The period ends 2026-12-01 00:00, inside (from, to]; the next fee at that instant is not in [from, to).
        let options = SimulationOptions(from: F.at("2026-11-01"), to: F.at("2026-12-01"))
        let report = try Simulator.run(trace: path, catalog: catalog, options: options)
        // Shortfall: 200 - (100 + 10) = 90. Availability 1/2 = 50% < 99%: credit 10% x (100 + 10 + 90) = 20.
        #expect(report.plans == [SimulationReport.PlanRow(plan: "ent", version: 1, charged: F.money("180"), fees: F.money("100"),
                                                          usage: F.money("10"), shortfall: F.money("90"), slaCredits: F.money("-20"))])
        #expect(report.priced == 2)
        #expect(report.consumers.first?.computeUnits == ComputeUnits(millis: 1_500_000))
        // Creator shares: Sun Nov 1 (week of Oct 26) 80.00 paid; Thu Nov 5 8.00 carried; Tue Dec 1
        // (week of Nov 30) 72.00 - 16.00 = 56.00, plus 8.00 carried: 64.00 paid.
        #expect(report.payouts.map { "\($0.week.weekStart) \($0.earnings) \($0.amount) \($0.carried)" } == [
            "2026-10-26 80.000000 80.000000 0.000000",
            "2026-11-02 8.000000 0.000000 8.000000",
            "2026-11-30 56.000000 64.000000 0.000000",
        ])
        F.checkInvariants(report)
    }

    @Test("spend-cap refusal, failed executions, duplicates and the Sunday/Monday boundary")
    func refusalsAndDuplicates() throws {
        let catalog = try #require(F.catalog())
        let p1 = F.execution("p1", "cus_p", "agt_p", ended: "2026-11-08T23:59:59.999Z", cpuMilliseconds: 10)
        let path = try F.trace([
            F.event("subscribe", "2026-11-02T00:00:00Z", "cus_c", plan: "capped"),                     // fee 0: no line
            F.execution("c1", "cus_c", "agt_c", ended: "2026-11-02T01:00:00Z", cpuMilliseconds: 2_000),  // 2 CU x 1.00 = 2.00
            F.execution("c2", "cus_c", "agt_c", ended: "2026-11-02T02:00:00Z", cpuMilliseconds: 2_000),  // min(2.00, 2.50 - 2.00) = 0.50
            F.execution("c3", "cus_c", "agt_c", ended: "2026-11-02T03:00:00Z", cpuMilliseconds: 1_000),  // cap reached: refused
            F.execution("c4", "cus_c", "agt_c", ended: "2026-11-02T04:00:00Z", cpuMilliseconds: 1_000, status: "failed"), // free, not refused
            p1,                                                                                          // Sunday 23:59:59.999: 0.02
            p1,                                                                                          // duplicate
            F.execution("p1", "cus_p", "agt_p", ended: "2026-11-08T23:59:59.999Z", cpuMilliseconds: 10, status: "failed"), // duplicate, differs: warning
            F.execution("p2", "cus_p", "agt_p", ended: "2026-11-09T00:00:00Z", cpuMilliseconds: 10),    // Monday 00:00: next week
        ])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect((report.priced, report.refused, report.duplicates) == (5, 1, 2))
        #expect(report.totals.charged == F.money("2.54"))
        #expect(report.warnings.map(\.line) == [8])
        #expect(report.consumers.map { "\($0.consumer) \($0.charged) \($0.executions) \($0.refused)" } == ["cus_c 2.500000 3 1", "cus_p 0.040000 2 0"])
        // acct_p: 0.016 in the week of Nov 2 (Sunday's last millisecond) and 0.016 in the week of Nov 9.
        let weeks = report.payouts.filter { $0.creator == "acct_p" }.map { "\($0.week.weekStart) \($0.earnings) \($0.carried)" }
        #expect(weeks == ["2026-11-02 0.016000 0.016000", "2026-11-09 0.016000 0.032000"])
        F.checkInvariants(report)
    }

    @Test("events out of order are sorted by time, then line; ties keep trace order")
    func ordering() throws {
        let catalog = try #require(F.catalog())
        let path = try F.trace([
            F.execution("exe_1", "cus_1", "agt_a", ended: "2026-11-03T00:00:00Z", cpuMilliseconds: 150_000),  // after the subscribe
            F.event("subscribe", "2026-11-02T00:00:00Z", "cus_1", plan: "pro"),
        ])
        let report = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions())
        #expect(report.totals.charged == F.money("10.50"))
        #expect(report.from == F.at("2026-11-02"))
    }

    @Test("bad lines are rejected with their numbers and the run goes on; --strict stops at the first")
    func badLines() throws {
        let catalog = try #require(F.catalog())
        let lines = [
            F.execution("exe_1", "cus_1", "agt_p", ended: "2026-11-03T00:00:00Z", cpuMilliseconds: 1),
            "not json",
            #"{"type":"execution","id":"x","consumer":"c","agent":"agt_p","started_at":"2026-11-03T00:00:01Z","ended_at":"2026-11-03T00:00:00Z","status":"succeeded","meters":{}}"#,
            #"{"type":"execution","id":"y","consumer":"c","agent":"agt_p","started_at":"2026-11-03T00:00:00Z","ended_at":"2026-11-03T00:00:00Z","status":"succeeded","meters":{"cpu_ms":-1}}"#,
            #"{"type":"refund","at":"2026-11-03T00:00:00Z"}"#,
            #"{"type":"purchase","at":"2026-11-03T00:00:00Z","consumer":"c","amount":"1.005"}"#,
            #"{"type":"purchase","at":"2026-11-03T00:00:00Z","consumer":"c","consumer":"d","amount":"1.00"}"#,
            "",
            F.event("subscribe", "2026-11-03T00:00:00Z", "c", plan: "payg"),
            F.event("subscribe", "2026-11-03T00:00:00Z", "c", plan: "nope"),
            F.event("cancel", "2026-11-03T00:00:00Z", "c", plan: "pro"),
            #"{"type":"purchase","at":"2026-11-03T00:00:00Z","consumer":"c","amount":12.5}"#,
        ]
        let report = try Simulator.run(trace: try F.trace(lines), catalog: catalog, options: SimulationOptions())
        #expect(report.linesRead == 12)
        #expect(report.rejected.map(\.line) == [2, 3, 4, 5, 6, 7, 9, 10, 11])
        #expect(report.priced == 1)
        #expect(report.totals.purchased == F.money("12.50"))
        #expect(throws: SimulationError.self) {
            try Simulator.run(trace: try F.trace(lines), catalog: catalog, options: SimulationOptions(strict: true))
        }
    }

    @Test("a gzip-compressed trace reads like the plain one")
    func gzip() throws {
        let catalog = try #require(F.catalog())
        let path = try F.trace([F.event("subscribe", "2026-11-02T00:00:00Z", "cus_1", plan: "pro"),
                                F.execution("exe_1", "cus_1", "agt_a", ended: "2026-11-03T00:00:00Z", cpuMilliseconds: 150_000)])
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-k", "-f", path]
        try gzip.run()
        gzip.waitUntilExit()
        let report = try Simulator.run(trace: path + ".gz", catalog: catalog, options: SimulationOptions())
        #expect(report.totals.charged == F.money("10.50"))
    }
}

@Suite("Simulation currencies")
struct SimulationCurrencyTests {
    typealias F = SimulationFixture

    @Test("several currencies need --currency; other currencies' executions are ignored, not counted")
    func currencies() throws {
        var sources = F.plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "plans/euro.yaml", text: """
        plan: euro
        agent: agt_eu
        creator: acct_eu
        currency: EUR
        model: per_call
        per_call: { fee: 0.05 }
        """, kind: .plan))
        sources.append(CatalogSource(path: "rules/rules.yaml", text: F.rules, kind: .rules))
        let catalog = try #require(CatalogLoader.compile(sources: sources).catalog)
        let path = try F.trace([
            F.execution("a", "cus_1", "agt_p", ended: "2026-11-03T00:00:00Z", cpuMilliseconds: 1),   // USD 0.02
            F.execution("b", "cus_1", "agt_eu", ended: "2026-11-03T00:00:01Z", cpuMilliseconds: 1),  // EUR 0.05
        ])
        #expect(throws: SimulationError.self) { try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions()) }
        let euro = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions(currency: Currency(code: "EUR")))
        #expect((euro.priced, euro.refused, euro.totals.charged) == (1, 0, F.money("0.05")))
        let dollar = try Simulator.run(trace: path, catalog: catalog, options: SimulationOptions(currency: Currency(code: "USD")))
        #expect((dollar.priced, dollar.refused, dollar.totals.charged) == (1, 0, F.money("0.02")))
    }
}
