import ArgumentParser
import Tariff
import TariffSettlement

/// `tariff ledger balance --consumer ID` ->
/// `{"consumer":"cus_1","currency":"USD","available":"142.500000","reserved":"3.000000"}`
struct LedgerBalanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "balance", abstract: "A consumer's available and reserved credits.")

    @OptionGroup var options: LedgerOptions

    @Option(help: "The consumer id.")
    var consumer: String

    func run() throws {
        let settlement = try ledgerStep { [options] in try await options.settlement(readOnly: true) }
        let consumer = consumer
        let balance = try ledgerStep { try await settlement.balance(consumer: consumer) }
        switch options.format {
        case .json:
            print(JSON.object([("consumer", .string(balance.consumer)), ("currency", .string(balance.currency.code)),
                               ("available", .string(balance.available.description)), ("reserved", .string(balance.reserved.description))]).rendered)
        case .text:
            print(table([["consumer", "currency", "available", "reserved"],
                         [balance.consumer, balance.currency.code, balance.available.description, balance.reserved.description]]))
        }
    }
}
