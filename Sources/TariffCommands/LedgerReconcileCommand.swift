import ArgumentParser
import Foundation
import Tariff
import TariffSettlement
import TariffStripe

/// `tariff ledger reconcile --from DATE --to DATE [--rail stripe] [--stripe-key-file FILE]`:
/// the ledger's purchases, refunds, disputes and payouts in `[from, to)` against Stripe's objects
/// (settlement.md, "Reconciliation"). Exit 0 clean, 1 with a difference, 2 when it could not compare.
struct LedgerReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare the ledger's purchases, refunds, disputes and payouts with Stripe's objects; exit 1 on any difference.",
        discussion: """
            The range is [--from, --to): dates (midnight UTC) or RFC 3339 timestamps. Stripe's succeeded PaymentIntents, refunds, \
            lost disputes and transfers are matched to the ledger's records by the id the ledger stored or the Tariff key in their \
            metadata; every record missing on one side, and every amount that differs, is listed. Only the stripe rail can list \
            what it made: --rail log is refused.
            """)

    @OptionGroup var options: LedgerOptions

    @Option(help: ArgumentHelp("The range's start, included (a date like 2026-11-01, or an RFC 3339 timestamp).", valueName: "DATE"))
    var from: String

    @Option(help: ArgumentHelp("The range's end, excluded (a date like 2026-12-01, or an RFC 3339 timestamp).", valueName: "DATE"))
    var to: String

    @Option(help: "The payment rail to compare with: stripe (the only rail that can list what it made).")
    var rail: String = "stripe"

    @OptionGroup var stripe: StripeRailOptions

    func run() throws {
        guard rail == "stripe" else {
            printError("error: reconcile needs the stripe rail (--rail stripe): the \(SafeText.escaping(rail)) rail cannot list what it made")
            throw ExitCode(2)
        }
        guard let start = Timestamp(dateOrTimestamp: from) else {
            printError("error: invalid_input: --from '\(SafeText.escaping(from))' is not a date (2026-11-01) or an RFC 3339 timestamp")
            throw ExitCode(2)
        }
        guard let end = Timestamp(dateOrTimestamp: to) else {
            printError("error: invalid_input: --to '\(SafeText.escaping(to))' is not a date (2026-12-01) or an RFC 3339 timestamp")
            throw ExitCode(2)
        }
        guard start < end else {
            printError("error: invalid_input: --from \(start.rfc3339) is not before --to \(end.rfc3339)")
            throw ExitCode(2)
        }
        // The rail first: a missing key is said before the ledger is opened.
        let stripeRail = try ledgerStep { [stripe] in try stripe.rail() }
        let settlement = try ledgerStep { [options] in try await options.settlement(readOnly: true) }
        let report = try ledgerStep { try await settlement.reconcile(from: start, to: end, rail: stripeRail) }
        switch options.format {
        case .json:
            func counts(_ counts: [ReconciledKind: Int]) -> JSON {
                .object(ReconciledKind.allCases.map { ($0.rawValue, .integer(Int64(counts[$0] ?? 0))) })
            }
            print(JSON.object([("from", .string(start.rfc3339)), ("to", .string(end.rfc3339)), ("currency", .string(settlement.currency.code)),
                               ("clean", .bool(report.isClean)), ("ledger", counts(report.ledgerCounts)), ("stripe", counts(report.railCounts)),
                               ("ignored", .integer(Int64(report.ignored))),
                               ("differences", .array(report.differences.map { difference in
                .object([("issue", .string(difference.issue.rawValue)), ("kind", .string(difference.kind.rawValue)),
                         ("key", .optional(difference.key)), ("reference", .optional(difference.reference)),
                         ("ledger_amount", .optional(difference.ledgerAmount?.description)), ("stripe_amount", .optional(difference.railAmount?.description)),
                         ("stripe_currency", .optional(difference.railCurrency)), ("at", .string(difference.at.rfc3339))])
            }))]).rendered)
        case .text:
            let compared = ReconciledKind.allCases.map { "\(report.ledgerCounts[$0] ?? 0)/\(report.railCounts[$0] ?? 0) \($0.rawValue)s" }
            print("reconciled \(start.rfc3339) to \(end.rfc3339) (\(settlement.currency.code)), ledger/stripe: \(compared.joined(separator: ", "))"
                  + (report.ignored > 0 ? "; \(report.ignored) Stripe object\(report.ignored == 1 ? "" : "s") not Tariff's ignored" : ""))
            if report.isClean {
                print("no difference")
            } else {
                var rows = [["issue", "kind", "key", "reference", "ledger", "stripe", "at"]]
                for difference in report.differences {
                    rows.append([difference.issue.rawValue, difference.kind.rawValue, difference.key.map(SafeText.escaping) ?? "-",
                                 difference.reference.map(SafeText.escaping) ?? "-", difference.ledgerAmount?.description ?? "-",
                                 (difference.railAmount?.description ?? "-") + (difference.railCurrency.map { " " + SafeText.escaping($0) } ?? ""),
                                 difference.at.rfc3339])
                }
                print(table(rows))
                print("\(report.differences.count) difference\(report.differences.count == 1 ? "" : "s")")
            }
        }
        if !report.isClean { throw ExitCode(1) }
    }
}
