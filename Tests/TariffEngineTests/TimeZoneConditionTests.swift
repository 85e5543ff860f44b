import Tariff
import Testing

/// `when: { timezone: ... }`: weekdays and hours read in an IANA zone, daylight saving time
/// included. Every instant below was worked out by hand from the zone's published rules
/// (EU: last Sunday of March / October at 01:00 UTC; US: second Sunday of March / first of
/// November at 02:00 local; Australia/Sydney: first Sunday of October / April at 02:00 / 03:00 local).
@Suite("Time zones in rule conditions")
struct TimeZoneConditionTests {
    static func charge(_ when: String, at instant: String) throws -> Money {
        try RuleConditionTests.charge(when, at: instant)
    }

    static let half = RuleConditionTests.half, full = RuleConditionTests.full

    static func offset(_ zone: String, at instant: String) throws -> Int64 {
        let table = try #require(TimeZoneTable.table(for: zone))
        return table.offsetSeconds(at: try #require(Timestamp(rfc3339: instant)))
    }

    @Test("the offset table switches exactly at each transition instant")
    func offsetTables() throws {
        // Paris 2026: CET (+1) until 2026-03-29T01:00:00Z, CEST (+2) until 2026-10-25T01:00:00Z.
        #expect(try Self.offset("Europe/Paris", at: "2026-03-29T00:59:59Z") == 3_600)
        #expect(try Self.offset("Europe/Paris", at: "2026-03-29T01:00:00Z") == 7_200)
        #expect(try Self.offset("Europe/Paris", at: "2026-10-25T00:59:59Z") == 7_200)
        #expect(try Self.offset("Europe/Paris", at: "2026-10-25T01:00:00Z") == 3_600)
        // New York 2026: EST (-5) until 2026-03-08 02:00 EST = 07:00Z; EDT (-4) until 2026-11-01 02:00 EDT = 06:00Z.
        #expect(try Self.offset("America/New_York", at: "2026-03-08T06:59:59Z") == -18_000)
        #expect(try Self.offset("America/New_York", at: "2026-03-08T07:00:00Z") == -14_400)
        #expect(try Self.offset("America/New_York", at: "2026-11-01T05:59:59Z") == -14_400)
        #expect(try Self.offset("America/New_York", at: "2026-11-01T06:00:00Z") == -18_000)
        // Sydney, southern hemisphere: AEDT (+11) ends 2026-04-05 03:00 AEDT = 2026-04-04T16:00Z;
        // AEST (+10) ends 2026-10-04 02:00 AEST = 2026-10-03T16:00Z.
        #expect(try Self.offset("Australia/Sydney", at: "2026-04-04T15:59:59Z") == 39_600)
        #expect(try Self.offset("Australia/Sydney", at: "2026-04-04T16:00:00Z") == 36_000)
        #expect(try Self.offset("Australia/Sydney", at: "2026-10-03T15:59:59Z") == 36_000)
        #expect(try Self.offset("Australia/Sydney", at: "2026-10-03T16:00:00Z") == 39_600)
        // A change of standard time, not of DST: Moscow was +4 from 2011-03-27 to 2014-10-26, +3 after.
        #expect(try Self.offset("Europe/Moscow", at: "2012-01-01T00:00:00Z") == 14_400)
        #expect(try Self.offset("Europe/Moscow", at: "2015-01-01T00:00:00Z") == 10_800)
        // Outside the tabled range (1970...2100): the offset at 1970 before, standard time after.
        #expect(try Self.offset("Europe/Paris", at: "1969-07-01T12:00:00Z") == 3_600)
        #expect(try Self.offset("Europe/Paris", at: "2150-07-01T12:00:00Z") == 3_600)
        // Zones without transitions: one entry.
        #expect(try #require(TimeZoneTable.table(for: "UTC")).startNanoseconds.count == 1)
        #expect(try Self.offset("Asia/Kathmandu", at: "2026-11-30T18:15:00Z") == 20_700)   // +05:45
    }

    @Test("only IANA names: Foundation's GMT+1 (the opposite sign of Etc/GMT+1) and unknown names are refused")
    func names() {
        #expect(TimeZoneTable.table(for: "Europe/Paris") != nil)
        #expect(TimeZoneTable.table(for: "Etc/GMT+1") != nil)
        #expect(TimeZoneTable.table(for: "GMT+1") == nil)
        #expect(TimeZoneTable.table(for: "UTC+02:00") == nil)
        #expect(TimeZoneTable.table(for: "Europe/Pariss") == nil)
        #expect(TimeZoneTable.table(for: "") == nil)
        #expect(TimeZoneTable.table(for: "../../etc/passwd") == nil)
    }

    @Test("spring forward in Paris: the local hour 02:00-03:00 does not exist on 2026-03-29")
    func springForward() throws {
        let twoAM = "{ hours: { from: 2, to: 3 }, timezone: Europe/Paris }"
        #expect(try Self.charge(twoAM, at: "2026-03-28T01:30:00Z") == Self.half)   // Saturday 02:30 CET
        #expect(try Self.charge(twoAM, at: "2026-03-29T00:59:59Z") == Self.full)   // 01:59:59 CET
        #expect(try Self.charge(twoAM, at: "2026-03-29T01:00:00Z") == Self.full)   // 03:00:00 CEST: 02:xx skipped
        #expect(try Self.charge(twoAM, at: "2026-03-30T00:30:00Z") == Self.half)   // Monday 02:30 CEST
    }

    @Test("fall back in Paris: the local hour 02:00-03:00 happens twice on 2026-10-25")
    func fallBack() throws {
        let twoAM = "{ hours: { from: 2, to: 3 }, timezone: Europe/Paris }"
        #expect(try Self.charge(twoAM, at: "2026-10-24T23:59:59Z") == Self.full)   // 01:59:59 CEST
        #expect(try Self.charge(twoAM, at: "2026-10-25T00:00:00Z") == Self.half)   // 02:00:00 CEST, the first time
        #expect(try Self.charge(twoAM, at: "2026-10-25T00:59:59Z") == Self.half)   // 02:59:59 CEST
        #expect(try Self.charge(twoAM, at: "2026-10-25T01:00:00Z") == Self.half)   // 02:00:00 CET, the second time
        #expect(try Self.charge(twoAM, at: "2026-10-25T01:59:59Z") == Self.half)   // 02:59:59 CET
        #expect(try Self.charge(twoAM, at: "2026-10-25T02:00:00Z") == Self.full)   // 03:00:00 CET
    }

    @Test("a Paris weekend starts at 22:00 UTC in summer and 23:00 UTC in winter; a fixed +01:00 gets summer wrong")
    func weekendAcrossSeasons() throws {
        let paris = "{ weekday: [sat, sun], timezone: Europe/Paris }"
        // 2026-07-04 and 2026-11-28 are Saturdays (2026-11-30 is a Monday; 147 days = 21 weeks back is 2026-07-04).
        #expect(try Self.charge(paris, at: "2026-07-03T21:59:59Z") == Self.full)   // Friday 23:59:59 CEST
        #expect(try Self.charge(paris, at: "2026-07-03T22:00:00Z") == Self.half)   // Saturday 00:00 CEST
        #expect(try Self.charge(paris, at: "2026-11-27T22:59:59Z") == Self.full)   // Friday 23:59:59 CET
        #expect(try Self.charge(paris, at: "2026-11-27T23:00:00Z") == Self.half)   // Saturday 00:00 CET
        #expect(try Self.charge(paris, at: "2026-11-29T22:59:59Z") == Self.half)   // Sunday 23:59:59 CET
        #expect(try Self.charge(paris, at: "2026-11-29T23:00:00Z") == Self.full)   // Monday 00:00 CET
        let fixed = #"{ weekday: [sat, sun], utc_offset: "+01:00" }"#
        #expect(try Self.charge(fixed, at: "2026-07-03T22:30:00Z") == Self.full)   // Friday 23:30 at +01:00
    }

    @Test("New York office hours follow EST and EDT")
    func officeHoursInNewYork() throws {
        let office = "{ hours: { from: 9, to: 17 }, timezone: America/New_York }"
        #expect(try Self.charge(office, at: "2026-03-06T13:59:59Z") == Self.full)  // Friday 08:59:59 EST
        #expect(try Self.charge(office, at: "2026-03-06T14:00:00Z") == Self.half)  // Friday 09:00 EST
        #expect(try Self.charge(office, at: "2026-03-09T13:00:00Z") == Self.half)  // Monday 09:00 EDT
        #expect(try Self.charge(office, at: "2026-03-09T21:00:00Z") == Self.full)  // Monday 17:00 EDT
    }

    @Test("a quarter-hour zone: Kathmandu (+05:45) reaches midnight at 18:15 UTC")
    func quarterHourZone() throws {
        let firstHour = "{ hours: { from: 0, to: 1 }, timezone: Asia/Kathmandu }"
        #expect(try Self.charge(firstHour, at: "2026-11-30T18:14:59Z") == Self.full)  // 23:59:59
        #expect(try Self.charge(firstHour, at: "2026-11-30T18:15:00Z") == Self.half)  // 00:00:00 on Dec 1
    }

    @Test("weekday, hours and a date range on one zone clock: all must hold")
    func mergedConditions() throws {
        // One `when` has one clock, so its weekday, hours and dates merge into one flat condition.
        let when = "{ weekday: [sun], hours: { from: 2, to: 3 }, dates: { from: 2026-10-01 }, timezone: Europe/Paris }"
        #expect(try Self.charge(when, at: "2026-10-25T01:30:00Z") == Self.half)   // Sunday 02:30 CET
        #expect(try Self.charge(when, at: "2026-10-18T00:30:00Z") == Self.half)   // Sunday 02:30 CEST
        #expect(try Self.charge(when, at: "2026-09-27T00:30:00Z") == Self.full)   // before the date range
    }
}
