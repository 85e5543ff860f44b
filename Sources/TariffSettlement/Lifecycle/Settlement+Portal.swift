import Tariff

/// A backend that lists one consumer's purchases itself (an indexed query), instead of the
/// reference path of reading the whole ledger's snapshot. SQLite and PostgreSQL adopt it.
public protocol PurchaseListing: Sendable {
    /// The consumer's purchases paid through a rail, newest first, at most `limit`.
    func purchases(consumer: String, limit: Int) async throws -> [PurchaseRecord]
}

/// One payout week of a creator's calendar on the portal: the week and the creator's row of
/// `payouts(week:)` for it (nil when that week lists nothing for the creator).
public struct CreatorPayoutWeek: Sendable, Hashable {
    public var week: PayoutWeek
    public var line: PayoutLine?
}

extension Settlement {
    /// The most rows a portal list shows (its page stays small whatever the ledger holds).
    public static let maximumPortalRows = 100

    /// The consumer's priced executions dated in the last `period` (up to now), newest first, at
    /// most `limit`: the charge lines `usage` sums, one per execution.
    /// - throws: `invalid_key` for a bad consumer id; `storage`.
    public func recentExecutions(consumer: String, period: Duration = .seconds(30 * 86_400), limit: Int = 20) async throws -> [ChargeRecord] {
        try Self.validate(consumer, "consumer id")
        let now = clock.now()
        let from = now.adding(nanoseconds: -period.nanoseconds) ?? Timestamp(nanosecondsSinceEpoch: Int64.min)
        let to = now.adding(nanoseconds: 1) ?? now
        let lines = try await backend.chargeRecords(ChargeQuery(consumer: consumer, from: from, to: to)).filter { $0.kind == .execution }
        let newestFirst = lines.sorted { ($0.datedAt, $0.sequence) > ($1.datedAt, $1.sequence) }
        return Array(newestFirst.prefix(max(0, min(limit, Self.maximumPortalRows))))
    }

    /// The consumer's purchases paid through a rail (the API's `POST /v1/purchases`), newest first, at most `limit`.
    /// - throws: `invalid_key` for a bad consumer id; `storage`.
    public func recentPurchases(consumer: String, limit: Int = 20) async throws -> [PurchaseRecord] {
        try Self.validate(consumer, "consumer id")
        let limit = max(0, min(limit, Self.maximumPortalRows))
        if let listing = backend as? any PurchaseListing { return try await listing.purchases(consumer: consumer, limit: limit) }
        let mine = try await backend.snapshot().purchases.filter { $0.consumer == consumer }
        return Array(mine.sorted { ($0.createdAt, $0.key) > ($1.createdAt, $1.key) }.prefix(limit))
    }

    /// The creator's payout calendar: the payout week containing now and the `weeks - 1` before
    /// it, oldest first, each with the creator's row of `payouts(week:)`, the very call
    /// `GET /v1/payouts` answers from (so every figure of the portal's calendar is the API's).
    /// - throws: `invalid_key` for a bad creator id; what `payouts(week:)` throws.
    public func creatorPayoutWeeks(creator: String, weeks: Int = 12) async throws -> [CreatorPayoutWeek] {
        try Self.validate(creator, "creator id")
        let schedule = try payoutSchedule()
        var week = schedule.week(containing: clock.now())
        var found: [CreatorPayoutWeek] = []
        for _ in 0..<max(1, min(weeks, 52)) {
            let line = try await payouts(week: week.weekStart).first { $0.creator == creator }
            found.append(CreatorPayoutWeek(week: week, line: line))
            // The week before: the one containing the instant just before this one starts.
            guard let before = week.start.adding(nanoseconds: -1) else { break }
            week = schedule.week(containing: before)
        }
        return found.reversed()
    }
}
