import ArgumentParser
import Foundation
import Tariff
import TariffSettlement

/// `tariff ledger purchase --consumer ID --amount 100.00 [--idempotency-key KEY]`
struct LedgerPurchaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "purchase", abstract: "Add prepaid credits (whole cents) to a consumer.")

    @OptionGroup var options: LedgerOptions

    @Option(help: "The consumer id.")
    var consumer: String

    @Option(help: "The amount, a decimal in whole cents (100.00).")
    var amount: String

    @Option(help: "Makes a retried purchase apply once (default: a new key, so each run is a new purchase).")
    var idempotencyKey: String?

    @Option(help: "A payment rail that charges the consumer first (the Stripe rail is a later milestone).")
    var rail: String?

    func validate() throws {
        if let rail { throw ValidationError("--rail \(rail): payment rails for purchases are not available yet; without --rail the credits are added directly") }
    }

    func run() throws {
        let amount: Money
        do {
            amount = try Money(parsing: Substring(self.amount))
        } catch {
            printError("error: invalid_amount: '\(self.amount)' is not an amount (write it like 100.00)")
            throw ExitCode(2)
        }
        let settlement = try ledgerStep { [options] in try options.settlement() }
        let key = idempotencyKey ?? "cli-\(UUID().uuidString.lowercased())"
        let consumer = consumer
        let receipt = try ledgerStep { try await settlement.purchase(consumer: consumer, amount: amount, idempotencyKey: key) }
        switch options.format {
        case .json:
            print(JSON.object([("consumer", .string(receipt.consumer)), ("currency", .string(settlement.currency.code)),
                               ("amount", .string(receipt.amount.description)), ("available", .string(receipt.available.description)),
                               ("idempotency_key", .string(key))]).rendered)
        case .text:
            print("purchased \(receipt.amount) \(settlement.currency.code) for \(receipt.consumer): \(receipt.available) available (key \(key))")
        }
    }
}
