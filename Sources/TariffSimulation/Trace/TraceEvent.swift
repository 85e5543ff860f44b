import Tariff

/// The four event types of a usage trace (usage.md).
public enum TraceEventKind: UInt8, Sendable {
    case execution, subscribe, cancel, purchase
}

/// One accepted event of a trace, compact: ids are interned into `TraceEntities`.
public struct TraceEvent: Sendable {
    /// 1-based line number in the trace (ties in time are broken by it).
    public var line: Int
    /// `at`, or `ended_at` for an execution.
    public var time: Timestamp
    public var kind: TraceEventKind
    public var consumer: Int32
    /// The agent of an execution, the plan of a subscribe or cancel (indexes into their tables).
    public var subject: Int32
    public var executionID: String
    public var failed: Bool
    public var meters: MeterReadings
    /// Which catalog meters the event reported (bit i = meter index i).
    public var meterMask: UInt16
    /// Names of reported meters no metering of the catalog weighs (warnings).
    public var unknownMeters: [String]
    /// Purchases: the amount (whole cents).
    public var amount: Money
    /// A hash of the parsed fields, to warn when a repeated execution id differs.
    public var fingerprint: Int

    public init(line: Int, time: Timestamp, kind: TraceEventKind, consumer: Int32, subject: Int32) {
        self.line = line
        self.time = time
        self.kind = kind
        self.consumer = consumer
        self.subject = subject
        executionID = ""
        failed = false
        meters = MeterReadings()
        meterMask = 0
        unknownMeters = []
        amount = .zero
        fingerprint = 0
    }
}

/// Interned ids: consumers, agents and plans become small integers, so events stay compact and
/// per-consumer state lives in arrays rather than string-keyed dictionaries.
public struct InternTable: Sendable {
    public private(set) var names: [String] = []
    private var indexes: [String: Int32] = [:]

    public init() {}

    public mutating func intern(_ name: String) -> Int32 {
        if let index = indexes[name] { return index }
        let index = Int32(names.count)
        names.append(name)
        indexes[name] = index
        return index
    }

    public func index(of name: String) -> Int32? { indexes[name] }
    public subscript(index: Int32) -> String { names[Int(index)] }
    public var count: Int { names.count }
}

/// The entities of a trace.
public struct TraceEntities: Sendable {
    public var consumers = InternTable()
    public var agents = InternTable()
    public var plans = InternTable()
    public init() {}
}

/// A rejected trace line: its number and why (usage.md, "Bad input").
public struct Rejection: Sendable, Hashable {
    public var line: Int
    public var reason: String
    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
}

/// A warning about a trace line (it was still used).
public struct TraceWarning: Sendable, Hashable {
    public var line: Int
    public var message: String
    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }
}
