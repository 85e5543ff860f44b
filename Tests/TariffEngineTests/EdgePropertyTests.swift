import Foundation
import PropertyBased
import Synchronization
import Tariff
import Testing

/// Properties whose generators aim at the edges where pricing changes its mind: usage just below,
/// at and above the allowance; spend just below, at and above the cap; the N-th free execution;
/// weekends and the hours around a daylight saving time change; split remainders of 1 and 2
/// micro-units. Each expected value is computed here from plans.md's formulas (or, for local
/// time, from Foundation's calendar), never from the engine; and each property counts how often
/// it reached its edge, so a generator that drifts away from it fails loudly.
@Suite("Pricing at the edges")
struct EdgePropertyTests {
    /// How often each edge case was drawn (the closures run concurrently).
    final class Coverage: Sendable {
        private let counts = Mutex<[String: Int]>([:])
        func hit(_ name: String) { counts.withLock { $0[name, default: 0] += 1 } }
        func count(_ name: String) -> Int { counts.withLock { $0[name] ?? 0 } }
    }

    /// `round_half_even_6` of `numerator / denominator` micro-units (both positive).
    static func halfEven(_ numerator: Int128, _ denominator: Int128) -> Int64 {
        let quotient = numerator / denominator, remainder = numerator % denominator
        let rounded = remainder * 2 > denominator || (remainder * 2 == denominator && quotient % 2 == 1) ? quotient + 1 : quotient
        return Int64(rounded)
    }

    static func compile(_ plan: String, model: String, _ section: String, extra: String = "") throws -> (CompiledCatalog, PlanHandle) {
        let catalog = try #require(TestCatalog.compile(["\(plan).yaml": TestCatalog.plan(plan, model: model, section, extra: extra)]))
        return (catalog, try #require(catalog.plan(id: plan, version: 1)))
    }

    /// cpu_ms weighs 0.001 (precision 0.001): a reading of R ms is exactly R thousandths of a CU.
    static func execution(_ catalog: CompiledCatalog, cpuMilliseconds: Int, failed: Bool = false, at instant: Timestamp? = nil) -> ExecutionInput {
        var readings = MeterReadings()
        readings[catalog.meter(named: "cpu_ms")!] = MeterValue(micros: Int64(cpuMilliseconds) * 1_000_000)
        return ExecutionInput(meters: readings, failed: failed, endedAt: instant ?? Timestamp(rfc3339: "2026-11-04T12:00:00Z")!)
    }

    @Test("property: subscription usage just below, at and above the allowance")
    func allowanceEdge() async throws {
        // 100 CU included, then 0.0125 per CU: 12.5 micro-units per thousandth of a CU, so an odd
        // overage in thousandths ends in a half micro-unit and rounds half to even.
        let (catalog, plan) = try Self.compile("sub", model: "subscription", "  period: month\n  fee: 0\n  allowance: 100\n  overage: 0.0125")
        let allowance = 100_000  // thousandths
        let coverage = Coverage()
        await propertyCheck(count: 1_000, input: Gen.int(in: 0...9), Gen.int(in: -3_000...3_000), Gen.int(in: 0...5_000)) { aim, offset, units in
            // 9 draws in 10 land within 3 CU of the allowance (one in ten exactly on it, one in ten
            // half-way through this execution), the rest anywhere up to 10x it.
            let used = switch aim {
            case 0: (offset + 3_000) * 333
            case 1: allowance
            case 2: allowance - units / 2
            default: max(0, allowance + offset)
            }
            let result = catalog.price(plan, Self.execution(catalog, cpuMilliseconds: units), state: PeriodState(usedComputeUnits: ComputeUnits(millis: Int64(used))))
            let covered = min(units, max(0, allowance - used)), overage = units - covered
            if covered > 0 && overage > 0 { coverage.hit("partly covered") }
            if used == allowance { coverage.hit("at the allowance") }
            if overage % 2 == 1 { coverage.hit("half micro-unit") }
            #expect(result.refusal == nil)
            #expect(result.computeUnits == ComputeUnits(millis: Int64(units)))
            #expect(result.charge.micros == Self.halfEven(Int128(overage) * 25, 2), "used \(used), cu \(units)")
            #expect(result.state.usedComputeUnits.millis == Int64(used + units))
        }
        #expect(coverage.count("partly covered") >= 100, "\(coverage.count("partly covered"))")
        #expect(coverage.count("at the allowance") >= 50, "\(coverage.count("at the allowance"))")
        #expect(coverage.count("half micro-unit") >= 100, "\(coverage.count("half micro-unit"))")
    }

    @Test("property: enterprise spend just below, at and above the cap")
    func spendCapEdge() async throws {
        // 0.0125 per CU, a spend cap of 5.00 per period.
        let (catalog, plan) = try Self.compile("ent", model: "enterprise",
                                                "  period: month\n  fee: 0\n  usage:\n    - price: 0.0125\n  guardrails:\n    spend_cap: 5.00")
        let cap: Int64 = 5_000_000
        let coverage = Coverage()
        await propertyCheck(count: 1_000, input: Gen.int(in: 0...9), Gen.int(in: -3...3), Gen.int(in: 0...2_000), Gen.int(in: 0...200_000), Gen.bool(0.1)) {
            aim, near, below, units, failed in
            // Within 3 micro-units of the cap, or up to 2,000 micro-units below it (where an
            // execution is cut to what is left), or anywhere below.
            let spent: Int64 = switch aim {
            case 0...3: cap + Int64(near)
            case 4...7: cap - Int64(below)
            default: Int64(below) * 2_000
            }
            let result = catalog.price(plan, Self.execution(catalog, cpuMilliseconds: units, failed: failed),
                                       state: PeriodState(usageCharges: Money(micros: spent)))
            let priced = Self.halfEven(Int128(units) * 25, 2)
            if failed {
                // A free failed execution is never refused.
                #expect(result.refusal == nil && result.charge == .zero)
            } else if spent >= cap {
                coverage.hit(spent == cap ? "at the cap" : "beyond the cap")
                #expect(result.refusal == .spendCap && result.charge == .zero, "spent \(spent)")
            } else {
                if priced > cap - spent { coverage.hit("cut to the cap") }
                #expect(result.refusal == nil)
                #expect(result.charge.micros == min(priced, cap - spent), "spent \(spent), cu \(units)")
                #expect(result.state.usageCharges.micros == spent + result.charge.micros)
            }
        }
        #expect(coverage.count("at the cap") >= 20 && coverage.count("beyond the cap") >= 20 && coverage.count("cut to the cap") >= 100)
    }

    @Test("property: free_executions frees exactly the first N billable executions of a period")
    func freeExecutionsEdge() async throws {
        // Everything billed at 0.10 per CU; the first 3 billable executions of a period are free.
        let (catalog, plan) = try Self.compile("free", model: "subscription", "  period: week\n  fee: 0\n  allowance: 0\n  overage: 0.10",
                                                extra: "rules:\n  - kind: free_executions\n    count: 3\n")
        let coverage = Coverage()
        await propertyCheck(count: 500, input: Gen.int(in: 0...6), Gen.int(in: 1...50_000), Gen.bool(0.15)) { before, units, failed in
            let state = PeriodState(usedComputeUnits: ComputeUnits(millis: 1_000), executions: Int64(before), succeeded: Int64(before))
            let result = catalog.price(plan, Self.execution(catalog, cpuMilliseconds: units, failed: failed), state: state)
            // The N-th (before = 2) is the last free one; the (N+1)-th (before = 3) is billed: 100 micro-units per thousandth.
            let expected: Int64 = failed || before < 3 ? 0 : Int64(units) * 100
            if !failed && before == 2 { coverage.hit("N-th") }
            if !failed && before == 3 { coverage.hit("N+1-th") }
            #expect(result.refusal == nil)
            #expect(result.charge.micros == expected, "execution \(before + 1) of the period, failed \(failed)")
        }
        #expect(coverage.count("N-th") >= 20 && coverage.count("N+1-th") >= 20)
    }

    /// Instants where local time turns: the weekend's start and end in Paris in winter and summer,
    /// and both daylight saving time changes of 2026 (29 March and 25 October, at 01:00 UTC).
    static let turns = ["2026-11-27T23:00:00Z", "2026-11-29T23:00:00Z", "2026-06-26T22:00:00Z", "2026-06-28T22:00:00Z",
                        "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T00:00:00Z", "2026-03-28T23:00:00Z"]
        .map { Timestamp(rfc3339: $0)! }

    @Test("property: weekend and hour conditions around weekends and DST changes, in Europe/Paris")
    func localTimeEdge() async throws {
        let (weekendCatalog, weekend) = try Self.compile("weekend", model: "per_call", "  fee: 1.00",
                                                          extra: "rules:\n  - kind: discount\n    percent: 50%\n    when: { weekday: [sat, sun], timezone: Europe/Paris }\n")
        let (hourCatalog, twoAM) = try Self.compile("night", model: "per_call", "  fee: 1.00",
                                                     extra: "rules:\n  - kind: discount\n    percent: 50%\n    when: { hours: { from: 2, to: 3 }, timezone: Europe/Paris }\n")
        // The oracle: Foundation's calendar in the zone (the engine tables the zone's offsets itself).
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "Europe/Paris"))
        let paris = calendar
        let coverage = Coverage()
        await propertyCheck(count: 1_000, input: Gen.int(in: 0...(Self.turns.count - 1)), Gen.int(in: -10_800...10_800)) { turn, seconds in
            let instant = Self.turns[turn].adding(nanoseconds: Int64(seconds) * 1_000_000_000)!
            let date = Date(timeIntervalSince1970: TimeInterval(instant.nanosecondsSinceEpoch / 1_000_000_000))
            let isWeekend = [1, 7].contains(paris.component(.weekday, from: date))
            let isTwoAM = paris.component(.hour, from: date) == 2
            coverage.hit(isWeekend ? "weekend" : "weekday")
            if isTwoAM { coverage.hit("2 am") }
            let half = Money(micros: 500_000), full = Money(micros: 1_000_000)
            #expect(weekendCatalog.price(weekend, Self.execution(weekendCatalog, cpuMilliseconds: 1, at: instant), state: .empty).charge == (isWeekend ? half : full),
                    "\(instant)")
            #expect(hourCatalog.price(twoAM, Self.execution(hourCatalog, cpuMilliseconds: 1, at: instant), state: .empty).charge == (isTwoAM ? half : full),
                    "\(instant)")
        }
        #expect(coverage.count("weekend") >= 100 && coverage.count("weekday") >= 100 && coverage.count("2 am") >= 50)
    }

    /// plans.md's split, restated: shares truncated toward zero, then the micro-units left over one
    /// at a time by the largest truncated-away fraction, ties creator, platform, processing.
    static func referenceSplit(_ amount: Int64, _ percents: [Int64]) -> (shares: [Int64], leftover: Int) {
        let exact = percents.map { Int128(amount) * Int128($0) }
        var shares = exact.map { $0 / 1_000_000 }
        let fractions = exact.map { ($0 % 1_000_000).magnitude }
        let leftover = Int((Int128(amount) - shares.reduce(0, +)).magnitude)
        let order = [0, 1, 2].sorted { fractions[$0] != fractions[$1] ? fractions[$0] > fractions[$1] : $0 < $1 }
        for index in order.prefix(leftover) { shares[index] += amount < 0 ? -1 : 1 }
        return (shares.map { Int64($0) }, leftover)
    }

    @Test("property: split remainders of 1 and 2 micro-units follow the largest-remainder order")
    func splitRemainders() async throws {
        let coverage = Coverage()
        await propertyCheck(count: 3_000, input: Gen.int(in: 0...1_000_000), Gen.int(in: 0...1_000_000), Gen.int(in: 0...3),
                            Gen.int(in: -1_000_000_000...1_000_000_000)) { a, b, scale, base in
            let creator = Int64(a), platform = Int64(min(b, 1_000_000 - a)), processing = 1_000_000 - creator - platform
            // Small lines (where a remainder is most of the line), and lines up to 10^15 micro-units.
            let amount = Int64(base) / [1, 1_000, 100_000, 1][scale] * (scale == 3 ? 1_000_000 : 1)
            guard let rule = SplitRule(creator: Percent(partsPerMillion: creator), platform: Percent(partsPerMillion: platform),
                                       processing: Percent(partsPerMillion: processing)) else {
                Issue.record("a split adding up to 100% was refused")
                return
            }
            let expected = Self.referenceSplit(amount, [creator, platform, processing])
            coverage.hit("leftover \(expected.leftover)")
            let shares = rule.allocate(Money(micros: amount))
            #expect([shares.creator.micros, shares.platform.micros, shares.processing.micros] == expected.shares,
                    "\(amount) split \(creator)/\(platform)/\(processing) ppm")
        }
        #expect(coverage.count("leftover 1") >= 300 && coverage.count("leftover 2") >= 300)
    }
}
