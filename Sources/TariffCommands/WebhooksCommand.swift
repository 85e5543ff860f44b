import ArgumentParser
import Foundation
import Tariff
import TariffServer
import TariffSettlement

/// `tariff webhooks add|list|remove|failures`: the receivers of events out (service.md), kept in
/// the ledger, and the deliveries given up after 72 h.
struct WebhooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks",
        abstract: "Add, list and remove webhook endpoints (events out of tariff serve), and list the deliveries given up.",
        subcommands: [WebhooksAddCommand.self, WebhooksListCommand.self, WebhooksRemoveCommand.self, WebhooksFailuresCommand.self]
    )
}

extension LedgerOptions {
    /// The ledger's outbox.
    func outbox() async throws -> any WebhookOutbox {
        let backend = try await backend()
        guard let outbox = backend as? any WebhookOutbox else { throw SettlementError(.invalidInput, "this ledger keeps no webhook outbox") }
        return outbox
    }
}

struct WebhooksAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an endpoint and print its signing secret once (whsec_...).")

    @Argument(help: "Where events are POSTed (https://...).")
    var url: String

    @Option(help: "The event types it receives, separated by commas (balance.low,credits.depleted,...).")
    var events: String

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let types = events.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let endpoint = try ledgerStep { [ledger, url] in
            try await WebhookRegistry.add(url: url, events: types, to: try await ledger.outbox(), now: SystemClock().now())
        }
        switch ledger.format {
        case .json:
            print(JSON.object([("id", .string(endpoint.id)), ("url", .string(endpoint.url)), ("events", .array(endpoint.events.map { .string($0) })),
                               ("secret", .string(endpoint.secret)), ("created", .string(endpoint.createdAt.rfc3339))]).rendered)
        case .text:
            print(endpoint.secret)
            printError("added webhook endpoint \(endpoint.id) for \(endpoint.events.joined(separator: ",")); the signing secret is shown this once")
        }
    }
}

struct WebhooksListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the endpoints (never their secrets).")

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let endpoints = try ledgerStep { [ledger] in try await ledger.outbox().webhookEndpoints() }
        switch ledger.format {
        case .json:
            print(JSON.object([("endpoints", .array(endpoints.map { endpoint in
                .object([("id", .string(endpoint.id)), ("url", .string(endpoint.url)), ("events", .array(endpoint.events.map { .string($0) })),
                         ("created", .string(endpoint.createdAt.rfc3339))])
            }))]).rendered)
        case .text:
            var rows = [["id", "url", "events", "created"]]
            for endpoint in endpoints { rows.append([endpoint.id, endpoint.url, endpoint.events.joined(separator: ","), endpoint.createdAt.rfc3339]) }
            print(endpoints.isEmpty ? "no webhook endpoints" : table(rows))
        }
    }
}

struct WebhooksRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove an endpoint: nothing more is sent to it.")

    @Argument(help: "The endpoint's id (whe_...).")
    var id: String

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let removed = try ledgerStep { [ledger, id] in try await ledger.outbox().removeWebhookEndpoint(id: id, at: SystemClock().now()) }
        guard let removed else {
            printError("error: no webhook endpoint has the id '\(id.prefix(64))'")
            throw ExitCode(2)
        }
        switch ledger.format {
        case .json: print(JSON.object([("id", .string(removed.id)), ("removed", .optional(removed.removedAt?.rfc3339))]).rendered)
        case .text: print("removed \(removed.id) (\(removed.url))")
        }
    }
}

struct WebhooksFailuresCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "failures", abstract: "List the deliveries given up after 72 h of retries.")

    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let failed = try ledgerStep { [ledger] in try await ledger.outbox().failedDeliveries() }
        switch ledger.format {
        case .json:
            print(JSON.object([("failures", .array(failed.map { delivery in
                .object([("endpoint", .string(delivery.endpoint)), ("url", .string(delivery.url)), ("event", .string(delivery.event.id)),
                         ("type", .string(delivery.event.type)), ("subject", .string(delivery.event.subject)), ("attempts", .integer(Int64(delivery.attempts))),
                         ("first_failure", .optional(delivery.firstFailureAt?.rfc3339)), ("error", .optional(delivery.lastError))])
            }))]).rendered)
        case .text:
            var rows = [["endpoint", "event", "type", "subject", "attempts", "first failure", "error"]]
            for delivery in failed {
                rows.append([delivery.endpoint, delivery.event.id, delivery.event.type, delivery.event.subject, String(delivery.attempts),
                             delivery.firstFailureAt?.rfc3339 ?? "-", delivery.lastError ?? "-"])
            }
            print(failed.isEmpty ? "no failed deliveries" : table(rows))
        }
    }
}
