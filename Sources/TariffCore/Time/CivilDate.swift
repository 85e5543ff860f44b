// Calendar arithmetic in the proleptic Gregorian calendar, UTC only.
//
// Billing periods are defined on calendar days (a month is not a fixed number of seconds),
// so the engine needs exact day <-> date conversion. This file uses Howard Hinnant's
// `days_from_civil` / `civil_from_days` algorithms (http://howardhinnant.github.io/date_algorithms.html):
// branch-light, O(1), valid for every representable day, no tables, no Foundation.

/// A day of the week, numbered as in ISO 8601 (Monday = 1 ... Sunday = 7).
public enum Weekday: Int, Sendable, CaseIterable {
    case monday = 1, tuesday, wednesday, thursday, friday, saturday, sunday

    /// Accepts the three-letter or the full English name in any case ("mon", "Monday", "SUN").
    /// Plan files and CLI flags are written by people, so casing is not worth an error.
    public init?(name: String) {
        let lowered = name.lowercased()
        for candidate in Weekday.allCases where candidate.shortName == lowered || candidate.fullName == lowered {
            self = candidate
            return
        }
        return nil
    }

    /// The lowercase three-letter name ("mon"): the form used in plans and reports.
    public var shortName: String {
        switch self {
        case .monday: "mon"
        case .tuesday: "tue"
        case .wednesday: "wed"
        case .thursday: "thu"
        case .friday: "fri"
        case .saturday: "sat"
        case .sunday: "sun"
        }
    }

    /// The lowercase full name ("monday"): the form of `rules/payouts.yaml`.
    public var fullName: String {
        switch self {
        case .monday: "monday"
        case .tuesday: "tuesday"
        case .wednesday: "wednesday"
        case .thursday: "thursday"
        case .friday: "friday"
        case .saturday: "saturday"
        case .sunday: "sunday"
        }
    }
}

/// A calendar day (proleptic Gregorian, no time zone).
///
/// Invariant: `month` is 1...12, `day` is valid for that month, and the day's number
/// (`daysSinceEpoch`) fits in `Int64`. The fields are read-only from outside so the
/// invariant cannot be broken by assigning `day = 31` to a February date; every
/// operation can therefore be total (never nil, never trapping) where the spec wants it.
public struct CivilDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var year: Int
    public private(set) var month: Int
    public private(set) var day: Int

    /// A validated date: nil unless month is 1...12, day is within that month (leap years
    /// included) and the day number is representable as `Int64` days since 1970-01-01.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), day >= 1, day <= CivilDate.daysInMonth(year: year, month: month) else {
            return nil
        }
        // Int64 days span about +/-25 quadrillion years; the guard keeps the checked arithmetic
        // below away from Int64's edges (and Int may be narrower than Int64 on 32-bit targets).
        guard let year64 = Int64(exactly: year), year64 > -CivilDate.yearLimit, year64 < CivilDate.yearLimit,
              CivilDate.checkedDaysFromCivil(year: year64, month: Int64(month), day: Int64(day)) != nil
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date `daysSinceEpoch` days after 1970-01-01 (negative = before). Total: every Int64 maps to a date.
    public init(daysSinceEpoch: Int64) {
        // Hinnant's civil_from_days, with the shift by 719468 days (0000-03-01 -> 1970-01-01)
        // applied after dividing into 400-year eras so that it cannot overflow near Int64.max.
        let (q, r) = TimeMath.floorDivMod(daysSinceEpoch, 146_097)
        let shifted = r + 719_468
        let era = q + shifted / 146_097
        let doe = shifted % 146_097                                             // [0, 146096]
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365      // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)                       // [0, 365], from March 1
        let mp = (5 * doy + 2) / 153                                            // [0, 11], March = 0
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        // On 64-bit platforms the year always fits (|y| < 2.6e16); clamping only matters for a
        // 32-bit Int, where it keeps this initializer from trapping.
        self.year = Int(clamping: y)
        self.month = Int(m)
        self.day = Int(d)
    }

    /// Days since 1970-01-01 (Hinnant's days_from_civil).
    public var daysSinceEpoch: Int64 {
        // The invariant guarantees the true result fits in Int64. Wrapping arithmetic is exact
        // modulo 2^64, so it returns that result even where an intermediate product would not fit.
        let y = Int64(truncatingIfNeeded: year) &- (month <= 2 ? 1 : 0)
        let (era, yoe) = TimeMath.floorDivMod(y, 400)
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + CivilDate.dayOfYearFromMarch(month: Int64(month), day: Int64(day))
        return era &* 146_097 &+ doe &- 719_468
    }

    /// The ISO weekday. 1970-01-01 was a Thursday.
    public var weekday: Weekday {
        // TimeMath.floorDivMod first, so that adding the Thursday offset cannot overflow at Int64.max.
        let r = TimeMath.floorDivMod(daysSinceEpoch, 7).remainder   // 0 = Thursday
        return Weekday(rawValue: Int((r + 3) % 7) + 1) ?? .monday   // always 1...7; the fallback is unreachable
    }

    /// `YYYY-MM-DD`, the year zero-padded to four digits (negative years get a leading `-`).
    public var description: String {
        let sign = year < 0 ? "-" : ""
        return sign + TimeMath.zeroPadded(UInt64(year.magnitude), width: 4) + "-"
            + TimeMath.zeroPadded(UInt64(month.magnitude), width: 2) + "-" + TimeMath.zeroPadded(UInt64(day.magnitude), width: 2)
    }

    /// The number of days in `month` of `year` (proleptic Gregorian leap rules); 0 for a month outside 1...12,
    /// so that `day <= daysInMonth(...)` doubles as a validity check.
    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 1, 3, 5, 7, 8, 10, 12: 31
        case 4, 6, 9, 11: 30
        case 2: isLeapYear(year) ? 29 : 28
        default: 0
        }
    }

    static func isLeapYear(_ year: Int) -> Bool {
        // Swift's % keeps the dividend's sign, so these tests are also right for negative years.
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The date `n` days later (earlier if negative). Saturates at the first / last representable
    /// date rather than trapping, since the result type is not optional.
    public func addingDays(_ n: Int64) -> CivilDate {
        let (sum, overflow) = daysSinceEpoch.addingReportingOverflow(n)
        if overflow { return CivilDate(daysSinceEpoch: n < 0 ? .min : .max) }
        return CivilDate(daysSinceEpoch: sum)
    }

    /// Adds months keeping the day of month of `anchorDay`, clamped to the month's last day
    /// (anchor day 31: Jan 31 + 1 month = Feb 28 or 29, +2 = Mar 31, +3 = Apr 30).
    /// `anchorDay` below 1 is treated as 1. Saturates at the representable range instead of trapping.
    public func addingMonths(_ n: Int, anchorDay: Int) -> CivilDate {
        if let result = checkedAddingMonths(Int64(n), anchorDay: anchorDay) { return result }
        return CivilDate(daysSinceEpoch: n < 0 ? .min : .max)
    }

    /// Midnight UTC at the start of this day; nil when it falls outside `Timestamp`'s range (about 1677...2262).
    public var midnightUTC: Timestamp? {
        Timestamp.make(days: daysSinceEpoch, nanosecondsOfDay: 0)
    }

    public static func < (lhs: CivilDate, rhs: CivilDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    // MARK: - Internals

    /// Years beyond this cannot have an Int64 day number (Int64.max days is about 2.53e16 years).
    static let yearLimit: Int64 = 26_000_000_000_000_000

    /// Day of the year counted from March 1 (0...365), so that the leap day is the last one.
    static func dayOfYearFromMarch(month: Int64, day: Int64) -> Int64 {
        let mp = (month + 9) % 12   // March = 0 ... February = 11
        return (153 * mp + 2) / 5 + day - 1
    }

    /// days_from_civil, returning nil when the result does not fit in Int64.
    /// Precondition: month 1...12, day valid, |year| < yearLimit (so only the final steps can overflow).
    static func checkedDaysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64? {
        let y = year - (month <= 2 ? 1 : 0)
        let (era, yoe) = TimeMath.floorDivMod(y, 400)
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + dayOfYearFromMarch(month: month, day: day)   // [0, 146096]
        // The result is era*146097 + (doe - 719468). For eras >= 0 the product alone can exceed
        // Int64.max even when the result fits, so five eras are moved into the small term
        // (5*146097 - 719468 = 11017 > 0); for negative eras the small term is already negative
        // and the product is never further from zero than the result.
        let (eraPart, small): (Int64, Int64) = era >= 0 ? (era - 5, doe + 11_017) : (era, doe - 719_468)
        let (product, overflow1) = eraPart.multipliedReportingOverflow(by: 146_097)
        let (result, overflow2) = product.addingReportingOverflow(small)
        return overflow1 || overflow2 ? nil : result
    }

    /// `addingMonths` returning nil instead of saturating, for callers (period starts) that must report overflow.
    func checkedAddingMonths(_ n: Int64, anchorDay: Int) -> CivilDate? {
        // Count months from year 0 so that carrying into the year is a single floor division.
        let (yearMonths, overflow1) = Int64(truncatingIfNeeded: year).multipliedReportingOverflow(by: 12)
        let (base, overflow2) = yearMonths.addingReportingOverflow(Int64(month - 1))
        let (total, overflow3) = base.addingReportingOverflow(n)
        guard !overflow1, !overflow2, !overflow3 else { return nil }
        let (newYear64, monthIndex) = TimeMath.floorDivMod(total, 12)
        guard let newYear = Int(exactly: newYear64) else { return nil }
        let newMonth = Int(monthIndex) + 1
        let clampedDay = min(max(anchorDay, 1), CivilDate.daysInMonth(year: newYear, month: newMonth))
        return CivilDate(year: newYear, month: newMonth, day: clampedDay)
    }
}

/// The length of a recurring calendar period.
public enum PeriodUnit: String, Sendable, CaseIterable {
    case week, month, year
}

extension Timestamp {
    /// The start of period `index` (0 = the anchor) of a calendar period anchored at `anchor`:
    /// months: the anchor's date + index months with the anchor's day of month clamped (never drifting: always computed from the anchor, not from the previous period), same time of day;
    /// weeks: + 7*index days; years: + 12*index months. nil on overflow.
    public static func periodStart(anchor: Timestamp, unit: PeriodUnit, index: Int) -> Timestamp? {
        let index64 = Int64(index)
        switch unit {
        case .week:
            // index * week alone can exceed Int64 while the start still fits (an anchor in 1677 and
            // a start in 2262), so the sum is formed exactly in 128 bits.
            return TimeMath.exactSum(anchor.nanosecondsSinceEpoch, index64, times: 7 * TimeMath.nanosecondsPerDay)
                .map(Timestamp.init(nanosecondsSinceEpoch:))
        case .month:
            return monthlyStart(anchor: anchor, months: index64)
        case .year:
            let (months, overflow) = index64.multipliedReportingOverflow(by: 12)
            return overflow ? nil : monthlyStart(anchor: anchor, months: months)
        }
    }

    /// The index of the period containing `t` (t >= anchor; periods are half-open [start, next start)); nil if t < anchor.
    /// O(1): estimated from the calendar-month difference, then corrected by at most one step.
    public static func periodIndex(containing t: Timestamp, anchor: Timestamp, unit: PeriodUnit) -> Int? {
        guard t >= anchor else { return nil }
        switch unit {
        case .week:
            // t - anchor may exceed Int64.max (anchor before 1970, t long after), but it is
            // non-negative and below 2^64, so the wrapping UInt64 difference is exact.
            let elapsed = UInt64(bitPattern: t.nanosecondsSinceEpoch) &- UInt64(bitPattern: anchor.nanosecondsSinceEpoch)
            return Int(exactly: elapsed / UInt64(7 * TimeMath.nanosecondsPerDay))   // at most ~30,500: always fits
        case .month, .year:
            let a = anchor.civilDate
            let c = t.civilDate
            // Timestamps span years 1677...2262, so this product is small.
            let monthDifference = (Int64(c.year) - Int64(a.year)) * 12 + Int64(c.month - a.month)
            var k = TimeMath.floorDivMod(monthDifference, unit == .month ? 1 : 12).quotient
            // Start k+1 lies in a later calendar month than t, so it is always after t; start k lies
            // in t's month or earlier and is after t only when the anchor's day/time in that month
            // is later than t's. Then start k-1 lies in an earlier month and is <= t. So at most one
            // step back; the loops are bounded anyway so that a mistake cannot spin.
            var steps = 0
            while k > 0, steps < 3, periodStart(anchor: anchor, unit: unit, index: Int(k)).map({ $0 > t }) ?? true {
                k -= 1
                steps += 1
            }
            while steps < 3, let next = periodStart(anchor: anchor, unit: unit, index: Int(k + 1)), next <= t {
                k += 1
                steps += 1
            }
            return Int(exactly: k)
        }
    }

    /// The anchor's date moved by `months` with its day of month clamped, at the anchor's time of day.
    static func monthlyStart(anchor: Timestamp, months: Int64) -> Timestamp? {
        let (days, nanosOfDay) = TimeMath.floorDivMod(anchor.nanosecondsSinceEpoch, TimeMath.nanosecondsPerDay)
        let date = CivilDate(daysSinceEpoch: days)
        guard let shifted = date.checkedAddingMonths(months, anchorDay: date.day) else { return nil }
        return make(days: shifted.daysSinceEpoch, nanosecondsOfDay: nanosOfDay)
    }
}

// MARK: - Shared integer helpers

/// Integer helpers shared by the time types, namespaced so they cannot collide with other
/// internal helpers of TariffCore.
enum TimeMath {
    static let nanosecondsPerSecond: Int64 = 1_000_000_000
    static let secondsPerDay: Int64 = 86_400
    static let nanosecondsPerDay: Int64 = secondsPerDay * nanosecondsPerSecond

    /// Floor division and the matching non-negative remainder, for a positive divisor.
    /// Swift's `/` truncates toward zero, which would put instants before 1970 on the wrong day.
    /// Never traps: with `divisor > 0` neither `/`, `%` nor the `- 1` adjustment can overflow.
    static func floorDivMod(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = value / divisor
        let r = value % divisor
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }

    /// `base + a * b` computed exactly in 128 bits; nil unless the result fits in Int64.
    static func exactSum(_ base: Int64, _ a: Int64, times b: Int64) -> Int64? {
        let product = a.multipliedFullWidth(by: b)                     // (high: Int64, low: UInt64), never overflows
        let (low, carry) = product.low.addingReportingOverflow(UInt64(bitPattern: base))
        let (high1, overflow1) = product.high.addingReportingOverflow(base < 0 ? -1 : 0)   // sign-extend base
        let (high, overflow2) = high1.addingReportingOverflow(carry ? 1 : 0)
        let result = Int64(bitPattern: low)
        // The 128-bit sum fits in Int64 exactly when its high half is the sign extension of its low half.
        guard !overflow1, !overflow2, high == (result < 0 ? -1 : 0) else { return nil }
        return result
    }

    /// Decimal digits of `value`, left-padded with zeros to `width`.
    static func zeroPadded(_ value: UInt64, width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
