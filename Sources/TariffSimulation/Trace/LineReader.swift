import CZlib
import Foundation

/// Why a trace could not be read at all (a bad line is a rejection, not this).
public struct TraceReadError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads a trace file (`-` for standard input) line by line, gzip-compressed or not: zlib's
/// `gzread` passes plain files through unchanged, so one path serves both.
public enum LineReader {
    /// Lines longer than this are cut off and reported as too long (the run goes on).
    public static let maximumLineBytes = 1 << 20

    /// Calls `body` with each line (without its newline) and its 1-based number; `nil` bytes mean
    /// the line was longer than `maximumLineBytes`. `body` returns false to stop reading.
    /// Returns the number of lines read.
    @discardableResult
    public static func forEachLine(path: String, _ body: (UnsafeBufferPointer<UInt8>?, Int) -> Bool) throws(TraceReadError) -> Int {
        let descriptor: Int32
        if path == "-" {
            descriptor = dup(STDIN_FILENO)
        } else {
            descriptor = open(path, O_RDONLY)
        }
        guard descriptor >= 0 else { throw TraceReadError("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        // A plain file is read with read(2) straight into the line buffer; a gzip one (magic
        // 1f 8b) or standard input goes through zlib, which passes plain data through too.
        var magic: [UInt8] = [0, 0]
        let plain = path != "-" && magic.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 2, 0) } == 2 && magic != [0x1F, 0x8B]
        var file: gzFile?
        if !plain {
            file = gzdopen(descriptor, "rb")
            guard file != nil else {
                close(descriptor)
                throw TraceReadError("cannot read '\(path)'")
            }
            gzbuffer(file, 1 << 17)
        }
        defer { if let file { gzclose(file) } else { close(descriptor) } }
        let chunkBytes = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunkBytes + maximumLineBytes + 1)
        var pending = 0           // bytes of an unfinished line at the start of the buffer
        var overlong = false      // skipping the rest of a line that was too long
        var lineNumber = 0
        while true {
            let read: Int = buffer.withUnsafeMutableBytes { raw in
                if let file { return Int(gzread(file, raw.baseAddress! + pending, UInt32(chunkBytes))) }
                return Foundation.read(descriptor, raw.baseAddress! + pending, chunkBytes)
            }
            if read < 0 {
                var code: Int32 = 0
                let message = file.flatMap { gzerror($0, &code) }.map { String(cString: $0) } ?? String(cString: strerror(errno))
                throw TraceReadError("cannot read '\(path)': \(message)")
            }
            let available = pending + Int(read)
            var lineStart = 0
            var stopped = false
            buffer.withUnsafeBufferPointer { all in
                guard let base = all.baseAddress else { return }
                var index = pending
                while index < available {
                    // memchr finds the next newline with vector instructions.
                    guard let found = memchr(base + index, 0x0A, available - index) else { break }
                    index = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                    lineNumber += 1
                    if overlong {
                        stopped = !body(nil, lineNumber)
                        overlong = false
                    } else {
                        var end = index
                        if end > lineStart && all[end - 1] == 0x0D { end -= 1 }   // CRLF
                        stopped = !body(UnsafeBufferPointer(rebasing: all[lineStart..<end]), lineNumber)
                    }
                    lineStart = index + 1
                    index += 1
                    if stopped { return }
                }
            }
            if stopped { return lineNumber }
            let rest = available - lineStart
            if read == 0 {
                // The last line may lack its newline.
                if rest > 0 || overlong {
                    lineNumber += 1
                    if overlong { _ = body(nil, lineNumber) } else {
                        _ = buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[lineStart..<available]), lineNumber) }
                    }
                }
                return lineNumber
            }
            if rest > maximumLineBytes {
                overlong = true
                pending = 0
            } else {
                if lineStart > 0 && rest > 0 {
                    buffer.withUnsafeMutableBufferPointer { all in
                        _ = memmove(all.baseAddress!, all.baseAddress! + lineStart, rest)
                    }
                }
                pending = overlong ? 0 : rest
            }
        }
    }
}
