import ArgumentParser
import Foundation
import Tariff
import TariffSettlement
import TariffStripe

/// `tariff ledger payouts --week 2026-11-02 [--execute] [--rail log|stripe] [--rail-log FILE] [--stripe-key-file FILE]`
struct LedgerPayoutsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payouts",
        abstract: "List (or, with --execute, record and send) each creator's payout for a week.",
        discussion: """
            Amounts come from the ledger: earnings dated before the week's end less everything paid out so far, floored to the \
            currency's smallest unit. Keys are payout:CREATOR:WEEK: running a week twice, or again after a stop half way, pays every \
            creator once. A transfer the rail refuses is 'failed' with its reason and owed again, paid by a later week's run. \
            A creator whose transfer was reversed is 'held' until `tariff ledger payouts release --creator ID`.
            """,
        subcommands: [LedgerPayoutsReleaseCommand.self])

    @OptionGroup var options: LedgerOptions

    // Optional to the parser only (so `payouts release` needs no week); required to list or run.
    @Option(help: "The first day of the payout week (a Monday by default), 2026-11-02 (required).")
    var week: String?

    @Flag(help: "Record the payouts in the ledger and send them through the rail.")
    var execute = false

    @Option(help: "The payment rail: log (writes the requests it would send) or stripe (Stripe Connect transfers).")
    var rail: String = "log"

    @Option(help: "Where the log rail writes, one JSON object a line (default: standard error).")
    var railLog: String?

    @OptionGroup var stripe: StripeRailOptions

    func validate() throws {
        // Checked in run(): the parent's validation also runs for `payouts release`, which takes no week.
        guard let week else { return }
        guard Timestamp(date: week) != nil else { throw ValidationError("--week is a date like 2026-11-02, not '\(week)'") }
        guard rail == "log" || rail == "stripe" else { throw ValidationError("--rail is log or stripe, not '\(rail)'") }
    }

    func run() throws {
        guard let weekStart = week.flatMap({ Timestamp(date: $0) })?.civilDate else {
            printError("error: --week is required: the first day of the payout week, like 2026-11-02")
            throw ExitCode(2)
        }
        let settlement = try ledgerStep { [options, execute] in try await options.settlement(readOnly: !execute) }
        let lines: [PayoutLine]
        if execute {
            let paymentRail: any PaymentRail
            do {
                paymentRail = rail == "stripe" ? try stripe.rail() : try railLog.map { try LogRail(path: $0) } ?? LogRail()
            } catch let error as SettlementError {
                printError("error: \(error)")
                throw ExitCode(2)
            }
            lines = try ledgerStep { try await settlement.executePayouts(week: weekStart, rail: paymentRail) }
        } else {
            lines = try ledgerStep { try await settlement.payouts(week: weekStart) }
        }
        switch options.format {
        case .json:
            print(JSON.object([("week_start", .string(weekStart.description)), ("executed", .bool(execute)), ("currency", .string(settlement.currency.code)),
                               ("payouts", .array(lines.map { line in
                .object([("creator", .string(line.creator)), ("week_start", .string(line.weekStart.description)), ("pay_date", .string(line.payDate.description)),
                         ("earnings", .string(line.earnings.description)), ("amount", .string(line.amount.description)),
                         ("carried", .string(line.carried.description)), ("status", .string(line.status.rawValue)), ("key", .string(line.key)),
                         ("failure", .optional(line.failure))])
            }))]).rendered)
        case .text:
            var rows = [["creator", "week_start", "pay_date", "earnings", "amount", "carried", "status"]]
            for line in lines {
                rows.append([line.creator, line.weekStart.description, line.payDate.description, line.earnings.description, line.amount.description,
                             line.carried.description, line.status.rawValue])
            }
            print(lines.isEmpty ? "no creator has lines in the week of \(weekStart)" : table(rows))
            // A refused transfer's reason (the creator's amount went back to its earnings).
            for line in lines { if let failure = line.failure { print("failed: \(line.creator): \(SafeText.escaping(failure))") } }
        }
    }
}
