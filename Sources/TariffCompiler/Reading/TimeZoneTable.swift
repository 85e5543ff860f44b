import Foundation
import TariffCore

/// Builds the `UTCOffsetTable` of an IANA time zone from the system's tz database (Foundation's
/// `TimeZone`), at compile time, so pricing reads a flat array instead of calling Foundation.
///
/// The table covers transitions from 1970-01-01 to 2100-01-01 (`rangeStart` ..< `rangeEnd`): before
/// 1970 the zone's offset at 1970-01-01 applies, after its last transition before 2100 that offset
/// applies for good (for a zone with daylight saving time, its standard time, since the last
/// transition of 2099 is the autumn one). A table is at most a few hundred entries (Europe/Paris: 248).
public enum TimeZoneTable {
    /// 1970-01-01T00:00:00Z and 2100-01-01T00:00:00Z, in seconds since the epoch.
    public static let rangeStartSeconds: Int64 = 0
    public static let rangeEndSeconds: Int64 = 4_102_444_800

    /// The table of an IANA zone name, or nil when the name is not one the tz database knows.
    ///
    /// Only names are accepted: Foundation also reads `GMT+1` as a fixed offset, which is the
    /// opposite sign of the IANA zone `Etc/GMT+1` (UTC-1); a fixed offset is written `utc_offset`.
    public static func table(for identifier: String) -> UTCOffsetTable? {
        cache.lock.lock()
        defer { cache.lock.unlock() }
        if let known = cache.tables[identifier] { return known }
        let built = build(identifier)
        // A catalog names a handful of zones; the cache is bounded by the names ever asked for,
        // and unknown names are not kept (a mistyped catalog cannot grow it without bound).
        if built != nil { cache.tables[identifier] = built }
        return built
    }

    /// Every zone name the tz database lists, for did-you-mean suggestions.
    public static var knownIdentifiers: [String] { TimeZone.knownTimeZoneIdentifiers }

    private static func build(_ identifier: String) -> UTCOffsetTable? {
        let upper = identifier.uppercased()
        guard !identifier.isEmpty, !upper.hasPrefix("GMT+"), !upper.hasPrefix("GMT-"), !upper.hasPrefix("UTC+"), !upper.hasPrefix("UTC-"),
              let zone = TimeZone(identifier: identifier) else { return nil }
        let start = Date(timeIntervalSince1970: TimeInterval(rangeStartSeconds))
        let end = Date(timeIntervalSince1970: TimeInterval(rangeEndSeconds))
        var starts: [Int64] = [.min]
        var offsets: [Int32] = [Int32(zone.secondsFromGMT(for: start))]
        var cursor = start
        // Each step moves strictly forward (or the loop stops), and the range is bounded: at most a
        // few hundred iterations; the bound on the count guards against a tz database gone wrong.
        while starts.count < 4_096, let next = zone.nextDaylightSavingTimeTransition(after: cursor), next > cursor, next < end {
            cursor = next
            // Transitions are whole seconds in the tz database; the Double holds them exactly.
            let seconds = Int64(next.timeIntervalSince1970.rounded(.down))
            let offset = Int32(zone.secondsFromGMT(for: next))
            guard let last = starts.last, seconds * 1_000_000_000 > last else { continue }
            if offset == offsets.last { continue }   // a rename of the zone's abbreviation, not of its offset
            starts.append(seconds * 1_000_000_000)
            offsets.append(offset)
        }
        return UTCOffsetTable(identifier: identifier, startNanoseconds: starts, offsetSeconds: offsets)
    }

    private final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var tables: [String: UTCOffsetTable] = [:]
    }
    private static let cache = Cache()
}

extension ValueType where Value == UTCOffsetTable {
    /// An IANA time zone name (`Europe/Paris`, `America/New_York`, `UTC`): `unknown-timezone` at the
    /// value otherwise, with a did-you-mean among the tz database's names.
    public static var timeZone: ValueType<UTCOffsetTable> {
        .scalar("an IANA time zone such as Europe/Paris", optionType: .timeZone) { text, location, diagnostics in
            if let table = TimeZoneTable.table(for: String(text)) { return table }
            var message = "'\(text)' is not an IANA time zone"
            if let suggestion = Suggestion.closest(to: String(text), among: TimeZoneTable.knownIdentifiers) { message += "; did you mean '\(suggestion)'?" }
            let upper = text.uppercased()
            let fix = upper.hasPrefix("GMT") || upper.hasPrefix("UTC")
                ? "write a fixed offset as utc_offset: \"+01:00\", or name a zone such as Europe/Paris"
                : "use a name of the tz database such as UTC, Europe/Paris or America/New_York"
            diagnostics.error("unknown-timezone", at: location, message, fix: fix)
            return nil
        }
    }
}
