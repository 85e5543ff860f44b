import ArgumentParser
import Tariff
import TariffSettlement

/// `tariff ledger payouts release --creator ID`: lets later payout runs pay a creator held after a
/// reversed transfer (settlement.md, "Money that reconciles") ->
/// `{"creator":"acct_1","released":true}` (false: the creator was not held).
struct LedgerPayoutsReleaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a creator held after a reversed transfer: later payout runs pay it again.")

    @OptionGroup var options: LedgerOptions

    @Option(help: "The creator (its connected account id).")
    var creator: String

    func run() throws {
        let settlement = try ledgerStep { [options] in try await options.settlement(readOnly: false) }
        let creator = creator
        let released = try ledgerStep { try await settlement.releaseCreator(creator) }
        switch options.format {
        case .json:
            print(JSON.object([("creator", .string(creator)), ("released", .bool(released))]).rendered)
        case .text:
            print(released ? "released \(SafeText.escaping(creator)): later payout runs pay it" : "\(SafeText.escaping(creator)) was not held")
        }
    }
}
