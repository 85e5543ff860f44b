import ArgumentParser
import Foundation
import Tariff
import TariffSettlement
import TariffStripe

/// `tariff ledger refund --purchase KEY --amount A --idempotency-key K [--rail stripe|log] [--rail-log FILE]`
struct LedgerRefundCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refund",
        abstract: "Give prepaid credits back to the card a purchase came from (at most what is left of it and what is available).")

    @OptionGroup var options: LedgerOptions

    @Option(help: "The purchase's key (its idempotency key when it was bought through a rail).")
    var purchase: String

    @Option(parsing: .unconditional, help: "The amount, a decimal in whole cents (25.00).")
    var amount: String

    @Option(help: "Makes a retried refund apply once: the rail's idempotency key is refund:KEY.")
    var idempotencyKey: String

    @Option(help: "stripe: refund the purchase's PaymentIntent (the default rail). log: write the request instead.")
    var rail: String = "stripe"

    @Option(help: "Where the log rail writes, one JSON object a line (default: standard error).")
    var railLog: String?

    @OptionGroup var stripe: StripeRailOptions

    func validate() throws {
        guard rail == "stripe" || rail == "log" else { throw ValidationError("--rail for a refund is stripe or log, not '\(rail)'") }
    }

    func run() throws {
        let amount: Money
        do throws(DecimalText.Failure) {
            amount = try Money(parsing: Substring(self.amount))
        } catch {
            let shown = SafeText.escaping(self.amount)
            printError(error == .negative ? "error: invalid_amount: a refund must be positive, not \(shown)"
                                          : "error: invalid_amount: '\(shown)' is not an amount (write it like 25.00)")
            throw ExitCode(2)
        }
        let settlement = try ledgerStep { [options] in try await options.settlement() }
        let refundRail: any RefundRail = try ledgerStep { [stripe, railLog, rail] () throws -> any RefundRail in
            if rail == "stripe" { return try stripe.rail() }
            return try railLog.map { try LogRail(path: $0) } ?? LogRail()
        }
        let (purchase, key) = (purchase, idempotencyKey)
        let record = try ledgerStep { try await settlement.refund(purchase: purchase, amount: amount, idempotencyKey: key, through: refundRail) }
        let balance = try ledgerStep { try await settlement.balance(consumer: record.consumer) }
        switch options.format {
        case .json:
            print(JSON.object([("purchase", .string(record.purchase)), ("consumer", .string(record.consumer)), ("currency", .string(settlement.currency.code)),
                               ("amount", .string(record.amount.description)), ("status", .string(record.state.description)),
                               ("reference", record.reference.map { .string($0) } ?? .null), ("available", .string(balance.available.description)),
                               ("idempotency_key", .string(key))]).rendered)
        case .text:
            print("refunded \(record.amount) \(settlement.currency.code) of purchase \(SafeText.escaping(record.purchase)) to \(SafeText.escaping(record.consumer))"
                  + " (\(record.reference.map(SafeText.escaping) ?? record.state.description)): \(balance.available) available (key \(SafeText.escaping(key)))")
        }
    }
}
