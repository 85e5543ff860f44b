import Foundation
import Testing

/// Issue 14's hardening list, as the user runs it: each test failed against the build before its
/// fix (run with TARIFF_TEST_EXECUTABLE set to an older build; docs/hardening.md).
@Suite("settlement hardening (issue 14)")
struct SettlementHardeningCLITests {
    @Test("a usage period too long for the clock is a clear error (exit 2), never a trap", arguments: [
        "400000000000000000d", "9223372036854775807h", "384307168202282326h", "99999999999999999999d", "3651d", "87625h", "0d", "-5d", "30", "d",
    ])
    func usagePeriodOverflow(_ period: String) throws {
        let run = try CLITests.run(["ledger", "usage", "--ledger", "memory:", "--period", period])
        #expect(run.status == 2, "\(period): status \(run.status), \(run.error)")
        #expect(run.error.contains("--period"), "\(run.error)")
        #expect(!run.error.contains("Fatal error") && !run.error.contains("overflow"), "\(run.error)")
    }

    @Test("the longest usage periods still work: 3650d and 87600h")
    func longestPeriods() throws {
        for period in ["3650d", "87600h", "1h"] {
            let run = try CLITests.run(["ledger", "usage", "--ledger", "memory:", "--period", period, "--format", "json"])
            #expect(run.status == 0, "\(period): \(run.error)")
            #expect(run.output.contains(#""data":[]"#), "\(run.output)")
        }
    }

    @Test("every duration flag refuses an overflowing value with exit 2", arguments: [
        ["simulate", "--usage", "samples/usage.jsonl", "--max-span", "400000000000000000d"],
        ["ledger", "replay", "--ledger", "memory:", "--usage", "samples/usage.jsonl", "--max-span", "106752d"],
    ])
    func spanOverflow(_ arguments: [String]) throws {
        let run = try CLITests.run(arguments)
        #expect(run.status == 2, "\(arguments): \(run.status) \(run.error)")
        #expect(run.error.contains("--max-span"), "\(run.error)")
    }

    /// Already fixed by issue 12 (`Redaction.url` in `LedgerOptions.validate`); kept as a test over
    /// every command that takes `--ledger`, and the one output that printed the value as given
    /// (`ledger migrate` on SQLite).
    @Test("a --ledger of an unknown scheme is echoed without its password, by every command that takes it", arguments: [
        ["ledger", "balance", "--consumer", "c"], ["ledger", "migrate"], ["keys", "list"], ["serve"],
    ])
    func ledgerPasswordNeverEchoed(_ command: [String]) throws {
        for url in ["mysql://u:Hunter2Secret@h/db", "redis://:Hunter2Secret@h", "u:Hunter2Secret@h", "memory:u:Hunter2Secret@x",
                    "postgres:/u:Hunter2Secret@h/db", "MySQL://u:Hunter2Secret@h/db?password=Hunter2Secret"] {
            let run = try CLITests.run(command + ["--ledger", url])
            #expect(run.status != 0, "\(command) \(url)")
            #expect(!(run.output + run.error).contains("Hunter2Secret"), "\(command) echoed the password: \(run.error.prefix(300))")
            #expect(run.error.contains("***"), "\(command) \(url): \(run.error.prefix(300))")
        }
    }

    @Test("ledger migrate names a SQLite ledger redacted")
    func migrateOutputRedacted() throws {
        let directory = try LedgerCLITests.scratch()
        let path = directory.appendingPathComponent("u:Hunter2Secret@x.sqlite").path
        let run = try CLITests.run(["ledger", "migrate", "--ledger", "sqlite:" + path])
        #expect(run.status == 0, "\(run.error)")
        #expect(!run.output.contains("Hunter2Secret"), "\(run.output)")
    }
}
