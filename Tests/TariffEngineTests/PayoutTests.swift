import Tariff
import Testing

@Suite("Payout calendar")
struct PayoutTests {
    static func at(_ text: String) -> Timestamp { Timestamp(dateOrTimestamp: text) ?? Timestamp(nanosecondsSinceEpoch: 0) }
    static func date(_ text: String) -> CivilDate { at(text).civilDate }

    @Test("weeks run Monday to Sunday and are paid the following Wednesday")
    func weeks() throws {
        let schedule = try #require(PayoutSchedule(PayoutCalendar()))
        // 2026-11-29 is a Sunday: its last millisecond belongs to the week of Monday 2026-11-23...
        let sunday = schedule.week(containing: Self.at("2026-11-29T23:59:59.999Z"))
        #expect(sunday.weekStart == Self.date("2026-11-23"))
        #expect(sunday.payDate == Self.date("2026-12-02"))
        // ...and Monday 00:00 starts the next week, paid Wednesday 2026-12-09.
        let monday = schedule.week(containing: Self.at("2026-11-30T00:00:00Z"))
        #expect(monday.weekStart == Self.date("2026-11-30"))
        #expect(monday.payDate == Self.date("2026-12-09"))
        #expect(monday.start == Self.at("2026-11-30T00:00:00Z") && monday.end == Self.at("2026-12-07T00:00:00Z"))
        #expect(schedule.week(startingOn: Self.date("2026-11-02"))?.payDate == Self.date("2026-11-11"))
        #expect(schedule.week(startingOn: Self.date("2026-11-03")) == nil)
    }

    @Test("weeks are local to the payout time zone")
    func zone() throws {
        let schedule = try #require(PayoutSchedule(PayoutCalendar(timezone: "Europe/Paris")))
        // Sunday 2026-11-29 23:30 UTC is Monday 00:30 in Paris (UTC+1 in winter).
        let week = schedule.week(containing: Self.at("2026-11-29T23:30:00Z"))
        #expect(week.weekStart == Self.date("2026-11-30"))
        #expect(week.start == Self.at("2026-11-29T23:00:00Z"))
        // The week of the end of DST (Sunday 2026-10-25) is 169 hours long.
        let dst = schedule.week(containing: Self.at("2026-10-21T12:00:00Z"))
        #expect(dst.start == Self.at("2026-10-18T22:00:00Z") && dst.end == Self.at("2026-10-25T23:00:00Z"))
    }

    @Test("a week's run may start at its pay date's local midnight: 05:00 UTC in New York in November, 23:00 UTC the day before in Paris")
    func payDateStart() throws {
        // New York is UTC-5 from Sunday 2026-11-01 (DST ended): Wednesday 2026-11-11 00:00 local is 05:00 UTC.
        let newYork = try #require(PayoutSchedule(PayoutCalendar(timezone: "America/New_York")))
        let week = try #require(newYork.week(startingOn: Self.date("2026-11-02")))
        #expect(week.payDate == Self.date("2026-11-11"))
        #expect(newYork.payDateStart(of: week) == Self.at("2026-11-11T05:00:00Z"))
        // Paris is UTC+1 in winter: Wednesday 2026-12-09 00:00 local is 23:00 UTC on Tuesday.
        let paris = try #require(PayoutSchedule(PayoutCalendar(timezone: "Europe/Paris")))
        let december = try #require(paris.week(startingOn: Self.date("2026-11-30")))
        #expect(paris.payDateStart(of: december) == Self.at("2026-12-08T23:00:00Z"))
        // UTC: the pay date's midnight.
        let utc = try #require(PayoutSchedule(PayoutCalendar()))
        #expect(utc.payDateStart(of: try #require(utc.week(startingOn: Self.date("2026-11-02")))) == Self.at("2026-11-11T00:00:00Z"))
    }

    @Test("a payout below the minimum carries to the next week; paid + last carried = earnings")
    func minimumAndCarry() throws {
        let schedule = try #require(PayoutSchedule(PayoutCalendar(minimum: Money(micros: 10_000_000))))
        var accumulator = PayoutAccumulator(schedule: schedule)
        // Week of 11-02: 6.123456 + 2.000001 = 8.123457 < 10.00: nothing paid, all carried.
        accumulator.add(creator: "acct_a", at: Self.at("2026-11-02T10:00:00Z"), share: Money(micros: 6_123_456))
        accumulator.add(creator: "acct_a", at: Self.at("2026-11-08T23:59:59.999Z"), share: Money(micros: 2_000_001))
        // Week of 11-09: carried 8.123457 + 4.5 = 12.623457: pays 12.62, carries 0.003457.
        accumulator.add(creator: "acct_a", at: Self.at("2026-11-09T00:00:00Z"), share: Money(micros: 4_500_000))
        // Another creator with 25 in one week: pays 25.00.
        accumulator.add(creator: "acct_b", at: Self.at("2026-11-04T00:00:00Z"), share: Money(micros: 25_000_000))
        let rows = try accumulator.rows()
        #expect(rows.map(\.creator) == ["acct_a", "acct_a", "acct_b"])
        #expect(rows.map(\.earnings.micros) == [8_123_457, 4_500_000, 25_000_000])
        #expect(rows.map(\.amount.micros) == [0, 12_620_000, 25_000_000])
        #expect(rows.map(\.carried.micros) == [8_123_457, 3_457, 0])
        #expect(rows[1].week.payDate == Self.date("2026-11-18"))
    }

    @Test("payouts floor to the currency's minor unit: whole yen for JPY, cents for USD, 0.001 for a three-digit currency")
    func minorUnit() throws {
        let schedule = try #require(PayoutSchedule(PayoutCalendar()))
        #expect(PayoutAccumulator.unitMicros(of: Currency(code: "JPY")!) == 1_000_000)
        #expect(PayoutAccumulator.unitMicros(of: Currency(code: "USD")!) == 10_000)
        #expect(PayoutAccumulator.unitMicros(of: Currency(code: "KWD")!) == 1_000)
        var yen = PayoutAccumulator(schedule: schedule, unitMicros: PayoutAccumulator.unitMicros(of: Currency(code: "JPY")!))
        // 266.4 yen earned in the week of 11-02: 266 paid, 0.4 carried; the next week 0.4 + 10.7 = 11.1: 11 paid, 0.1 carried.
        yen.add(creator: "acct_y", at: Self.at("2026-11-03T00:00:00Z"), share: Money(micros: 266_400_000))
        yen.add(creator: "acct_y", at: Self.at("2026-11-10T00:00:00Z"), share: Money(micros: 10_700_000))
        let rows = try yen.rows()
        #expect(rows.map(\.amount.micros) == [266_000_000, 11_000_000])
        #expect(rows.map(\.carried.micros) == [400_000, 100_000])
    }
}
