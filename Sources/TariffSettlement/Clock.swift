import Foundation
import Synchronization
import Tariff

/// Where the settlement lifecycle reads the time: hold expiry, usage windows, payout weeks.
///
/// Injected so tests (and `ledger replay`, which runs on the trace's time) decide what "now" is;
/// a service uses `SystemClock`.
public protocol SettlementClock: Sendable {
    func now() -> Timestamp
}

/// The wall clock (UTC, nanoseconds).
public struct SystemClock: SettlementClock {
    public init() {}
    public func now() -> Timestamp {
        // Foundation's Date is a Double of seconds: fine for reading the time (no money here).
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) &* 1_000_000_000 &+ Int64(spec.tv_nsec))
    }
}

/// A clock that only moves when told: tests of expiry, and replays driven by a trace's times.
public final class ManualClock: SettlementClock {
    private let current: Mutex<Timestamp>

    public init(_ start: Timestamp) { current = Mutex(start) }

    public func now() -> Timestamp { current.withLock { $0 } }

    public func set(_ instant: Timestamp) { current.withLock { $0 = instant } }

    /// Moves the clock forward (or back, with a negative duration).
    public func advance(by duration: Duration) {
        current.withLock { now in
            now = now.adding(nanoseconds: duration.nanoseconds) ?? now
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating (a TTL never comes near 292 years).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? Int64.min : Int64.max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? (seconds < 0 ? Int64.min : Int64.max) : sum
    }
}
