import ArgumentParser
import Tariff
import TariffSettlement

/// `tariff ledger verify`: checks settlement.md's six invariants; exit 1 if one fails.
struct LedgerVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Check every ledger invariant; exit 1 if one fails.")

    @OptionGroup var options: LedgerOptions

    func run() throws {
        let settlement = try ledgerStep { [options] in try await options.settlement(readOnly: true) }
        let report = try ledgerStep { try await settlement.verify() }
        switch options.format {
        case .json:
            print(JSON.object([("ok", .bool(report.passed)), ("entries", .integer(Int64(report.entries))), ("charges", .integer(Int64(report.charges))),
                               ("invariants", .array(report.invariants.map { invariant in
                .object([("number", .integer(Int64(invariant.number))), ("name", .string(invariant.name)), ("ok", .bool(invariant.holds)),
                         ("failures", .array(invariant.failures.map { .string($0) }))])
            }))]).rendered)
        case .text:
            for invariant in report.invariants {
                print("\(invariant.holds ? "ok  " : "FAIL") \(invariant.number). \(invariant.name)")
                for failure in invariant.failures { print("     \(failure)") }
            }
            print("\(report.invariants.count { $0.holds }) passed, \(report.invariants.count { !$0.holds }) failed (\(report.entries) entries, \(report.charges) charge lines)")
        }
        if !report.passed { throw ExitCode(1) }
    }
}
