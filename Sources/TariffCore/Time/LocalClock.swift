// Local wall-clock time for rule conditions ("weekends", "22:00 to 06:00 in Paris").
//
// A condition reads the weekday and hour of an execution's `ended_at` in a local clock: a fixed
// UTC offset, or an IANA time zone whose offset changes with daylight saving time. TariffCore has
// no Foundation, so a time zone arrives here as a precomputed table of its UTC offsets (built by
// the compiler, which may use Foundation) and is read with a binary search: no allocation, no
// system call, no lock on the pricing path.

/// The UTC offsets of one IANA time zone over a bounded range of instants, as flat sorted arrays.
///
/// Entry `i` says: from `startNanoseconds[i]` (inclusive) until the next entry's start, local time
/// is UTC plus `offsetSeconds[i]`. The first entry starts at `Int64.min`, so every instant has an
/// offset: before the table's first transition the zone's offset at the range's start applies, and
/// after its last transition the last offset applies for good (see `TimeZoneTable` in the compiler
/// for the range).
public struct UTCOffsetTable: Sendable, Hashable, CustomStringConvertible {
    /// The IANA name (`Europe/Paris`): the table is a function of it, so equality compares names.
    public let identifier: String
    /// Transition instants in nanoseconds since the epoch, strictly increasing; the first is `Int64.min`.
    public let startNanoseconds: [Int64]
    /// The offset in force from the matching start, in seconds east of UTC.
    public let offsetSeconds: [Int32]

    /// nil unless the arrays are non-empty, of equal length, start at `Int64.min` and strictly increase.
    public init?(identifier: String, startNanoseconds: [Int64], offsetSeconds: [Int32]) {
        guard !startNanoseconds.isEmpty, startNanoseconds.count == offsetSeconds.count, startNanoseconds[0] == .min,
              zip(startNanoseconds, startNanoseconds.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        self.identifier = identifier
        self.startNanoseconds = startNanoseconds
        self.offsetSeconds = offsetSeconds
    }

    /// A zone with one offset forever (`UTC`, `Asia/Tokyo` since 1951).
    public init(identifier: String, constantOffsetSeconds: Int32) {
        self.identifier = identifier
        startNanoseconds = [.min]
        offsetSeconds = [constantOffsetSeconds]
    }

    /// The index of the entry in force at `nanoseconds`: the last start at or before it (binary search).
    @inlinable
    public func entryIndex(at nanoseconds: Int64) -> Int {
        Self.entryIndex(at: nanoseconds, starts: startNanoseconds, from: 0, count: startNanoseconds.count)
    }

    /// The offset east of UTC at `instant`, in seconds.
    @inlinable
    public func offsetSeconds(at instant: Timestamp) -> Int64 {
        Int64(offsetSeconds[entryIndex(at: instant.nanosecondsSinceEpoch)])
    }

    /// The last index `i` in `from..<from+count` with `starts[i] <= nanoseconds` (the first when none:
    /// the first start of a table is `Int64.min`, so that cannot happen for a well-formed table).
    /// A static function over a slice of a flat array, so the engine can keep many tables in one array.
    @inlinable
    public static func entryIndex(at nanoseconds: Int64, starts: [Int64], from: Int, count: Int) -> Int {
        var low = from, high = from + count   // the answer is in [low, high)
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if starts[middle] <= nanoseconds { low = middle } else { high = middle }
        }
        return low
    }

    public var description: String { identifier }

    public static func == (lhs: UTCOffsetTable, rhs: UTCOffsetTable) -> Bool { lhs.identifier == rhs.identifier }
    public func hash(into hasher: inout Hasher) { hasher.combine(identifier) }
}

/// The clock a condition reads weekdays and hours in.
public enum LocalClock: Sendable, Hashable, CustomStringConvertible {
    /// A fixed offset east of UTC, in seconds (`utc_offset: "+01:00"`; UTC is 0).
    case utcOffset(seconds: Int64)
    /// An IANA time zone, daylight saving time included (`timezone: Europe/Paris`).
    case timeZone(UTCOffsetTable)

    public static let utc = LocalClock.utcOffset(seconds: 0)

    /// The offset east of UTC in force at `instant`, in seconds.
    @inlinable
    public func offsetSeconds(at instant: Timestamp) -> Int64 {
        switch self {
        case .utcOffset(let seconds): seconds
        case .timeZone(let table): table.offsetSeconds(at: instant)
        }
    }

    /// The local weekday and hour (0...23) of `instant` on this clock.
    public func weekdayAndHour(at instant: Timestamp) -> (weekday: Weekday, hour: Int64) {
        let local = instant.adding(nanoseconds: offsetSeconds(at: instant) &* 1_000_000_000) ?? instant
        return (local.civilDate.weekday, local.secondOfDay / 3_600)
    }

    /// `UTC`, `UTC+01:00`, `Europe/Paris`.
    public var description: String {
        switch self {
        case .utcOffset(let seconds):
            guard seconds != 0 else { return "UTC" }
            let sign = seconds < 0 ? "-" : "+"
            let magnitude = seconds.magnitude
            let hours = magnitude / 3600, minutes = magnitude % 3600 / 60
            return "UTC\(sign)\(hours < 10 ? "0" : "")\(hours):\(minutes < 10 ? "0" : "")\(minutes)"
        case .timeZone(let table): return table.identifier
        }
    }
}
