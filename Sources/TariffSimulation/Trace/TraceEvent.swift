import Foundation
import Tariff

/// The four event types of a usage trace (usage.md).
public enum TraceEventKind: UInt8, Sendable {
    case execution, subscribe, cancel, purchase
}

/// One accepted event of a trace, compact: ids are interned into `TraceEntities`.
///
/// Every stored field but one is plain data, so moving an event through the reader, the reorder
/// buffer and the batches is a copy of bytes: the execution id and the consumer's id ride inline
/// (up to 24 bytes each, `InlineName`), and the texts only some events have (a subscribe's plan,
/// a purchase's key, names in the ledger replay's reading, unknown meters, long or escaped ids)
/// sit in one shared box, `nil` for the executions of a simulate run. Three strings and an array
/// stored here made every copy four reference-count operations through a value witness, and the
/// profile showed them on the reader thread.
public struct TraceEvent: Sendable {
    /// 1-based line number in the trace (ties in time are broken by it).
    public var line: Int
    /// `at`, or `ended_at` for an execution.
    public var time: Timestamp
    public var startedAt: Timestamp
    /// Purchases: the amount (whole cents).
    public var amount: Money
    /// A hash of the parsed fields, to warn when a repeated execution id differs.
    public var fingerprint: UInt64
    /// Two independent 64-bit hashes of the execution id: duplicates are found by them, so the
    /// set of ids seen costs 16 bytes an execution, whatever the ids' length.
    public var idHashHigh: UInt64
    public var idHashLow: UInt64
    public var meters: MeterReadings
    /// The consumer's id, when the reader left it for the processor to intern and it is short and
    /// plain (else `consumerName`). Consumers are many (a table that misses the cache) and the
    /// pricing thread has time to spare.
    var consumerKey = InlineName()
    /// The execution id as written, when short and plain (else in the box).
    var idKey = InlineName()
    /// The rare texts (nil: none).
    private var texts: TraceEventTexts?
    public var consumer: Int32
    /// The agent of an execution, the plan of a subscribe or cancel (indexes into their tables).
    public var subject: Int32
    public var kind: TraceEventKind
    public var failed: Bool
    /// Which catalog meters the event reported (bit i = meter index i).
    public var meterMask: UInt16

    public init(line: Int, time: Timestamp, kind: TraceEventKind, consumer: Int32, subject: Int32) {
        self.line = line
        self.time = time
        self.kind = kind
        self.consumer = consumer
        self.subject = subject
        startedAt = time
        failed = false
        meters = MeterReadings()
        meterMask = 0
        amount = .zero
        fingerprint = 0
        idHashHigh = 0
        idHashLow = 0
    }

    /// The execution id (a purchase's ledger key, usage.md).
    public var executionID: String {
        get { idKey.string ?? texts?.names.executionID ?? "" }
        set {
            idKey = InlineName()
            changeNames { $0.executionID = newValue }
        }
    }

    /// The ids as written: the agent (executions) or plan (subscribe, cancel); the reader leaves it
    /// empty for an execution's agent when it interned it (`subject`).
    public var subjectName: String {
        get { texts?.names.subjectName ?? "" }
        set { changeNames { $0.subjectName = newValue } }
    }

    /// The consumer's id as written, when not kept inline (`consumerKey`).
    public var consumerName: String {
        get { texts?.names.consumerName ?? "" }
        set { changeNames { $0.consumerName = newValue } }
    }

    /// Names of reported meters no metering of the catalog weighs (warnings).
    public var unknownMeters: [String] {
        get { texts?.names.unknownMeters ?? [] }
        set { changeNames { $0.unknownMeters = newValue } }
    }

    /// Whether the event reported meters the catalog does not know (without making an array).
    var hasUnknownMeters: Bool { texts.map { !$0.names.unknownMeters.isEmpty } ?? false }

    /// Sets the rare texts at once (the parser: one box an event at most).
    mutating func setNames(_ names: TraceEventNames) { texts = TraceEventTexts(names) }

    private mutating func changeNames(_ change: (inout TraceEventNames) -> Void) {
        var names = texts?.names ?? TraceEventNames()
        change(&names)
        texts = TraceEventTexts(names)
    }
}

/// The texts of an event that are not plain data (see `TraceEvent`).
struct TraceEventNames: Sendable, Equatable {
    var executionID = ""
    var subjectName = ""
    var consumerName = ""
    var unknownMeters: [String] = []
}

/// An event's texts, shared by its copies; never changed once made (a change makes a new box).
final class TraceEventTexts: Sendable, CustomDebugStringConvertible {
    let names: TraceEventNames
    init(_ names: TraceEventNames) { self.names = names }
    var debugDescription: String { String(reflecting: names) }
}

/// An id of up to 24 plain bytes, kept in the event itself (`length` -1: none).
struct InlineName: Sendable {
    var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var length: Int8 = -1

    static let capacity = 24

    /// Keeps the value's bytes when plain and short enough; false otherwise (nothing kept).
    mutating func set(_ value: FieldValue) -> Bool {
        guard case .raw(let bytes) = value, bytes.count <= Self.capacity else {
            length = -1
            return false
        }
        words = (0, 0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
        length = Int8(bytes.count)
        return true
    }

    var isSet: Bool { length >= 0 }

    /// The bytes (valid during the call); only when `isSet`.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let count = max(0, Int(length))
        return withUnsafeBytes(of: words) { raw in
            raw.withMemoryRebound(to: UInt8.self) { body(UnsafeBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    var string: String? { isSet ? withBytes { String(decoding: $0, as: UTF8.self) } : nil }
}

/// Interned ids: consumers, agents and plans become small integers, so events stay compact and
/// per-consumer state lives in arrays. Lookups hash the id's bytes (FNV-1a) in an open-addressing
/// table, so a known id costs no String and no SipHash. A slot holds the hash's high bits, the
/// name's length and index, and the name's bytes themselves when it has at most 24 (ids usually
/// have): a look-up of a short name reads one slot and nothing else. Longer names lie end to end in
/// one array, compared there. (The slot held only the hash and the index before, and a look-up then
/// read the name's start and its bytes elsewhere: three dependent cache misses per consumer on the
/// pricing thread, 6% of a sorted run's samples.)
public struct InternTable: Sendable {
    public private(set) var names: [String] = []
    /// The bytes of the names longer than `inlineBytes`, end to end: name i's at `starts[i]`
    /// (their lengths are in the slots), for the rest `starts[i]` is unused.
    private var storage: [UInt8] = []
    private var starts: [Int] = []
    private var hashes: [UInt64] = []
    /// The capacity is a power of two, at most half full.
    private var slots: [Slot] = [Slot](repeating: Slot(), count: 64)

    /// `meta`: the hash's top 24 bits << 40 | the length (255: 255 or more) << 32 | (index + 1);
    /// 0: empty. `key`: the name's bytes, zero-padded, when it has at most `inlineBytes`.
    struct Slot {
        var meta: UInt64 = 0
        var key: (UInt64, UInt64, UInt64) = (0, 0, 0)
    }

    static let inlineBytes = 24

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
        starts.append(storage.count)
        if name.count > Self.inlineBytes { storage.append(contentsOf: name) }
        hashes.append(hash)
        slots[position] = Slot(meta: Self.meta(hash: hash, length: name.count, index: Int(index)), key: Self.key(name))
        if names.count * 2 > slots.count { grow() }
        return index
    }

    /// Reads the slot a look-up of `name` reads first and returns a value made of it (so the load
    /// stays): touching the names of a few hundred events before interning them lets their cache
    /// misses overlap instead of coming one at a time.
    func touch(bytes name: UnsafeBufferPointer<UInt8>) -> UInt64 {
        slots.withUnsafeBufferPointer { $0[Int(truncatingIfNeeded: Self.hash(name)) & ($0.count - 1)].meta }
    }

    /// The name's index if interned, else the empty slot where it goes.
    private func find(_ name: UnsafeBufferPointer<UInt8>, hash: UInt64) -> (Int32?, Int) {
        let wanted = Self.meta(hash: hash, length: name.count, index: 0)
        let inline = name.count <= Self.inlineBytes
        let key = inline ? Self.key(name) : (0, 0, 0)
        return slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var position = Int(truncatingIfNeeded: hash) & mask
            while true {
                let slot = slots[position]
                if slot.meta == 0 { return (nil, position) }
                if slot.meta >> 32 == wanted >> 32 {
                    let index = Int(slot.meta & 0xFFFF_FFFF) - 1
                    if inline {
                        if slot.key.0 == key.0 && slot.key.1 == key.1 && slot.key.2 == key.2 { return (Int32(index), position) }
                    } else if equalsStored(name, index: index) {
                        return (Int32(index), position)
                    }
                }
                position = (position + 1) & mask
            }
        }
    }

    /// Whether a name longer than `inlineBytes` is the stored name `index` (of the same length
    /// class: its length is compared first).
    private func equalsStored(_ name: UnsafeBufferPointer<UInt8>, index: Int) -> Bool {
        let start = starts[index]
        let end = index + 1 < starts.count ? starts[index + 1] : storage.count
        guard end - start == name.count else { return false }
        return storage.withUnsafeBufferPointer { storage in bytesEqual(storage.baseAddress! + start, name.baseAddress!, name.count) }
    }

    private static func meta(hash: UInt64, length: Int, index: Int) -> UInt64 {
        (hash >> 40) << 40 | UInt64(min(length, 255)) << 32 | UInt64(index + 1)
    }

    /// The name's bytes, zero-padded (zeros for a name longer than `inlineBytes`).
    private static func key(_ name: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64, UInt64) {
        var key: (UInt64, UInt64, UInt64) = (0, 0, 0)
        guard name.count <= inlineBytes, name.count > 0 else { return key }
        withUnsafeMutableBytes(of: &key) { $0.copyMemory(from: UnsafeRawBufferPointer(name)) }
        return key
    }

    private mutating func grow() {
        var bigger = [Slot](repeating: Slot(), count: slots.count * 2)
        let mask = bigger.count - 1
        for slot in slots where slot.meta != 0 {
            let index = Int(slot.meta & 0xFFFF_FFFF) - 1
            var position = Int(truncatingIfNeeded: hashes[index]) & mask
            while bigger[position].meta != 0 { position = (position + 1) & mask }
            bigger[position] = slot
        }
        slots = bigger
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
    /// Interns the names and computes the hashes duplicate detection needs (the reader has
    /// already interned the agent and hashed the id when it parsed in interning mode).
    mutating func resolve(in entities: inout TraceEntities) {
        if consumer < 0 {
            if consumerKey.isSet {
                consumer = consumerKey.withBytes { entities.consumers.intern(bytes: $0) }
            } else {
                consumer = entities.consumers.intern(consumerName)
            }
        }
        switch kind {
        case .execution:
            if subject < 0 {
                subject = entities.agents.intern(subjectName)
                (idHashHigh, idHashLow) = idKey.isSet ? idKey.withBytes(FieldHash.pair(bytes:)) : FieldHash.pair(executionID)
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
        if hasUnknownMeters {
            for name in unknownMeters.sorted() { hash.add(name) }
        }
        fingerprint = hash.value
    }
}

extension TraceEvent {
    /// Appends the event to a temporary file (`ReleasedTail`): a flag, its bytes as they lie in
    /// memory with its box of texts left out, then the texts when it has some (each as a length
    /// and UTF-8 bytes). Its stored properties are plain data but for that box, so the bytes read
    /// back in the same process are the same event (`read(from:)`).
    func write(to file: TemporaryFile) throws(ReorderError) {
        var plain = self
        plain.texts = nil
        let names = texts?.names
        try file.append(value: UInt8(names == nil ? 0 : 1))
        try file.append(value: plain)
        guard let names else { return }
        for text in [names.executionID, names.subjectName, names.consumerName] { try Self.write(text, to: file) }
        try file.append(value: UInt32(truncatingIfNeeded: names.unknownMeters.count))
        for name in names.unknownMeters { try Self.write(name, to: file) }
    }

    private static func write(_ text: String, to file: TemporaryFile) throws(ReorderError) {
        var text = text
        try file.append(value: UInt32(truncatingIfNeeded: text.utf8.count))
        let failure = text.withUTF8 { bytes -> ReorderError? in
            do throws(ReorderError) {
                try file.append(UnsafeRawBufferPointer(bytes))
                return nil
            } catch { return error }
        }
        if let failure { throw failure }
    }

    /// The next event `write(to:)` wrote, nil at the end of the file.
    static func read(from reader: inout TemporaryFileReader) throws(ReorderError) -> TraceEvent? {
        guard let flag = try reader.read(UInt8.self) else { return nil }
        var event = try reader.read(bytes: MemoryLayout<TraceEvent>.size) { bytes -> TraceEvent in
            var event = TraceEvent(line: 0, time: Timestamp(nanosecondsSinceEpoch: 0), kind: .execution, consumer: 0, subject: 0)
            // Both the event overwritten and the one written have no box: only plain bytes change.
            withUnsafeMutableBytes(of: &event) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
            return event
        }
        guard flag == 1 else { return event }
        var names = TraceEventNames()
        names.executionID = try readText(from: &reader)
        names.subjectName = try readText(from: &reader)
        names.consumerName = try readText(from: &reader)
        guard let count = try reader.read(UInt32.self) else { throw ReorderError(description: "a temporary file ended early") }
        for _ in 0..<count { names.unknownMeters.append(try readText(from: &reader)) }
        event.setNames(names)
        return event
    }

    private static func readText(from reader: inout TemporaryFileReader) throws(ReorderError) -> String {
        guard let length = try reader.read(UInt32.self) else { throw ReorderError(description: "a temporary file ended early") }
        return try reader.read(bytes: Int(length)) { String(decoding: $0, as: UTF8.self) }
    }
}
