import Foundation
import Tariff
import TariffSettlement

/// Where and how to reach the PostgreSQL ledger, read from a URL and flags:
/// `postgres://user[:password]@host[:port]/database?pool=16&sslmode=prefer&connect_timeout=10&statement_timeout=30&schema=public`.
///
/// The password may also come from `PGPASSWORD` (so it stays out of shell histories and process
/// lists); it is never printed: `description` and every error message name the user, the host and
/// the database only.
///
/// | query item | meaning | default |
/// | --- | --- | --- |
/// | `pool` | most connections this process opens (1...512) | 16 |
/// | `sslmode` | `disable`, `prefer` (TLS when the server offers it, certificate not checked), `require` (TLS, certificate not checked, as libpq), `verify-full` (TLS, certificate and host checked) | `verify-full` for a host that is not loopback; `prefer` for `localhost`, `127.x.y.z`, `::1` |
/// | `sslrootcert` | a PEM file of the certificate authorities `verify-full` trusts (a private CA) | the system's trust store |
/// | `connect_timeout` | seconds to open a connection | 10 |
/// | `statement_timeout` | seconds one statement may run on the server (0: no limit) | 30 |
/// | `schema` | the schema holding the ledger's tables (several ledgers in one database) | `public` |
/// | `application_name` | shown in `pg_stat_activity` | `tariff` |
public struct PostgresConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    /// Never printed.
    public var password: String?
    public var database: String
    public var poolSize: Int
    public var tls: TLSMode
    /// PEM file of trusted certificate authorities for `verify-full` (nil: the system's).
    public var trustedCertificatesFile: String?
    public var connectTimeoutSeconds: Int
    public var statementTimeoutSeconds: Int
    public var schema: String
    public var applicationName: String

    public init(host: String = "127.0.0.1", port: Int = 5432, user: String = "postgres", password: String? = nil, database: String = "postgres",
                poolSize: Int = 16, tls: TLSMode? = nil, trustedCertificatesFile: String? = nil, connectTimeoutSeconds: Int = 10,
                statementTimeoutSeconds: Int = 30, schema: String = "public", applicationName: String = "tariff") {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.poolSize = poolSize
        self.tls = tls ?? Self.defaultTLS(host: host)
        self.trustedCertificatesFile = trustedCertificatesFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.statementTimeoutSeconds = statementTimeoutSeconds
        self.schema = schema
        self.applicationName = applicationName
    }

    /// `verify-full` for a server reached over a network, `prefer` on this machine.
    ///
    /// Why: `prefer` and `require` encrypt but accept any certificate, so anyone on the path can
    /// pose as the server and read the password and every ledger row; over loopback there is no
    /// path to be on. An explicit `sslmode` is kept as written.
    public static func defaultTLS(host: String) -> TLSMode { LoopbackHost.contains(host) ? .prefer : .verifyFull }

    /// Whether a `--ledger` value names this backend.
    /// Schemes are case-insensitive (RFC 3986): `Postgres://` is a PostgreSQL URL too.
    public static func handles(_ url: String) -> Bool {
        let lowered = url.prefix(13).lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    /// Reads a `postgres://` URL. `environment` supplies `PGPASSWORD` (and `PGUSER`) when the URL has none.
    /// - throws: `invalid_input` naming the part that is wrong (never the password).
    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.handles(text), let components = URLComponents(string: text) else {
            throw SettlementError(.invalidInput, "a PostgreSQL ledger URL looks like postgres://user@host:5432/database")
        }
        self.init()
        guard let host = components.host, !host.isEmpty else { throw SettlementError(.invalidInput, "the ledger URL names no host") }
        self.host = host
        tls = Self.defaultTLS(host: host)
        if let port = components.port {
            guard (1...65_535).contains(port) else { throw SettlementError(.invalidInput, "the ledger URL's port \(port) is out of range") }
            self.port = port
        }
        user = components.user.flatMap { $0.isEmpty ? nil : $0 } ?? environment["PGUSER"] ?? "postgres"
        password = components.password ?? environment["PGPASSWORD"]
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : path
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "pool": poolSize = try Self.integer(value, item.name, in: 1...512)
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw SettlementError(.invalidInput, "sslmode must be one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", ")), not '\(value)'")
                }
                tls = mode
            case "sslrootcert":
                guard !value.isEmpty else { throw SettlementError(.invalidInput, "sslrootcert names a PEM file of certificate authorities") }
                trustedCertificatesFile = value
            case "connect_timeout": connectTimeoutSeconds = try Self.integer(value, item.name, in: 1...3_600)
            case "statement_timeout": statementTimeoutSeconds = try Self.integer(value, item.name, in: 0...86_400)
            case "schema":
                // Quoted as an identifier everywhere, but kept to plain names so it reads the same in psql.
                guard !value.isEmpty, value.count <= 63, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    throw SettlementError(.invalidInput, "schema must be 1 to 63 letters, digits or underscores, not '\(value)'")
                }
                schema = value
            case "application_name": applicationName = value
            default:
                throw SettlementError(.invalidInput, "unknown ledger URL setting '\(item.name)' (pool, sslmode, sslrootcert, connect_timeout, statement_timeout, schema, application_name)")
            }
        }
    }

    private static func integer(_ text: String, _ name: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw SettlementError(.invalidInput, "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(text)'")
        }
        return value
    }

    /// The URL without the password: safe for logs, errors and `--help`.
    public var description: String {
        let settings = "pool=\(poolSize)&sslmode=\(tls.rawValue)&connect_timeout=\(connectTimeoutSeconds)&statement_timeout=\(statementTimeoutSeconds)&schema=\(schema)"
        return "postgres://\(user)@\(host):\(port)/\(database)?\(settings)"
    }

    public var debugDescription: String { description }

    /// `dump()` and debuggers show the redacted URL, never the password field.
    public var customMirror: Mirror { Mirror(self, children: ["url": description], displayStyle: .struct) }
}
