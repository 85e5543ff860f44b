import Foundation

/// One payout week of the calendar (settlement.md, "Payouts"): `[start, end)` in UTC, the local
/// date it starts on, and the date it is paid.
public struct PayoutWeek: Sendable, Hashable, Comparable {
    /// The local date the week starts on (a Monday by default), in the payout time zone.
    public var weekStart: CivilDate
    /// The first `pay_on` day that starts at or after the week's end (local date).
    public var payDate: CivilDate
    public var start: Timestamp
    public var end: Timestamp

    public static func < (lhs: PayoutWeek, rhs: PayoutWeek) -> Bool { lhs.start < rhs.start }

    public func contains(_ instant: Timestamp) -> Bool { start <= instant && instant < end }
}

/// The payout calendar turned into weeks: which week a line falls in, when that week is paid.
///
/// Weeks are local to the calendar's IANA time zone, so a week of a DST change is 167 or 169
/// hours long. The zone's offsets come from Foundation (time only; no money is computed here).
public struct PayoutSchedule: Sendable {
    public let calendar: PayoutCalendar
    private let zone: TimeZone

    /// nil when the calendar names a zone this system does not know (the compiler checks it first).
    public init?(_ calendar: PayoutCalendar) {
        guard let zone = TimeZone(identifier: calendar.timezone) else { return nil }
        self.calendar = calendar
        self.zone = zone
    }

    /// The week containing `instant`.
    public func week(containing instant: Timestamp) -> PayoutWeek {
        let local = Self.shifted(instant, by: offsetSeconds(at: instant))
        let date = local.civilDate
        let back = Int64((date.weekday.rawValue - calendar.weekStarts.rawValue + 7) % 7)
        let weekStart = date.addingDays(-back)
        let nextWeekStart = weekStart.addingDays(7)
        let start = utcInstant(ofLocalMidnight: weekStart)
        let end = utcInstant(ofLocalMidnight: nextWeekStart)
        // The first pay_on day starting at or after the week's end (the next week's first day counts).
        let ahead = Int64((calendar.payOn.rawValue - nextWeekStart.weekday.rawValue + 7) % 7)
        return PayoutWeek(weekStart: weekStart, payDate: nextWeekStart.addingDays(ahead), start: start, end: end)
    }

    /// The week starting on a given local date (for `tariff ledger payouts --week 2026-11-02`);
    /// nil if the date is not a `week_starts` day.
    public func week(startingOn date: CivilDate) -> PayoutWeek? {
        guard date.weekday == calendar.weekStarts else { return nil }
        return week(containing: utcInstant(ofLocalMidnight: date))
    }

    /// The instant the week's pay date starts (local midnight in the payout time zone): a week's
    /// payout run may be executed from then on (settlement.md, "Money that reconciles").
    public func payDateStart(of week: PayoutWeek) -> Timestamp { utcInstant(ofLocalMidnight: week.payDate) }

    private func offsetSeconds(at instant: Timestamp) -> Int64 {
        let seconds = instant.nanosecondsSinceEpoch / 1_000_000_000
        return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
    }

    /// The UTC instant of a local midnight: the offset in force at that moment, found by one
    /// refinement (exact except inside a DST gap at midnight, where the earlier offset is used).
    private func utcInstant(ofLocalMidnight date: CivilDate) -> Timestamp {
        let naive = Timestamp(nanosecondsSinceEpoch: date.daysSinceEpoch &* 86_400 &* 1_000_000_000)
        let guess = Self.shifted(naive, by: -offsetSeconds(at: naive))
        return Self.shifted(naive, by: -offsetSeconds(at: guess))
    }

    private static func shifted(_ instant: Timestamp, by seconds: Int64) -> Timestamp {
        instant.adding(nanoseconds: seconds &* 1_000_000_000) ?? instant
    }
}

/// A creator's payout for one week (settlement.md): earnings of the week, the amount paid on the
/// pay date, and what carries out of the week.
public struct PayoutRow: Sendable, Hashable {
    public var creator: String
    public var week: PayoutWeek
    public var earnings: Money
    /// `floor_to_minor_unit(carried in + earnings)` when that is at least the minimum, else 0.
    public var amount: Money
    /// What carries out of this week into the next.
    public var carried: Money
}

/// Accumulates creator shares by week and derives the payout rows: one row for every creator and
/// week that holds at least one of the creator's lines, paid in order so carries flow forward.
public struct PayoutAccumulator: Sendable {
    public let schedule: PayoutSchedule
    private var earnings: [Key: MoneySum] = [:]
    private var weeks: [Timestamp: PayoutWeek] = [:]
    /// The week of the last line: lines arrive in time order, so the calendar is consulted about once a week.
    private var lastWeek: PayoutWeek?

    private struct Key: Hashable {
        /// Creators are ids: compared as bytes (usage.md).
        var creator: ByteKey
        var weekStart: Timestamp
    }

    /// The currency's minor unit in micro-units (cents: 10,000; whole yen: 1,000,000): payouts are
    /// floored to it, as the ledger floors them (settlement.md: "cents" is the currency's minor unit).
    public let unitMicros: Int64

    public init(schedule: PayoutSchedule, unitMicros: Int64 = 10_000) {
        self.schedule = schedule
        self.unitMicros = max(unitMicros, 1)
    }

    /// The minor unit of `currency` in micro-units.
    public static func unitMicros(of currency: Currency) -> Int64 {
        var unit: Int64 = 1
        for _ in 0..<max(0, 6 - min(currency.minorUnitDigits, 6)) { unit *= 10 }
        return unit
    }

    /// Adds a creator share dated at `instant` (sums are `MoneySum`: they never wrap).
    public mutating func add(creator: String, at instant: Timestamp, share: Money) {
        add(creator: creator, at: instant, share: MoneySum(share))
    }

    /// Adds a sum of creator shares dated at `instant`.
    public mutating func add(creator: String, at instant: Timestamp, share: MoneySum) {
        let week: PayoutWeek
        if let last = lastWeek, last.contains(instant) {
            week = last
        } else {
            week = schedule.week(containing: instant)
            weeks[week.start] = week
            lastWeek = week
        }
        earnings[Key(creator: ByteKey(creator), weekStart: week.start), default: MoneySum()].add(share)
    }

    /// The rows, by creator (bytes) then week, with carries applied from each creator's first week on.
    /// - throws: `AmountOverflow` when a week's earnings, a payout or a carry is beyond `Money`'s
    ///   range (no row is made with a clamped amount).
    public func rows() throws(AmountOverflow) -> [PayoutRow] {
        var rows: [PayoutRow] = []
        let minimum = Int128(schedule.calendar.minimum.micros)
        let byCreator = Dictionary(grouping: earnings.keys, by: \.creator)
        for creator in byCreator.keys.sorted() {
            var carried: Int128 = 0
            for key in (byCreator[creator] ?? []).sorted(by: { $0.weekStart < $1.weekStart }) {
                guard let week = weeks[key.weekStart] else { continue }
                let weekEarnings = earnings[key] ?? MoneySum()
                let due = carried + weekEarnings.micros
                let unit = Int128(unitMicros)
                let floored = due.divided(by: unit, rounding: .down) * unit
                let amount: Int128 = floored >= minimum && floored > 0 ? floored : 0
                carried = due - amount
                let name = creator.string
                rows.append(PayoutRow(creator: name, week: week,
                                      earnings: try weekEarnings.money("the earnings of \(name) in the week of \(week.weekStart)"),
                                      amount: try MoneySum(micros: amount).money("the payout of \(name) for the week of \(week.weekStart)"),
                                      carried: try MoneySum(micros: carried).money("what \(name) carries out of the week of \(week.weekStart)")))
            }
        }
        return rows
    }
}
