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
