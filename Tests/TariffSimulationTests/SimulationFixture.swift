import Foundation
import Tariff
import TariffSimulation
import Testing

/// A small catalog and helpers shared by the simulation tests.
enum SimulationFixture {
    static let rules = """
    metering:
      standard:
        weights: { cpu_ms: 0.001 }
    splits:
      standard: { creator: 80%, platform: 15%, processing: 5% }
    payouts:
      minimum: 10.00
    """

    static let plans: [String: String] = [
        "pro.yaml": """
        plan: pro
        agent: agt_a
        creator: acct_a
        currency: USD
        model: subscription
        subscription: { period: month, fee: 10.00, allowance: 100, overage: 0.01 }
        """,
        "pro-plus.yaml": """
        plan: pro-plus
        agent: agt_a
        creator: acct_a
        currency: USD
        model: subscription
        subscription: { period: month, fee: 30.00, allowance: 1000, overage: 0.005 }
        """,
        "ent.yaml": """
        plan: ent
        agent: agt_e
        creator: acct_e
        currency: USD
        model: enterprise
        enterprise:
          period: month
          fee: 100.00
          usage:
            - price: 0.01
          commitment: 200.00
          sla:
            credits:
              - below: 99%
                credit: 10%
        """,
        "capped.yaml": """
        plan: capped
        agent: agt_c
        creator: acct_c
        currency: USD
        model: enterprise
        enterprise:
          period: month
          fee: 0
          usage:
            - price: 1.00
          guardrails: { spend_cap: 2.50 }
        """,
        "payg.yaml": """
        plan: payg
        agent: agt_p
        creator: acct_p
        currency: USD
        model: per_call
        per_call: { fee: 0.02 }
        """,
    ]

    static func catalog(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> CompiledCatalog? {
        var sources = plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules))
        let compilation = CatalogLoader.compile(sources: sources)
        if compilation.catalog == nil { Issue.record("fixture catalog: \(compilation.diagnostics)", sourceLocation: sourceLocation) }
        return compilation.catalog
    }

    /// Writes the lines to a temporary trace file and returns its path.
    static func trace(_ lines: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trace-\(UUID().uuidString).jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func execution(_ id: String, _ consumer: String, _ agent: String, ended: String, cpuMilliseconds: Int, status: String = "succeeded") -> String {
        #"{"type":"execution","id":"\#(id)","consumer":"\#(consumer)","agent":"\#(agent)","started_at":"\#(ended)","ended_at":"\#(ended)","status":"\#(status)","meters":{"cpu_ms":\#(cpuMilliseconds)}}"#
    }

    static func event(_ type: String, _ at: String, _ consumer: String, plan: String) -> String {
        #"{"type":"\#(type)","at":"\#(at)","consumer":"\#(consumer)","plan":"\#(plan)"}"#
    }

    static func money(_ text: String) -> Money { (try? Money(parsing: Substring(text), allowNegative: true)) ?? Money(micros: .min) }

    static func at(_ text: String) -> Timestamp { Timestamp(dateOrTimestamp: text) ?? Timestamp(nanosecondsSinceEpoch: .min) }

    /// The report's invariants (issue 3): totals are the sum of the rows, the three parties add up
    /// to the total, and for every creator the payouts plus the last carry equal the earnings.
    static func checkInvariants(_ report: SimulationReport, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let total = report.totals.charged.micros
        #expect(report.totals.creator.micros + report.totals.platform.micros + report.totals.processing.micros == total, sourceLocation: sourceLocation)
        #expect(report.plans.reduce(0) { $0 + $1.charged.micros } == total, sourceLocation: sourceLocation)
        #expect(report.consumers.reduce(0) { $0 + $1.charged.micros } == total, sourceLocation: sourceLocation)
        #expect(report.agents.reduce(0) { $0 + $1.charged.micros } == total, sourceLocation: sourceLocation)
        #expect(report.days.reduce(0) { $0 + $1.charged.micros } == total, sourceLocation: sourceLocation)
        for plan in report.plans {
            #expect(plan.fees.micros + plan.usage.micros + plan.shortfall.micros + plan.slaCredits.micros == plan.charged.micros, sourceLocation: sourceLocation)
        }
        for creator in Set(report.payouts.map(\.creator)) {
            let rows = report.payouts.filter { $0.creator == creator }
            let paid = rows.reduce(0) { $0 + $1.amount.micros }
            #expect(paid + (rows.last?.carried.micros ?? 0) == rows.reduce(0) { $0 + $1.earnings.micros } + (rows.first.map { $0.carried.micros + $0.amount.micros - $0.earnings.micros } ?? 0),
                    sourceLocation: sourceLocation)
        }
    }
}
