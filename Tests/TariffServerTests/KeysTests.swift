import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement
import TariffSQLite

@Suite("API keys")
struct KeysTests {
    @Test("a key is 256 random bits, stored only as its SHA-256 hash")
    func storedAsHash() async throws {
        let path = temporaryPath("keys.sqlite")
        let backend = try SQLiteBackend(path: path)
        let (record, secret) = try await APIKeys.create(role: .consumer, consumer: "cus_a", name: "app", in: backend, now: SystemClock().now())
        #expect(secret.hasPrefix("tk_"))
        #expect(secret.count == 3 + 64)
        #expect(record.hash == APIKeys.hash(secret))
        #expect(record.hash.count == 64)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path)) + ((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data())
        #expect(bytes.range(of: Data(secret.utf8)) == nil, "the key itself is in the ledger file")
        #expect(try await backend.keys().map(\.id) == [record.id])
        await #expect(throws: SettlementError.self) { try await APIKeys.create(role: .consumer, consumer: nil, name: "x", in: backend, now: SystemClock().now()) }
        await #expect(throws: SettlementError.self) { try await APIKeys.create(role: .admin, consumer: "cus_a", name: "x", in: backend, now: SystemClock().now()) }
        let two = try await APIKeys.create(role: .runtime, consumer: nil, name: "rt", in: backend, now: SystemClock().now())
        #expect(two.secret != secret)
    }

    @Test("the stored hash is SHA-256 in lowercase hex (FIPS 180-2 vectors), the scheme is Bearer in any case, the key is read as sent")
    func hashAndHeader() {
        // FIPS 180-2, appendix B.1 and B.2; and the empty message.
        #expect(APIKeys.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(APIKeys.hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(APIKeys.hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] { #expect(Authenticator.isBearer(Substring(scheme))) }
        for scheme in ["Bearer1", "Beare", "Basic", "", "Bearer\u{0}", "B\u{e9}arer"] { #expect(!Authenticator.isBearer(Substring(scheme))) }
        #expect(Authenticator.trimmed("tk_abc") == "tk_abc")
        #expect(Authenticator.trimmed("tk_abc\t ") == "tk_abc")
        #expect(Authenticator.trimmed("\u{a0}tk_abc\u{2003}") == "tk_abc")
        #expect(Authenticator.trimmed(" \t") == "")
    }

    @Test("a revoked key is refused within 1 s on another server sharing the ledger")
    func revocationAcrossServers() async throws {
        let path = temporaryPath("revoke.sqlite")
        let first = try await TestServer.start(backend: try SQLiteBackend(path: path))
        let second = try await TestServer.start(backend: try SQLiteBackend(path: path))
        let key = try await first.key(.runtime)
        #expect(try await second.send("GET", "/v1/plans", key: key).status == 200)
        let record = try #require(try await first.service.configuration.store.keys().first)
        _ = try await first.service.configuration.store.revokeKey(id: record.id, at: SystemClock().now())
        try await Task.sleep(for: .milliseconds(1_100))
        let refused = try await second.send("GET", "/v1/plans", key: key)
        #expect(refused.status == 401)
        #expect(refused.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        await first.stop()
        await second.stop()
    }

    @Test("tariff keys create, list and revoke on a SQLite ledger")
    func command() throws {
        let path = temporaryPath("cli.sqlite")
        let created = try runTariff(["keys", "create", "--role", "consumer", "--consumer", "cus_a", "--name", "app", "--ledger", "sqlite:\(path)", "--format", "json"])
        #expect(created.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])
        let secret = try #require(object["key"] as? String)
        let id = try #require(object["id"] as? String)
        #expect(secret.hasPrefix("tk_"))
        let listed = try runTariff(["keys", "list", "--ledger", "sqlite:\(path)"])
        #expect(listed.output.contains(id))
        #expect(!listed.output.contains(secret))
        #expect(try runTariff(["keys", "revoke", id, "--ledger", "sqlite:\(path)"]).status == 0)
        #expect(try runTariff(["keys", "list", "--ledger", "sqlite:\(path)", "--format", "json"]).output.contains("\"revoked\":\"20"))
        #expect(try runTariff(["keys", "revoke", "key_nope", "--ledger", "sqlite:\(path)"]).status == 2)
        #expect(try runTariff(["keys", "create", "--role", "consumer", "--name", "x", "--ledger", "sqlite:\(path)"]).status == 2)
    }
}

/// Runs the built `tariff` executable.
func runTariff(_ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tariffExecutable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
    if let environment { process.environment = environment }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// `tariff` beside the test bundle (SwiftPM builds every product before testing), else `.build/debug/tariff`.
let tariffExecutable: String = {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tariff").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    return repositoryRoot + "/.build/debug/tariff"
}()
