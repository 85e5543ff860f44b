import ArgumentParser
import Foundation
import Tariff
import TariffSettlement
import TariffStripe

/// `tariff ledger purchase --consumer ID --amount 100.00 [--idempotency-key KEY] [--rail stripe|log --customer cus_... --payment-method pm_...] [--rail-log FILE]`
struct LedgerPurchaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "purchase", abstract: "Add prepaid credits (whole cents) to a consumer.")

    @OptionGroup var options: LedgerOptions

    @Option(help: "The consumer id.")
    var consumer: String

    // Unconditional: `--amount -1` is the value -1 (refused as not positive), not a missing value.
    @Option(parsing: .unconditional, help: "The amount, a decimal in whole cents (100.00).")
    var amount: String

    @Option(help: "Makes a retried purchase apply once (default: a new key, so each run is a new purchase).")
    var idempotencyKey: String?

    @Option(help: "stripe: charge the consumer's card first; the credits are added only once Stripe reports the payment succeeded. log: write the request instead (a dry run that adds the credits).")
    var rail: String?

    @Option(help: "Where the log rail writes, one JSON object a line (default: standard error).")
    var railLog: String?

    @Option(help: "With --rail stripe: the consumer's Stripe customer (cus_...).")
    var customer: String?

    @Option(help: "With --rail stripe: the customer's payment method (pm_...).")
    var paymentMethod: String?

    @OptionGroup var stripe: StripeRailOptions

    func validate() throws {
        guard let rail else {
            if customer != nil || paymentMethod != nil { throw ValidationError("--customer and --payment-method go with --rail stripe or log") }
            return
        }
        guard rail == "stripe" || rail == "log" else {
            throw ValidationError("--rail for a purchase is stripe or log, not '\(rail)'; without --rail the credits are added directly")
        }
        guard customer != nil, paymentMethod != nil else { throw ValidationError("--rail \(rail) needs --customer cus_... and --payment-method pm_...") }
    }

    func run() throws {
        let amount: Money
        do throws(DecimalText.Failure) {
            amount = try Money(parsing: Substring(self.amount))
        } catch {
            let shown = SafeText.escaping(self.amount)
            printError(error == .negative ? "error: invalid_amount: a purchase must be positive, not \(shown)"
                                          : "error: invalid_amount: '\(shown)' is not an amount (write it like 100.00)")
            throw ExitCode(2)
        }
        let settlement = try ledgerStep { [options] in try await options.settlement() }
        let key = idempotencyKey ?? "cli-\(UUID().uuidString.lowercased())"
        let consumer = consumer
        let receipt: PurchaseReceipt
        if let rail, let customer, let paymentMethod {
            let purchaseRail: any PurchaseRail = try ledgerStep { [stripe, railLog] () throws -> any PurchaseRail in
                if rail == "stripe" { return try stripe.rail() }
                return try railLog.map { try LogRail(path: $0) } ?? LogRail()
            }
            let purchase = CreditPurchase(consumer: consumer, amount: amount, currency: settlement.currency, idempotencyKey: key,
                                          payer: customer, paymentMethod: paymentMethod)
            // A decline is a SettlementError (payment_declined, with Stripe's reason): exit 2, nothing added.
            let paid = try ledgerStep { try await settlement.purchase(purchase, through: purchaseRail) }
            guard let added = paid.receipt else {
                if case .pending(let reference, _) = paid.outcome {
                    print("payment \(reference) is pending: the credits are added when Stripe confirms it (payment_intent.succeeded, key \(key))")
                }
                return
            }
            receipt = added
        } else {
            receipt = try ledgerStep { try await settlement.purchase(consumer: consumer, amount: amount, idempotencyKey: key) }
        }
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
