import Foundation
import Testing

/// Issue 12: each numbered finding of the hostile-input review, reproduced as the user ran it.
/// Every test here failed against the code before its fix (run with TARIFF_TEST_EXECUTABLE set to
/// a build of the commit before, see docs/hardening.md); the expected values are worked out by hand.
@Suite("hardening (issue 12)")
struct HardeningCLITests {
    static func scratch() throws -> URL { try LedgerCLITests.scratch() }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text.prefix(300))")
    }

    /// consumer -> available, from a replay's or balance's JSON.
    static func balances(_ replayOutput: String) throws -> [String: String] {
        let ledger = try #require(try json(replayOutput)["ledger"] as? [String: Any])
        let rows = try #require(ledger["balances"] as? [[String: Any]])
        var result: [String: String] = [:]
        // Keyed by the id's bytes when it is not ASCII: Swift's String keys equate precomposed
        // and decomposed `café`, the very confusion item 5 is about.
        for row in rows {
            let consumer = row["consumer"] as? String ?? "?"
            let key = consumer.utf8.allSatisfy { $0 < 0x80 } ? consumer : consumer.utf8.map { String($0, radix: 16) }.joined(separator: " ")
            result[key] = row["available"] as? String
        }
        return result
    }

    static func write(_ text: String, to url: URL) throws { try text.write(to: url, atomically: true, encoding: .utf8) }

    /// A per-call catalog whose one plan charges `fee` per execution (80/15/5 split).
    static func perCallCatalog(fee: String) throws -> URL {
        try CLITests.catalog(plans: ["big.yaml": """
            plan: big
            agent: agt_big
            creator: acct_big
            currency: USD
            split: standard
            model: per_call
            per_call:
              fee: \(fee)
            """], rules: CLITests.rules)
    }

    // MARK: 1. Purchase keys

    @Test("1. replaying a trace again, with a blank line first or its lines reversed, credits nothing twice")
    func replayAgainCreditsOnce() throws {
        let directory = try Self.scratch()
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        let sample = try String(contentsOf: CLITests.repositoryRoot.appendingPathComponent("samples/usage.jsonl"), encoding: .utf8)
        let first = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", "samples/usage.jsonl", "--format", "json"])
        #expect(first.status == 0, "\(first.error)")
        let before = try Self.balances(first.output)
        #expect(!before.isEmpty)
        let shifted = directory.appendingPathComponent("shifted.jsonl")
        try Self.write("\n" + sample, to: shifted)
        let reversed = directory.appendingPathComponent("reversed.jsonl")
        try Self.write(sample.split(separator: "\n").reversed().joined(separator: "\n") + "\n", to: reversed)
        for trace in [shifted, reversed] {
            let again = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", trace.path, "--format", "json"])
            #expect(again.status == 0, "\(again.error)")
            #expect(try Self.balances(again.output) == before, "replaying \(trace.lastPathComponent) changed the balances")
        }
        let verify = try CLITests.run(["ledger", "verify", "--ledger", ledger])
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test("1. a purchase key repeated with other values is rejected with its line, in simulate and replay alike")
    func purchaseKeyConflict() throws {
        let directory = try Self.scratch()
        let catalog = try Self.perCallCatalog(fee: "1.00")
        let trace = directory.appendingPathComponent("t.jsonl")
        try Self.write("""
            {"type":"purchase","id":"order-1","at":"2026-11-02T00:00:00Z","consumer":"c1","amount":"10.00"}
            {"type":"purchase","id":"order-1","at":"2026-11-02T00:00:01Z","consumer":"c1","amount":"99.00"}
            {"type":"purchase","id":"order-1","at":"2026-11-02T00:00:00Z","consumer":"c1","amount":"10.00"}
            {"type":"purchase","at":"2026-11-02T00:00:02Z","consumer":"c1","amount":"5.00"}

            """, to: trace)
        let flags = ["--plans", catalog.appendingPathComponent("plans").path, "--rules", catalog.appendingPathComponent("rules").path, "--format", "json"]
        let simulated = try CLITests.run(["simulate", "--usage", trace.path] + flags)
        #expect(simulated.status == 0, "\(simulated.error)")
        let report = try Self.json(simulated.output)
        let rejected = try #require(report["rejected"] as? [[String: Any]])
        #expect(rejected.map { $0["line"] as? Int } == [2])
        #expect((rejected.first?["reason"] as? String)?.contains("trace:order-1") == true)
        // 10.00 once (line 3 repeats line 1 exactly: credited once) + 5.00.
        #expect((report["totals"] as? [String: Any])?["purchased"] as? String == "15.000000")
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        let replayed = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", trace.path] + flags)
        #expect(replayed.status == 0, "\(replayed.error)")
        #expect(try Self.balances(replayed.output) == ["c1": "15.000000"])
        #expect(((try Self.json(replayed.output))["rejected"] as? [[String: Any]])?.map { $0["line"] as? Int } == [2])
    }

    // MARK: 2. Sums past Int64

    @Test("2. sums past 9.2 trillion stop with a clear error in simulate, replay and payouts; never a wrapped amount")
    func sumsNeverWrap() throws {
        let directory = try Self.scratch()
        let catalog = try Self.perCallCatalog(fee: "1000000000000")
        var lines: [String] = []
        // Three consumers buy 9 x 10^12 each (each balance fits Int64 micros), then run 20
        // executions of 10^12: 2 * 10^13 charged, 1.6 * 10^13 earned by the creator.
        for consumer in 0..<3 {
            for purchase in 0..<9 {
                lines.append(#"{"type":"purchase","id":"p\#(consumer)-\#(purchase)","at":"2026-11-02T00:00:0\#(purchase)Z","consumer":"c\#(consumer)","amount":"1000000000000.00"}"#)
            }
        }
        for execution in 0..<20 {
            lines.append(#"{"type":"execution","id":"e\#(execution)","consumer":"c\#(execution % 3)","agent":"agt_big","started_at":"2026-11-03T00:00:00Z","ended_at":"2026-11-03T00:00:\#(String(format: "%02d", execution))Z","status":"succeeded","meters":{"cpu_ms":1}}"#)
        }
        let trace = directory.appendingPathComponent("big.jsonl")
        try Self.write(lines.joined(separator: "\n") + "\n", to: trace)
        let flags = ["--plans", catalog.appendingPathComponent("plans").path, "--rules", catalog.appendingPathComponent("rules").path]
        let simulated = try CLITests.run(["simulate", "--usage", trace.path, "--format", "json"] + flags)
        #expect(simulated.status == 2)
        #expect(simulated.error.contains("beyond the largest amount"), "\(simulated.error)")
        #expect(!simulated.output.contains("9223372036854.775807"))
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        let replayed = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", trace.path, "--format", "json"] + flags)
        #expect(replayed.status == 2)
        #expect(replayed.error.contains("beyond the largest amount"), "\(replayed.error)")
        // The ledger itself holds every line, exactly; no payout is made of a clamped sum.
        let executed = try CLITests.run(["ledger", "payouts", "--ledger", ledger, "--week", "2026-11-02", "--execute",
                                         "--rail-log", directory.appendingPathComponent("rail.log").path] + flags)
        #expect(executed.status == 2)
        #expect(executed.error.contains("out_of_range") && executed.error.contains("beyond the largest amount"), "\(executed.error)")
        #expect(((try? String(contentsOf: directory.appendingPathComponent("rail.log"), encoding: .utf8)) ?? "").isEmpty)
        let verify = try CLITests.run(["ledger", "verify", "--ledger", ledger] + flags)
        #expect(verify.status == 0, "\(verify.output)")
        let usage = try CLITests.run(["ledger", "usage", "--ledger", ledger, "--group-by", "consumer", "--period", "30d", "--format", "json"] + flags)
        _ = usage // usage is dated by now; its sums are checked the same way (Int128, then out_of_range).
    }

    // MARK: 3. Failed writes

    @Test("3. a failed write of any result is exit 2 with a message, never a trap and never exit 0",
          arguments: [["generate", "--events", "1000"], ["schema"], ["check"], ["simulate", "--usage", "samples/usage.jsonl", "--format", "json"],
                      ["quote", "--plan", "research-pro", "--meter", "cpu_ms=1200", "--at", "2026-11-30T00:00:00Z"]])
    func failedWrites(arguments: [String]) throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let run = try CLITests.run(arguments, standardOutput: full)
        #expect(run.status == 2, "\(arguments): exit \(run.status)")
        #expect(run.error.contains("cannot write standard output") && run.error.contains("No space left"), "\(arguments): \(run.error)")
    }

    @Test("3. --rail-log /dev/full: the purchase adds nothing and the payout stays recorded, both exit 2, no trap")
    func railLogFull() throws {
        let directory = try Self.scratch()
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        let purchase = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "c1", "--amount", "10.00", "--rail", "log",
                                         "--customer", "cus_1", "--payment-method", "pm_1", "--rail-log", "/dev/full"])
        #expect(purchase.status == 2)
        #expect(purchase.error.contains("No space left"), "\(purchase.error)")
        let balance = try CLITests.run(["ledger", "balance", "--ledger", ledger, "--consumer", "c1"])
        #expect(balance.status == 2 && balance.error.contains("unknown_consumer"))
        // A week with earnings, paid through a full rail log: exit 2, the payout recorded but not
        // paid; a rerun with a writable log pays it once.
        let replay = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", "samples/usage.jsonl"])
        #expect(replay.status == 0, "\(replay.error)")
        let failed = try CLITests.run(["ledger", "payouts", "--ledger", ledger, "--week", "2026-11-02", "--execute", "--rail-log", "/dev/full", "--format", "json"])
        #expect(failed.status == 2)
        #expect(failed.error.contains("No space left"), "\(failed.error)")
        let log = directory.appendingPathComponent("rail.log")
        let rerun = try CLITests.run(["ledger", "payouts", "--ledger", ledger, "--week", "2026-11-02", "--execute", "--rail-log", log.path, "--format", "json"])
        #expect(rerun.status == 0, "\(rerun.error)")
        let payouts = try #require((try Self.json(rerun.output))["payouts"] as? [[String: Any]])
        #expect(!payouts.isEmpty && payouts.allSatisfy { $0["status"] as? String == "paid" || $0["status"] as? String == "carried" })
        let sent = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(sent.count == payouts.filter { $0["status"] as? String == "paid" }.count)
    }

    // MARK: 4. Special files

    @Test("4. --report and --output into a FIFO write through it and leave it a FIFO")
    func specialFiles() throws {
        let directory = try Self.scratch()
        for arguments in [["simulate", "--usage", "samples/usage.jsonl", "--report"], ["generate", "--events", "50", "--output"]] {
            let fifo = directory.appendingPathComponent("fifo-\(arguments[0])").path
            #expect(mkfifo(fifo, 0o600) == 0)
            let box = CLITests.DataBox()
            let reader = Thread {
                if let handle = FileHandle(forReadingAtPath: fifo) { box.data = handle.readDataToEndOfFile() }
                box.done.signal()
            }
            reader.start()
            let run = try CLITests.run(arguments + [fifo])
            // A FIFO replaced by a rename is never opened for writing: the reader would wait for ever.
            guard box.done.wait(timeout: .now() + 60) == .success else {
                Issue.record("\(arguments): nothing was written to the FIFO (was it replaced?)")
                continue
            }
            #expect(run.status == 0, "\(arguments): \(run.error)")
            var status = stat()
            #expect(stat(fifo, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO, "\(arguments): the FIFO was replaced")
            #expect(box.data.count > 100, "\(arguments): nothing came through the FIFO")
        }
    }

    // MARK: 5. Ids as bytes

    @Test("5. café precomposed and decomposed are two consumers: verify passes on SQLite; memory: accepts what SQLite accepts")
    func unicodeLookAlikes() throws {
        let directory = try Self.scratch()
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        for (consumer, key) in [("caf\u{E9}", "k1"), ("cafe\u{301}", "k2")] {
            let run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", consumer, "--amount", "10.00", "--idempotency-key", key])
            #expect(run.status == 0, "\(run.error)")
        }
        let verify = try CLITests.run(["ledger", "verify", "--ledger", ledger])
        #expect(verify.status == 0 && verify.output.contains(" passed, 0 failed"), "\(verify.output)")
        // A trace with look-alike consumers and execution ids: SQLite and memory end equal.
        let trace = directory.appendingPathComponent("t.jsonl")
        try Self.write("""
            {"type":"purchase","at":"2026-11-02T00:00:00Z","consumer":"caf\u{E9}","amount":"10.00"}
            {"type":"purchase","at":"2026-11-02T00:00:00Z","consumer":"cafe\u{301}","amount":"20.00"}
            {"type":"execution","id":"exe_\u{E9}","consumer":"caf\u{E9}","agent":"agt_research","started_at":"2026-11-02T10:00:00Z","ended_at":"2026-11-02T10:00:01Z","status":"succeeded","meters":{"cpu_ms":1200}}
            {"type":"execution","id":"exe_e\u{301}","consumer":"cafe\u{301}","agent":"agt_research","started_at":"2026-11-02T10:00:00Z","ended_at":"2026-11-02T10:00:02Z","status":"succeeded","meters":{"cpu_ms":1200}}

            """, to: trace)
        var outputs: [[String: String]] = []
        for backend in ["memory:", "sqlite:" + directory.appendingPathComponent("r.sqlite").path] {
            let run = try CLITests.run(["ledger", "replay", "--ledger", backend, "--usage", trace.path, "--format", "json"])
            #expect(run.status == 0, "\(backend): \(run.error)")
            let report = try Self.json(run.output)
            #expect((report["executions"] as? [String: Any])?["priced"] as? Int == 2, "\(backend)")
            #expect((report["executions"] as? [String: Any])?["duplicate"] as? Int == 0, "\(backend)")
            outputs.append(try Self.balances(run.output))
        }
        #expect(outputs.count == 2 && outputs[0] == outputs[1])
        #expect(outputs.first?.count == 2)
    }

    // MARK: 6. Secrets

    @Test("6. a password in any URL-like --ledger value is never printed",
          arguments: ["Postgres://tariff:SECRET@127.0.0.1:1/x?connect_timeout=1", "postgress://tariff:SECRET@db:5432/x", "pg://tariff:SECRET@db/x",
                      " postgres://tariff:SECRET@127.0.0.1:1/x?connect_timeout=1", "sqlite://u:SECRET@x", "mysql://root:SECRET@db/x",
                      "POSTGRESQL://tariff:SECRET@127.0.0.1:1/x?connect_timeout=1&sslmode=bogus"])
    func passwordsNeverPrinted(url: String) throws {
        let run = try CLITests.run(["ledger", "balance", "--ledger", url, "--consumer", "c1"])
        #expect(run.status == 2)
        #expect(!run.error.contains("SECRET") && !run.output.contains("SECRET"), "printed: \(run.error)")
    }

    // MARK: 8. --max-span

    @Test("8. an event dated centuries away is rejected with its line (--max-span), fast; the flag moves the bound")
    func maxSpan() throws {
        let directory = try Self.scratch()
        var lines = (0..<100).map { #"{"type":"subscribe","at":"2026-11-01T00:00:00Z","consumer":"c\#($0)","plan":"research-pro"}"# }
        lines.append(#"{"type":"execution","id":"far","consumer":"c1","agent":"agt_research","started_at":"2262-01-01T00:00:00Z","ended_at":"2262-01-01T00:00:01Z","status":"succeeded","meters":{"cpu_ms":1}}"#)
        lines.append(#"{"type":"execution","id":"near","consumer":"c1","agent":"agt_research","started_at":"2026-11-03T00:00:00Z","ended_at":"2026-11-03T00:00:01Z","status":"succeeded","meters":{"cpu_ms":1}}"#)
        let trace = directory.appendingPathComponent("t.jsonl")
        try Self.write(lines.joined(separator: "\n") + "\n", to: trace)
        let start = ContinuousClock.now
        let run = try CLITests.run(["simulate", "--usage", trace.path, "--format", "json"])
        #expect(ContinuousClock.now - start < .seconds(20))
        #expect(run.status == 0, "\(run.error)")
        let rejected = try #require((try Self.json(run.output))["rejected"] as? [[String: Any]])
        #expect(rejected.map { $0["line"] as? Int } == [101])
        #expect((rejected.first?["reason"] as? String)?.contains("400d") == true)
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        let replayed = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", trace.path, "--format", "json"])
        #expect(replayed.status == 0, "\(replayed.error)")
        #expect(((try Self.json(replayed.output))["rejected"] as? [[String: Any]])?.map { $0["line"] as? Int } == [101])
        // --max-span 1d: the execution two days after the first event is rejected too.
        let narrow = try CLITests.run(["simulate", "--usage", trace.path, "--format", "json", "--max-span", "1d"])
        #expect(((try Self.json(narrow.output))["rejected"] as? [[String: Any]])?.map { $0["line"] as? Int } == [101, 102])
        let bad = try CLITests.run(["simulate", "--usage", trace.path, "--max-span", "3 weeks"])
        #expect(bad.status == 2 && bad.error.contains("--max-span"))
    }

    // MARK: 9. Replay accepts what simulate accepts

    @Test("9. a per-call fee of 5e9, a purchase of 1e12 and an execution near the last instant: replay agrees with simulate")
    func replayAgreesWithSimulate() throws {
        let directory = try Self.scratch()
        let catalog = try Self.perCallCatalog(fee: "5000000000")
        let trace = directory.appendingPathComponent("t.jsonl")
        try Self.write("""
            {"type":"purchase","at":"2262-04-01T00:00:00Z","consumer":"c1","amount":"1000000000000.00"}
            {"type":"execution","id":"e1","consumer":"c1","agent":"agt_big","started_at":"2262-04-11T23:00:00Z","ended_at":"2262-04-11T23:47:16.854775Z","status":"succeeded","meters":{"cpu_ms":1}}

            """, to: trace)
        let flags = ["--plans", catalog.appendingPathComponent("plans").path, "--rules", catalog.appendingPathComponent("rules").path, "--format", "json"]
        let simulated = try CLITests.run(["simulate", "--usage", trace.path] + flags)
        #expect(simulated.status == 0, "\(simulated.error)")
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        let replayed = try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", trace.path] + flags)
        #expect(replayed.status == 0, "\(replayed.error)")
        let simulatedTotals = (try Self.json(simulated.output))["totals"] as? [String: String]
        let replayedTotals = (try Self.json(replayed.output))["totals"] as? [String: String]
        #expect(simulatedTotals?["charged"] == "5000000000.000000" && simulatedTotals?["purchased"] == "1000000000000.000000")
        #expect(simulatedTotals == replayedTotals)
        #expect(try Self.balances(replayed.output) == ["c1": "995000000000.000000"])
    }

    // MARK: 11. Reads do not write

    @Test("11. balance, verify, usage, payouts and a refused purchase leave the SQLite file byte-identical")
    func readsDoNotWrite() throws {
        let directory = try Self.scratch()
        let path = directory.appendingPathComponent("l.sqlite").path
        let ledger = "sqlite:" + path
        #expect(try CLITests.run(["ledger", "replay", "--ledger", ledger, "--usage", "samples/usage.jsonl"]).status == 0)
        #expect(try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "c1", "--amount", "5.00", "--idempotency-key", "k"]).status == 0)
        // The database and its write-ahead log: what the ledger holds. (The -shm file is SQLite's
        // shared-memory index, which every reader updates by design; it holds no data.)
        func files() throws -> [String: Data] {
            var result: [String: Data] = [:]
            // A read-only connection may leave an empty WAL file where there was none: no data.
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where !name.hasSuffix("-shm") {
                let data = try Data(contentsOf: directory.appendingPathComponent(name))
                if !(name.hasSuffix("-wal") && data.isEmpty) { result[name] = data }
            }
            return result
        }
        let before = try files()
        for arguments in [["balance", "--consumer", "c1"], ["verify"], ["usage", "--period", "30d"], ["payouts", "--week", "2026-11-02"],
                          ["purchase", "--consumer", "c1", "--amount", "7.00", "--idempotency-key", "k"],
                          ["purchase", "--consumer", "c1", "--amount", "0.001"], ["balance", "--consumer", "nobody"]] {
            _ = try CLITests.run(["ledger"] + arguments + ["--ledger", ledger])
            let after = try files()
            #expect(after.keys.sorted() == before.keys.sorted(), "\(arguments) left files \(after.keys.sorted())")
            #expect(after == before, "\(arguments) changed the ledger's bytes")
        }
    }

    @Test("11. a ledger on a read-only mount is readable: balance and verify (needs root to mount; skipped otherwise)")
    func readOnlyMount() throws {
        let directory = try Self.scratch().appendingPathComponent("mount")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func shell(_ command: String) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", command]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        guard try shell("mount -t tmpfs -o size=16m tmpfs '\(directory.path)'") == 0 else { return }
        defer { _ = try? shell("umount '\(directory.path)'") }
        let path = directory.appendingPathComponent("l.sqlite").path
        #expect(try CLITests.run(["ledger", "purchase", "--ledger", "sqlite:" + path, "--consumer", "c1", "--amount", "5.00", "--idempotency-key", "k"]).status == 0)
        // A cleanly closed ledger (no -wal, no -shm: SQLite cannot make them on a read-only mount).
        guard try shell("python3 -c \"import sqlite3; c = sqlite3.connect('\(path)'); c.execute('pragma wal_checkpoint(TRUNCATE)'); c.close()\"") == 0 else { return }
        #expect(try shell("mount -o remount,ro '\(directory.path)'") == 0)
        let balance = try CLITests.run(["ledger", "balance", "--ledger", "sqlite:" + path, "--consumer", "c1", "--format", "json"])
        #expect(balance.status == 0, "\(balance.error)")
        #expect(balance.output.contains(#""available":"5.000000""#))
        let verify = try CLITests.run(["ledger", "verify", "--ledger", "sqlite:" + path])
        #expect(verify.status == 0 && verify.output.contains(" passed, 0 failed"), "\(verify.output)\(verify.error)")
    }

    // MARK: Unclear messages

    @Test("messages: --amount -1, --meter =5, a repeated --meter, escape sequences, out-of-range timestamps, 1e-999999, an empty catalog")
    func clearMessages() throws {
        let directory = try Self.scratch()
        let ledger = "sqlite:" + directory.appendingPathComponent("l.sqlite").path
        var run = try CLITests.run(["ledger", "purchase", "--ledger", ledger, "--consumer", "c1", "--amount", "-1"])
        #expect(run.status == 2 && run.error.contains("positive") && !run.error.contains("Missing value"), "\(run.error)")
        run = try CLITests.run(["quote", "--plan", "research-pro", "--meter", "=5"])
        #expect(run.status == 2 && run.error.contains("meter name"), "\(run.error)")
        run = try CLITests.run(["quote", "--plan", "research-pro", "--meter", "cpu_ms=5", "--meter", "cpu_ms=7"])
        #expect(run.status == 2 && run.error.contains("twice"), "\(run.error)")
        run = try CLITests.run(["ledger", "balance", "--ledger", ledger, "--consumer", "evil\u{1B}[2J\u{7}"])
        #expect(run.status == 2 && !run.error.contains("\u{1B}"), "\(run.error)")
        let trace = directory.appendingPathComponent("t.jsonl")
        try Self.write("""
            {"type":"purchase","at":"9999-01-01T00:00:00Z","consumer":"c1","amount":"1.00"}
            {"type":"execution","id":"e1","consumer":"c\\u001b[2J","agent":"agt_research","started_at":"2026-11-02T10:00:00Z","ended_at":"2026-11-02T10:00:01Z","status":"succeeded","meters":{"cpu_ms":1e-999999}}
            {"type":"execution","id":"e2","consumer":"c\\u001b[2J","agent":"agt_research","started_at":"2026-11-02T10:00:00Z","ended_at":"2026-11-02T10:00:01Z","status":"succeeded","meters":{"cpu_ms":1}}
            {"type":"cancel","at":"2026-11-02T10:00:00Z","consumer":"c\\u001b[2J","plan":"research-pro"}

            """, to: trace)
        run = try CLITests.run(["simulate", "--usage", trace.path])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("outside the representable range"), "\(run.output)")
        #expect(run.output.contains("more than 6 fractional digits") && !run.output.contains("above 10^12"), "\(run.output)")
        #expect(!run.output.contains("\u{1B}") && !run.error.contains("\u{1B}"), "an escape sequence reached the terminal")
        let empty = try CLITests.catalog(plans: [:], rules: CLITests.rules)
        run = try CLITests.run(["check", empty.path])
        #expect(run.status == 1 && run.output.contains("no plan"), "\(run.output)\(run.error)")
    }
}

/// Issue 12, item 7: peak memory of a command fed a hostile input, measured with GNU time (the
/// child's own peak resident set; `.ci/run` installs it when missing).
@Suite("hardening: bounded memory (issue 12, item 7)")
struct BoundedMemoryTests {
    /// The peak resident memory of `tariff ARGUMENTS`, in KiB, and its exit status.
    static func peakKiB(_ arguments: [String]) throws -> (kib: Int, run: CLITests.Run)? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else { return nil }
        let executable = try #require(CLITests.executable).path
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("time-\(UUID().uuidString)").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = ["-f", "%M", "-o", report, executable] + arguments
        process.currentDirectoryURL = CLITests.repositoryRoot
        process.standardOutput = FileHandle.nullDevice
        let error = Pipe()
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let errorText = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let text = try String(contentsOfFile: report, encoding: .utf8)
        let kib = try #require(text.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.last, "no figure in \(text)")
        return (kib, CLITests.Run(status: process.terminationStatus, output: "", error: errorText))
    }

    @Test("a 2 GB plan file is refused by its size, before it is read (peak < 64 MiB; it was 4.2 GB)")
    func hugePlanFile() throws {
        let catalog = try CLITests.catalog(plans: [:], rules: CLITests.rules)
        let plan = catalog.appendingPathComponent("plans/p.yaml").path
        #expect(FileManager.default.createFile(atPath: plan, contents: nil))
        #expect(truncate(plan, 2 << 30) == 0)   // sparse: no disk used
        guard let measured = try Self.peakKiB(["check", "--plans", catalog.appendingPathComponent("plans").path,
                                               "--rules", catalog.appendingPathComponent("rules").path]) else { return }
        #expect(measured.run.status == 1)
        #expect(measured.kib < 64 * 1_024, "peak \(measured.kib) KiB")
    }

    @Test("2,000,000 rejected lines: listed up to 100,000, counted beyond, peak < 128 MiB (it grew with the lines)")
    func manyRejectedLines() throws {
        let directory = try LedgerCLITests.scratch()
        let trace = directory.appendingPathComponent("bad.jsonl")
        let line = Array("{\"type\":\"bogus\"}\n".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(line.count * 2_000_000)
        for _ in 0..<2_000_000 { bytes += line }
        try Data(bytes).write(to: trace)
        let json = directory.appendingPathComponent("out.json")
        guard let measured = try Self.peakKiB(["simulate", "--usage", trace.path, "--format", "json", "--report", directory.appendingPathComponent("r.html").path])
        else { return }
        #expect(measured.run.status == 0, "\(measured.run.error)")
        #expect(measured.kib < 128 * 1_024, "peak \(measured.kib) KiB")
        let run = try CLITests.run(["simulate", "--usage", trace.path, "--format", "json"])
        try Data(run.output.utf8).write(to: json)
        let report = try HardeningCLITests.json(run.output)
        #expect(report["rejected_total"] as? Int == 2_000_000)
        #expect((report["rejected"] as? [Any])?.count == 100_000)
        #expect(report["lines_read"] as? Int == 2_000_000)
    }
}
