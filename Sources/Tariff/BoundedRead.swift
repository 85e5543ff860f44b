#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole small file (a plan, a key file) with a bound: at most `maximumBytes + 1` bytes
/// are ever read, whatever the file claims or is (a 2 GB file, `/dev/zero`, a FIFO that never
/// ends), so memory never follows the input.
public enum BoundedRead {
    public enum Failure: Error, Sendable, Equatable {
        /// The file could not be opened or read (errno's text).
        case unreadable(String)
        /// The file holds more than the bound.
        case tooLarge(maximumBytes: Int)
    }

    /// The file's bytes.
    /// - throws: `Failure.tooLarge` before reading anything when a regular file's size is over the
    ///   bound, or as soon as more than the bound was read; `Failure.unreadable`.
    public static func bytes(atPath path: String, maximumBytes: Int) throws(Failure) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        if fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) > maximumBytes {
            throw .tooLarge(maximumBytes: maximumBytes)
        }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, min($0.count, maximumBytes + 1 - result.count)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(String(cString: strerror(errno)))
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
            if result.count > maximumBytes { throw .tooLarge(maximumBytes: maximumBytes) }
        }
    }
}
