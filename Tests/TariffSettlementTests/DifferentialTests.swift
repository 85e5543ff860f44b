import Foundation
import PropertyBased
import Tariff
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// Issue 14's differential test on the two backends that need no server (the PostgreSQL suite
/// runs the same sequences through all three): random operation sequences with faults (a crash
/// between two steps as a reopen of the file, a rail that times out after applying, answers lost
/// and sent again), every answer and the full ledger compared after each step.
///
/// `TARIFF_DIFFERENTIAL_RUNS` sets how many sequences (default 12, of 10 to 40 steps: a few
/// seconds in a debug build); e.g. `TARIFF_DIFFERENTIAL_RUNS=300` for a long run.
@Suite("differential: memory and SQLite (issue 14)")
struct DifferentialTests {
    static var runs: Int { ProcessInfo.processInfo.environment["TARIFF_DIFFERENTIAL_RUNS"].flatMap(Int.init) ?? 12 }

    static func sqlite() -> Differential.Subject {
        let path = Backends.temporaryLedgerPath()
        return Differential.Subject(name: "sqlite", open: { try SQLiteBackend(path: path, currency: TestLedger.usd) })
    }

    @Test("random sequences with faults: every answer and every snapshot equal after each step")
    func differential() async throws {
        let total = Differential.Counts.Total()
        await propertyCheck(count: Self.runs, input: Gen.int(in: 0...Int.max).array(of: 10...40)) { words in
            let counts = try await Differential.run(words, subjects: [.memory(), Self.sqlite()])
            total.add(counts)
        }
        let counts = total.value
        // The sequences did something: most steps applied, faults among them, money paid out.
        #expect(counts.applied >= counts.steps / 3 && counts.faults >= Self.runs, "\(counts)")
    }

    @Test("a fixed sequence exercising every kind of step, with payouts, late settles and each fault")
    func everyKind() async throws {
        // One word per kind (the low 5 bits choose it; the rest are parameters), twice over so that
        // repeats (replays, conflicts, closed holds) happen; day jumps make weeks payable.
        var words: [Int] = []
        for round in 0..<2 {
            for kind in [0, 4, 6, 7, 8, 12, 14, 15, 19, 22, 22, 22, 23, 24, 25, 26, 14, 27, 28, 29, 21, 25, 5] {
                words.append(kind + 32 * (round * 7 + 3 * kind + 1))
            }
        }
        let counts = try await Differential.run(words, subjects: [.memory(), Self.sqlite()])
        #expect(counts.steps == words.count, "\(counts)")
    }
}
