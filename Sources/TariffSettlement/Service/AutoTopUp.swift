import Synchronization
import Tariff

/// A consumer's auto top-up (service.md, "Auto top-up"): when `available` falls below `below`,
/// one off-session purchase of `amount`, keyed `topup:CONSUMER:N` where N counts crossings.
///
/// The row is a small state machine, changed only by compare-and-set on `version` (every change
/// bumps it), so servers sharing a ledger agree on who starts a purchase:
/// - `armed`: the next check that finds `available < below` claims crossing N + 1 (`inFlight`);
/// - `inFlight`: one purchase is running; no other starts. A claim older than
///   `AutoTopUpRules.staleClaimNanoseconds` (its server died) is taken over under the same N, so
///   the rail's and the ledger's idempotency (the same key) still charge it once;
/// - `spent`: the purchase succeeded; armed again once a check finds `available >= below` (the
///   next fall below is a new crossing);
/// - `failed`: declined; nothing more until the setting is changed (`PUT` arms it again).
public struct AutoTopUpSetting: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        case armed, inFlight = "in_flight", spent, failed
    }

    public var consumer: String
    public var below: Money
    public var amount: Money
    public var state: State
    /// Crossings claimed so far: the last purchase's key is `topup:CONSUMER:crossings`. Kept
    /// across changes of the setting, so a key is never used for two purchases.
    public var crossings: Int64
    /// When the purchase in flight was claimed (nil when none is).
    public var claimedAt: Timestamp?
    /// The rail's reason for the last decline (`failed`).
    public var failure: String?
    /// Bumped by every change: the compare-and-set token.
    public var version: Int64
    public var updatedAt: Timestamp

    public init(consumer: String, below: Money, amount: Money, state: State = .armed, crossings: Int64 = 0, claimedAt: Timestamp? = nil,
                failure: String? = nil, version: Int64 = 1, updatedAt: Timestamp) {
        self.consumer = consumer
        self.below = below
        self.amount = amount
        self.state = state
        self.crossings = crossings
        self.claimedAt = claimedAt
        self.failure = failure
        self.version = version
        self.updatedAt = updatedAt
    }

    /// The purchase key of crossing `crossing`.
    public static func purchaseKey(consumer: String, crossing: Int64) -> String { "topup:\(consumer):\(crossing)" }

    public var json: JSON {
        .object([("consumer", .string(consumer)), ("below", .string(below.description)), ("amount", .string(amount.description)),
                 ("state", .string(state.rawValue)), ("crossings", .integer(crossings)), ("failure", .optional(failure))])
    }
}

/// The pure decisions of auto top-up, the same on every backend (applied by compare-and-set).
public enum AutoTopUpRules {
    /// A purchase claimed this long ago without an end is taken over (its server died mid-purchase):
    /// longer than any bounded rail call.
    public static let staleClaimNanoseconds: Int64 = 120_000_000_000

    /// What a check does, given the setting read before the balance and `available` read after it.
    public enum Decision: Sendable, Hashable {
        /// Nothing to do.
        case none
        /// Write this row (armed again) if the setting is still the one read.
        case rearm(AutoTopUpSetting)
        /// Write this row (in flight) and, if that wins, buy `amount` under crossing `crossings`.
        case claim(AutoTopUpSetting)
    }

    public static func decide(_ setting: AutoTopUpSetting, available: Money, now: Timestamp) -> Decision {
        var next = setting
        next.version = setting.version &+ 1
        next.updatedAt = now
        switch setting.state {
        case .failed:
            return .none
        case .spent:
            guard available >= setting.below else { return .none }
            next.state = .armed
            return .rearm(next)
        case .armed:
            guard available < setting.below else { return .none }
            let (crossing, overflow) = setting.crossings.addingReportingOverflow(1)
            guard !overflow else { return .none }
            next.state = .inFlight
            next.crossings = crossing
            next.claimedAt = now
            return .claim(next)
        case .inFlight:
            // Taken over only when its claim is stale; the same crossing, the same key.
            guard let claimedAt = setting.claimedAt else { return .none }
            let (age, overflow) = now.nanosecondsSinceEpoch.subtractingReportingOverflow(claimedAt.nanosecondsSinceEpoch)
            guard !overflow, age > staleClaimNanoseconds else { return .none }
            next.claimedAt = now
            return .claim(next)
        }
    }

    /// The setting after a `PUT`: the new amounts, armed again (a failure is cleared: "not retried
    /// until the setting is changed"), the crossing count kept; a purchase in flight stays in flight.
    public static func saved(_ existing: AutoTopUpSetting?, consumer: String, below: Money, amount: Money, now: Timestamp) -> AutoTopUpSetting {
        guard var setting = existing else { return AutoTopUpSetting(consumer: consumer, below: below, amount: amount, updatedAt: now) }
        setting.below = below
        setting.amount = amount
        if setting.state != .inFlight {
            setting.state = .armed
            setting.failure = nil
        }
        setting.version = setting.version &+ 1
        setting.updatedAt = now
        return setting
    }
}

/// Where auto top-up settings live: the service store of every backend (SQLite `v9: auto
/// top-up`, PostgreSQL migration 14, in memory for `memory:`). Each method is one transaction.
public protocol AutoTopUpStore: Sendable {
    /// Saves a `PUT` (`AutoTopUpRules.saved`), atomically with reading the row it replaces.
    func saveAutoTopUp(consumer: String, below: Money, amount: Money, now: Timestamp) async throws -> AutoTopUpSetting
    func autoTopUp(consumer: String) async throws -> AutoTopUpSetting?
    /// Every setting that a check may act on (not `failed`), for the clock's sweep.
    func autoTopUps() async throws -> [AutoTopUpSetting]
    /// Compare-and-set: writes `next` when the stored row's version is still `expectedVersion`.
    /// - returns: whether it was written (false: another check or a `PUT` changed it first).
    func replaceAutoTopUp(_ next: AutoTopUpSetting, expectedVersion: Int64) async throws -> Bool
    /// The purchase of crossing `crossing` succeeded: `spent`, if that crossing is still in flight.
    func completeAutoTopUp(consumer: String, crossing: Int64, now: Timestamp) async throws
    /// The purchase of crossing `crossing` was declined: `failed` with the rail's reason, if that
    /// crossing is still in flight. THE one place a failed auto top-up is recorded, with its
    /// `auto_top_up.failed` event: in one ledger transaction on SQLite and PostgreSQL; right after
    /// it in memory (whose outbox lives in the backend, and which a crash loses whole anyway).
    /// - returns: whether this call recorded it (false: not in flight under that crossing).
    @discardableResult
    func recordAutoTopUpFailure(consumer: String, crossing: Int64, reason: String, now: Timestamp) async throws -> Bool
}

/// The `memory:` ledger's settings.
public final class InMemoryAutoTopUps: Sendable {
    private let rows = Mutex<[ByteKey: AutoTopUpSetting]>([:])
    public init() {}

    public func save(consumer: String, below: Money, amount: Money, now: Timestamp) -> AutoTopUpSetting {
        rows.withLock { rows in
            let saved = AutoTopUpRules.saved(rows[ByteKey(consumer)], consumer: consumer, below: below, amount: amount, now: now)
            rows[ByteKey(consumer)] = saved
            return saved
        }
    }

    public func get(_ consumer: String) -> AutoTopUpSetting? { rows.withLock { $0[ByteKey(consumer)] } }

    public func all() -> [AutoTopUpSetting] {
        rows.withLock { rows in rows.values.filter { $0.state != .failed }.sorted { ByteKey($0.consumer) < ByteKey($1.consumer) } }
    }

    public func replace(_ next: AutoTopUpSetting, expectedVersion: Int64) -> Bool {
        rows.withLock { rows in
            guard rows[ByteKey(next.consumer)]?.version == expectedVersion else { return false }
            rows[ByteKey(next.consumer)] = next
            return true
        }
    }

    public func finish(consumer: String, crossing: Int64, failure: String?, now: Timestamp) -> Bool {
        rows.withLock { rows in
            guard var row = rows[ByteKey(consumer)], row.state == .inFlight, row.crossings == crossing else { return false }
            row.state = failure == nil ? .spent : .failed
            row.failure = failure
            row.claimedAt = nil
            row.version &+= 1
            row.updatedAt = now
            rows[ByteKey(consumer)] = row
            return true
        }
    }
}

extension InMemoryServiceStore: AutoTopUpStore {
    public func saveAutoTopUp(consumer: String, below: Money, amount: Money, now: Timestamp) async throws -> AutoTopUpSetting {
        autoTopUpRows.save(consumer: consumer, below: below, amount: amount, now: now)
    }
    public func autoTopUp(consumer: String) async throws -> AutoTopUpSetting? { autoTopUpRows.get(consumer) }
    public func autoTopUps() async throws -> [AutoTopUpSetting] { autoTopUpRows.all() }
    public func replaceAutoTopUp(_ next: AutoTopUpSetting, expectedVersion: Int64) async throws -> Bool {
        autoTopUpRows.replace(next, expectedVersion: expectedVersion)
    }
    public func completeAutoTopUp(consumer: String, crossing: Int64, now: Timestamp) async throws {
        _ = autoTopUpRows.finish(consumer: consumer, crossing: crossing, failure: nil, now: now)
    }
    @discardableResult
    public func recordAutoTopUpFailure(consumer: String, crossing: Int64, reason: String, now: Timestamp) async throws -> Bool {
        guard autoTopUpRows.finish(consumer: consumer, crossing: crossing, failure: reason, now: now) else { return false }
        if let outbox, let row = autoTopUpRows.get(consumer) {
            _ = try await outbox.emit(.autoTopUpFailed(consumer: consumer, crossing: crossing, amount: row.amount, reason: reason))
        }
        return true
    }
}
