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

@Suite("Execution ids seen: the fixed filter")
struct ExecutionSetFilterTests {
    /// Ids with repeats of earlier ones (some with other fields), checked against a dictionary.
    static func checkAgainstModel(_ set: inout ExecutionSet, ids count: Int, seed: UInt64) -> (mismatches: Int, repeats: Int) {
        var random = SplitMix(state: seed)
        var model: [IdKey: UInt64] = [:]
        var seen: [IdKey] = []
        var mismatches = 0, repeats = 0
        for _ in 0..<count {
            let id: IdKey, fingerprint: UInt64
            if !seen.isEmpty && random.next() % 5 == 0 {
                // A repeat of any earlier id (often spilled long ago), half of them with other fields.
                id = seen[Int(random.next() % UInt64(seen.count))]
                fingerprint = random.next() % 2 == 0 ? model[id]! : model[id]! &+ 1
            } else {
                id = IdKey(high: random.next(), low: random.next())
                fingerprint = random.next()
            }
            let outcome = set.insert(high: id.high, low: id.low, fingerprint: fingerprint)
            if let first = model[id] {
                repeats += 1
                guard case .repeated(let sameFields) = outcome, sameFields == (first == fingerprint) else { mismatches += 1; continue }
            } else {
                guard case .new = outcome else { mismatches += 1; continue }
                model[id] = fingerprint
                seen.append(id)
            }
        }
        return (mismatches, repeats)
    }

    struct IdKey: Hashable {
        var high: UInt64
        var low: UInt64
    }

    @Test("a filter far too small for the ids (one 64-byte block) only costs look-ups on disk: answers stay exact")
    func tinyFilterStaysExact() {
        var set = ExecutionSet(memoryCapacity: 500, filterBytes: 64)
        let (mismatches, repeats) = Self.checkAgainstModel(&set, ids: 12_000, seed: 7)
        #expect(mismatches == 0)
        #expect(repeats > 2_000)
        #expect(set.spilledRuns > 15)
        #expect(set.filterMemory == 64)
        // Nearly every look-up of an id not in the table was a "maybe": false positives by the
        // thousand, each settled by searching every run.
        #expect(set.diskSearches > 8_000)
    }

    @Test("the default filter answers the same, with few searches on disk")
    func defaultFilterStaysExact() {
        // A 4 KiB filter: 2,048 ids at 16 bits each, about what this spills.
        var set = ExecutionSet(memoryCapacity: 256)
        let (mismatches, repeats) = Self.checkAgainstModel(&set, ids: 2_600, seed: 7)
        #expect(mismatches == 0)
        #expect(set.spilledRuns >= 7)
        #expect(set.filterMemory == 4_096)
        // Repeats of spilled ids, and a few false positives (about 1 in 1,000 look-ups).
        #expect(set.diskSearches < repeats + 20)
    }

    @Test("memory is the same after 1 spill and after 50: the filter is allocated once, the table reused")
    func memoryIsBounded() {
        var set = ExecutionSet(memoryCapacity: 500, filterBytes: 65_536)
        var random = SplitMix(state: 99)
        #expect(set.memory == IdTable(capacity: 1_024).memory)
        #expect(set.filterMemory == 0)
        // The memory right after each spill (when the table is empty): always the same.
        var sizes: Set<Int> = []
        for _ in 0..<25_250 {
            let runs = set.spilledRuns
            _ = set.insert(high: random.next(), low: random.next(), fingerprint: 0)
            if set.spilledRuns > runs { sizes.insert(set.memory) }
        }
        #expect(set.spilledRuns == 50)
        #expect(sizes == [IdTable(capacity: 1_024).memory + 65_536])
        #expect(set.filterMemory == 65_536)
    }

    @Test("the default filter budget is 16 bytes per id the table holds, rounded down to a power of two of 64-byte blocks")
    func defaultBudget() {
        var set = ExecutionSet(memoryCapacity: 1_000)
        var random = SplitMix(state: 3)
        for _ in 0..<1_000 { _ = set.insert(high: random.next(), low: random.next(), fingerprint: 0) }
        #expect(set.spilledRuns == 1)
        #expect(set.filterBytes == 16_000)
        #expect(set.filterMemory == 8_192)
    }

    @Test("a spill writes the table's ids in key order, including ids that probed past the last slot")
    func sortedSpill() {
        var table = IdTable(capacity: 64)
        var random = SplitMix(state: 5)
        var expected: [IdRecord] = []
        for index in 0..<40 {
            // Half of the ids crowd the last slots (their `low`s share the top bits), so some overflow.
            let low = (index % 2 == 0 ? random.next() : (UInt64.max - random.next() % 1_000_000)) | 1
            let high = random.next()
            table.insert(high: high, low: low, print: UInt32(index))
            expected.append(IdRecord(low: low, high: high, print: UInt64(index)))
        }
        var written: [IdRecord] = []
        table.forEachSorted { written.append($0) }
        #expect(written == expected.sorted())
        #expect(written.map(\.print) == expected.sorted().map(\.print))
        for record in expected {
            #expect(table.find(high: record.high, low: record.low) == UInt32(record.print))
        }
        #expect(table.find(high: 1, low: UInt64.max) == nil)
    }
}
