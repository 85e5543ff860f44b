#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A write that did not reach its destination (a full disk, `/dev/full`, a closed pipe, a file
/// that cannot be created): the command stops with this error and a non-zero exit, never a trap
/// and never exit 0 with the output lost.
public struct OutputError: Error, Sendable, CustomStringConvertible {
    /// What was being written: "standard output", "the report 'r.html'".
    public var destination: String
    public var reason: String

    public init(destination: String, reason: String) {
        self.destination = destination
        self.reason = reason
    }

    init(destination: String, errno code: Int32) {
        self.init(destination: destination, reason: String(cString: strerror(code)))
    }

    public var description: String { "cannot write \(destination): \(reason)" }
}

/// The one way Tariff writes its outputs (results, reports, generated traces, rail logs): every
/// `write(2)` is checked, and a failure is an `OutputError`.
///
/// Where the bytes go decides how:
/// - a regular file (or a path that does not exist yet) is written to a temporary file beside it,
///   synced, and renamed over the target by `commit()`: a reader never sees half a report, and a
///   failed run leaves the old file as it was;
/// - anything else (a device such as `/dev/null`, a FIFO, a socket, a terminal) is opened and
///   written in place: renaming over it would replace the device with a regular file;
/// - `append` (a rail log) opens the target itself and appends each line with one write.
///
/// ```swift
/// let report = try OutputWriter(path: "report.html", name: "the report 'report.html'")
/// try report.write(html)
/// try report.commit()
/// ```
///
/// Not thread-safe: one writer is used by one thread at a time (the rail log wraps it in a lock).
public final class OutputWriter: @unchecked Sendable {
    public let destination: String
    private var descriptor: Int32
    private let ownsDescriptor: Bool
    /// The temporary file renamed over `target` at `commit()` (regular files only).
    private var temporaryPath: String?
    private let target: String?
    private var buffer: [UInt8] = []
    private let bufferLimit: Int
    private var committed = false
    /// The first failure: later writes are refused with it (the output is already incomplete).
    public private(set) var failure: OutputError?

    /// Standard output, buffered up to `bufferBytes` (0: every write goes out at once).
    public static func standardOutput(bufferBytes: Int = 1 << 16) -> OutputWriter {
        OutputWriter(descriptor: STDOUT_FILENO, destination: "standard output", bufferBytes: bufferBytes)
    }

    /// Standard error, unbuffered.
    public static func standardError() -> OutputWriter {
        OutputWriter(descriptor: STDERR_FILENO, destination: "standard error", bufferBytes: 0)
    }

    private init(descriptor: Int32, destination: String, bufferBytes: Int) {
        self.descriptor = descriptor
        self.destination = destination
        ownsDescriptor = false
        target = nil
        bufferLimit = bufferBytes
    }

    /// Opens `path` for writing (see the type's documentation for how).
    /// - parameter name: how messages name it ("the report 'r.html'"); default `'PATH'`.
    /// - parameter append: append to the file itself (created if missing), unbuffered.
    /// - throws: `OutputError` when it cannot be opened or its temporary file cannot be made.
    public init(path: String, name: String? = nil, append: Bool = false, bufferBytes: Int = 1 << 16) throws(OutputError) {
        let destination = name ?? "'\(SafeText.escaping(path))'"
        self.destination = destination
        ownsDescriptor = true
        target = path
        var status = stat()
        let exists = stat(path, &status) == 0
        let regular = !exists || (status.st_mode & S_IFMT) == S_IFREG
        if append {
            bufferLimit = 0
            descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw OutputError(destination: destination, errno: errno) }
        } else if !regular {
            // A device, FIFO or socket: written in place, never replaced.
            bufferLimit = bufferBytes
            descriptor = open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw OutputError(destination: destination, errno: errno) }
        } else {
            bufferLimit = bufferBytes
            var template = Array((path + ".tmp-XXXXXX").utf8CString)
            descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard descriptor >= 0 else { throw OutputError(destination: destination, errno: errno) }
            temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            // mkstemp makes it 0600; an output file is as readable as any other the user writes.
            let mask = umask(0)
            umask(mask)
            fchmod(descriptor, 0o666 & ~mask)
        }
    }

    deinit {
        if ownsDescriptor, descriptor >= 0 { close(descriptor) }
        if !committed, let temporaryPath { unlink(temporaryPath) }
    }

    /// Appends `text` (its UTF-8 bytes).
    /// - throws: `OutputError` at the first write that fails, and for every write after it.
    public func write(_ text: String) throws(OutputError) {
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { (bytes) throws(OutputError) in try write(bytes: bytes) }
    }

    public func write(bytes: UnsafeBufferPointer<UInt8>) throws(OutputError) {
        if let failure { throw failure }
        if bufferLimit == 0 {
            try writeOut(bytes)
            return
        }
        buffer.append(contentsOf: bytes)
        if buffer.count >= bufferLimit { try flush() }
    }

    /// Writes out what is buffered.
    public func flush() throws(OutputError) {
        if let failure { throw failure }
        guard !buffer.isEmpty else { return }
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        try pending.withUnsafeBufferPointer { (bytes) throws(OutputError) in try writeOut(bytes) }
    }

    private func writeOut(_ bytes: UnsafeBufferPointer<UInt8>) throws(OutputError) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                let error = OutputError(destination: destination, errno: errno)
                failure = error
                throw error
            }
            if written == 0 {
                let error = OutputError(destination: destination, reason: "nothing was written")
                failure = error
                throw error
            }
            offset += written
        }
    }

    /// Flushes; for a regular file, syncs it and renames it over the target (a failure leaves the
    /// target as it was and removes the temporary file).
    /// - throws: `OutputError`.
    public func commit() throws(OutputError) {
        try flush()
        guard let temporaryPath, let target else {
            committed = true
            return
        }
        guard fsync(descriptor) == 0 else {
            let error = OutputError(destination: destination, errno: errno)
            failure = error
            throw error
        }
        close(descriptor)
        descriptor = -1
        guard rename(temporaryPath, target) == 0 else {
            let error = OutputError(destination: destination, errno: errno)
            failure = error
            unlink(temporaryPath)
            throw error
        }
        committed = true
    }
}

