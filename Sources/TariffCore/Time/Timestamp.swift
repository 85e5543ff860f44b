// Instants for metering and billing periods.
//
// A single Int64 of nanoseconds keeps comparison, hashing and arithmetic exact and cheap on the
// engine's hot path, and covers 1677-09-21 ... 2262-04-11, far beyond any billing horizon.
// Parsing and formatting are hand-written over UTF-8 bytes because TariffCore must not depend on
// Foundation, and because a billing engine must reject (not guess at) ambiguous timestamps.

/// An instant in UTC, nanoseconds since 1970-01-01T00:00:00Z.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanosecondsSinceEpoch: Int64

    public init(nanosecondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// RFC 3339: `2026-11-02T10:00:00Z`, `2026-11-02T10:00:00.250+01:00`, lowercase `t`/`z` accepted,
    /// any number of fractional digits (digits beyond the 9th are truncated: nanosecond precision), numeric offsets +HH:MM / -HH:MM.
    /// Validates month 1-12, day within month (leap years), hour 0-23, minute 0-59, second 0-59 (a leap second 60 is rejected), offset hours 0-23 minutes 0-59.
    /// Returns nil on anything else (never traps), including years outside 1..9999 or results outside Int64 range.
    public init?(rfc3339 text: Substring) {
        var text = text
        guard let value = text.withUTF8({ Self.parseRFC3339($0) }) else { return nil }
        self.init(nanosecondsSinceEpoch: value)
    }

    /// The same from UTF-8 bytes (a trace reader parses timestamps in place, making no String).
    public init?(rfc3339Bytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let value = Self.parseRFC3339(bytes) else { return nil }
        self.init(nanosecondsSinceEpoch: value)
    }

    private static func parseRFC3339(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var scanner = RFC3339Scanner(bytes)
        guard let value = scanner.timestamp(), scanner.isAtEnd else { return nil }
        return value
    }

    /// The first and last representable instants, for messages: `1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z`.
    public static var representableRangeText: String {
        "\(Timestamp(nanosecondsSinceEpoch: .min)) to \(Timestamp(nanosecondsSinceEpoch: .max))"
    }

    /// Whether `text` is written as RFC 3339 whatever its year: true for a well-formed timestamp
    /// outside the representable range (`9999-01-01T00:00:00Z`), so a message can say "outside the
    /// range" rather than "not RFC 3339". The year is replaced by 2000, a leap year, so any valid
    /// month and day stays valid.
    public static func isWellFormedRFC3339(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count > 4, bytes[0..<4].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return Timestamp(rfc3339: "2000" + String(decoding: bytes[4...], as: UTF8.self)) != nil
            || Timestamp(date: "2000" + String(decoding: bytes[4...], as: UTF8.self)) != nil
    }

    /// See `init?(rfc3339: Substring)`.
    public init?(rfc3339 text: String) {
        self.init(rfc3339: Substring(text))
    }

    /// A plain date `2026-11-01` = midnight UTC of that day. nil if invalid (same year/month/day rules as RFC 3339).
    public init?(date text: Substring) {
        var text = text
        let date: CivilDate? = text.withUTF8 { bytes in
            var scanner = RFC3339Scanner(bytes)
            guard let date = scanner.date(), scanner.isAtEnd else { return nil }
            return date
        }
        guard let date, let midnight = date.midnightUTC else { return nil }
        self = midnight
    }

    /// See `init?(date: Substring)`.
    public init?(date text: String) {
        self.init(date: Substring(text))
    }

    /// Parse either form (date or RFC 3339), for flags like --at.
    public init?(dateOrTimestamp text: String) {
        // The two grammars share a prefix but a date must end after the day, so at most one matches.
        guard let value = Timestamp(date: text) ?? Timestamp(rfc3339: text) else { return nil }
        self = value
    }

    /// UTC with `Z`, fractional seconds only when non-zero, trimmed of trailing zeros: "2026-11-02T10:00:01.25Z", "2026-11-02T10:00:00Z".
    /// One canonical spelling per instant, so that reports and golden files compare as strings.
    public var rfc3339: String {
        let (seconds, nanos) = TimeMath.floorDivMod(nanosecondsSinceEpoch, TimeMath.nanosecondsPerSecond)
        let (days, second) = TimeMath.floorDivMod(seconds, TimeMath.secondsPerDay)
        var text = CivilDate(daysSinceEpoch: days).description
        text += "T" + TimeMath.zeroPadded(UInt64(second / 3_600), width: 2)
        text += ":" + TimeMath.zeroPadded(UInt64(second / 60 % 60), width: 2)
        text += ":" + TimeMath.zeroPadded(UInt64(second % 60), width: 2)
        if nanos != 0 {
            var fraction = Substring(TimeMath.zeroPadded(UInt64(nanos), width: 9))
            while fraction.last == "0" { fraction = fraction.dropLast() }
            text += "." + fraction
        }
        return text + "Z"
    }

    public var description: String { rfc3339 }

    /// The UTC calendar day containing this instant.
    public var civilDate: CivilDate {
        CivilDate(daysSinceEpoch: TimeMath.floorDivMod(nanosecondsSinceEpoch, TimeMath.nanosecondsPerDay).quotient)
    }

    /// Whole seconds since UTC midnight of `civilDate` (0...86399).
    public var secondOfDay: Int64 {
        TimeMath.floorDivMod(nanosecondsSinceEpoch, TimeMath.nanosecondsPerDay).remainder / TimeMath.nanosecondsPerSecond
    }

    /// This instant moved by `nanoseconds` (negative = earlier); nil when the result leaves Int64's range.
    public func adding(nanoseconds: Int64) -> Timestamp? {
        let (sum, overflow) = nanosecondsSinceEpoch.addingReportingOverflow(nanoseconds)
        return overflow ? nil : Timestamp(nanosecondsSinceEpoch: sum)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    /// `days * TimeMath.nanosecondsPerDay + nanosecondsOfDay`, or nil if it does not fit in Int64.
    /// `nanosecondsOfDay` may lie outside one day (a UTC offset can push a local time across midnight).
    static func make(days: Int64, nanosecondsOfDay: Int64) -> Timestamp? {
        // Normalise into [0, 1 day) first so the split below only deals with a non-negative remainder.
        let (carry, nanosOfDay) = TimeMath.floorDivMod(nanosecondsOfDay, TimeMath.nanosecondsPerDay)
        let (day, overflow1) = days.addingReportingOverflow(carry)
        guard !overflow1 else { return nil }
        // Int64.min lies at 00:12:43 on 1677-09-21, so that day's midnight does not fit although
        // later instants of the day do: for negative days, multiply the next day (closer to zero)
        // and step back by the rest of the day, keeping every intermediate in range.
        let (base, remainder): (Int64, Int64) =
            day < 0 && nanosOfDay > 0 ? (day + 1, nanosOfDay - TimeMath.nanosecondsPerDay) : (day, nanosOfDay)
        let (product, overflow2) = base.multipliedReportingOverflow(by: TimeMath.nanosecondsPerDay)
        let (result, overflow3) = product.addingReportingOverflow(remainder)
        return overflow2 || overflow3 ? nil : Timestamp(nanosecondsSinceEpoch: result)
    }
}

/// A cursor over the UTF-8 bytes of the text being parsed (borrowed: it never outlives the
/// call that made it). Every read checks bounds and returns nil on a mismatch, so malformed or
/// truncated input can never trap.
struct RFC3339Scanner {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { position == bytes.count }

    /// Consumes `byte` if it is next.
    mutating func take(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// Consumes and returns the next byte if it is one of `choices`.
    mutating func take(oneOf first: UInt8, _ second: UInt8) -> UInt8? {
        guard position < bytes.count, bytes[position] == first || bytes[position] == second else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    /// Consumes exactly `count` ASCII digits (count <= 9, so the value fits easily).
    mutating func number(digits count: Int) -> Int64? {
        guard count <= bytes.count - position else { return nil }
        var value: Int64 = 0
        for offset in 0..<count {
            let byte = bytes[position + offset]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        position += count
        return value
    }

    /// `YYYY-MM-DD` with a four-digit year 0001...9999.
    mutating func date() -> CivilDate? {
        guard let year = number(digits: 4), year >= 1, take(UInt8(ascii: "-")),
              let month = number(digits: 2), take(UInt8(ascii: "-")),
              let day = number(digits: 2)
        else { return nil }
        return CivilDate(year: Int(year), month: Int(month), day: Int(day))   // validates month and day
    }

    /// A full RFC 3339 date-time, as nanoseconds since the epoch.
    mutating func timestamp() -> Int64? {
        guard let date = date(),
              take(oneOf: UInt8(ascii: "T"), UInt8(ascii: "t")) != nil,
              let hour = number(digits: 2), hour <= 23, take(UInt8(ascii: ":")),
              let minute = number(digits: 2), minute <= 59, take(UInt8(ascii: ":")),
              let second = number(digits: 2), second <= 59   // 60 rejected: the engine has no leap-second table
        else { return nil }

        var fraction: Int64 = 0
        if take(UInt8(ascii: ".")) {
            // At least one digit; the first nine give nanoseconds, the rest are dropped (truncation,
            // not rounding, so a value never moves into the next second or day).
            var digitCount = 0
            while let digit = number(digits: 1) {
                if digitCount < 9 { fraction = fraction * 10 + digit }
                digitCount += 1
            }
            guard digitCount > 0 else { return nil }
            for _ in min(digitCount, 9)..<9 { fraction *= 10 }
        }

        // The offset is local minus UTC, so UTC = local - offset.
        var offsetSeconds: Int64 = 0
        if take(oneOf: UInt8(ascii: "Z"), UInt8(ascii: "z")) == nil {
            guard let sign = take(oneOf: UInt8(ascii: "+"), UInt8(ascii: "-")),
                  let offsetHour = number(digits: 2), offsetHour <= 23, take(UInt8(ascii: ":")),
                  let offsetMinute = number(digits: 2), offsetMinute <= 59
            else { return nil }
            let magnitude = offsetHour * 3_600 + offsetMinute * 60
            offsetSeconds = sign == UInt8(ascii: "+") ? magnitude : -magnitude
        }

        // All terms are bounded (|seconds| < 2 days), so only `make` can overflow, and it checks.
        let localSeconds = hour * 3_600 + minute * 60 + second - offsetSeconds
        return Timestamp.make(days: date.daysSinceEpoch,
                              nanosecondsOfDay: localSeconds * TimeMath.nanosecondsPerSecond + fraction)?.nanosecondsSinceEpoch
    }
}
