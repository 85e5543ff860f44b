import Foundation
import Synchronization
import PropertyBased
import Tariff
import TariffSettlement
import TariffSettlementTesting
import TariffSQLite
import Testing

/// The backends of this package, each run through the whole conformance suite.
extension BackendFactory {
    /// Every backend of this package.
    static var all: [BackendFactory] { Backends.all }
}

enum Backends {
    static let sqlite = BackendFactory(name: "sqlite", rawDump: { backend in try await (backend as! SQLiteBackend).dump() }) { currency in
        try SQLiteBackend(path: temporaryLedgerPath(), currency: currency)
    }

    static let all = [BackendFactory.memory, sqlite]

    /// A fresh file under the temporary folder; a test never reuses one.
    static func temporaryLedgerPath() -> String {
        directory.appendingPathComponent("\(UUID().uuidString).sqlite").path
    }

    /// The folder of the ledgers of the tests. Nothing removes /tmp on a machine that runs the suite
    /// all day (16,000 files had piled up), so the ledgers older than a day are removed the first
    /// time a test asks for one; a run in progress never has a file that old.
    private static let directory: URL = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-ledger-tests", isDirectory: true)
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let dayAgo = Date().addingTimeInterval(-86_400)
        let old = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        for file in old where ((try? file.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate ?? Date()) < dayAgo {
            try? FileManager.default.removeItem(at: file)
        }
        return directory
    }()
}

@Suite("Settlement conformance")
struct ConformanceTests {
    @Test(arguments: SettlementConformance.scenarios, Backends.all)
    func scenario(_ scenario: SettlementConformance.Scenario, _ backend: BackendFactory) async throws {
        try await scenario.run(backend)
    }

    @Test("conservation of money over random operation sequences", arguments: Backends.all)
    func conservation(_ backend: BackendFactory) async {
        let total = ConservationCounts.Total()
        await propertyCheck(count: backend.name == "memory" ? 100 : 40, input: Gen.int(in: 0...100_000)) { seed in
            total.add(try await SettlementConformance.conservation(backend, seed: UInt64(seed)))
        }
        // Over all the seeds, a third of the random steps applied, settles among them, and money was
        // charged (a backend refusing them would not; any one seed may by chance apply few).
        print("conservation on \(backend.name): \(total.value)")
        #expect(total.value.applied >= total.value.operations / 3 && total.value.settles >= 20 && total.value.charged >= 20, "\(total.value)")
    }

    /// Seed 18360 found it: a meter sample answered `exhausted` after the step had expired another
    /// hold of the consumer returned before saving the consumer, so its running balances stayed
    /// behind the expiry's entries (verify's invariants 1 and 2 failed).
    @Test("conservation, seed 18360: an exhausted meter sample after an expiry keeps balances and entries together", arguments: Backends.all)
    func exhaustedMeterAfterExpiry(_ backend: BackendFactory) async throws {
        try await SettlementConformance.conservation(backend, seed: 18_360)
    }

    @Test("period close over random late arrivals: total = max(commitment, fee + usage) exactly, SLA credit recomputed", arguments: Backends.all)
    func periodClose(_ backend: BackendFactory) async {
        let total = Mutex(SettlementConformance.CloseCounts())
        let runs = backend.name == "memory" ? 80 : 30
        await propertyCheck(count: runs, input: Gen.int(in: 0...100_000)) { seed in
            let counts = try await SettlementConformance.periodCloseProperty(backend, seed: UInt64(seed))
            total.withLock { $0.add(counts) }
        }
        let counts = total.withLock { $0 }
        print("period close on \(backend.name): \(counts)")
        // Over all the seeds: late runs, credit-backs, SLA credits that changed, totals past the
        // commitment. Bounds relative to the runs and well under what seeds give on average (per
        // run about 4 late runs, 0.9 credit-backs, 2 SLA changes, 3 past the commitment): fixed
        // ones failed once in a loaded full-suite run with 30 SQLite seeds.
        #expect(counts.late >= runs && counts.creditBacks >= runs / 6 && counts.slaChanges >= runs / 6 && counts.beyondCommitment >= runs / 3, "\(counts)")
    }

    @Test("payouts over random interleavings of settles, late settles and runs: paid + owed = earnings", arguments: Backends.all)
    func payoutInterleavings(_ backend: BackendFactory) async {
        let total = Mutex(SettlementConformance.PayoutInterleavingCounts())
        await propertyCheck(count: backend.name == "memory" ? 60 : 25, input: Gen.int(in: 0...100_000)) { seed in
            let counts = try await SettlementConformance.payoutInterleaving(backend, seed: UInt64(seed))
            total.withLock { $0.add(counts) }
        }
        let counts = total.withLock { $0 }
        print("payout interleavings on \(backend.name): \(counts)")
        // Over all the seeds: late settles, runs, payouts and refusals did happen.
        #expect(counts.lateSettles >= 50 && counts.runs >= 20 && counts.payouts >= 25 && counts.failed >= 1, "\(counts)")
    }
}
