import Foundation
import PropertyBased
import Tariff
import TariffReplay
import TariffSettlement
import TariffSettlementTesting
import TariffSimulation
import TariffSQLite
import Testing

@Suite("Ledger replay")
struct ReplayTests {
    static func money(_ text: String) -> Money { TestLedger.money(text) }

    static func write(_ lines: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trace-\(UUID().uuidString).jsonl").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// plans.md: an enterprise subscription replaced by another plan of the same agent is closed at
    /// that instant, its period-end lines computed over the shortened period against the full
    /// commitment; the ledger charges them at the replacement, as simulate does.
    @Test("an enterprise subscription replaced mid-period is closed in the ledger against the full commitment", arguments: BackendFactory.all)
    func enterpriseReplaced(_ factory: BackendFactory) async throws {
        let entB = """
            plan: ent-b
            agent: agt_ent
            creator: acct_ent
            currency: USD
            model: enterprise
            enterprise:
              period: month
              fee: 20.00
              usage:
                - price: 0.10
            """
        // The conformance catalog's `ent`: 100.00 a month, 0.10 per CU, at least 150.00, 10% back under 99%.
        let ent = """
            plan: ent
            agent: agt_ent
            creator: acct_ent
            currency: USD
            model: enterprise
            enterprise:
              period: month
              fee: 100.00
              usage:
                - price: 0.10
              commitment: 150.00
              sla:
                availability: 99%
                credits:
                  - below: 99%
                    credit: 10%
            """
        let rules = """
            metering:
              standard:
                weights: { cpu_ms: 0.001 }
            splits:
              standard: { creator: 80%, platform: 15%, processing: 5% }
            """
        let compilation = CatalogLoader.compile(sources: [CatalogSource(path: "plans/ent.yaml", text: ent, kind: .plan),
                                                          CatalogSource(path: "plans/ent-b.yaml", text: entB, kind: .plan),
                                                          CatalogSource(path: "rules/rules.yaml", text: rules, kind: .rules)])
        let catalog = try #require(compilation.catalog, "\(compilation.diagnostics)")
        let trace = try Self.write([
            #"{"type":"purchase","at":"2026-10-31T00:00:00Z","consumer":"cus_1","amount":"500.00"}"#,
            #"{"type":"subscribe","at":"2026-11-01T00:00:00Z","consumer":"cus_1","plan":"ent"}"#,
            // 100 CU x 0.10 = 10.00; a failed run (free) makes the availability 1/2.
            #"{"type":"execution","id":"e1","consumer":"cus_1","agent":"agt_ent","started_at":"2026-11-05T00:00:00Z","ended_at":"2026-11-05T00:00:00Z","status":"succeeded","meters":{"cpu_ms":100000}}"#,
            #"{"type":"execution","id":"e2","consumer":"cus_1","agent":"agt_ent","started_at":"2026-11-06T00:00:00Z","ended_at":"2026-11-06T00:00:00Z","status":"failed","meters":{"cpu_ms":1000}}"#,
            // ent closes here: shortfall 150 - (100 + 10) = 40.00 against the full commitment (prorated
            // to 15 of 30 days, 75.00, there would be none); 50% < 99%: credit -10% x 150 = -15.00.
            #"{"type":"subscribe","at":"2026-11-16T00:00:00Z","consumer":"cus_1","plan":"ent-b"}"#,
            #"{"type":"execution","id":"e3","consumer":"cus_1","agent":"agt_ent","started_at":"2026-11-20T00:00:00Z","ended_at":"2026-11-20T00:00:00Z","status":"succeeded","meters":{"cpu_ms":100000}}"#,
        ])
        let backend = try await factory.makeBackend(TestLedger.usd)
        let report = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: backend, options: SimulationOptions())
        #expect(report.simulation.rejected.isEmpty)
        let lines = try await backend.snapshot().charges
        let closing = lines.filter { $0.kind == .shortfall || $0.kind == .slaCredit }
        #expect(closing.map(\.kind) == [.shortfall, .slaCredit])
        #expect(closing.map(\.billed) == [Self.money("40.00"), Self.money("-15.00")])
        #expect(closing.allSatisfy { $0.plan == "ent" && $0.datedAt == Timestamp(rfc3339: "2026-11-16T00:00:00Z")! })
        // 100 + 10 + 40 - 15 (ent) + 20 + 10 (ent-b) = 165.00 taken from the 500.00.
        #expect(report.balances == [Balance(consumer: "cus_1", currency: TestLedger.usd, available: Self.money("335.00"), reserved: .zero)])
        #expect(try await Settlement(backend: backend, catalog: catalog).verify().passed)
    }

    @Test("a small trace through the lifecycle, worked by hand", arguments: BackendFactory.all)
    func handWorked(_ factory: BackendFactory) async throws {
        let trace = try Self.write([
            #"{"type":"purchase","at":"2026-11-01T08:00:00Z","consumer":"cus_1","amount":"50.00"}"#,
            #"{"type":"subscribe","at":"2026-11-01T09:00:00Z","consumer":"cus_1","plan":"metered"}"#,
            #"{"type":"execution","id":"e1","consumer":"cus_1","agent":"agt_metered","started_at":"2026-11-02T09:59:00Z","ended_at":"2026-11-02T10:00:00Z","status":"succeeded","meters":{"cpu_ms":12000}}"#,
            #"{"type":"execution","id":"e2","consumer":"cus_2","agent":"agt_flat","started_at":"2026-11-02T11:00:00Z","ended_at":"2026-11-02T11:00:01Z","status":"succeeded","meters":{"cpu_ms":5}}"#,
            #"{"type":"purchase","at":"2026-11-03T00:00:00Z","consumer":"cus_2","amount":"10.00"}"#,
            #"{"type":"execution","id":"e3","consumer":"cus_2","agent":"agt_flat","started_at":"2026-11-03T01:00:00Z","ended_at":"2026-11-03T01:00:01Z","status":"succeeded","meters":{"cpu_ms":5}}"#,
            #"{"type":"execution","id":"e4","consumer":"cus_2","agent":"agt_flat","started_at":"2026-11-03T02:00:00Z","ended_at":"2026-11-03T02:00:01Z","status":"succeeded","meters":{"cpu_ms":5}}"#,
            #"{"type":"execution","id":"e3","consumer":"cus_2","agent":"agt_flat","started_at":"2026-11-03T01:00:00Z","ended_at":"2026-11-03T01:00:01Z","status":"succeeded","meters":{"cpu_ms":5}}"#,
            "not json",
        ])
        let backend = try await factory.makeBackend(TestLedger.usd)
        let report = try await LedgerReplay.run(trace: trace, catalog: TestLedger.catalog, backend: backend, options: SimulationOptions())
        // e2: cus_2 has bought nothing yet; e4: 3.00 left cannot hold the 7.00 fee.
        #expect(report.refusedForCredits == 2)
        #expect(report.simulation.priced == 2 && report.simulation.refused == 2 && report.simulation.duplicates == 1)
        #expect(report.simulation.rejected.map(\.line) == [9])
        // The 10.00 fee, e1's 2 CU over the allowance at 0.50 (1.00), e3's 7.00.
        #expect(report.simulation.totals.charged == Self.money("18.00"))
        #expect(report.simulation.consumers.map(\.refused) == [0, 2])
        // cus_1: 50.00 - 10.00 - 1.00; cus_2: 10.00 - 7.00.
        #expect(report.balances == [Balance(consumer: "cus_1", currency: TestLedger.usd, available: Self.money("39.00"), reserved: .zero),
                                    Balance(consumer: "cus_2", currency: TestLedger.usd, available: Self.money("3.00"), reserved: .zero)])
        #expect(report.uncollected == .zero)
        let verification = try await Settlement(backend: backend, catalog: TestLedger.catalog).verify()
        #expect(verification.passed)
        // Run again: every step returns its first result and nothing changes.
        let before = try await backend.snapshot()
        let again = try await LedgerReplay.run(trace: trace, catalog: TestLedger.catalog, backend: backend, options: SimulationOptions())
        #expect(try await backend.snapshot() == before)
        #expect(again.simulation.totals == report.simulation.totals && again.balances == report.balances && again.refusedForCredits == 2)
    }

    /// usage.md: events may come in any order (the engine orders them by time, ties by line). A
    /// trace of purchases, subscribes, cancels, executions of every model and repeated ids, replayed
    /// once in time order and once shuffled, writes the same ledger, row for row.
    @Test("property: a shuffled trace replays into the ledger of the same trace in time order")
    func shuffledReplay() async throws {
        await propertyCheck(count: 12, input: Gen.int(in: 0...Int(UInt32.max))) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            var seconds = Set<UInt64>()
            func instant() -> String {
                var second: UInt64
                repeat { second = random.next() % (40 * 86_400) } while !seconds.insert(second).inserted
                return Timestamp(nanosecondsSinceEpoch: 1_793_491_200_000_000_000 + Int64(second) * 1_000_000_000).rfc3339  // from 2026-11-01
            }
            var lines: [(at: String, text: String)] = []
            let agents = [("agt_flat", "flat"), ("agt_metered", "metered"), ("agt_ent", "ent")]
            for index in 0..<60 {
                let consumer = "cus_\(random.next() % 3)", at = instant()
                switch random.next() % 10 {
                case 0, 1:
                    lines.append((at, #"{"type":"purchase","at":"\#(at)","consumer":"\#(consumer)","amount":"\#(random.next() % 40 + 1).00"}"#))
                case 2:
                    lines.append((at, #"{"type":"subscribe","at":"\#(at)","consumer":"\#(consumer)","plan":"\#(random.next() % 2 == 0 ? "metered" : "ent")"}"#))
                case 3:
                    lines.append((at, #"{"type":"cancel","at":"\#(at)","consumer":"\#(consumer)","plan":"\#(random.next() % 2 == 0 ? "metered" : "ent")"}"#))
                default:
                    let agent = agents[Int(random.next() % 3)].0
                    let text = #"{"type":"execution","id":"e\#(index)","consumer":"\#(consumer)","agent":"\#(agent)","started_at":"\#(at)","ended_at":"\#(at)","status":"\#(random.next() % 8 == 0 ? "failed" : "succeeded")","meters":{"cpu_ms":\#(random.next() % 30_000)}}"#
                    lines.append((at, text))
                    // A repeat of the same line (at-least-once delivery) now and then.
                    if random.next() % 6 == 0 { lines.append((at, text)) }
                }
            }
            // RFC 3339 in UTC with one format: text order is time order.
            let sorted = lines.sorted { $0.at < $1.at }
            // Purchases stay at the top, in one order, in both files: this branch's replay still keys a
            // purchase by its line (issue 12 makes the key `trace:CONSUMER:AT:AMOUNT`, after which
            // they can be shuffled too). Every other line is shuffled.
            let purchases = sorted.filter { $0.text.contains(#""type":"purchase""#) }
            var rest = sorted.filter { !$0.text.contains(#""type":"purchase""#) }
            rest.shuffle(using: &random)
            let shuffled = purchases + rest
            do {
                var snapshots: [LedgerSnapshot] = []
                for order in [purchases + sorted.filter { !$0.text.contains(#""type":"purchase""#) }, shuffled] {
                    let backend = InMemoryBackend(currency: TestLedger.usd)
                    _ = try await LedgerReplay.run(trace: try Self.write(order.map(\.text)), catalog: TestLedger.catalog, backend: backend, options: SimulationOptions())
                    snapshots.append(await backend.snapshot())
                    #expect(try await Settlement(backend: backend, catalog: TestLedger.catalog).verify().passed, "seed \(seed)")
                }
                #expect(snapshots[0].charges.count > 0, "seed \(seed)")
                #expect(snapshots[0] == snapshots[1], "seed \(seed): the shuffled trace wrote another ledger")
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
    }

    @Test("with credits to spare, replay charges exactly what simulate prices")
    func sameAsSimulate() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let catalog = try #require(CatalogLoader.compile(plansDirectory: root.appendingPathComponent("plans").path,
                                                         rulesDirectory: root.appendingPathComponent("rules").path).catalog)
        var lines: [String] = []
        let generator = TraceGenerator(events: 1_500, consumers: 20, days: 21, start: Timestamp(date: "2026-11-02")!, seed: 11)
        _ = try generator.generate(for: catalog) { line in lines.append(contentsOf: line.split(separator: "\n").map(String.init)) }
        // A million of credits for everyone first (before any event), so nothing is refused for credits.
        let topUps = (0..<20).map { #"{"type":"purchase","at":"2026-11-01T00:00:00Z","consumer":"cus_\#($0)","amount":"1000000.00"}"# }
        let trace = try Self.write(topUps + lines)
        let options = SimulationOptions(currency: Currency(code: "USD"))
        let simulated = try Simulator.run(trace: trace, catalog: catalog, options: options)
        let backend = InMemoryBackend(currency: TestLedger.usd)
        let replayed = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: backend, options: options)
        #expect(replayed.refusedForCredits == 0)
        #expect(simulated.priced > 900)
        #expect(replayed.simulation.totals == simulated.totals)
        #expect(replayed.simulation.plans == simulated.plans)
        #expect(replayed.simulation.consumers == simulated.consumers)
        #expect(replayed.simulation.payouts == simulated.payouts)
        // What the ledger's charge lines collected is what simulate billed, none of it uncollected.
        let charges = await backend.snapshot().charges
        #expect(charges.reduce(Int64(0)) { $0 + $1.charged.micros } == simulated.totals.charged.micros)
        #expect(replayed.uncollected == .zero)
    }

    @Test("the same trace replayed through the in-memory and SQLite backends ends in identical ledgers")
    func sameLedgerOnEveryBackend() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let catalog = try #require(CatalogLoader.compile(plansDirectory: root.appendingPathComponent("plans").path,
                                                         rulesDirectory: root.appendingPathComponent("rules").path).catalog)
        var lines: [String] = []
        _ = try TraceGenerator(events: 800, consumers: 15, days: 10, start: Timestamp(date: "2026-11-02")!, seed: 3).generate(for: catalog) { line in
            lines.append(contentsOf: line.split(separator: "\n").map(String.init))
        }
        let trace = try Self.write(lines)
        let options = SimulationOptions(currency: Currency(code: "USD"))
        var snapshots: [LedgerSnapshot] = []
        for factory in BackendFactory.all {
            let backend = try await factory.makeBackend(TestLedger.usd)
            _ = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: backend, options: options)
            snapshots.append(try await backend.snapshot())
        }
        #expect(snapshots[0].entries.count > 1_000)
        // Balances, holds, entries (in order), charge lines, operations and period states: all equal
        // (compared part by part, naming the first row that differs).
        let (memory, sqlite) = (snapshots[0], snapshots[1])
        Self.expectSame(memory.consumers, sqlite.consumers, "consumers")
        Self.expectSame(memory.holds, sqlite.holds, "holds")
        Self.expectSame(memory.entries, sqlite.entries, "entries")
        Self.expectSame(memory.charges, sqlite.charges, "charge lines")
        Self.expectSame(memory.operations, sqlite.operations, "operations")
        Self.expectSame(memory.periods, sqlite.periods, "period states")
    }

    /// Issue 13: steps are group-committed, a bounded batch at a time; issue 12 item 7: nothing the
    /// replay keeps grows with the trace (the pending batch is bounded, the ledger's page cache too).
    @Test("replay applies its steps in bounded batches, and the SQLite ledger's page caches are bounded")
    func boundedBatches() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let catalog = try #require(CatalogLoader.compile(plansDirectory: root.appendingPathComponent("plans").path,
                                                         rulesDirectory: root.appendingPathComponent("rules").path).catalog)
        var lines: [String] = []
        _ = try TraceGenerator(events: 3_000, consumers: 20, days: 10, start: Timestamp(date: "2026-11-02")!, seed: 9).generate(for: catalog) { line in
            lines.append(contentsOf: line.split(separator: "\n").map(String.init))
        }
        let trace = try Self.write(lines)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString).sqlite").path
        let sqlite = try SQLiteBackend(path: path, currency: TestLedger.usd)
        let report = try await LedgerReplay.run(trace: trace, catalog: catalog, backend: sqlite, options: SimulationOptions(currency: Currency(code: "USD")))
        // Every priced execution, refusal for credits and purchase is one step (besides period charges).
        #expect(report.steps >= report.simulation.priced + report.refusedForCredits)
        #expect(report.largestBatch > 1 && report.largestBatch <= 1_024)
        #expect(LedgerReplay.maximumBatch == 1_024)
        // 2 MiB a reader (PRAGMA cache_size is negative for KiB).
        #expect(try await sqlite.readerCacheSetting() == -2_048)
        #expect(SQLiteBackend.writerCacheKibibytes == 16_384)
        #expect(try await Settlement(backend: sqlite, catalog: catalog).verify().passed)
    }

    static func expectSame<Row: Equatable>(_ a: [Row], _ b: [Row], _ what: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, "\(what): \(a.count) rows against \(b.count)", sourceLocation: sourceLocation)
        if let index = a.indices.first(where: { $0 < b.count && a[$0] != b[$0] }) {
            Issue.record("\(what) differ first at row \(index): \(a[index]) against \(b[index])", sourceLocation: sourceLocation)
        }
    }
}
