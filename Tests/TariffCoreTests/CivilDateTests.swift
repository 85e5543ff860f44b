import PropertyBased
import Testing
import TariffCore

private func date(_ year: Int, _ month: Int, _ day: Int) -> CivilDate? {
    CivilDate(year: year, month: month, day: day)
}

private func ts(_ text: String) -> Timestamp? {
    Timestamp(rfc3339: text)
}

@Suite struct CivilDateTests {
    @Test func validation() {
        #expect(date(2024, 2, 29) != nil)
        #expect(date(2025, 2, 29) == nil)
        #expect(date(1900, 2, 29) == nil)
        #expect(date(2000, 2, 29) != nil)
        #expect(date(2026, 4, 31) == nil)
        #expect(date(2026, 13, 1) == nil)
        #expect(date(2026, 0, 1) == nil)
        #expect(date(2026, 1, 0) == nil)
        #expect(date(.max, 1, 1) == nil)
        #expect(date(.min, 12, 31) == nil)
    }

    @Test func daysInMonth() {
        #expect(CivilDate.daysInMonth(year: 2024, month: 2) == 29)
        #expect(CivilDate.daysInMonth(year: 2025, month: 2) == 28)
        #expect(CivilDate.daysInMonth(year: 1900, month: 2) == 28)
        #expect(CivilDate.daysInMonth(year: 2000, month: 2) == 29)
        #expect(CivilDate.daysInMonth(year: 2026, month: 1) == 31)
        #expect(CivilDate.daysInMonth(year: 2026, month: 11) == 30)
        #expect(CivilDate.daysInMonth(year: 2026, month: 13) == 0)
        #expect(CivilDate.daysInMonth(year: .min, month: 2) == 29)   // -2^63: divisible by 4, not by 100; and no trap
    }

    @Test func dayNumbers() {
        #expect(CivilDate(daysSinceEpoch: 0) == date(1970, 1, 1))
        #expect(CivilDate(daysSinceEpoch: -1) == date(1969, 12, 31))
        #expect(CivilDate(daysSinceEpoch: 11_017) == date(2000, 3, 1))   // Hinnant's reference point
        #expect(date(2026, 1, 1)?.daysSinceEpoch == 20_454)
        #expect(date(2026, 11, 2)?.daysSinceEpoch == 20_759)
        #expect(date(1, 1, 1)?.daysSinceEpoch == -719_162)
    }

    @Test func weekdays() {
        #expect(date(2026, 11, 30)?.weekday == .monday)
        #expect(date(1970, 1, 1)?.weekday == .thursday)
        #expect(date(1969, 12, 28)?.weekday == .sunday)
        #expect(date(2024, 2, 29)?.weekday == .thursday)
        #expect(CivilDate(daysSinceEpoch: .max).weekday.rawValue >= 1)   // no overflow at the edge
    }

    @Test func weekdayNames() {
        #expect(Weekday(name: "mon") == .monday)
        #expect(Weekday(name: "Monday") == .monday)
        #expect(Weekday(name: "SUN") == .sunday)
        #expect(Weekday(name: "thursday") == .thursday)
        #expect(Weekday(name: "") == nil)
        #expect(Weekday(name: "mo") == nil)
        #expect(Weekday(name: "funday") == nil)
        #expect(Weekday.allCases.map(\.shortName) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    }

    @Test func descriptionAndOrdering() {
        #expect(date(2026, 11, 1)?.description == "2026-11-01")
        #expect(date(1, 2, 3)?.description == "0001-02-03")
        #expect(date(-44, 3, 15)?.description == "-0044-03-15")
        if let a = date(2026, 1, 31), let b = date(2026, 2, 1), let c = date(2027, 1, 1) {
            #expect(a < b)
            #expect(b < c)
            #expect(!(c < a))
        } else {
            Issue.record("valid dates rejected")
        }
    }

    @Test func addingDays() {
        #expect(date(2026, 11, 1)?.addingDays(30) == date(2026, 12, 1))
        #expect(date(2024, 2, 28)?.addingDays(1) == date(2024, 2, 29))
        #expect(date(2025, 2, 28)?.addingDays(1) == date(2025, 3, 1))
        #expect(date(1970, 1, 1)?.addingDays(-1) == date(1969, 12, 31))
        // Saturates instead of trapping.
        #expect(date(2026, 1, 1)?.addingDays(.max) == CivilDate(daysSinceEpoch: .max))
        #expect(date(1969, 12, 31)?.addingDays(.min) == CivilDate(daysSinceEpoch: .min))
        #expect(date(2026, 1, 1)?.addingDays(.min) == CivilDate(daysSinceEpoch: 20_454 + .min))   // fits: no saturation
    }

    @Test func monthClampingFromJanuary31NeverDrifts() {
        let expected: [(Int, Int, Int)] = [
            (2026, 1, 31), (2026, 2, 28), (2026, 3, 31), (2026, 4, 30), (2026, 5, 31),
            (2026, 6, 30), (2026, 7, 31), (2026, 8, 31), (2026, 9, 30), (2026, 10, 31),
            (2026, 11, 30), (2026, 12, 31), (2027, 1, 31), (2027, 2, 28), (2027, 3, 31),
        ]
        guard let start = date(2026, 1, 31) else { Issue.record("valid date rejected"); return }
        for (n, (y, m, d)) in expected.enumerated() {
            #expect(start.addingMonths(n, anchorDay: 31) == date(y, m, d), "after \(n) months")
        }
        // The same schedule as billing periods, at the anchor's time of day.
        guard let anchor = ts("2026-01-31T10:00:00Z") else { Issue.record("anchor rejected"); return }
        for (n, (y, m, d)) in expected.enumerated() {
            let start = Timestamp.periodStart(anchor: anchor, unit: .month, index: n)
            #expect(start?.civilDate == date(y, m, d), "period \(n)")
            #expect(start?.secondOfDay == 36_000, "period \(n)")
        }
    }

    @Test func monthArithmeticEdges() {
        #expect(date(2028, 1, 31)?.addingMonths(1, anchorDay: 31) == date(2028, 2, 29))
        #expect(date(2026, 3, 31)?.addingMonths(-1, anchorDay: 31) == date(2026, 2, 28))
        #expect(date(2026, 3, 31)?.addingMonths(-3, anchorDay: 31) == date(2025, 12, 31))
        #expect(date(2026, 2, 28)?.addingMonths(1, anchorDay: 30) == date(2026, 3, 30))
        #expect(date(2026, 2, 28)?.addingMonths(0, anchorDay: 0) == date(2026, 2, 1))
        // Saturates instead of trapping.
        #expect(date(2026, 1, 1)?.addingMonths(.max, anchorDay: 1) == CivilDate(daysSinceEpoch: .max))
        #expect(date(2026, 1, 1)?.addingMonths(.min, anchorDay: 1) == CivilDate(daysSinceEpoch: .min))
    }

    @Test func midnightUTC() {
        #expect(date(2026, 11, 1)?.midnightUTC == Timestamp(date: "2026-11-01"))
        #expect(date(1970, 1, 1)?.midnightUTC?.nanosecondsSinceEpoch == 0)
        #expect(date(3000, 1, 1)?.midnightUTC == nil)
        #expect(date(1600, 1, 1)?.midnightUTC == nil)
    }

    @Test func representableRangeEdges() {
        let last = CivilDate(daysSinceEpoch: .max)
        let first = CivilDate(daysSinceEpoch: .min)
        #expect(last.daysSinceEpoch == .max)
        #expect(first.daysSinceEpoch == .min)
        #expect(CivilDate(year: last.year, month: last.month, day: last.day) == last)
        #expect(CivilDate(year: first.year, month: first.month, day: first.day) == first)
        #expect(CivilDate(year: last.year + 1, month: last.month, day: 1) == nil)
        #expect(CivilDate(year: first.year - 1, month: first.month, day: 1) == nil)
    }
}

@Suite struct PeriodTests {
    @Test func monthlyBoundaryBelongsToTheNewPeriod() throws {
        let anchor = try #require(ts("2026-01-31T10:00:00Z"))
        func index(_ text: String) throws -> Int? {
            Timestamp.periodIndex(containing: try #require(ts(text)), anchor: anchor, unit: .month)
        }
        #expect(try index("2026-01-31T10:00:00Z") == 0)
        #expect(try index("2026-01-31T09:59:59.999999999Z") == nil)
        #expect(try index("2026-02-28T09:59:59.999999999Z") == 0)
        #expect(try index("2026-02-28T10:00:00Z") == 1)
        #expect(try index("2026-03-01T00:00:00Z") == 1)   // calendar says March, period 2 starts Mar 31
        #expect(try index("2026-03-31T09:59:59Z") == 1)
        #expect(try index("2026-03-31T10:00:00Z") == 2)
        #expect(try index("2026-12-31T10:00:00Z") == 11)
        #expect(try index("2027-03-31T10:00:00Z") == 14)
    }

    @Test func weeklyPeriods() throws {
        let anchor = try #require(ts("2026-11-30T00:00:00Z"))   // a Monday
        #expect(Timestamp.periodStart(anchor: anchor, unit: .week, index: 1) == ts("2026-12-07T00:00:00Z"))
        #expect(Timestamp.periodStart(anchor: anchor, unit: .week, index: -1) == ts("2026-11-23T00:00:00Z"))
        func index(_ text: String) throws -> Int? {
            Timestamp.periodIndex(containing: try #require(ts(text)), anchor: anchor, unit: .week)
        }
        #expect(try index("2026-11-30T00:00:00Z") == 0)
        #expect(try index("2026-12-06T23:59:59.999999999Z") == 0)
        #expect(try index("2026-12-07T00:00:00Z") == 1)
        #expect(try index("2027-01-04T00:00:00Z") == 5)
        #expect(try index("2026-11-29T23:59:59Z") == nil)
    }

    @Test func yearlyPeriodsFromALeapDay() throws {
        let anchor = try #require(ts("2024-02-29T12:00:00Z"))
        let starts = (0...4).map { Timestamp.periodStart(anchor: anchor, unit: .year, index: $0) }
        #expect(starts == [ts("2024-02-29T12:00:00Z"), ts("2025-02-28T12:00:00Z"), ts("2026-02-28T12:00:00Z"),
                           ts("2027-02-28T12:00:00Z"), ts("2028-02-29T12:00:00Z")])
        func index(_ text: String) throws -> Int? {
            Timestamp.periodIndex(containing: try #require(ts(text)), anchor: anchor, unit: .year)
        }
        #expect(try index("2025-02-28T11:59:59Z") == 0)
        #expect(try index("2025-02-28T12:00:00Z") == 1)
        #expect(try index("2028-02-29T11:59:59Z") == 3)
        #expect(try index("2028-02-29T12:00:00Z") == 4)
    }

    @Test func overflowIsNilNotATrap() {
        let anchor = Timestamp(nanosecondsSinceEpoch: 0)
        for unit in PeriodUnit.allCases {
            #expect(Timestamp.periodStart(anchor: anchor, unit: unit, index: .max) == nil)
            #expect(Timestamp.periodStart(anchor: anchor, unit: unit, index: .min) == nil)
            #expect(Timestamp.periodStart(anchor: anchor, unit: unit, index: 100_000) == nil)
        }
    }

    @Test func extremeAnchors() {
        let first = Timestamp(nanosecondsSinceEpoch: .min)
        let last = Timestamp(nanosecondsSinceEpoch: .max)
        // (2^64 - 1) ns / 604_800e9 ns per week = 30500.4...
        #expect(Timestamp.periodIndex(containing: last, anchor: first, unit: .week) == 30_500)
        // 30500 weeks span more than Int64.max nanoseconds, yet the start still fits.
        #expect(Timestamp.periodStart(anchor: first, unit: .week, index: 30_500)?.nanosecondsSinceEpoch
            == 9_223_027_963_145_224_192)
        #expect(Timestamp.periodStart(anchor: first, unit: .week, index: 30_501) == nil)
        #expect(Timestamp.periodStart(anchor: last, unit: .week, index: -30_500)?.nanosecondsSinceEpoch
            == -9_223_027_963_145_224_193)
        // Anchored on the 21st: the period in 2262-04 would start on the 21st, past Int64.max, so
        // the last instant belongs to the one starting 2262-03-21: (2262 - 1677) * 12 + (3 - 9) months.
        #expect(Timestamp.periodIndex(containing: last, anchor: first, unit: .month) == 7_014)
        #expect(Timestamp.periodIndex(containing: last, anchor: first, unit: .year) == 584)
        #expect(Timestamp.periodIndex(containing: first, anchor: last, unit: .month) == nil)
    }

    @Test func periodUnitNames() {
        #expect(PeriodUnit(rawValue: "month") == .month)
        #expect(PeriodUnit.allCases == [.week, .month, .year])
    }
}

@Suite struct CalendarProperties {
    @Test func dayNumbersRoundTrip() async {
        await propertyCheck(count: 500, input: Gen.int64()) { days in
            let d = CivilDate(daysSinceEpoch: days)
            #expect(d.daysSinceEpoch == days)
            #expect(CivilDate(year: d.year, month: d.month, day: d.day) == d)
        }
    }

    @Test func consecutiveDaysAreOneDayApart() async {
        await propertyCheck(count: 500, input: Gen.int64(in: -4_000_000...4_000_000)) { days in
            let today = CivilDate(daysSinceEpoch: days)
            let tomorrow = CivilDate(daysSinceEpoch: days + 1)
            #expect(today < tomorrow)
            if today.day < CivilDate.daysInMonth(year: today.year, month: today.month) {
                #expect(tomorrow == CivilDate(year: today.year, month: today.month, day: today.day + 1))
            } else {
                #expect(tomorrow.day == 1)
            }
            #expect(tomorrow.weekday.rawValue == today.weekday.rawValue % 7 + 1)
        }
    }

    /// periodStart(index) <= t < periodStart(index + 1) for the index periodIndex reports.
    /// A nil next start means it is past Int64's range, i.e. after every t.
    private static func checkContainment(anchor: Timestamp, t: Timestamp) {
        for unit in PeriodUnit.allCases {
            guard let index = Timestamp.periodIndex(containing: t, anchor: anchor, unit: unit) else {
                Issue.record("no index for \(t) from \(anchor) by \(unit)")
                continue
            }
            let start = Timestamp.periodStart(anchor: anchor, unit: unit, index: index)
            #expect(start.map { $0 <= t } == true, "\(unit) \(index) start \(String(describing: start)) t \(t)")
            if let next = Timestamp.periodStart(anchor: anchor, unit: unit, index: index + 1) {
                #expect(t < next, "\(unit) \(index) next \(next) t \(t)")
            }
        }
    }

    @Test func periodIndexBracketsInstantsAcrossTheWholeRange() async {
        await propertyCheck(count: 300, input: Gen.int64(), Gen.int64()) { a, b in
            CalendarProperties.checkContainment(anchor: Timestamp(nanosecondsSinceEpoch: min(a, b)),
                                                t: Timestamp(nanosecondsSinceEpoch: max(a, b)))
        }
    }

    @Test func periodIndexBracketsNearbyInstants() async {
        // Anchors around 1900...2200 and instants up to ~3 years later, where most boundaries fall.
        let nanosPerDay: Int64 = 86_400_000_000_000
        await propertyCheck(
            count: 500,
            input: Gen.int64(in: -2_208_988_800_000_000_000...7_258_118_400_000_000_000),
            Gen.int64(in: 0...(1_100 * nanosPerDay))
        ) { anchor, offset in
            CalendarProperties.checkContainment(anchor: Timestamp(nanosecondsSinceEpoch: anchor),
                                                t: Timestamp(nanosecondsSinceEpoch: anchor + offset))
        }
    }

    @Test func periodIndexMatchesALinearScan() async {
        // Cross-check the O(1) estimate against the obvious loop on short horizons.
        let nanosPerDay: Int64 = 86_400_000_000_000
        await propertyCheck(
            count: 200,
            input: Gen.int64(in: 0...4_102_444_800_000_000_000), Gen.int64(in: 0...(800 * nanosPerDay))
        ) { anchorValue, offset in
            let anchor = Timestamp(nanosecondsSinceEpoch: anchorValue)
            let t = Timestamp(nanosecondsSinceEpoch: anchorValue + offset)
            for unit in PeriodUnit.allCases {
                var expected = 0
                while let next = Timestamp.periodStart(anchor: anchor, unit: unit, index: expected + 1), next <= t {
                    expected += 1
                }
                #expect(Timestamp.periodIndex(containing: t, anchor: anchor, unit: unit) == expected)
            }
        }
    }
}
