import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import Tariff
import TariffPostgres
import TariffSettlement
import TariffSQLite

/// `tariff ledger ...`: the settlement ledger (settlement.md, cli.md). Each subcommand is one file
/// (`Ledger*Command.swift`) that parses, calls `Settlement`, and renders.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Prepaid credits, the double-entry ledger, usage and creator payouts.",
        discussion: """
            --ledger picks the backend: sqlite:PATH (default sqlite:tariff.sqlite), memory:, or postgres://user@host:port/db \
            (settings as URL query items or flags: pool, sslmode, sslrootcert, connect_timeout, statement_timeout, schema; the password from the URL \
            or PGPASSWORD, never printed; sslmode defaults to verify-full for a host that is not loopback).
            """,
        subcommands: [LedgerPurchaseCommand.self, LedgerRefundCommand.self, LedgerBalanceCommand.self, LedgerUsageCommand.self, LedgerPayoutsCommand.self,
                      LedgerVerifyCommand.self, LedgerReplayCommand.self, LedgerMigrateCommand.self,
                      LedgerCloseCommand.self, LedgerReconcileCommand.self, LedgerSubscribeCommand.self, LedgerCancelCommand.self,
                      LedgerSubscriptionsCommand.self, LedgerTickCommand.self]
    )

    /// Declared here too so `--ledger` may come before the subcommand name (`tariff ledger --ledger memory: balance ...`).
    @OptionGroup var options: LedgerOptions
}

/// The flags every `tariff ledger` subcommand shares.
struct LedgerOptions: ParsableArguments {
    @Option(help: "The ledger: sqlite:PATH, memory: or postgres://user@host:port/db.")
    var ledger: String = "sqlite:tariff.sqlite"

    @Option(name: .customLong("pool-size"), help: "PostgreSQL: most connections this process opens (overrides the URL's pool=; default 16).")
    var poolSize: Int?

    @Option(help: "PostgreSQL: disable, prefer, require or verify-full (overrides the URL's sslmode=; default verify-full, prefer on a loopback host).")
    var sslmode: String?

    @Option(name: .customLong("connect-timeout"), help: "PostgreSQL: seconds to open a connection (overrides connect_timeout=; default 10).")
    var connectTimeoutSeconds: Int?

    @Option(name: .customLong("statement-timeout"), help: "PostgreSQL: seconds a statement may run, 0 for no limit (overrides statement_timeout=; default 30).")
    var statementTimeoutSeconds: Int?

    @Option(help: "The ledger's currency (a new ledger keeps it; an existing one must match). Default: the ledger's own, else USD.")
    var currency: String?

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @OptionGroup var catalog: CatalogOptions

    func validate() throws {
        if let currency, Currency(code: currency) == nil { throw ValidationError("unknown currency '\(currency)'; write an ISO 4217 code such as USD") }
        if PostgresConfiguration.handles(ledger) {
            do { _ = try postgresConfiguration() } catch let error as SettlementError { throw ValidationError(error.message) }
            return
        }
        if poolSize != nil || sslmode != nil || connectTimeoutSeconds != nil || statementTimeoutSeconds != nil {
            throw ValidationError("--pool-size, --sslmode, --connect-timeout and --statement-timeout are for a postgres:// ledger")
        }
        guard ledger == "memory:" || ledger.hasPrefix("sqlite:") else {
            // Echoed redacted: a mistyped PostgreSQL URL still holds its password.
            throw ValidationError("unknown ledger '\(Redaction.url(ledger))'; write sqlite:PATH, memory: or postgres://user@host:port/db")
        }
        if ledger.hasPrefix("sqlite:") && ledger.dropFirst("sqlite:".count).isEmpty { throw ValidationError("sqlite: needs a path, e.g. sqlite:tariff.sqlite") }
    }

    /// The URL's settings with the flags applied over them (the flags win).
    func postgresConfiguration() throws -> PostgresConfiguration {
        var query: [String] = []
        if let poolSize { query.append("pool=\(poolSize)") }
        if let sslmode { query.append("sslmode=\(sslmode)") }
        if let connectTimeoutSeconds { query.append("connect_timeout=\(connectTimeoutSeconds)") }
        if let statementTimeoutSeconds { query.append("statement_timeout=\(statementTimeoutSeconds)") }
        // Appended as query items so that the URL reader checks them the same way; a later item wins.
        let url = query.isEmpty ? ledger : ledger + (ledger.contains("?") ? "&" : "?") + query.joined(separator: "&")
        return try PostgresConfiguration(url: url)
    }

    /// Opens the backend the URL names (a PostgreSQL ledger is migrated on open).
    /// - parameter readOnly: a command that only reads (`balance`, `usage`, `verify`, `payouts`
    ///   without `--execute`) opens a SQLite ledger read-only: it never changes the file's bytes,
    ///   works on a read-only mount, and never creates a ledger that is not there.
    func backend(readOnly: Bool = false) async throws -> any SettlementBackend {
        let requested = currency.flatMap(Currency.init(code:))
        if ledger == "memory:" { return InMemoryBackend(currency: requested ?? SQLiteBackend.defaultCurrency) }
        if PostgresConfiguration.handles(ledger) { return try await PostgresBackend(configuration: try postgresConfiguration(), currency: requested) }
        return try SQLiteBackend(path: String(ledger.dropFirst("sqlite:".count)), currency: requested, access: readOnly ? .readOnly : .readWrite)
    }

    /// The catalog when its folders exist (pricing, payout calendar); nil otherwise, so credits and
    /// balances work anywhere. A catalog that exists but does not compile stops the command.
    func optionalCatalog() throws -> CompiledCatalog? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: catalog.plans, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return try catalog.load()
    }

    func settlement(needsCatalog: Bool = false, readOnly: Bool = false) async throws -> Settlement {
        let compiled = needsCatalog ? try catalog.load() : try optionalCatalog()
        return Settlement(backend: try await backend(readOnly: readOnly), catalog: compiled)
    }
}

/// Runs async library code from a synchronous command and waits for it (the commands are
/// short-lived programs: blocking the main thread while the task runs on the pool is fine).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        outcome.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return try outcome.withLock { $0! }.get()
}

extension ParsableCommand {
    /// Runs a ledger operation: a `SettlementError` is bad input or a refusal, printed on standard
    /// error as `error: CODE: message`, exit 2.
    func ledgerStep<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        do {
            return try runBlocking(body)
        } catch let error as SettlementError {
            printError("error: \(error)")
            throw ExitCode(2)
        } catch let error as InputError {
            printError("error: \(error.description)")
            throw ExitCode(2)
        }
    }
}
