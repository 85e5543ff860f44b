import PropertyBased
import Testing
import TariffCore

// Expected values were worked out by hand:
// 2026-01-01 is day 20454 (56 years * 365 + 14 leap days 1972...2024), i.e. 1_767_225_600 s;
// 2026-11-02 is 304 + 1 days later = day 20759 = 1_793_577_600 s.
private let nov2Midnight: Int64 = 1_793_577_600 * 1_000_000_000
private let hour: Int64 = 3_600 * 1_000_000_000

@Suite struct TimestampParsingTests {
    @Test func parsesUTCWithZ() {
        #expect(Timestamp(rfc3339: "2026-11-02T10:00:00Z")?.nanosecondsSinceEpoch == nov2Midnight + 10 * hour)
        #expect(Timestamp(rfc3339: "1970-01-01T00:00:00Z")?.nanosecondsSinceEpoch == 0)
        #expect(Timestamp(rfc3339: "1970-01-01T00:00:00.000000001Z")?.nanosecondsSinceEpoch == 1)
        #expect(Timestamp(rfc3339: "1969-12-31T23:59:59.5Z")?.nanosecondsSinceEpoch == -500_000_000)
    }

    @Test func lowercaseSeparatorsAreAccepted() {
        #expect(Timestamp(rfc3339: "2026-11-02t10:00:00z") == Timestamp(rfc3339: "2026-11-02T10:00:00Z"))
        #expect(Timestamp(rfc3339: "2026-11-02t10:00:00z") != nil)
    }

    @Test func offsetsConvertToUTC() {
        let withOffset = Timestamp(rfc3339: "2026-11-02T10:00:00.250+01:00")
        #expect(withOffset != nil)
        #expect(withOffset == Timestamp(rfc3339: "2026-11-02T09:00:00.25Z"))
        #expect(withOffset?.nanosecondsSinceEpoch == nov2Midnight + 9 * hour + 250_000_000)
        // Negative offsets move the instant later; crossing midnight changes the UTC day.
        #expect(Timestamp(rfc3339: "2026-11-01T22:00:00-05:00")?.rfc3339 == "2026-11-02T03:00:00Z")
        #expect(Timestamp(rfc3339: "2026-01-01T00:30:00+01:00")?.rfc3339 == "2025-12-31T23:30:00Z")
        #expect(Timestamp(rfc3339: "2026-11-02T10:00:00+05:30")?.rfc3339 == "2026-11-02T04:30:00Z")
        #expect(Timestamp(rfc3339: "2026-11-02T10:00:00-00:00") == Timestamp(rfc3339: "2026-11-02T10:00:00Z"))
        #expect(Timestamp(rfc3339: "2026-11-02T10:00:00+23:59")?.rfc3339 == "2026-11-01T10:01:00Z")
    }

    @Test func fractionsBeyondNanosecondsAreTruncated() {
        #expect(Timestamp(rfc3339: "1970-01-01T00:00:00.1234567899Z")?.nanosecondsSinceEpoch == 123_456_789)
        #expect(Timestamp(rfc3339: "1970-01-01T00:00:00.999999999999999999999Z")?.nanosecondsSinceEpoch == 999_999_999)
        #expect(Timestamp(rfc3339: "1970-01-01T00:00:00.5Z")?.nanosecondsSinceEpoch == 500_000_000)
        #expect(Timestamp(rfc3339: "1970-01-01T00:00:00.000Z")?.nanosecondsSinceEpoch == 0)
    }

    @Test func leapDays() {
        #expect(Timestamp(rfc3339: "2024-02-29T00:00:00Z") != nil)
        #expect(Timestamp(rfc3339: "2025-02-29T00:00:00Z") == nil)
        #expect(Timestamp(rfc3339: "2000-02-29T00:00:00Z") != nil)
        #expect(Timestamp(rfc3339: "2100-02-29T00:00:00Z") == nil)
        #expect(Timestamp(date: "2024-02-29") != nil)
        #expect(Timestamp(date: "2025-02-29") == nil)
    }

    @Test(arguments: [
        "", "2026", "2026-11", "2026-11-02", "2026-11-02T", "2026-11-02T10", "2026-11-02T10:00",
        "2026-11-02T10:00Z", "2026-11-02T10:00:00", "2026-11-02T10:00:00.", "2026-11-02T10:00:00.Z",
        "2026-11-02T10:00:00+01", "2026-11-02T10:00:00+0100", "2026-11-02T10:00:00+01:0", "2026-11-02T10:00:00+01:00:00",
        "2026-11-02T10:00:00Zjunk", " 2026-11-02T10:00:00Z", "2026-11-02T10:00:00Z ", "2026-11-02 10:00:00Z",
        "2026-11-02T24:00:00Z", "2026-11-02T10:60:00Z", "2026-11-02T10:00:60Z", "2026-11-02T23:59:60Z",
        "2026-13-02T10:00:00Z", "2026-00-02T10:00:00Z", "2026-11-31T10:00:00Z", "2026-11-00T10:00:00Z",
        "2026-11-02T10:00:00+24:00", "2026-11-02T10:00:00+01:60", "2026-11-02T10:00:00Y",
        "1e3", "garbage", "+2026-11-02T10:00:00Z", "-2026-11-02T10:00:00Z", "12026-11-02T10:00:00Z",
        "2026-1-02T10:00:00Z", "2026/11/02T10:00:00Z", "2026-11-02T1a:00:00Z", "２０２６-11-02T10:00:00Z",
        "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    ])
    func rejectsMalformedOrOutOfRange(_ text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }

    @Test func int64Edges() {
        // Int64.max / Int64.min nanoseconds, worked out from 9_223_372_036 s and 9_223_372_037 s before 1970.
        #expect(Timestamp(rfc3339: "2262-04-11T23:47:16.854775807Z")?.nanosecondsSinceEpoch == .max)
        #expect(Timestamp(rfc3339: "2262-04-11T23:47:16.854775808Z") == nil)
        #expect(Timestamp(rfc3339: "1677-09-21T00:12:43.145224192Z")?.nanosecondsSinceEpoch == .min)
        #expect(Timestamp(rfc3339: "1677-09-21T00:12:43.145224191Z") == nil)
        #expect(Timestamp(nanosecondsSinceEpoch: .max).rfc3339 == "2262-04-11T23:47:16.854775807Z")
        #expect(Timestamp(nanosecondsSinceEpoch: .min).rfc3339 == "1677-09-21T00:12:43.145224192Z")
        // An offset may bring a local time that looks out of range back into range.
        #expect(Timestamp(rfc3339: "2262-04-12T00:47:16.854775807+01:00")?.nanosecondsSinceEpoch == .max)
        #expect(Timestamp(date: "1677-09-21") == nil)   // that midnight is before Int64.min
        #expect(Timestamp(date: "1677-09-22") != nil)
    }

    @Test func plainDates() {
        #expect(Timestamp(date: "2026-11-01")?.nanosecondsSinceEpoch == nov2Midnight - 24 * hour)
        #expect(Timestamp(date: "1970-01-01")?.nanosecondsSinceEpoch == 0)
        #expect(Timestamp(date: "2026-11-01T00:00:00Z") == nil)
        #expect(Timestamp(date: "2026-11-1") == nil)
        #expect(Timestamp(date: "2026-11-01 ") == nil)
        #expect(Timestamp(date: "") == nil)
    }

    @Test func dateOrTimestamp() {
        #expect(Timestamp(dateOrTimestamp: "2026-11-02") == Timestamp(rfc3339: "2026-11-02T00:00:00Z"))
        #expect(Timestamp(dateOrTimestamp: "2026-11-02T10:00:00Z")?.nanosecondsSinceEpoch == nov2Midnight + 10 * hour)
        #expect(Timestamp(dateOrTimestamp: "2026-11-02T") == nil)
        #expect(Timestamp(dateOrTimestamp: "tomorrow") == nil)
    }

    @Test func substringOverloadsRespectTheSliceBounds() {
        let text = "[2026-11-02T10:00:00Z]"
        let inner = text.dropFirst().dropLast()
        #expect(Timestamp(rfc3339: inner)?.nanosecondsSinceEpoch == nov2Midnight + 10 * hour)
        #expect(Timestamp(date: "x2026-11-02".dropFirst())?.nanosecondsSinceEpoch == nov2Midnight)
    }
}

@Suite struct TimestampFormattingTests {
    @Test func formatsUTCAndTrimsFractionZeros() {
        #expect(Timestamp(nanosecondsSinceEpoch: nov2Midnight + 10 * hour).rfc3339 == "2026-11-02T10:00:00Z")
        #expect(Timestamp(nanosecondsSinceEpoch: nov2Midnight + 10 * hour + 1_250_000_000).rfc3339 == "2026-11-02T10:00:01.25Z")
        #expect(Timestamp(nanosecondsSinceEpoch: 1).rfc3339 == "1970-01-01T00:00:00.000000001Z")
        #expect(Timestamp(nanosecondsSinceEpoch: 100_000_000).rfc3339 == "1970-01-01T00:00:00.1Z")
        #expect(Timestamp(nanosecondsSinceEpoch: 0).description == "1970-01-01T00:00:00Z")
        #expect(Timestamp(nanosecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999999999Z")
    }

    @Test func roundTripsThroughCanonicalForm() {
        for text in ["2026-11-02T10:00:00Z", "2026-11-02T09:00:00.25Z", "2024-02-29T23:59:59.999999999Z",
                     "1969-07-20T20:17:40Z", "2000-01-01T00:00:00.000001Z"] {
            #expect(Timestamp(rfc3339: text)?.rfc3339 == text)
        }
    }

    @Test func calendarViews() {
        let t = Timestamp(nanosecondsSinceEpoch: nov2Midnight + 10 * hour + 5)
        #expect(t.civilDate == CivilDate(year: 2026, month: 11, day: 2))
        #expect(t.secondOfDay == 36_000)
        let beforeEpoch = Timestamp(nanosecondsSinceEpoch: -1)
        #expect(beforeEpoch.civilDate == CivilDate(year: 1969, month: 12, day: 31))
        #expect(beforeEpoch.secondOfDay == 86_399)
        #expect(Timestamp(nanosecondsSinceEpoch: .min).civilDate == CivilDate(year: 1677, month: 9, day: 21))
        #expect(Timestamp(nanosecondsSinceEpoch: .max).secondOfDay == 85_636)   // 23:47:16
    }

    @Test func addingReportsOverflow() {
        #expect(Timestamp(nanosecondsSinceEpoch: 10).adding(nanoseconds: -15)?.nanosecondsSinceEpoch == -5)
        #expect(Timestamp(nanosecondsSinceEpoch: .max).adding(nanoseconds: 1) == nil)
        #expect(Timestamp(nanosecondsSinceEpoch: .min).adding(nanoseconds: -1) == nil)
        #expect(Timestamp(nanosecondsSinceEpoch: .min).adding(nanoseconds: .max)?.nanosecondsSinceEpoch == -1)
    }

    @Test func ordering() {
        let a = Timestamp(nanosecondsSinceEpoch: -3)
        let b = Timestamp(nanosecondsSinceEpoch: 7)
        #expect(a < b)
        #expect(!(b < a))
        #expect([b, a].sorted() == [a, b])
    }
}

@Suite struct TimestampProperties {
    /// Every representable instant formats to text that parses back to the same instant.
    @Test func everyInstantRoundTrips() async {
        await propertyCheck(count: 500, input: Gen.int64()) { value in
            let t = Timestamp(nanosecondsSinceEpoch: value)
            #expect(Timestamp(rfc3339: t.rfc3339) == t)
        }
    }

    /// Random strings over the timestamp alphabet: parsing returns nil or a value, and never traps.
    /// Whatever does parse must survive a canonical round trip.
    @Test func parsingRandomTextNeverTraps() async {
        let alphabet = Array("0123456789-:TZ.+ ez")
        let text = Gen.int(in: 0...(alphabet.count - 1)).map { alphabet[$0] }.string(of: 0...40)
        await propertyCheck(count: 2_000, input: text) { string in
            for parsed in [Timestamp(rfc3339: string), Timestamp(date: string), Timestamp(dateOrTimestamp: string)] {
                if let parsed {
                    #expect(Timestamp(rfc3339: parsed.rfc3339) == parsed)
                }
            }
        }
    }

    /// Near-valid input hits the deep branches that random strings rarely reach: take valid text and
    /// overwrite one position, drop one character or cut it short.
    @Test func parsingMutatedTimestampsNeverTraps() async {
        let templates = ["2026-11-02T10:00:00.250+01:00", "2024-02-29T23:59:59Z", "2262-04-11T23:47:16.854775807Z",
                         "1677-09-21T00:12:43.145224192Z", "2026-11-01"]
        let alphabet = Array("0123456789-:TZ.+ ez")
        await propertyCheck(
            count: 2_000,
            input: Gen.int(in: 0...(templates.count - 1)), Gen.int(in: 0...40), Gen.int(in: 0...(alphabet.count - 1)), Gen.int(in: 0...2)
        ) { templateIndex, position, replacement, operation in
            var characters = Array(templates[templateIndex])
            let at = min(position, characters.count - 1)
            switch operation {
            case 0: characters[at] = alphabet[replacement]
            case 1: characters.remove(at: at)
            default: characters = Array(characters.prefix(position))
            }
            let string = String(characters)
            if let parsed = Timestamp(dateOrTimestamp: string) {
                #expect(Timestamp(rfc3339: parsed.rfc3339) == parsed)
            }
        }
    }
}
