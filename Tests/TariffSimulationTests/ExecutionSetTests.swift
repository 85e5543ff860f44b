@testable import TariffSimulation
import Testing

@Suite("Execution ids seen")
struct ExecutionSetTests {
    @Test("ids spilled to sorted runs on disk are still found, with their fingerprints")
    func spilling() {
        var set = ExecutionSet(memoryCapacity: 1_000)
        var random = SplitMix(state: 42)
        let ids = (0..<5_500).map { _ in (random.next(), random.next()) }
        for (index, id) in ids.enumerated() {
            guard case .new = set.insert(high: id.0, low: id.1, fingerprint: UInt64(index)) else {
                Issue.record("a new id was reported as seen")
                return
            }
        }
        // 5,500 ids with room for 1,000 in memory: five runs on disk, 500 ids in memory.
        #expect(set.spilledRuns == 5)
        var same = 0, differing = 0
        for (index, id) in ids.enumerated() {
            if case .repeated(let sameFields) = set.insert(high: id.0, low: id.1, fingerprint: UInt64(index)), sameFields { same += 1 }
            if case .repeated(let sameFields) = set.insert(high: id.0, low: id.1, fingerprint: UInt64(index) + 1), !sameFields { differing += 1 }
        }
        #expect(same == 5_500)
        #expect(differing == 5_500)
        // Ids never inserted are new (and now inserted).
        var fresh = 0
        for _ in 0..<2_000 {
            if case .new = set.insert(high: random.next(), low: random.next(), fingerprint: 0) { fresh += 1 }
        }
        #expect(fresh == 2_000)
    }
}
