import Foundation
import Testing

/// `tariff generate`, `simulate`, `--compare` and `--report`, run as a user would.
@Suite("tariff simulate")
struct SimulateCLITests {
    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func generatedTrace() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("generated-\(UUID().uuidString).jsonl").path
        let run = try CLITests.run(["generate", "--events", "3000", "--consumers", "60", "--seed", "11", "--output", path])
        #expect(run.status == 0)
        return path
    }

    @Test("simulate --format json has cli.md's fields; every execution line is in exactly one count")
    func json() throws {
        let trace = try Self.generatedTrace()
        let run = try CLITests.run(["simulate", "--usage", trace, "--format", "json"])
        #expect(run.status == 0)
        let report = try Self.json(run.output)
        for key in ["currency", "from", "to", "lines_read", "rejected", "warnings", "executions", "totals", "consumers", "agents", "plans", "payouts"] {
            #expect(report[key] != nil, "missing \(key)")
        }
        #expect(report["lines_read"] as? Int == 3000)
        let executions = try #require(report["executions"] as? [String: Int])
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        let executionLines = lines.filter { $0.contains(#""type":"execution""#) }.count
        let rejected = (report["rejected"] as? [Any])?.count ?? -1
        #expect((executions["priced"] ?? 0) + (executions["refused"] ?? 0) + (executions["duplicate"] ?? 0) + rejected == executionLines)
        // Amounts are decimal strings with six digits.
        let totals = try #require(report["totals"] as? [String: String])
        #expect(totals["charged"]?.split(separator: ".").last?.count == 6)
    }

    /// The times of a trace's lines, in file order (`ended_at`, else `at`), in nanoseconds.
    static func times(_ path: String) throws -> [Int64] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let text = try #require((object["ended_at"] ?? object["at"]) as? String)
            // Whole seconds and milliseconds are all the generator writes: 2026-11-02T03:04:05.678Z.
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
            let date = try #require(formatter.date(from: text), "\(text)")
            return Int64((date.timeIntervalSince1970 * 1_000).rounded()) * 1_000_000
        }
    }

    @Test("generate --delivery-delay, --late-fraction/--late-max and --shuffle write the same lines in delivery or random order; simulate reports the same")
    func deliveryOrder() throws {
        let directory = FileManager.default.temporaryDirectory.path
        var written: [String] = []
        // The traces are removed afterwards (every run left four 800 KB files in /tmp).
        defer { for path in written { try? FileManager.default.removeItem(atPath: path) } }
        func generate(_ extra: [String]) throws -> String {
            let path = directory + "/delivery-\(UUID().uuidString).jsonl"
            written.append(path)
            let run = try CLITests.run(["generate", "--events", "3000", "--consumers", "60", "--seed", "11", "--output", path] + extra)
            #expect(run.status == 0, "\(extra): \(run.error)")
            return path
        }
        let sorted = try generate([])
        let delivered = try generate(["--delivery-delay", "3"])
        let late = try generate(["--delivery-delay", "3", "--late-fraction", "0.05", "--late-max", "2d"])
        let shuffled = try generate(["--shuffle"])
        let sortedLines = try String(contentsOfFile: sorted, encoding: .utf8).split(separator: "\n")
        for path in [delivered, late, shuffled] {
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            #expect(lines.sorted() == sortedLines.sorted(), "the same lines")
            #expect(lines != sortedLines, "in another order")
        }
        // The same seed and options, the same bytes.
        let again = try generate(["--delivery-delay", "3", "--late-fraction", "0.05", "--late-max", "2d"])
        #expect(FileManager.default.contents(atPath: again) == FileManager.default.contents(atPath: late))
        // Delivery order: a line is written at its time plus 0-3 s, so no line comes more than 3 s
        // after a line of a later time; with late lines, about 5% (150) come up to 2 days after.
        func lateness(_ path: String) throws -> [Int64] {
            var latest = Int64.min
            return try Self.times(path).map { time in
                latest = max(latest, time)
                return latest - time
            }
        }
        #expect(try lateness(sorted).allSatisfy { $0 == 0 })
        let deliveredLateness = try lateness(delivered)
        #expect(deliveredLateness.allSatisfy { $0 <= 3_000_000_000 } && deliveredLateness.contains { $0 > 0 })
        let lateLateness = try lateness(late)
        let beyond = lateLateness.filter { $0 > 3_000_000_000 }.count
        #expect((60...300).contains(beyond), "\(beyond) lines more than 3 s late")
        #expect(lateLateness.allSatisfy { $0 <= 2 * 86_400 * 1_000_000_000 + 3_000_000_000 })
        // usage.md: any order gives the report of the sorted trace (line numbers aside).
        func report(_ path: String) throws -> [String: Any] {
            let run = try CLITests.run(["simulate", "--usage", path, "--format", "json"])
            #expect(run.status == 0, "\(run.error)")
            var report = try Self.json(run.output)
            report["warnings"] = nil
            report["rejected"] = nil
            return report
        }
        let expected = try report(sorted) as NSDictionary
        for path in [delivered, late, shuffled] { #expect(try report(path) as NSDictionary == expected) }
        // On standard input too (copied to a temporary file, since it may be read twice).
        let process = Process()
        process.executableURL = try #require(CLITests.executable)
        process.arguments = ["simulate", "--usage", "-", "--format", "json"]
        process.currentDirectoryURL = CLITests.repositoryRoot
        process.standardInput = try #require(FileHandle(forReadingAtPath: shuffled))
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var fromStandardInput = try Self.json(String(decoding: data, as: UTF8.self))
        fromStandardInput["warnings"] = nil
        fromStandardInput["rejected"] = nil
        #expect(process.terminationStatus == 0 && fromStandardInput as NSDictionary == expected)
        // Bad values exit 2 with the option named.
        for bad in [["--delivery-delay", "-1"], ["--late-fraction", "1.5", "--late-max", "2d"], ["--late-fraction", "0.1"], ["--late-max", "3x", "--late-fraction", "0.1"]] {
            let run = try CLITests.run(["generate", "--events", "10"] + bad)
            #expect(run.status == 2 && run.error.contains(bad[0]), "\(bad): \(run.error)")
        }
    }

    @Test("--compare against a catalog with a higher per-call fee: per-plan old, new and difference")
    func compare() throws {
        let trace = try Self.generatedTrace()
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("other-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: CLITests.repositoryRoot.appendingPathComponent("plans"), to: other.appendingPathComponent("plans"))
        try FileManager.default.copyItem(at: CLITests.repositoryRoot.appendingPathComponent("rules"), to: other.appendingPathComponent("rules"))
        let payg = other.appendingPathComponent("plans/research-payg.yaml")
        let text = try String(contentsOf: payg, encoding: .utf8).replacingOccurrences(of: "fee: 0.02", with: "fee: 0.03")
            .replacingOccurrences(of: "charge: 0.02, split: { creator: 0.016, platform: 0.003, processing: 0.001 }", with: "charge: 0.03")
        try text.write(to: payg, atomically: true, encoding: .utf8)
        let run = try CLITests.run(["simulate", "--usage", trace, "--compare", other.path, "--format", "json"])
        #expect(run.status == 0)
        let report = try Self.json(run.output)
        let compare = try #require(report["compare"] as? [String: Any])
        let plans = try #require(compare["plans"] as? [[String: Any]])
        let payRow = try #require(plans.first { $0["plan"] as? String == "research-payg" })
        // Every priced research-payg execution costs 0.01 more: the difference is half the old amount.
        let old = try #require((payRow["old"] as? String).flatMap { Int($0.replacingOccurrences(of: ".", with: "")) })
        let new = try #require((payRow["new"] as? String).flatMap { Int($0.replacingOccurrences(of: ".", with: "")) })
        #expect(old > 0 && new * 2 == old * 3)
        // Sorted by the size of the change: the only plan that changed comes first.
        #expect(plans.first?["plan"] as? String == "research-payg")
        let textRun = try CLITests.run(["simulate", "--usage", trace, "--compare", other.path])
        #expect(textRun.output.contains("biggest changes by plans"))
    }

    @Test("--report renders in headless Chromium and its numbers match the JSON")
    func report() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Issue.record("Chromium is not installed (apt-get install chromium): the report cannot be checked in a browser")
            return
        }
        let trace = try Self.generatedTrace()
        let html = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString).html").path
        let run = try CLITests.run(["simulate", "--usage", trace, "--report", html, "--format", "json"])
        #expect(run.status == 0)
        let report = try Self.json(run.output)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        // Nothing is fetched: the only URLs allowed are the SVG namespace names, which are identifiers
        // a browser never loads; with them taken out, no http(s) URL, no src= or href= to anything
        // but the page itself, no <link>, no CSS url() or @import is left.
        let withoutNamespaces = page.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
            .replacingOccurrences(of: "xmlns:xlink=\"http://www.w3.org/1999/xlink\"", with: "")
        #expect(!withoutNamespaces.contains("http://") && !withoutNamespaces.contains("https://") && !withoutNamespaces.contains("//cdn"))
        #expect(!page.contains("<link") && !page.contains("@import") && !page.contains("url("))
        #expect(page.firstMatch(of: /(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]/) == nil, "the page references a resource")
        // The DOM as the browser built it.
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: chromium)
        dump.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://\(html)"]
        let pipe = Pipe()
        dump.standardOutput = pipe
        dump.standardError = FileHandle.nullDevice
        try dump.run()
        let dom = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        dump.waitUntilExit()
        let totals = try #require(report["totals"] as? [String: String])
        for party in ["charged", "purchased", "creator", "platform", "processing"] {
            #expect(dom.contains("data-total=\"\(party)\">\(totals[party] ?? "?")<"), "total \(party) differs from the JSON")
        }
        for plan in (report["plans"] as? [[String: Any]]) ?? [] {
            let label = "\(plan["plan"] as? String ?? "") v\(plan["version"] as? Int ?? 0)"
            #expect(dom.contains("data-plan=\"\(label)\" data-amount=\"\(plan["charged"] as? String ?? "?")\""))
        }
        for payout in (report["payouts"] as? [[String: String]]) ?? [] {
            #expect(dom.contains("data-payout=\"\(payout["creator"] ?? "")|\(payout["week_start"] ?? "")\">\(payout["amount"] ?? "?")<"))
        }
        // It renders: a screenshot of the page has content.
        let png = html + ".png"
        let shot = Process()
        shot.executableURL = URL(fileURLWithPath: chromium)
        shot.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--screenshot=\(png)", "--window-size=1200,1600", "file://\(html)"]
        shot.standardOutput = FileHandle.nullDevice
        shot.standardError = FileHandle.nullDevice
        try shot.run()
        shot.waitUntilExit()
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(size > 20_000)
    }

    @Test("bad simulate invocations exit 2", arguments: [
        ["simulate", "--usage", "/nonexistent/trace.jsonl"],
        ["simulate", "--usage", "-", "--from", "yesterday"],
        ["simulate", "--usage", "-", "--currency", "XYZ"],
        ["simulate", "--usage", "-", "--currency", "EUR"],
        ["generate", "--events", "0"],
    ])
    func badInput(arguments: [String]) throws {
        let run = try CLITests.run(arguments)
        #expect(run.status == 2)
        #expect(!run.error.isEmpty)
    }
}

@Suite("tariff simulate progress")
struct SimulateProgressTests {
    @Test("a progress bar on standard error when it is a terminal, nothing when it is not")
    func progress() throws {
        let trace = FileManager.default.temporaryDirectory.appendingPathComponent("progress-\(UUID().uuidString).jsonl").path
        #expect(try CLITests.run(["generate", "--events", "70000", "--consumers", "50", "--output", trace]).status == 0)
        let plain = try CLITests.run(["simulate", "--usage", trace])
        #expect(!plain.error.contains("simulating ["))
        // `script` gives the command a terminal; its transcript holds what the terminal showed.
        // Without `script` (bsdutils) the terminal case cannot be run: that is a failure, not a pass
        // (.ci/run installs it when it is missing).
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "/usr/bin/script (Debian package bsdutils) is missing: apt-get install bsdutils")
        let tariff = try #require(CLITests.executable, "the tariff executable is not built")
        let transcript = trace + ".typescript"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-q", "-e", "-c", "\(tariff.path) simulate --usage \(trace) --plans \(CLITests.repositoryRoot.path)/plans --rules \(CLITests.repositoryRoot.path)/rules > /dev/null", transcript]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let shown = (try? String(contentsOfFile: transcript, encoding: .utf8)) ?? ""
        #expect(shown.contains("simulating ["))
    }
}
