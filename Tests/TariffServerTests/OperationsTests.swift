import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement

/// TLS, the listen-address rule, SIGHUP reloads, and inputs that must never make the server answer 5xx.
@Suite("Operations")
struct OperationsTests {
    @Test("a non-loopback address without TLS is refused unless --allow-plain-http; half a TLS pair is refused")
    func listenRules() throws {
        #expect(throws: ListenError.self) { try ListenOptions(host: "0.0.0.0", port: 8080).validate() }
        #expect(throws: ListenError.self) { try ListenOptions(host: "10.1.2.3", port: 8080).validate() }
        try ListenOptions(host: "0.0.0.0", port: 8080, allowPlainHTTP: true).validate()
        try ListenOptions(host: "127.0.0.1", port: 8080).validate()
        try ListenOptions(host: "::1", port: 8080).validate()
        try ListenOptions(host: "0.0.0.0", port: 8080, tlsCertificate: "c.pem", tlsKey: "k.pem").validate()
        #expect(throws: ListenError.self) { try ListenOptions(host: "127.0.0.1", port: 8080, tlsCertificate: "c.pem").validate() }
        let refused = try runTariff(["serve", "--listen", "0.0.0.0:0", "--ledger", "memory:"])
        #expect(refused.status == 2)
        #expect(refused.error.contains("--allow-plain-http"))
    }

    @Test("HTTPS from --tls-cert and --tls-key (PEM)")
    func tls() async throws {
        let directory = temporaryPath("tls")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
                             "-days", "1", "-subj", "/CN=127.0.0.1"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        guard (try? openssl.run()) != nil else { try Test.cancel("skipped: openssl is not installed to make a certificate") }
        openssl.waitUntilExit()
        let server = try await TestServer.start(options: ListenOptions(port: 0, tlsCertificate: directory + "/cert.pem", tlsKey: directory + "/key.pem"))
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sk", "-o", "/dev/null", "-w", "%{http_code} %{scheme}", "https://127.0.0.1:\(server.port)/healthz"]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        #expect(text.uppercased() == "200 HTTPS")
        await server.stop()
    }

    @Test("SIGHUP recompiles the catalog of a running tariff serve; a broken catalog keeps the old one")
    func sighup() async throws {
        let directory = temporaryPath("hup")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/plans", toPath: directory + "/plans")
        try FileManager.default.copyItem(atPath: repositoryRoot + "/rules", toPath: directory + "/rules")
        let adminKey = APIKeys.newSecret()
        TestServer.secrets.withLock { _ = $0.insert(adminKey) }
        try adminKey.write(toFile: directory + "/admin.key", atomically: true, encoding: .utf8)
        let server = try await ServeProcess.start(["--ledger", "memory:", "--plans", directory + "/plans", "--rules", directory + "/rules",
                                                   "--admin-key-file", directory + "/admin.key"], directory: directory)
        func charge() async throws -> String? {
            try await HTTP.send("POST", server.base + "/v1/quotes", key: adminKey, body: Data(#"{"plan":"research-payg"}"#.utf8)).string("charge")
        }
        #expect(try await charge() == "0.020000")
        let file = directory + "/plans/research-payg.yaml"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try text.replacingOccurrences(of: "fee: 0.02", with: "fee: zero").write(toFile: file, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await charge() == "0.020000")
        try text.replacingOccurrences(of: "fee: 0.02", with: "fee: 0.05").write(toFile: file, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        var seen: String?
        for _ in 0..<50 where seen != "0.050000" {
            try await Task.sleep(for: .milliseconds(100))
            seen = try await charge()
        }
        #expect(seen == "0.050000")
        #expect(server.errorLog.contains("catalog reload on SIGHUP"))
        await server.stop()
        #expect(!server.errorLog.contains(adminKey))
    }

    @Test("arbitrary bodies, paths and headers never get a 5xx")
    func noServerErrors() async throws {
        let server = try await TestServer.start()
        let admin = server.adminKey
        var generator = SystemRandomNumberGenerator()
        let fragments = ["{", "}", "[", "]", "\"", ":", ",", "\\u0000", "\\ud800", "1e999", "-0", "null", "true", "\"amount\"", "\"meters\"",
                         "\"execution\"", "\"consumer\"", "\"99999999999999999999\"", "\u{FFFF}", "\u{0}", "\"ended_at\"", "\"2026-13-40T99:99:99Z\"",
                         String(repeating: "[", count: 200), "\"ttl_seconds\"", "9223372036854775808", "\"at\""]
        let routes = Route.routes(testClock: false).filter { $0.method != "GET" }
        for round in 0..<300 {
            let route = routes[round % routes.count]
            let path = route.template.replacingOccurrences(of: "{id}", with: ["x", "%00", "%ff", String(repeating: "a", count: 300)][round % 4])
                .replacingOccurrences(of: "{week}", with: ["2026-11-02", "2026-02-30", "x"][round % 3])
            var body = ""
            for _ in 0..<Int.random(in: 0...12, using: &generator) { body += fragments.randomElement(using: &generator)! }
            if round % 3 == 0 {
                body = "{\"execution\":\"e\(round)\",\"consumer\":\"c\",\"agent\":\"agt_research\",\"amount\":\"\(Int.random(in: -5...5, using: &generator))\","
                    + "\"meters\":{\"cpu_ms\":\"\(Int64.random(in: .min ... .max, using: &generator))\"},\"ended_at\":\"2026-11-02T00:00:00Z\"}"
            }
            let answer = try await server.send(route.method, path, key: admin, json: body, headers: ["Idempotency-Key": "f\(round)"])
            #expect(answer.status < 500, "\(route.method) \(path) with \(body.prefix(80)): \(answer.status) \(answer.body.prefix(120))")
        }
        for query in ["?consumer=%ff", "?consumer=" + String(repeating: "x", count: 300), "?period=99999999999999999999d", "?week=9999-99-99", "?group_by=%00"] {
            for path in ["/v1/balance", "/v1/usage", "/v1/payouts"] {
                #expect(try await server.send("GET", path + query, key: admin).status < 500)
            }
        }
        #expect(try await server.send("GET", "/readyz").status == 200)
        await server.stop()
    }
}
