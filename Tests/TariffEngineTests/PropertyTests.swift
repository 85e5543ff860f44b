import PropertyBased
import Tariff
import Testing

/// Invariants over the sample catalog's plans: monotone charges and no trap for any input
/// within the documented limits.
@Suite("Pricing properties")
struct PricingPropertyTests {
    static let catalog: CompiledCatalog? = {
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        return CatalogLoader.compile(plansDirectory: "/\(root)/plans", rulesDirectory: "/\(root)/rules").catalog
    }()

    static var handles: [PlanHandle] {
        guard let catalog else { return [] }
        return catalog.planIDs.flatMap { catalog.versions(of: $0) }
    }

    @Test("the sample catalog compiles")
    func sampleCompiles() throws {
        let catalog = try #require(Self.catalog)
        #expect(catalog.planIDs.count >= 5)
    }

    @Test("property: a charge never decreases when a meter grows")
    func monotone() async throws {
        let catalog = try #require(Self.catalog)
        let handles = Self.handles
        let meters = catalog.meterNames.count
        let reading = Gen.int(in: 0...10_000_000)
        // The instant is drawn around weekends and DST changes (so translate-weekly's Paris weekend
        // discount applies or not) and the period's executions around its free_executions count of 3.
        await propertyCheck(count: 1_000, input: Gen.int(in: 0...(handles.count - 1)), Gen.int(in: 0...(meters - 1)), reading, reading,
                            Gen.int(in: 0...3_000_000_000), Gen.int(in: 0...(EdgePropertyTests.turns.count - 1)), Gen.int(in: -7_200...7_200),
                            Gen.int(in: 0...5)) { planIndex, meterIndex, base, growth, used, turn, seconds, executions in
            var readings = MeterReadings()
            for meter in 0..<meters { readings[MeterIndex(rawValue: meter)] = MeterValue(micros: Int64(base) * 1_000) }
            let state = PeriodState(usedComputeUnits: ComputeUnits(millis: Int64(used)), usageCharges: Money(micros: Int64(used)), executions: Int64(executions))
            let endedAt = EdgePropertyTests.turns[turn].adding(nanoseconds: Int64(seconds) * 1_000_000_000)!
            let before = catalog.price(handles[planIndex], ExecutionInput(meters: readings, endedAt: endedAt), state: state)
            readings[MeterIndex(rawValue: meterIndex)] = MeterValue(micros: Int64(base) * 1_000 + Int64(growth) * 1_000)
            let after = catalog.price(handles[planIndex], ExecutionInput(meters: readings, endedAt: endedAt), state: state)
            if before.refusal == nil && after.refusal == nil {
                #expect(after.charge >= before.charge)
                #expect(after.computeUnits >= before.computeUnits)
            }
        }
    }

    @Test("property: pricing never traps within the documented limits, and lines add up to the charge")
    func neverTraps() async throws {
        let catalog = try #require(Self.catalog)
        let handles = Self.handles
        // Readings up to 10^12 units (the limit), any period state, either status. The period state
        // is drawn at the sample catalog's edges 3 times in 4 (within 3 CU of an allowance or a tier
        // bound, within 5.00 of the spend cap), else anywhere up to Int64.max: drawn uniformly, the
        // spend cap would almost always be reached already and an allowance almost never partly used.
        let reading = Gen.int(in: 0...Int(MeterValue.maximumWholeUnits * 1_000_000))
        let usedEdges: [Int64] = [0, 1_000_000, 10_000_000, 500_000_000, 2_000_000_000]      // thousandths: 1,000 and 10,000 CU allowances, tier bounds
        let spendCap: Int64 = 20_000_000_000                                                 // research-enterprise: 20,000.00
        await propertyCheck(count: 1_000, input: Gen.int(in: 0...(handles.count - 1)), reading, reading,
                            Gen.int(in: 0...Int(Int64.max)), Gen.int(in: 0...Int(Int64.max)), Gen.bool, Gen.int(in: 0...3),
                            Gen.int(in: -3_000...3_000)) { planIndex, a, b, anyUsed, anySpent, failed, aim, offset in
            let used = aim == 0 ? Int64(anyUsed) : max(0, usedEdges[Int(anyUsed % usedEdges.count)] + Int64(offset))
            let spent = aim == 0 ? Int64(anySpent) : spendCap - Int64(anySpent % 5_000_000) + Int64(offset % 4)
            var readings = MeterReadings()
            readings[MeterIndex(rawValue: 0)] = MeterValue(micros: Int64(a))
            readings[MeterIndex(rawValue: 3)] = MeterValue(micros: Int64(b))
            let state = PeriodState(usedComputeUnits: ComputeUnits(millis: Int64(used)), usageCharges: Money(micros: Int64(spent)), executions: Int64(used % 7))
            let result = catalog.price(handles[planIndex], ExecutionInput(meters: readings, failed: failed), state: state)
            #expect(result.charge.micros >= 0)
            #expect(result.lines.reduce(Int64(0)) { $0 &+ $1.amount.micros } == result.charge.micros)
            #expect(result.split.creator.micros + result.split.platform.micros + result.split.processing.micros == result.charge.micros)
        }
    }
}
