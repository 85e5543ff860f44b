import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TariffServer

/// A client that sends its headers one byte a second (slowloris) is cut off within 10 s of its
/// first byte, while other clients are served meanwhile.
@Suite("Slow clients")
struct SlowClientTests {
    @Test("headers a byte a second: the connection is closed within 10 s; others are served")
    func slowloris() async throws {
        let server = try await TestServer.start()
        let port = server.port
        let started = DispatchTime.now().uptimeNanoseconds
        // A thread of its own: the client blocks in sleep() and recv(), which must not hold one of
        // the few threads every test's tasks share.
        async let slow = BlockingThread.run { () -> (closed: Bool, seconds: Double) in
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(socket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { return (false, 0) }
            var noSignal: Int32 = 1
            _ = setsockopt(socket, SOL_SOCKET, SO_KEEPALIVE, &noSignal, socklen_t(MemoryLayout<Int32>.size))
            let request = Array(("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + String(repeating: "a", count: 40) + "\r\n\r\n").utf8)
            // Closed by the server: a read returns 0 (end of stream) without waiting.
            func closedByServer() -> Bool {
                var peek: UInt8 = 0
                return recv(socket, &peek, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
            }
            // A byte a second; the close is watched every 100 ms in between, so the time measured is
            // the server's, not that of the client's next byte (a loaded machine made it 12.2 s).
            sending: for byte in request {
                var one = byte
                if send(socket, &one, 1, Int32(MSG_NOSIGNAL)) <= 0 { break }
                for _ in 0..<10 {
                    if closedByServer() { break sending }
                    usleep(100_000)
                }
            }
            var buffer = [UInt8](repeating: 0, count: 64)
            let read = recv(socket, &buffer, 64, Int32(MSG_DONTWAIT))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            return (read == 0 || read < 0 && errno != EAGAIN, seconds)
        }
        // Meanwhile other clients are answered at once.
        for _ in 0..<5 {
            try await Task.sleep(for: .seconds(1))
            #expect(try await server.send("GET", "/healthz").status == 200)
        }
        let outcome = await slow
        #expect(outcome.closed, "the slow connection was not closed")
        #expect(outcome.seconds <= 12, "closed after \(Int(outcome.seconds)) s")
        #expect(outcome.seconds >= 9, "closed after only \(Int(outcome.seconds)) s")
        await server.stop()
    }
}

/// Runs blocking work on a new thread and awaits its result.
enum BlockingThread {
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.start()
        }
    }
}
