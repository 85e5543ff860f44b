import Foundation
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
    /// The ids as written: the consumer, and the agent (executions) or plan (subscribe, cancel).
    /// The reader leaves `consumer` and `subject` at -1; the processor interns these names.
    public var subjectName: String
    public var consumerName: String
    public var startedAt: Timestamp
    public var failed: Bool
    public var meters: MeterReadings
    /// Which catalog meters the event reported (bit i = meter index i).
    public var meterMask: UInt16
    /// Names of reported meters no metering of the catalog weighs (warnings).
    public var unknownMeters: [String]
    /// Purchases: the amount (whole cents).
    public var amount: Money
    /// A hash of the parsed fields, to warn when a repeated execution id differs.
    public var fingerprint: UInt64
    /// Two independent 64-bit hashes of the execution id: duplicates are found by them, so the
    /// set of ids seen costs 16 bytes an execution, whatever the ids' length.
    public var idHashHigh: UInt64
    public var idHashLow: UInt64
    /// The consumer's id, up to 24 bytes, when the reader left it for the processor to intern
    /// (length -1: see `consumerName`). Consumers are many (a table that misses the cache) and
    /// the pricing thread has time to spare; a String per name would cost more than these words.
    var consumerKey: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var consumerKeyLength: Int8 = -1

    public init(line: Int, time: Timestamp, kind: TraceEventKind, consumer: Int32, subject: Int32) {
        self.line = line
        self.time = time
        self.kind = kind
        self.consumer = consumer
        self.subject = subject
        executionID = ""
        subjectName = ""
        consumerName = ""
        startedAt = time
        failed = false
        meters = MeterReadings()
        meterMask = 0
        unknownMeters = []
        amount = .zero
        fingerprint = 0
        idHashHigh = 0
        idHashLow = 0
    }
}

/// Interned ids: consumers, agents and plans become small integers, so events stay compact and
/// per-consumer state lives in arrays. Lookups hash the id's bytes (FNV-1a) in an open-addressing
/// table, so a known id costs no String and no SipHash. A slot holds the hash's high half beside
/// the index, and the names' bytes lie end to end in one array: a look-up reads the slot and, on a
/// matching hash, one run of bytes (one array of bytes per name cost a cache miss more per look-up).
public struct InternTable: Sendable {
    public private(set) var names: [String] = []
    /// Every name's bytes, end to end: name i is `storage[starts[i]..<starts[i + 1]]`.
    private var storage: [UInt8] = []
    private var starts: [Int] = [0]
    private var hashes: [UInt64] = []
    /// `hash >> 32 << 32 | (index + 1)` (0 = empty); the capacity is a power of two, at most half full.
    private var slots: [UInt64] = [UInt64](repeating: 0, count: 64)

    public init() {}

    public mutating func intern(_ name: String) -> Int32 {
        var name = name
        return name.withUTF8 { intern(bytes: $0) }
    }

    public mutating func intern(bytes name: UnsafeBufferPointer<UInt8>) -> Int32 {
        let hash = Self.hash(name)
        let (found, position) = find(name, hash: hash)
        if let found { return found }
        let index = Int32(names.count)
        names.append(String(decoding: name, as: UTF8.self))
        storage.append(contentsOf: name)
        starts.append(storage.count)
        hashes.append(hash)
        slots[position] = Self.slot(hash: hash, index: Int(index))
        if names.count * 2 > slots.count { grow() }
        return index
    }

    /// The name's index if interned, else the empty slot where it goes.
    private func find(_ name: UnsafeBufferPointer<UInt8>, hash: UInt64) -> (Int32?, Int) {
        let tag = hash >> 32
        let mask = slots.count - 1
        var position = Int(truncatingIfNeeded: hash) & mask
        return slots.withUnsafeBufferPointer { slots in
            storage.withUnsafeBufferPointer { storage in
                while true {
                    let slot = slots[position]
                    if slot == 0 { return (nil, position) }
                    if slot >> 32 == tag {
                        let index = Int(slot & 0xFFFF_FFFF) - 1
                        let start = starts[index], count = starts[index + 1] - start
                        if count == name.count && (count == 0 || bytesEqual(storage.baseAddress! + start, name.baseAddress!, count)) {
                            return (Int32(index), position)
                        }
                    }
                    position = (position + 1) & mask
                }
            }
        }
    }

    private static func slot(hash: UInt64, index: Int) -> UInt64 { (hash >> 32) << 32 | UInt64(index + 1) }

    private mutating func grow() {
        slots = [UInt64](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (index, hash) in hashes.enumerated() {
            var position = Int(truncatingIfNeeded: hash) & mask
            while slots[position] != 0 { position = (position + 1) & mask }
            slots[position] = Self.slot(hash: hash, index: index)
        }
    }

    static func hash(_ name: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        // FNV's low bits are weak for short keys: mix before masking.
        hash ^= hash >> 29
        return hash &* 0xBF58_476D_1CE4_E5B9
    }

    public func index(of name: String) -> Int32? {
        var name = name
        return name.withUTF8 { raw in find(raw, hash: Self.hash(raw)).0 }
    }

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

/// A rejected trace line: its number and why (usage.md, "Bad input"). An `Error`, so a parse is a `Result`.
public struct Rejection: Error, Sendable, Hashable {
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

extension TraceEvent {
    /// Hands the consumer's id to the processor: as words when short and plain, else as a name.
    mutating func setConsumer(_ value: FieldValue) {
        if case .raw(let bytes) = value, bytes.count <= 24 {
            withUnsafeMutableBytes(of: &consumerKey) { words in
                words.copyMemory(from: UnsafeRawBufferPointer(bytes))
            }
            consumerKeyLength = Int8(bytes.count)
        } else {
            consumerName = value.string
        }
    }

    /// Interns the names and computes the hashes duplicate detection needs (the reader has
    /// already interned the agent and hashed the id when it parsed in interning mode).
    mutating func resolve(in entities: inout TraceEntities) {
        if consumer < 0 {
            if consumerKeyLength >= 0 {
                let length = Int(consumerKeyLength)
                consumer = withUnsafeBytes(of: consumerKey) { words in
                    words.withMemoryRebound(to: UInt8.self) { entities.consumers.intern(bytes: UnsafeBufferPointer(rebasing: $0[0..<length])) }
                }
            } else {
                consumer = entities.consumers.intern(consumerName)
            }
        }
        switch kind {
        case .execution:
            if subject < 0 {
                subject = entities.agents.intern(subjectName)
                (idHashHigh, idHashLow) = FieldHash.pair(executionID)
            }
            hashFields()
        case .subscribe, .cancel:
            subject = entities.plans.intern(subjectName)
        case .purchase:
            break
        }
    }

    /// A hash of the parsed fields of an execution (its consumer and agent interned): equal for
    /// equal fields, whatever their order in the line.
    mutating func hashFields() {
        var hash = FieldHash()
        hash.addWord(UInt64(bitPattern: Int64(consumer)))
        hash.addWord(UInt64(bitPattern: Int64(subject)))
        hash.addWord(UInt64(bitPattern: startedAt.nanosecondsSinceEpoch))
        hash.addWord(UInt64(bitPattern: time.nanosecondsSinceEpoch))
        hash.addByte(failed ? 1 : 0)
        hash.addWord(UInt64(meterMask))
        for index in 0..<MeterReadings.capacity where meterMask & (1 << UInt16(index)) != 0 {
            hash.addWord(UInt64(bitPattern: meters[MeterIndex(rawValue: index)].micros))
        }
        if !unknownMeters.isEmpty {
            for name in unknownMeters.sorted() { hash.add(name) }
        }
        fingerprint = hash.value
    }
}
