import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import Tariff
import TariffSettlement
import TariffSQLite

/// `tariff ledger ...`: the settlement ledger (settlement.md, cli.md). Each subcommand is one file
/// (`Ledger*Command.swift`) that parses, calls `Settlement`, and renders.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Prepaid credits, the double-entry ledger, usage and creator payouts.",
        discussion: "--ledger picks the backend: sqlite:PATH (default sqlite:tariff.sqlite) or memory:.",
        subcommands: [LedgerPurchaseCommand.self, LedgerBalanceCommand.self, LedgerUsageCommand.self, LedgerPayoutsCommand.self,
                      LedgerVerifyCommand.self, LedgerReplayCommand.self]
    )

    /// Declared here too so `--ledger` may come before the subcommand name (`tariff ledger --ledger memory: balance ...`).
    @OptionGroup var options: LedgerOptions
}

/// The flags every `tariff ledger` subcommand shares.
struct LedgerOptions: ParsableArguments {
    @Option(help: "The ledger: sqlite:PATH or memory:.")
    var ledger: String = "sqlite:tariff.sqlite"

    @Option(help: "The ledger's currency (a new ledger keeps it; an existing one must match). Default: the ledger's own, else USD.")
    var currency: String?

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @OptionGroup var catalog: CatalogOptions

    func validate() throws {
        if let currency, Currency(code: currency) == nil { throw ValidationError("unknown currency '\(currency)'; write an ISO 4217 code such as USD") }
        guard ledger == "memory:" || ledger.hasPrefix("sqlite:") else {
            if ledger.hasPrefix("postgres://") || ledger.hasPrefix("postgresql://") {
                throw ValidationError("the PostgreSQL backend is not available in this build; use sqlite:PATH or memory:")
            }
            throw ValidationError("unknown ledger '\(ledger)'; write sqlite:PATH or memory:")
        }
        if ledger.hasPrefix("sqlite:") && ledger.dropFirst("sqlite:".count).isEmpty { throw ValidationError("sqlite: needs a path, e.g. sqlite:tariff.sqlite") }
    }

    /// Opens the backend the URL names.
    func backend() throws -> any SettlementBackend {
        let requested = currency.flatMap(Currency.init(code:))
        if ledger == "memory:" { return InMemoryBackend(currency: requested ?? SQLiteBackend.defaultCurrency) }
        return try SQLiteBackend(path: String(ledger.dropFirst("sqlite:".count)), currency: requested)
    }

    /// The catalog when its folders exist (pricing, payout calendar); nil otherwise, so credits and
    /// balances work anywhere. A catalog that exists but does not compile stops the command.
    func optionalCatalog() throws -> CompiledCatalog? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: catalog.plans, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return try catalog.load()
    }

    func settlement(needsCatalog: Bool = false) throws -> Settlement {
        let compiled = needsCatalog ? try catalog.load() : try optionalCatalog()
        return Settlement(backend: try backend(), catalog: compiled)
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
