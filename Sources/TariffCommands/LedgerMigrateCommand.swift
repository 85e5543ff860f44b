import ArgumentParser
import Tariff
import TariffPostgres
import TariffSettlement
import TariffSQLite

/// `tariff ledger migrate`: brings the ledger's schema to this build's version and lists the
/// migrations applied. Every backend also migrates when it opens; this command is for deploys
/// that migrate first (a release step) and start the workers after. Safe to run from several
/// workers at once: PostgreSQL serialises them on an advisory lock, SQLite on its write lock, and
/// each migration is applied exactly once.
struct LedgerMigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate",
                                                    abstract: "Apply the ledger's pending schema migrations and list those applied.")

    @OptionGroup var options: LedgerOptions

    func run() throws {
        let (ledger, history) = try ledgerStep { [options] () async throws -> (String, [String]) in
            let backend = try await options.backend()
            switch backend {
            case let postgres as PostgresBackend:
                defer { postgres.shutdown() }
                return (postgres.configuration.description, try await postgres.migrationHistory())
            // Named redacted, as every error names it: a path may hold what looks like a password.
            case let sqlite as SQLiteBackend: return (Redaction.url(options.ledger), try sqlite.migrationHistory())
            default: return (options.ledger, [])
            }
        }
        switch options.format {
        case .json:
            print(JSON.object([("ledger", .string(ledger)), ("migrations", .array(history.map { .string($0) }))]).rendered)
        case .text:
            print(history.isEmpty ? "\(ledger): nothing to migrate (an in-memory ledger)" : "\(ledger): up to date, \(history.count) migrations applied")
            for migration in history { print("  \(migration)") }
        }
    }
}
