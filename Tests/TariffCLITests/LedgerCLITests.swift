import Foundation
import Tariff
import Testing

/// `tariff ledger` as a user runs it: outputs of cli.md, exit codes, and the crash test of the
/// settlement issue (a replay killed with SIGKILL, then run again).
@Suite("tariff ledger")
struct LedgerCLITests {
    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-ledger-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("payouts --execute: a week before its pay date exits 2 with not_due and changes no byte; a week whose pay date has come runs")
    func payoutsNotDue() throws {
        let directory = try Self.scratch()
        let path = directory.appendingPathComponent("ledger.sqlite").path
        let ledger = "sqlite:" + path
        var run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "cus_1", "--amount", "5.00", "--idempotency-key", "p1"])
        #expect(run.status == 0, "\(run.error)")
        // This week (Monday to Sunday, UTC) is paid on the Wednesday after it: not yet, whatever today is.
        let today = Timestamp(nanosecondsSinceEpoch: Int64(Date().timeIntervalSince1970) * 1_000_000_000).civilDate
        let monday = today.addingDays(-Int64((today.weekday.rawValue - Weekday.monday.rawValue + 7) % 7))
        func bytes() -> [Data] { [path, path + "-wal"].map { (try? Data(contentsOf: URL(fileURLWithPath: $0))) ?? Data() } }
        let before = bytes()
        for week in [monday, monday.addingDays(-7)] where week.addingDays(9) > today {
            run = try CLITests.run(["ledger", "payouts", "--ledger", ledger, "--week", week.description, "--execute", "--rail-log", "/dev/null"])
            #expect(run.status == 2 && run.error.contains("not_due") && run.error.contains("are due on \(week.addingDays(9))"), "\(week): \(run.error)")
        }
        #expect(bytes() == before)
        // Two weeks back: its pay date (9 days after its Monday) has come.
        run = try CLITests.run(["ledger", "payouts", "--ledger", ledger, "--week", monday.addingDays(-14).description, "--execute", "--rail-log", "/dev/null"])
        #expect(run.status == 0, "\(run.error)")
    }

    @Test("reconcile --rail log is refused: only the stripe rail can list what it made (exit 2)")
    func reconcileNeedsStripe() throws {
        let run = try CLITests.run(["ledger", "reconcile", "--ledger", "memory:", "--from", "2026-11-01", "--to", "2026-12-01", "--rail", "log"])
        #expect(run.status == 2)
        #expect(run.error.contains("reconcile needs the stripe rail"), "\(run.error)")
        #expect(run.output.isEmpty)
    }

    @Test("refund: credits back to the purchase's payment through the rail (refund:KEY); a refused refund exits 2 and changes no byte")
    func refund() throws {
        let directory = try Self.scratch()
        let path = directory.appendingPathComponent("ledger.sqlite").path
        let ledger = "sqlite:" + path
        let log = directory.appendingPathComponent("rail.log").path
        var run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "cus_1", "--amount", "50.00", "--idempotency-key", "p1",
                                    "--rail", "log", "--rail-log", log, "--customer", "cus_stripe_1", "--payment-method", "pm_1", "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        run = try CLITests.run(["ledger", "refund", "--ledger", ledger, "--purchase", "p1", "--amount", "20.00", "--idempotency-key", "r1",
                                "--rail", "log", "--rail-log", log, "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        // 50.00 - 20.00 available.
        #expect(run.output == #"{"purchase":"p1","consumer":"cus_1","currency":"USD","amount":"20.000000","status":"succeeded","reference":"log:refund:r1","available":"30.000000","idempotency_key":"r1"}"# + "\n")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.last == #"{"method":"POST","path":"/v1/refunds","idempotency_key":"refund:r1","body":{"payment_intent":"log:purchase:p1","amount":2000,"metadata":{"tariff_refund_key":"r1"}}}"#)
        // The file and its WAL's content (a reader of a WAL database makes an empty -wal file where there was none: no content).
        func bytes() -> [Data] { [path, path + "-wal"].map { (try? Data(contentsOf: URL(fileURLWithPath: $0))) ?? Data() } }
        let before = bytes()
        for (arguments, code) in [(["--purchase", "p1", "--amount", "30.01", "--idempotency-key", "r2"], "invalid_amount"),
                                  (["--purchase", "p1", "--amount", "21.00", "--idempotency-key", "r1"], "idempotency_conflict"),
                                  (["--purchase", "nope", "--amount", "1.00", "--idempotency-key", "r3"], "unknown_purchase"),
                                  (["--purchase", "p1", "--amount", "0.001", "--idempotency-key", "r4"], "invalid_amount")] {
            run = try CLITests.run(["ledger", "refund", "--ledger", ledger, "--rail", "log", "--rail-log", log] + arguments)
            #expect(run.status == 2 && run.error.contains(code), "\(arguments): \(run.error)")
        }
        #expect(bytes() == before)
        run = try CLITests.run(["ledger", "verify", "--ledger", ledger])
        #expect(run.status == 0 && run.output.contains(" passed, 0 failed"))
    }

    @Test("close: a replayed enterprise period closes at its end + late_usage_grace (1h), charging its shortfall once; verify passes")
    func close() throws {
        let directory = try Self.scratch()
        let ledger = "sqlite:" + directory.appendingPathComponent("ledger.sqlite").path
        let trace = directory.appendingPathComponent("trace.jsonl")
        try """
            {"type":"purchase","at":"2026-11-01T08:00:00Z","consumer":"cus_e","amount":"10000.00","id":"p1"}
            {"type":"subscribe","at":"2026-11-01T09:00:00Z","consumer":"cus_e","plan":"research-enterprise"}
            {"type":"execution","id":"exe_1","consumer":"cus_e","agent":"agt_research","started_at":"2026-11-02T10:00:00Z","ended_at":"2026-11-02T10:00:01Z","status":"succeeded","meters":{"cpu_ms":2000000}}

            """.write(to: trace, atomically: true, encoding: .utf8)
        var run = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", trace.path, "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        // The period (2026-11-01T09:00 to 2026-12-01T09:00) is not due before its end + 1h.
        run = try CLITests.run(["ledger", "close", "--ledger", ledger, "--at", "2026-12-01T09:59:59Z", "--format", "json"])
        #expect(run.status == 0 && run.output == #"{"currency":"USD","closed":[]}"# + "\n", "\(run.error)")
        // Due: the commitment 5000.00 less the fee 2000.00 and 0 of usage (2000 CU in the free tier); one run, succeeded: no SLA credit.
        run = try CLITests.run(["ledger", "close", "--ledger", ledger, "--at", "2026-12-01T10:00:00Z", "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        // closed_at is when the command ran (the wall clock).
        #expect(run.output.hasPrefix(#"{"currency":"USD","closed":[{"consumer":"cus_e","plan":"research-enterprise","version":1,"period_start":"2026-11-01T09:00:00Z","period_end":"2026-12-01T09:00:00Z","closed_at":""#))
        #expect(run.output.hasSuffix(#","shortfall":"3000.000000","sla_credit":"0.000000"}]}"# + "\n"))
        run = try CLITests.run(["ledger", "balance", "--ledger", ledger, "--consumer", "cus_e", "--format", "json"])
        // 10000.00 - 2000.00 - 3000.00.
        #expect(run.output.contains(#""available":"5000.000000""#))
        // Closed once: a second run finds nothing due.
        run = try CLITests.run(["ledger", "close", "--ledger", ledger, "--at", "2026-12-02T00:00:00Z"])
        #expect(run.status == 0 && run.output == "no period is due\n")
        run = try CLITests.run(["ledger", "verify", "--ledger", ledger])
        #expect(run.status == 0 && run.output.contains(" passed, 0 failed"), "\(run.output)")
        run = try CLITests.run(["ledger", "close", "--ledger", ledger, "--at", "yesterday"])
        #expect(run.status == 2 && run.error.contains("invalid_input"))
    }

    @Test("subscribe, cancel, subscriptions and tick: the first fee at the subscribe, the next by tick, none after a cancel's end; by hand")
    func subscriptions() throws {
        let ledger = "sqlite:" + (try Self.scratch()).appendingPathComponent("ledger.sqlite").path
        var run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "cus_1", "--amount", "100.00", "--idempotency-key", "k1"])
        #expect(run.status == 0, "\(run.error)")
        // research-pro version 2 (from 2026-11-01): 49.00 a month.
        run = try CLITests.run(["ledger", "subscribe", "--ledger", ledger, "--consumer", "cus_1", "--plan", "research-pro", "--at", "2026-11-01T00:00:00Z",
                                "--format", "json"])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains(#""consumer":"cus_1","plan":"research-pro","agent":"agt_research","period":"month","start":"2026-11-01T00:00:00Z","status":"active","ends_at":null,"ending":null,"periods_charged":1,"next_fee_at":"2026-12-01T00:00:00Z"}"#), "\(run.output)")
        #expect(run.output.hasSuffix(#""created":true,"replaced":null}"# + "\n"))
        // Again: unchanged.
        run = try CLITests.run(["ledger", "subscribe", "--ledger", ledger, "--consumer", "cus_1", "--plan", "research-pro", "--at", "2026-11-02", "--format", "json"])
        #expect(run.status == 0 && run.output.contains(#""created":false"#), "\(run.output)")
        run = try CLITests.run(["ledger", "subscribe", "--ledger", ledger, "--consumer", "cus_1", "--plan", "research-payg"])
        #expect(run.status == 2 && run.error.contains("invalid_input") && run.error.contains("per_call"), "\(run.error)")
        run = try CLITests.run(["ledger", "tick", "--ledger", ledger, "--at", "2026-11-30T23:59:59Z", "--format", "json"])
        #expect(run.output == #"{"at":"2026-11-30T23:59:59Z","fees":0,"closed":[]}"# + "\n", "\(run.output)")
        // The second fee on 2026-12-01; the first period closes at its end + 1h (no end lines for a subscription plan).
        run = try CLITests.run(["ledger", "tick", "--ledger", ledger, "--at", "2026-12-01T01:00:00Z"])
        #expect(run.status == 0 && run.output == "1 fee charged, 1 period closed\n", "\(run.output) \(run.error)")
        run = try CLITests.run(["ledger", "cancel", "--ledger", ledger, "--consumer", "cus_1", "--plan", "research-pro", "--at", "2026-12-05", "--format", "json"])
        #expect(run.status == 0 && run.output.contains(#""ends_at":"2027-01-01T00:00:00Z","ending":"canceled","periods_charged":2,"next_fee_at":null"#), "\(run.output)")
        run = try CLITests.run(["ledger", "tick", "--ledger", ledger, "--at", "2027-02-01"])
        #expect(run.output == "0 fees charged, 1 period closed\n", "\(run.output)")
        run = try CLITests.run(["ledger", "subscriptions", "--ledger", ledger, "--consumer", "cus_1", "--format", "json"])
        #expect(run.status == 0 && run.output.hasPrefix(#"{"subscriptions":[{"id":"sub_"#), "\(run.output)")
        // 100.00 - 2 x 49.00.
        run = try CLITests.run(["ledger", "balance", "--ledger", ledger, "--consumer", "cus_1", "--format", "json"])
        #expect(run.output.contains(#""available":"2.000000""#), "\(run.output)")
        run = try CLITests.run(["ledger", "cancel", "--ledger", ledger, "--consumer", "cus_1", "--plan", "research-enterprise"])
        #expect(run.status == 2 && run.error.contains("not_found"))
        run = try CLITests.run(["ledger", "verify", "--ledger", ledger])
        #expect(run.status == 0 && run.output.contains(" passed, 0 failed"), "\(run.output)")
    }

    @Test("purchase, balance, usage and verify print cli.md's JSON; bad input exits 2 with a message")
    func commands() throws {
        let ledger = "sqlite:" + (try Self.scratch()).appendingPathComponent("ledger.sqlite").path
        var run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "cus_1", "--amount", "142.50", "--idempotency-key", "k1", "--format", "json"])
        #expect(run.status == 0)
        #expect(run.output == #"{"consumer":"cus_1","currency":"USD","amount":"142.500000","available":"142.500000","idempotency_key":"k1"}"# + "\n")
        // The same key again: the first result, no second purchase.
        run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "cus_1", "--amount", "142.50", "--idempotency-key", "k1", "--format", "json"])
        #expect(run.status == 0 && run.output.contains(#""available":"142.500000""#))
        run = try CLITests.run(["ledger", "balance", "--ledger", ledger, "--consumer", "cus_1", "--format", "json"])
        #expect(run.output == #"{"consumer":"cus_1","currency":"USD","available":"142.500000","reserved":"0.000000"}"# + "\n")
        // --ledger may also come before the subcommand.
        run = try CLITests.run(["ledger", "--ledger", ledger, "--format", "json", "balance", "--consumer", "cus_1"])
        #expect(run.output == #"{"consumer":"cus_1","currency":"USD","available":"142.500000","reserved":"0.000000"}"# + "\n")
        run = try CLITests.run(["ledger", "usage", "--ledger", ledger, "--format", "json"])
        #expect(run.status == 0 && run.output == #"{"data":[]}"# + "\n")
        run = try CLITests.run(["ledger", "verify", "--ledger", ledger])
        #expect(run.status == 0 && run.output.contains(" passed, 0 failed"))
        // Releasing a creator that was never held changes nothing and says so.
        run = try CLITests.run(["ledger", "payouts", "release", "--ledger", ledger, "--creator", "acct_1", "--format", "json"])
        #expect(run.status == 0 && run.output == #"{"creator":"acct_1","released":false}"# + "\n")
        for (arguments, message) in [
            (["purchase", "--consumer", "cus_1", "--amount", "0"], "invalid_amount"),
            (["purchase", "--consumer", "cus_1", "--amount=-5.00"], "invalid_amount"),
            (["purchase", "--consumer", "cus_1", "--amount", "9223372036854.775807"], "invalid_amount"),
            (["purchase", "--consumer", "cus_1", "--amount", "1.00", "--idempotency-key", String(repeating: "k", count: 300)], "invalid_key"),
            (["purchase", "--consumer", "cus_1", "--amount", "1.00", "--currency", "EUR"], "wrong_currency"),
            (["balance", "--consumer", "cus_nobody"], "unknown_consumer"),
            (["usage", "--period", "1y"], "--period"),
            (["payouts", "--week", "2026-11-03"], "invalid_input"),
            (["payouts"], "--week is required"),
            (["payouts", "release", "--creator", ""], "invalid_key"),
        ] {
            let refused = try CLITests.run(["ledger"] + arguments + ["--ledger", ledger])
            #expect(refused.status == 2, "\(arguments)")
            #expect(refused.error.contains(message), "\(arguments): \(refused.error)")
        }
        run = try CLITests.run(["ledger", "balance", "--ledger", ledger, "--consumer", "cus_1", "--format", "json"])
        #expect(run.output.contains(#""available":"142.500000""#))
        run = try CLITests.run(["ledger", "balance", "--ledger", "postgres://nobody@127.0.0.1:1/x", "--consumer", "cus_1"])
        #expect(run.status == 2)
        // A cent added behind the ledger's back: verify names the broken invariants and exits 1.
        let path = String(ledger.dropFirst("sqlite:".count))
        #expect(try CLITests.shell("/usr/bin/sqlite3", [path, "UPDATE consumers SET available = available + 10000"]).status == 0)
        run = try CLITests.run(["ledger", "verify", "--ledger", ledger, "--format", "json"])
        #expect(run.status == 1)
        #expect(run.output.hasPrefix(#"{"ok":false,"#) && run.output.contains(#""number":2,"name":"purchases - refunds - dispute debits - charged - reserved = available","ok":false"#))
    }

    /// The entries a ledger file holds (0 when the file or its tables do not exist yet).
    static func entryCount(_ path: String) throws -> Int {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        let run = try CLITests.shell("/usr/bin/sqlite3", [path, "SELECT count(*) FROM entries"])
        return run.status == 0 ? Int(run.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 : 0
    }

    @Test("a replay killed with SIGKILL and run again ends in the ledger of an uninterrupted run")
    func crash() throws {
        let directory = try Self.scratch()
        let trace = directory.appendingPathComponent("trace.jsonl").path
        // Replay commits in batches (up to 1,024 steps or 100 ms each): a trace long enough for many
        // commits, so that a kill lands between two of them and in the middle of one.
        #expect(try CLITests.run(["generate", "--events", "10000", "--consumers", "40", "--days", "14", "--seed", "5", "--output", trace]).status == 0)
        func replay(_ name: String) -> [String] {
            ["ledger", "replay", "--ledger", "sqlite:" + directory.appendingPathComponent(name).path, "--usage", trace, "--currency", "USD", "--format", "json"]
        }
        func dump(_ name: String) throws -> String {
            // An event's `created` is the writer's wall clock (docs/webhooks.md): the rest of its row must match.
            try CLITests.shell("/usr/bin/sqlite3", [directory.appendingPathComponent(name).path, ".dump"]).output
                .replacing(/(INSERT INTO webhook_events VALUES\([0-9]+,'[^']*','(?:[^']|'')*',)[0-9]+,/) { "\($0.1)CREATED," }
        }
        let reference = try CLITests.run(replay("reference.sqlite"))
        #expect(reference.status == 0)
        let referenceDump = try dump("reference.sqlite")
        #expect(referenceDump.contains("INSERT INTO entries"))
        let referenceEntries = try Self.entryCount(directory.appendingPathComponent("reference.sqlite").path)
        // Kill points spread over the run (seeded: the same points every time), as a share of the
        // reference's entries: the run is killed once its ledger holds that many (watched, not timed,
        // so a faster or slower machine kills at the same place). Commits land a batch at a time, so
        // the kill falls after some batches and usually inside the next one's transaction.
        var random = SplitMix(seed: 2026)
        for attempt in 0..<3 {
            let name = "crash-\(attempt).sqlite"
            var fraction = 0.15 + Double(random.next() % 70) / 100
            var killed: Process
            var tries = 0
            var entriesAtKill = 0
            repeat {
                if tries > 0 {
                    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name + suffix)) }
                    fraction /= 2
                }
                let target = max(1, Int(Double(referenceEntries) * fraction))
                killed = try CLITests.start(replay(name))
                while killed.isRunning, try Self.entryCount(directory.appendingPathComponent(name).path) < target {
                    Thread.sleep(forTimeInterval: 0.005)
                }
                kill(killed.processIdentifier, SIGKILL)
                killed.waitUntilExit()
                tries += 1
                entriesAtKill = try Self.entryCount(directory.appendingPathComponent(name).path)
            } while (killed.terminationReason != .uncaughtSignal || entriesAtKill == 0 || entriesAtKill >= referenceEntries) && tries < 5
            // Killed mid-run, not after it finished, and after it had written to the ledger.
            #expect(killed.terminationReason == .uncaughtSignal, "attempt \(attempt) finished before the kill")
            #expect(entriesAtKill > 0, "attempt \(attempt) was killed before its first write")
            #expect(try dump(name) != referenceDump, "attempt \(attempt): the killed run had already written everything")
            let rerun = try CLITests.run(replay(name))
            #expect(rerun.status == 0, "attempt \(attempt): \(rerun.error)")
            #expect(rerun.output == reference.output, "attempt \(attempt): the summary differs")
            #expect(try dump(name) == referenceDump, "attempt \(attempt) (killed at \(Int(fraction * 100))% of the run): the ledger differs")
            let verify = try CLITests.run(["ledger", "verify", "--ledger", "sqlite:" + directory.appendingPathComponent(name).path])
            #expect(verify.status == 0, "attempt \(attempt): \(verify.output)")
        }
    }
}

/// A seeded generator for the kill points.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension CLITests {
    /// Starts `tariff` without waiting (its output is discarded).
    static func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs another program to completion.
    static func shell(_ path: String, _ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), error: String(decoding: errorData, as: UTF8.self))
    }
}
