import Foundation
import Tariff

/// How much the reorder stage may hold (usage.md: "Events may come in any order"). The defaults
/// suit real traces; tests make them tiny so that spilling and merging run on small traces.
public struct ReorderLimits: Sendable, Hashable {
    /// Events held in memory, ordered by `(time, line)`, before the earliest is released.
    public var bufferEvents: Int
    /// Bytes of late lines gathered in memory before they are sorted and written as one run.
    public var runBytes: Int
    /// Runs merged at once; more runs are first merged into longer ones, this many at a time.
    public var mergeFanIn: Int

    /// 16,384 events (a few MiB: covers any delivery delay under a few hours of a busy trace),
    /// 8 MiB runs, 64 runs merged at once (4 MiB of read buffers).
    public static let standard = ReorderLimits(bufferEvents: 1 << 14, runBytes: 8 << 20, mergeFanIn: 64)

    public init(bufferEvents: Int, runBytes: Int, mergeFanIn: Int) {
        self.bufferEvents = max(1, bufferEvents)
        self.runBytes = max(1, runBytes)
        self.mergeFanIn = max(2, mergeFanIn)
    }
}

/// The order of processing: time, then line (usage.md).
struct EventKey: Comparable {
    var time: Int64
    var line: Int

    static func < (left: EventKey, right: EventKey) -> Bool { (left.time, left.line) < (right.time, right.line) }
}

/// The in-memory stage: events wait ordered by `(time, line)`; once it holds `capacity` events
/// the earliest is released. Releases only ever go forward: an event that sorts before the last
/// release (the watermark) came later than the buffer can reach, and is refused here (the caller
/// spills it to a run on disk, merged back in order).
///
/// Two structures hold the order. Most events of a real trace arrive in order or a few places
/// late (delivery order): they go to a sorted ring, appended at its end or slid back a few
/// places (at most `ringSlide`), released from its front, each in constant time. The others (a
/// shuffled trace) go to a min-heap. The earliest event is the earlier of the ring's front and the
/// heap's top. A heap alone cost some 110 ns an event more on a sorted trace (log2 16,384 levels
/// sifted at every release). Both order small keys (24 bytes) and the events stay put in slots:
/// nothing moves the events (some 270 bytes, plain data but for a box of texts most lack).
struct ReorderBuffer {
    private struct Entry {
        var key: EventKey
        var slot: Int32
    }

    let capacity: Int
    /// Sorted, oldest first: `ring[(ringStart + i) & ringMask]` for i in 0..<ringCount.
    private var ring: [Entry]
    private var ringStart = 0
    private var ringCount = 0
    private var ringMask: Int
    /// How far back in the ring an arriving event may slide; farther, it goes to the heap.
    static let ringSlide = 16
    private var heap: [Entry] = []
    private var slots: [TraceEvent] = []
    private var freeSlots: [Int32] = []
    /// The key of the last released event.
    private(set) var watermark: EventKey?

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        // A power of two, doubled when full (a short trace needs no 16,384-entry ring).
        ring = [Entry](repeating: Entry(key: EventKey(time: 0, line: 0), slot: 0), count: 64)
        ringMask = ring.count - 1
        heap.reserveCapacity(min(self.capacity, 1 << 16))
    }

    var count: Int { ringCount + heap.count }

    /// Whether an event of this key can still be released in order.
    func accepts(_ key: EventKey) -> Bool { watermark.map { !(key < $0) } ?? true }

    /// Adds an event the buffer `accepts`; when the buffer is then over capacity, its earliest
    /// event is released to `release`.
    mutating func push(_ event: consuming TraceEvent, release: (inout TraceEvent) -> Void) {
        push(event)
        if count > capacity { releaseEarliest(release) }
    }

    /// Whether the buffer holds more than its capacity (the reader then takes the earliest out).
    var isOverCapacity: Bool { ringCount + heap.count > capacity }

    /// Adds an event the buffer `accepts` (nothing is released: see `isOverCapacity`). The reader
    /// calls this and `takeEarliest` directly: a release closure formed for every event copied the
    /// reader's captured state into its context each time.
    mutating func push(_ event: consuming TraceEvent) {
        let key = EventKey(time: event.time.nanosecondsSinceEpoch, line: event.line)
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slots[Int(free)] = event
        } else {
            slot = Int32(slots.count)
            slots.append(event)
        }
        let entry = Entry(key: key, slot: slot)
        // Where it goes in the ring: after every entry that sorts before it, within `ringSlide`.
        var position = ringCount
        while position > 0 && ringCount - position < Self.ringSlide && key < ring[(ringStart + position - 1) & ringMask].key { position -= 1 }
        if position > 0 && key < ring[(ringStart + position - 1) & ringMask].key {
            pushHeap(entry)
        } else {
            if ringCount == ring.count { growRing() }
            var index = ringCount
            while index > position {
                ring[(ringStart + index) & ringMask] = ring[(ringStart + index - 1) & ringMask]
                index -= 1
            }
            ring[(ringStart + position) & ringMask] = entry
            ringCount += 1
        }
    }

    private mutating func growRing() {
        var bigger = [Entry](repeating: Entry(key: EventKey(time: 0, line: 0), slot: 0), count: ring.count * 2)
        for index in 0..<ringCount { bigger[index] = ring[(ringStart + index) & ringMask] }
        ring = bigger
        ringStart = 0
        ringMask = bigger.count - 1
    }

    private mutating func pushHeap(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].key < heap[parent].key else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popHeap() -> Entry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            let count = heap.count
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < count && heap[left].key < heap[smallest].key { smallest = left }
                if right < count && heap[right].key < heap[smallest].key { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }

    /// The key of the next event `releaseEarliest` would release.
    var earliest: EventKey? {
        let front = ringCount > 0 ? ring[ringStart].key : nil
        guard let top = heap.first?.key else { return front }
        guard let front else { return top }
        return front < top ? front : top
    }

    /// Releases the earliest event (nothing when empty).
    mutating func releaseEarliest(_ release: (inout TraceEvent) -> Void) {
        guard var event = takeEarliest() else { return }
        release(&event)
    }

    /// Takes the earliest event out (nil when empty); its key becomes the watermark.
    mutating func takeEarliest() -> TraceEvent? {
        let top: Entry
        if ringCount > 0 && (heap.isEmpty || ring[ringStart].key < heap[0].key) {
            top = ring[ringStart]
            ringStart = (ringStart + 1) & ringMask
            ringCount -= 1
        } else if let entry = popHeap() {
            top = entry
        } else {
            return nil
        }
        watermark = top.key
        freeSlots.append(top.slot)
        // The slot keeps its copy until reused: an event is plain data but for a rarely present
        // box of texts, shared with the copy handed on.
        return slots[Int(top.slot)]
    }
}

/// Why the reorder stage could not go on (no temporary space, a trace that changed between passes).
struct ReorderError: Error {
    var description: String
}

/// A file in the temporary directory (`TMPDIR`), unlinked as soon as it is created: it is gone
/// when the descriptor is closed, even if the process is killed.
final class TemporaryFile {
    let descriptor: Int32
    private(set) var size = 0
    private var buffer: [UInt8] = []
    private static let bufferBytes = 1 << 18

    init(prefix: String) throws(ReorderError) {
        var template = Array((FileManager.default.temporaryDirectory.path + "/\(prefix)-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw ReorderError(description: "cannot create a temporary file in \(FileManager.default.temporaryDirectory.path): \(String(cString: strerror(errno)))")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.descriptor = descriptor
        buffer.reserveCapacity(Self.bufferBytes)
    }

    deinit { close(descriptor) }

    func append(_ bytes: UnsafeRawBufferPointer) throws(ReorderError) {
        if buffer.count + bytes.count > Self.bufferBytes { try flush() }
        if bytes.count > Self.bufferBytes {
            if let failure = Self.writeAll(descriptor, bytes) { throw failure }
        } else {
            buffer.append(contentsOf: bytes)
        }
        size += bytes.count
    }

    func append<T>(value: T) throws(ReorderError) {
        if buffer.count + MemoryLayout<T>.size > Self.bufferBytes { try flush() }
        var value = value
        withUnsafeBytes(of: &value) { buffer.append(contentsOf: $0) }
        size += MemoryLayout<T>.size
    }

    /// The whole file (what was appended, once flushed).
    func contents() throws(ReorderError) -> [UInt8] {
        try flush()
        var bytes = [UInt8](repeating: 0, count: size)
        var offset = 0
        while offset < size {
            let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + offset, size - offset, off_t(offset)) }
            if read < 0 && errno == EINTR { continue }
            guard read > 0 else { throw ReorderError(description: "cannot read a temporary file: \(String(cString: strerror(errno)))") }
            offset += read
        }
        return bytes
    }

    /// Writes what is buffered and gives the buffer's memory back: a finished run is only read
    /// from then on, and each run kept its 256 KiB buffer (a 4M-event shuffled trace makes some 130
    /// runs of 8 MiB, merged down to 64: 16 to 32 MiB of the process's peak, which went over 128 MiB).
    func finishWriting() throws(ReorderError) {
        try flush()
        buffer = []
    }

    func flush() throws(ReorderError) {
        let failure = buffer.withUnsafeBytes { Self.writeAll(descriptor, $0) }
        buffer.removeAll(keepingCapacity: true)
        if let failure { throw failure }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> ReorderError? {
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                return ReorderError(description: "cannot write a temporary file in \(FileManager.default.temporaryDirectory.path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        return nil
    }
}

/// Reads a temporary file from its start through a buffer (its own offset: `pread`).
struct TemporaryFileReader {
    let file: TemporaryFile
    private var offset = 0
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0

    init(_ file: TemporaryFile, bufferBytes: Int = 1 << 16) {
        self.file = file
        buffer = [UInt8](repeating: 0, count: bufferBytes)
    }

    /// Makes `count` bytes available at `buffer[start...]`; false at the end of the file.
    private mutating func fill(_ count: Int) throws(ReorderError) -> Bool {
        if end - start >= count { return true }
        if count > buffer.count {
            var bigger = [UInt8](repeating: 0, count: count)
            bigger.withUnsafeMutableBufferPointer { target in
                buffer.withUnsafeBufferPointer { source in
                    _ = memcpy(target.baseAddress!, source.baseAddress! + start, end - start)
                }
            }
            buffer = bigger
            end -= start
            start = 0
        } else if start > 0 {
            let (from, length) = (start, end - start)
            buffer.withUnsafeMutableBufferPointer { all in _ = memmove(all.baseAddress!, all.baseAddress! + from, length) }
            end = length
            start = 0
        }
        while end - start < count {
            let (at, room) = (end, buffer.count - end)
            let read = buffer.withUnsafeMutableBytes { pread(file.descriptor, $0.baseAddress! + at, room, off_t(offset)) }
            if read < 0 && errno == EINTR { continue }
            guard read >= 0 else { throw ReorderError(description: "cannot read a temporary file: \(String(cString: strerror(errno)))") }
            if read == 0 { return false }
            end += read
            offset += read
        }
        return true
    }

    /// The next value written with `append(value:)`, nil at the end.
    mutating func read<T: BitwiseCopyable>(_ type: T.Type) throws(ReorderError) -> T? {
        guard try fill(MemoryLayout<T>.size) else { return nil }
        let value = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start, as: T.self) }
        start += MemoryLayout<T>.size
        return value
    }

    /// The next `count` bytes, handed to `body` (valid during the call only).
    mutating func read<R>(bytes count: Int, _ body: (UnsafeBufferPointer<UInt8>) throws(ReorderError) -> R) throws(ReorderError) -> R {
        guard try fill(count) else { throw ReorderError(description: "a temporary file ended early") }
        let from = start
        start += count
        return try buffer.withUnsafeBufferPointer { (all) throws(ReorderError) -> R in try body(UnsafeBufferPointer(rebasing: all[from..<from + count])) }
    }
}

/// A run: late lines sorted by `(time, line)`, each stored as its key and its bytes as read.
/// Records: time (8 bytes), line (8), length (4), the line's bytes.
struct LateRecord {
    var key: EventKey
    var bytes: [UInt8]
}

/// Reads a run's records in order.
struct RunCursor {
    private var reader: TemporaryFileReader
    private(set) var head: EventKey?
    private var headLength = 0

    init(_ run: TemporaryFile, bufferBytes: Int) throws(ReorderError) {
        reader = TemporaryFileReader(run, bufferBytes: bufferBytes)
        try advance()
    }

    /// Reads the next record's key (its bytes are read by `take`).
    private mutating func advance() throws(ReorderError) {
        guard let time = try reader.read(Int64.self) else {
            head = nil
            return
        }
        guard let line = try reader.read(Int64.self), let length = try reader.read(UInt32.self) else {
            throw ReorderError(description: "a temporary run ended inside a record")
        }
        head = EventKey(time: time, line: Int(line))
        headLength = Int(length)
    }

    /// Hands the head record's bytes to `body`, then moves to the next record.
    mutating func take<R>(_ body: (EventKey, UnsafeBufferPointer<UInt8>) throws(ReorderError) -> R) throws(ReorderError) -> R? {
        guard let key = head else { return nil }
        let result = try reader.read(bytes: headLength) { (bytes) throws(ReorderError) -> R in try body(key, bytes) }
        try advance()
        return result
    }
}

/// Lines that came later than the in-memory buffer could reach: gathered in memory up to
/// `runBytes`, then sorted and written to a run in the temporary directory; at the end, merged
/// (`LateMerger`). Their line numbers are kept in file order in a file of their own, so a second
/// pass over the trace knows which lines to leave to the runs without parsing them.
final class LateLines {
    let limits: ReorderLimits
    private var records: [(key: EventKey, offset: Int, length: Int)] = []
    private var bytes: [UInt8] = []
    private(set) var runs: [TemporaryFile] = []
    /// Line numbers of the late lines, in file order (8 bytes each).
    let lineNumbers: TemporaryFile
    private(set) var count = 0
    /// What simulate's first pass released after its first late line (nil: the ledger replay's
    /// gathering pass, which releases nothing).
    var tail: ReleasedTail?

    init(limits: ReorderLimits) throws(ReorderError) {
        self.limits = limits
        lineNumbers = try TemporaryFile(prefix: "tariff-late-lines")
    }

    func add(_ key: EventKey, line bytes: UnsafeBufferPointer<UInt8>) throws(ReorderError) {
        records.append((key, self.bytes.count, bytes.count))
        self.bytes.append(contentsOf: bytes)
        try lineNumbers.append(value: Int64(key.line))
        count += 1
        if self.bytes.count >= limits.runBytes { try writeRun() }
    }

    /// Sorts what is in memory and writes it as a run.
    private func writeRun() throws(ReorderError) {
        guard !records.isEmpty else { return }
        records.sort { $0.key < $1.key }
        let run = try TemporaryFile(prefix: "tariff-run")
        for record in records {
            try run.append(value: record.key.time)
            try run.append(value: Int64(record.key.line))
            try run.append(value: UInt32(record.length))
            let failure = bytes.withUnsafeBytes { all -> ReorderError? in
                do throws(ReorderError) {
                    try run.append(UnsafeRawBufferPointer(rebasing: all[record.offset..<record.offset + record.length]))
                    return nil
                } catch { return error }
            }
            if let failure { throw failure }
        }
        try run.finishWriting()
        runs.append(run)
        records.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Writes the last run, then merges runs `mergeFanIn` at a time until that many remain at most.
    func finish() throws(ReorderError) {
        try writeRun()
        try lineNumbers.finishWriting()
        // Memory is given back before the merge (the buffer may have grown to `runBytes`).
        records = []
        bytes = []
        while runs.count > limits.mergeFanIn {
            let group = Array(runs.prefix(limits.mergeFanIn))
            let merged = try TemporaryFile(prefix: "tariff-run")
            var merger = try LateMerger(runs: group, bufferBytes: 1 << 16)
            while try merger.take({ (key, line) throws(ReorderError) -> Bool in
                try merged.append(value: key.time)
                try merged.append(value: Int64(key.line))
                try merged.append(value: UInt32(line.count))
                try merged.append(UnsafeRawBufferPointer(line))
                return true
            }) != nil {}
            try merged.finishWriting()
            runs.removeFirst(group.count)
            runs.append(merged)
        }
    }
}

/// The events simulate's first pass released after its first late line, in the order released,
/// and what that pass read: the second pass reads the trace only up to that line, then this file,
/// and merges the runs into it. The first pass parsed every line already: reading them all again
/// (as the ledger replay's second pass does) parsed the trace twice, which made a trace with a few
/// late events cost nearly two runs. Fed the same lines, the reorder buffer releases the same
/// events in the same order, so what the second pass releases before that line and this file
/// together are exactly the events a second full reading would release (`ReorderTests`).
final class ReleasedTail {
    let events: TemporaryFile
    /// The first late line: the second pass stops reading the trace there.
    let firstLateLine: Int
    /// The first pass's reading of the whole trace: its rejections, lines and agents (the events
    /// in `events` carry agent indexes of that table).
    var rejections: [Rejection] = []
    var rejectionsUnlisted = 0
    var lines = 0
    var agents = InternTable()

    init(firstLateLine: Int) throws(ReorderError) {
        events = try TemporaryFile(prefix: "tariff-released")
        self.firstLateLine = firstLateLine
    }
}

/// Merges sorted runs into one stream in `(time, line)` order (a k-way merge over the runs' heads).
struct LateMerger {
    private var cursors: [RunCursor]
    /// Indexes of cursors with a record, as a min-heap on their heads.
    private var heap: [Int] = []

    init(runs: [TemporaryFile], bufferBytes: Int) throws(ReorderError) {
        var cursors: [RunCursor] = []
        for run in runs { cursors.append(try RunCursor(run, bufferBytes: bufferBytes)) }
        self.cursors = cursors
        for index in cursors.indices where cursors[index].head != nil { push(index) }
    }

    /// The key of the next record.
    var head: EventKey? { heap.first.flatMap { cursors[$0].head } }

    private func less(_ left: Int, _ right: Int) -> Bool {
        guard let a = cursors[left].head, let b = cursors[right].head else { return false }
        return a < b
    }

    private mutating func push(_ index: Int) {
        heap.append(index)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown() {
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count && less(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && less(heap[right], heap[smallest]) { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }

    /// Hands the next record to `body`; nil when every run is done.
    mutating func take<R>(_ body: (EventKey, UnsafeBufferPointer<UInt8>) throws(ReorderError) -> R) throws(ReorderError) -> R? {
        guard let top = heap.first else { return nil }
        let result = try cursors[top].take(body)
        if cursors[top].head == nil {
            let last = heap.removeLast()
            if !heap.isEmpty { heap[0] = last }
        }
        if !heap.isEmpty { siftDown() }
        return result
    }
}
