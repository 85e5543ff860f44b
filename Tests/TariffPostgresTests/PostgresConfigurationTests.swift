import Foundation
import Tariff
import TariffPostgres
import TariffSettlement
import Testing

/// Reading connection settings from the URL, and never printing the password (no server needed).
@Suite("PostgreSQL connection settings")
struct PostgresConfigurationTests {
    @Test("every setting is read from the URL")
    func settings() throws {
        let url = "postgres://ledger:pa%40ss@db.internal:6543/billing?pool=32&sslmode=verify-full&connect_timeout=3&statement_timeout=0&schema=tenant_7&application_name=w1"
        let configuration = try PostgresConfiguration(url: url, environment: [:])
        #expect(configuration.host == "db.internal" && configuration.port == 6543)
        #expect(configuration.user == "ledger" && configuration.password == "pa@ss" && configuration.database == "billing")
        #expect(configuration.poolSize == 32 && configuration.tls == .verifyFull)
        #expect(configuration.connectTimeoutSeconds == 3 && configuration.statementTimeoutSeconds == 0)
        #expect(configuration.schema == "tenant_7" && configuration.applicationName == "w1")
    }

    @Test("defaults, and the password from PGPASSWORD")
    func defaults() throws {
        let configuration = try PostgresConfiguration(url: "postgresql://127.0.0.1/ledger", environment: ["PGPASSWORD": "from-env"])
        #expect(configuration.port == 5432 && configuration.user == "postgres" && configuration.password == "from-env")
        #expect(configuration.poolSize == 16 && configuration.tls == .prefer && configuration.schema == "public")
        #expect(configuration.connectTimeoutSeconds == 10 && configuration.statementTimeoutSeconds == 30)
        // No database named: libpq's rule, the user's name.
        #expect(try PostgresConfiguration(url: "postgres://alice@h", environment: [:]).database == "alice")
    }

    @Test("bad settings are refused with what is wrong", arguments: [
        "postgres://h/db?pool=0", "postgres://h/db?pool=x", "postgres://h/db?sslmode=always", "postgres://h/db?schema=a;drop",
        "postgres://h/db?timeout=3", "postgres:///db", "mysql://h/db", "postgres://h:99999/db",
    ])
    func refused(_ url: String) {
        #expect(throws: SettlementError.self) { try PostgresConfiguration(url: url, environment: [:]) }
        do { _ = try PostgresConfiguration(url: url, environment: [:]) } catch let error as SettlementError { #expect(error.code == .invalidInput) } catch {}
    }

    @Test("the password is never printed: description, debug description, dump, interpolation")
    func redacted() throws {
        let configuration = try PostgresConfiguration(url: "postgres://ledger:hunter2-secret@db:5432/billing?pool=4", environment: [:])
        // A host that is not loopback: verify-full by default (issue 14).
        #expect(configuration.description == "postgres://ledger@db:5432/billing?pool=4&sslmode=verify-full&connect_timeout=10&statement_timeout=30&schema=public")
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in [configuration.description, configuration.debugDescription, String(reflecting: configuration), "\(configuration)", dumped] {
            #expect(!text.contains("hunter2"), "printed: \(text)")
        }
    }

    @Test("a connection failure names the server, never the password")
    func failureMessage() async throws {
        // A port nothing listens on (bound, then closed).
        let url = "postgres://ledger:hunter2-secret@127.0.0.1:\(Self.closedPort())/billing?sslmode=disable&connect_timeout=1&statement_timeout=1"
        do {
            _ = try await PostgresBackend(url: url)
            Issue.record("connected to a closed port")
        } catch let error as SettlementError {
            #expect(error.code == .storage)
            #expect(error.message.contains("ledger@127.0.0.1"))
            #expect(!error.description.contains("hunter2"), "printed: \(error)")
            #expect(!String(reflecting: error).contains("hunter2"))
        }
    }

    static func closedPort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
