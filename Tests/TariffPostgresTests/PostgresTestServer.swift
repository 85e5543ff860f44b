import Foundation
import Tariff
import TariffPostgres
import TariffSettlement
import TariffSettlementTesting
import Testing

/// The PostgreSQL server the tests use: `TARIFF_TEST_POSTGRES_URL` (`.ci/run` starts a throwaway
/// one and sets it). Without it every test that needs a server is skipped, with this message.
enum PostgresTestServer {
    static let url = ProcessInfo.processInfo.environment["TARIFF_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let skipMessage: Comment = "TARIFF_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against (.ci/run starts one: .ci/postgres start)"
    static var available: Bool { url != nil }

    /// The server's URL with a new, empty schema: every test gets a ledger of its own in one database.
    static func freshURL(pool: Int = 8) -> String {
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let base = url ?? "postgres://postgres@127.0.0.1:5432/postgres"
        return base + (base.contains("?") ? "&" : "?") + "pool=\(pool)&schema=\(schema)"
    }

    static let factory = BackendFactory(name: "postgres", rawDump: { backend in try await (backend as! PostgresBackend).dump() }) { currency in
        try await PostgresBackend(url: freshURL(), currency: currency)
    }
}

/// Every suite that needs the server, one after the other: the process tests start several
/// workers of their own, and timing them beside other suites on two cores would only add noise.
@Suite("PostgreSQL", .serialized, .enabled(if: PostgresTestServer.available, PostgresTestServer.skipMessage))
enum PostgresServerTests {}
