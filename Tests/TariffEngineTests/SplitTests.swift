import PropertyBased
import Tariff
import Testing

@Suite("Splits")
struct SplitTests {
    static let standard = SplitRule(creator: Percent(partsPerMillion: 800_000), platform: Percent(partsPerMillion: 150_000),
                                    processing: Percent(partsPerMillion: 50_000))!

    static func shares(_ creator: Int64, _ platform: Int64, _ processing: Int64) -> SplitShares {
        SplitShares(creator: Money(micros: creator), platform: Money(micros: platform), processing: Money(micros: processing))
    }

    @Test("remainders of 1, 2 and 3 micro-units and of negative lines", arguments: [
        // 1: 0.8 / 0.15 / 0.05 truncate to 0/0/0; the micro-unit goes to the largest fraction (creator).
        [1, 1, 0, 0],
        // 2: 1.6 / 0.3 / 0.1 -> 1/0/0; fractions .6 .3 .1: creator.
        [2, 2, 0, 0],
        // 3: 2.4 / 0.45 / 0.15 -> 2/0/0; fractions .4 .45 .15: platform.
        [3, 2, 1, 0],
        // 3,500: 2,800 / 525 / 175 exactly.
        [3_500, 2_800, 525, 175],
        // Negative lines mirror: -1 -> creator, -3 -> -2 / -1 / 0.
        [-1, -1, 0, 0],
        [-3, -2, -1, 0],
    ] as [[Int64]])
    func remainders(values: [Int64]) {
        #expect(Self.standard.allocate(Money(micros: values[0])) == Self.shares(values[1], values[2], values[3]))
    }

    @Test("ties go creator, platform, processing")
    func ties() throws {
        let halves = try #require(SplitRule(creator: Percent(partsPerMillion: 500_000), platform: Percent(partsPerMillion: 500_000), processing: .zero))
        // 0.5 / 0.5 / 0: tie between creator and platform: creator.
        #expect(halves.allocate(Money(micros: 1)) == Self.shares(1, 0, 0))
        let thirds = try #require(SplitRule(creator: Percent(partsPerMillion: 333_333), platform: Percent(partsPerMillion: 333_333), processing: Percent(partsPerMillion: 333_334)))
        // 2 micros: 0.666666 / 0.666666 / 0.666668 -> 0/0/0, two left: processing then creator.
        #expect(thirds.allocate(Money(micros: 2)) == Self.shares(1, 0, 1))
    }

    @Test("a split must add up to exactly 100%")
    func sum() {
        #expect(SplitRule(creator: Percent(partsPerMillion: 800_000), platform: Percent(partsPerMillion: 150_000), processing: Percent(partsPerMillion: 49_999)) == nil)
    }

    @Test("property: the three shares always add up to the line, each between 0 and the line")
    func sharesAddUp() async {
        let percents = Gen.int(in: 0...1_000_000)
        await propertyCheck(count: 2_000, input: Gen.int(in: Int(Int64.min / 2)...Int(Int64.max / 2)), percents, percents) { amount, a, b in
            let creator = min(a, 1_000_000), platform = min(b, 1_000_000 - creator)
            guard let rule = SplitRule(creator: Percent(partsPerMillion: Int64(creator)), platform: Percent(partsPerMillion: Int64(platform)),
                                       processing: Percent(partsPerMillion: Int64(1_000_000 - creator - platform))) else {
                Issue.record("valid split rejected")
                return
            }
            let shares = rule.allocate(Money(micros: Int64(amount)))
            #expect(Int128(shares.creator.micros) + Int128(shares.platform.micros) + Int128(shares.processing.micros) == Int128(amount))
            for share in [shares.creator, shares.platform, shares.processing] {
                #expect(share.micros.magnitude <= Int64(amount).magnitude)
                #expect(share.micros == 0 || (share.micros < 0) == (amount < 0))
            }
        }
    }
}
