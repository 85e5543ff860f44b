import ArgumentParser
import Foundation
import Tariff
import TariffServer
import TariffSettlement

/// `tariff keys create|list|revoke`: the API keys of `tariff serve`, stored beside the ledger as hashes.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke the API keys of tariff serve (stored beside the ledger, as SHA-256 hashes only).",
        subcommands: [KeysCreateCommand.self, KeysListCommand.self, KeysRevokeCommand.self]
    )
}

enum KeyRole: String, ExpressibleByArgument, CaseIterable {
    case admin, runtime, consumer
}

struct KeysCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a key and print it once (tk_...).")

    @Option(help: "admin, runtime or consumer.")
    var role: KeyRole

    @Option(help: "The consumer a consumer key is bound to.")
    var consumer: String?

    @Option(help: "A label for people (ops, runtime-eu).")
    var name: String

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let role = APIKeyRecord.Role(rawValue: role.rawValue)!
        let (record, secret) = try ledgerStep { [ledger, consumer, name] in
            let (_, store) = try await ledger.serviceBackend()
            return try await APIKeys.create(role: role, consumer: consumer, name: name, in: store, now: SystemClock().now())
        }
        switch ledger.format {
        case .json:
            print(JSON.object([("id", .string(record.id)), ("role", .string(record.role.rawValue)), ("consumer", .optional(record.consumer)),
                               ("name", .string(record.name)), ("key", .string(secret))]).rendered)
        case .text:
            print(secret)
            printError("created \(record.role.rawValue) key \(record.id) (\(record.name)); the key is shown this once")
        }
    }
}

struct KeysListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the keys (never the keys themselves).")

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let keys = try ledgerStep { [ledger] in try await ledger.serviceBackend().1.keys() }
        switch ledger.format {
        case .json:
            print(JSON.object([("keys", .array(keys.map { key in
                .object([("id", .string(key.id)), ("role", .string(key.role.rawValue)), ("consumer", .optional(key.consumer)), ("name", .string(key.name)),
                         ("created", .string(key.createdAt.rfc3339)), ("revoked", .optional(key.revokedAt?.rfc3339))])
            }))]).rendered)
        case .text:
            var rows = [["id", "role", "consumer", "name", "created", "revoked"]]
            for key in keys {
                rows.append([key.id, key.role.rawValue, key.consumer ?? "-", key.name, key.createdAt.rfc3339, key.revokedAt?.rfc3339 ?? "-"])
            }
            print(keys.isEmpty ? "no keys" : table(rows))
        }
    }
}

struct KeysRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key: refused from the next request on.")

    @Argument(help: "The key's id (key_...).")
    var id: String

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let revoked = try ledgerStep { [ledger, id] in try await ledger.serviceBackend().1.revokeKey(id: id, at: SystemClock().now()) }
        guard let revoked else {
            printError("error: no key has the id '\(id)'")
            throw ExitCode(2)
        }
        switch ledger.format {
        case .json: print(JSON.object([("id", .string(revoked.id)), ("revoked", .optional(revoked.revokedAt?.rfc3339))]).rendered)
        case .text: print("revoked \(revoked.id) (\(revoked.name))")
        }
    }
}
