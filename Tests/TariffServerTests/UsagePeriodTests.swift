import Foundation
import Testing

/// Issue 14, hardening: `GET /v1/usage?period=400000000000000000d` overflowed `days * 24` and
/// trapped, taking the whole server down for every caller (any key that may read usage could).
/// Not run against the build before the fix: in this process the trap would end the test run
/// (the CLI's test, `SettlementHardeningCLITests`, shows the same trap from outside).
@Suite("usage periods (issue 14)")
struct UsagePeriodTests {
    @Test("a usage period beyond ten years is 400 invalid_input, and the server goes on answering")
    func overflowingPeriod() async throws {
        let server = try await TestServer.start()
        for period in ["400000000000000000d", "9223372036854775807h", "3651d", "%2B30d"] {
            let answer = try await server.send("GET", "/v1/usage?period=\(period)", key: server.adminKey)
            #expect(answer.status == 400, "\(period): \(answer.status)")
            #expect(answer.string("code") == "invalid_input", "\(period)")
        }
        let longest = try await server.send("GET", "/v1/usage?period=3650d", key: server.adminKey)
        #expect(longest.status == 200)
        let health = try await server.send("GET", "/healthz")
        #expect(health.status == 200)
        await server.stop()
    }
}
