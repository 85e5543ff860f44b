import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffPostgres
import TariffSettlement
import TariffSQLite

/// service.md, "The portal": signed read-only links, the consumer's and the creator's pages as
/// Chromium renders them (every figure equal to the API's answer), and every way a link stops
/// opening anything (altered, expired by the clock, revoked) answered alike, with no data.
@Suite("The portal")
struct PortalTests {
    static let start = Timestamp(rfc3339: "2026-11-02T09:00:00Z")!
    static let creator = "acct_1Nv0FGQ9RKHgCVdK"

    // MARK: Driving the server

    static func purchase(_ server: TestServer, _ consumer: String, _ amount: String, key: String) async throws -> Answer {
        let answer = try await server.send("POST", "/v1/purchases", key: server.adminKey, json: "{\"consumer\":\"\(consumer)\",\"amount\":\"\(amount)\"}",
                                           headers: ["Idempotency-Key": key])
        #expect(answer.status == 201, "\(answer.body)")
        return answer
    }

    /// Reserve then settle now (the clock's instant), on a plan or the agent's default.
    static func run(_ server: TestServer, _ execution: String, _ consumer: String, plan: String?, at: String) async throws {
        let planField = plan.map { ",\"plan\":\"\($0)\"" } ?? ",\"agent\":\"agt_research\""
        let hold = try await server.send("POST", "/v1/executions", key: server.adminKey,
                                         json: "{\"execution\":\"\(execution)\",\"consumer\":\"\(consumer)\"\(planField)}")
        #expect(hold.status == 201, "\(hold.body)")
        let settled = try await server.send("POST", "/v1/executions/\(execution)/settle", key: server.adminKey,
                                            json: "{\"ended_at\":\"\(at)\",\"meters\":{\"cpu_ms\":1200,\"inference_calls\":3}}")
        #expect(settled.status == 200, "\(settled.body)")
    }

    static func move(_ server: TestServer, to instant: String) async throws {
        let moved = try await server.send("POST", "/v1/clock", key: server.adminKey, json: "{\"now\":\"\(instant)\"}")
        #expect(moved.status == 200, "\(moved.body)")
    }

    static func link(_ server: TestServer, _ body: String, key: String? = nil) async throws -> (id: String, url: String, path: String) {
        let made = try await server.send("POST", "/v1/portal/links", key: key ?? server.adminKey, json: body)
        #expect(made.status == 201, "\(made.body)")
        let url = try #require(made.string("url"))
        return (try #require(made.string("id")), url, try #require(URL(string: url)?.path))
    }

    /// A rail that refuses every transfer, as a closed connected account would (a payout `failed`).
    struct RefusingRail: PaymentRail {
        func send(_ transfer: PayoutTransfer) async throws -> String {
            throw SettlementError(.railRejected, "the destination account is closed")
        }
    }

    /// Three payout weeks of the creator: 2026-11-02 paid through the API, 2026-11-09 refused by
    /// the rail (failed), 2026-11-16 in progress (upcoming); and two consumers with executions
    /// and purchases. The clock ends at 2026-11-18T10:00:00Z.
    static func populated() async throws -> TestServer {
        let server = try await TestServer.start(testClock: start)
        _ = try await purchase(server, "cus_a", "100", key: "a-1")
        _ = try await purchase(server, "cus_a", "25.50", key: "a-2")
        // research-pro's first fee (49.00) is charged at the subscribe: the creator's 80% is 39.20.
        #expect(try await server.send("POST", "/v1/subscriptions", key: server.adminKey, json: #"{"consumer":"cus_a","plan":"research-pro"}"#).status == 201)
        try await run(server, "exe_a1", "cus_a", plan: "research-payg", at: "2026-11-02T09:00:00Z")
        try await run(server, "exe_a2", "cus_a", plan: nil, at: "2026-11-02T09:00:00Z")
        try await move(server, to: "2026-11-11T00:00:00Z")
        let paid = try await server.send("POST", "/v1/payouts/2026-11-02/execute", key: server.adminKey)
        #expect(paid.status == 200, "\(paid.body)")
        // Week of 2026-11-09: cus_b's fee; its payout refused by the rail on 2026-11-18.
        _ = try await purchase(server, "cus_b", "70", key: "b-1")
        #expect(try await server.send("POST", "/v1/subscriptions", key: server.adminKey, json: #"{"consumer":"cus_b","plan":"research-pro"}"#).status == 201)
        try await run(server, "exe_b1", "cus_b", plan: "research-payg", at: "2026-11-11T00:00:00Z")
        try await move(server, to: "2026-11-18T09:00:00Z")
        let refused = try await server.service.settlement.executePayouts(week: CivilDate(year: 2026, month: 11, day: 9)!, rail: RefusingRail())
        #expect(refused.first { $0.creator == creator }?.status == .failed)
        // The week in progress.
        try await run(server, "exe_a3", "cus_a", plan: "research-payg", at: "2026-11-18T09:00:00Z")
        try await move(server, to: "2026-11-18T10:00:00Z")
        return server
    }

    // MARK: Chromium

    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs Chromium headless on `arguments` and answers what it printed, off the cooperative
    /// threads (the server answering Chromium runs on them).
    static func chromium(_ arguments: [String]) async throws -> String {
        let path = try #require(chromium)
        let profile = temporaryPath("chromium-profile")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                try? FileManager.default.removeItem(atPath: profile)
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
    }

    /// `attribute="key">VALUE<` pairs of the DOM: each figure by its name.
    static func figures(_ dom: String, _ attribute: String) throws -> [String: String] {
        var found: [String: String] = [:]
        let pattern = try Regex("\(attribute)=\"([^\"]*)\"[^>]*>([^<]*)<")
        for match in dom.matches(of: pattern) {
            if let key = match.output[1].substring, let value = match.output[2].substring { found[String(key)] = String(value) }
        }
        return found
    }

    /// The page names nothing outside itself: no URL but the SVG namespace, no src or href, no
    /// stylesheet link, no CSS url() or import.
    static func expectSelfContained(_ page: String) {
        let withoutNamespaces = page.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        #expect(!withoutNamespaces.contains("http://") && !withoutNamespaces.contains("https://") && !withoutNamespaces.contains("//cdn"))
        #expect(!page.contains("<link") && !page.contains("@import") && !page.contains("url(") && !page.contains("<script"))
        #expect(page.firstMatch(of: /(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]/) == nil, "the page references a resource")
    }

    // MARK: Tests

    @Test("the consumer's page in headless Chromium: balance, usage by agent, executions and purchases, each figure the API's; nothing of another consumer")
    func consumerPage() async throws {
        guard Self.chromium != nil else {
            print("skipped: Chromium is not installed (apt-get install chromium): the portal pages cannot be checked in a browser")
            return
        }
        let server = try await Self.populated()
        let admin = server.adminKey
        let runtime = try await server.key(.runtime)
        let link = try await Self.link(server, #"{"consumer":"cus_a"}"#, key: runtime)
        let other = try await Self.link(server, #"{"consumer":"cus_b"}"#)
        #expect(link.url.hasPrefix("http://127.0.0.1:\(server.port)/portal/pl_"))
        // Served as HTML with the headers of service.md and none of the API's keys.
        let fetched = try await HTTP.send("GET", link.url)
        #expect(fetched.status == 200)
        #expect(fetched.headers["referrer-policy"] == "no-referrer")
        #expect(fetched.headers["content-type"] == "text/html; charset=utf-8")
        #expect(fetched.headers["cache-control"] == "no-store")
        #expect(fetched.headers["content-security-policy"]?.hasPrefix("default-src 'none'") == true)
        Self.expectSelfContained(fetched.body)

        let dom = try await Self.chromium(["--dump-dom", link.url])
        #expect(dom.contains("<span data-consumer=\"\">cus_a</span>"), "\(dom.prefix(400))")
        // Balance: GET /v1/balance.
        let balance = try await server.send("GET", "/v1/balance?consumer=cus_a", key: admin)
        let shownBalance = try Self.figures(dom, "data-balance")
        #expect(shownBalance["available"] == balance.string("available"))
        #expect(shownBalance["reserved"] == balance.string("reserved"))
        // By hand: 125.50 bought; 49.00 (research-pro's fee) + 0.02 + 0.02 (research-payg twice) +
        // 0.000000 (the subscription's run inside its allowance) charged.
        #expect(balance.string("available") == "76.460000")
        // Usage by agent, last 30 days: GET /v1/usage, each row in the table and the chart.
        let usage = try await server.send("GET", "/v1/usage?period=30d&group_by=agent&consumer=cus_a", key: admin)
        let rows = usage.json?["data"] as? [[String: Any]] ?? []
        #expect(rows.count == 1)
        let costs = try Self.figures(dom, "data-usage-cost"), units = try Self.figures(dom, "data-usage-units"), counts = try Self.figures(dom, "data-usage-executions")
        #expect(costs.count == rows.count)
        for row in rows {
            let agent = try #require(row["agent"] as? String)
            #expect(costs[agent] == row["cost"] as? String)
            #expect(units[agent] == row["compute_units"] as? String)
            #expect(counts[agent] == (row["executions"] as? Int).map(String.init))
            #expect(dom.contains("data-agent=\"\(agent)\" data-amount=\"\(row["cost"] as? String ?? "?")\""), "the chart's bar of \(agent)")
        }
        // By hand: three runs of 1,200 cpu_ms and 3 inference calls, 2.700 compute units each.
        #expect(costs["agt_research"] == "49.040000" && units["agt_research"] == "8.100" && counts["agt_research"] == "3")
        // Recent executions: each as GET /v1/executions/{id} answers it; cus_a's three, newest first.
        let charged = try Self.figures(dom, "data-execution-charged"), executionUnits = try Self.figures(dom, "data-execution-units")
        #expect(Set(charged.keys) == ["exe_a1", "exe_a2", "exe_a3"])
        for id in charged.keys {
            let execution = try await server.send("GET", "/v1/executions/\(id)", key: admin)
            #expect(charged[id] == execution.string("charged"), "\(id)")
            #expect(executionUnits[id] == execution.string("compute_units"), "\(id)")
        }
        #expect(charged["exe_a1"] == "0.020000" && charged["exe_a2"] == "0.000000")
        // Newest first: exe_a3 (2026-11-18) above the two of 2026-11-02.
        let positions = ["exe_a3", "exe_a1", "exe_a2"].compactMap { dom.range(of: "data-execution-charged=\"\($0)\"")?.lowerBound }
        #expect(positions.count == 3 && positions[0] < positions[1] && positions[0] < positions[2])
        // Purchases: the amounts the purchases were answered with, newest first (same instant: by key).
        let amounts = try Self.figures(dom, "data-purchase-amount")
        #expect(Set(amounts.values) == ["100.000000", "25.500000"])
        #expect(try Self.figures(dom, "data-purchase-status").values.allSatisfy { $0 == "succeeded" })
        // Nothing of cus_b: its id, executions, purchase.
        for foreign in ["cus_b", "exe_b1", "70.000000"] { #expect(!dom.contains(foreign), "cus_a's page shows \(foreign)") }
        // And cus_b's page shows its own figures, nothing of cus_a.
        let otherDOM = try await Self.chromium(["--dump-dom", other.url])
        #expect(try Self.figures(otherDOM, "data-balance")["available"] == (try await server.send("GET", "/v1/balance?consumer=cus_b", key: admin)).string("available"))
        #expect(Set(try Self.figures(otherDOM, "data-execution-charged").keys) == ["exe_b1"])
        for foreign in ["cus_a", "exe_a1", "exe_a3", "100.000000", "25.500000"] { #expect(!otherDOM.contains(foreign), "cus_b's page shows \(foreign)") }
        // It renders: a screenshot has content.
        let png = temporaryPath("portal.png")
        _ = try await Self.chromium(["--screenshot=\(png)", "--window-size=1200,1400", link.url])
        #expect(((try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0) > 20_000)
        await server.stop()
        Self.expectTokenNotLogged(server, [link.url, other.url])
    }

    @Test("the creator's page in headless Chromium: earnings by week and the payout calendar (paid, failed, upcoming), each figure GET /v1/payouts's")
    func creatorPage() async throws {
        guard Self.chromium != nil else {
            print("skipped: Chromium is not installed (apt-get install chromium): the portal pages cannot be checked in a browser")
            return
        }
        let server = try await Self.populated()
        let admin = server.adminKey
        let link = try await Self.link(server, "{\"creator\":\"\(Self.creator)\"}")
        let dom = try await Self.chromium(["--dump-dom", link.url])
        #expect(dom.contains("<span data-creator=\"\">\(Self.creator)</span>"), "\(dom.prefix(400))")
        let earnings = try Self.figures(dom, "data-earnings"), amounts = try Self.figures(dom, "data-payout"), carried = try Self.figures(dom, "data-carried")
        let statuses = try Self.figures(dom, "data-status")
        #expect(Set(earnings.keys) == ["2026-11-02", "2026-11-09", "2026-11-16"])
        for week in earnings.keys {
            let answer = try await server.send("GET", "/v1/payouts?week=\(week)", key: admin)
            let row = try #require((answer.json?["payouts"] as? [[String: Any]])?.first { $0["creator"] as? String == Self.creator })
            #expect(earnings[week] == row["earnings"] as? String, "\(week)")
            #expect(amounts[week] == row["amount"] as? String, "\(week)")
            #expect(carried[week] == row["carried"] as? String, "\(week)")
            #expect(dom.contains("data-status=\"\(week)\" data-api-status=\"\(row["status"] as? String ?? "?")\""), "\(week)")
            // The chart's bar of the week.
            #expect(dom.contains("data-week=\"\(week)\" data-amount=\"\(row["earnings"] as? String ?? "?")\""), "\(week)")
        }
        // By hand: 80% of 49.00 + 80% of 0.02 (research-payg; the subscription's run was free) = 39.216 paid on
        // 2026-11-11; 80% of 49.00 + 0.016 = 39.216 earned the next week, refused by the rail (back to earnings);
        // this week 0.016 earned and 39.238 owed (78.448 earned in all - 39.21 paid), due on 2026-11-25 (to the cent: 39.23).
        #expect(earnings["2026-11-02"] == "39.216000" && amounts["2026-11-02"] == "39.210000")
        #expect(statuses["2026-11-02"] == "paid")
        #expect(statuses["2026-11-09"]?.hasPrefix("failed") == true)
        #expect(dom.contains("the destination account is closed"))
        #expect(earnings["2026-11-16"] == "0.016000" && amounts["2026-11-16"] == "39.230000")
        #expect(statuses["2026-11-16"]?.hasPrefix("upcoming") == true)
        // Twelve weeks in the chart, the weeks without a row at zero.
        #expect(dom.matches(of: /data-week="/).count == 12)
        #expect(dom.contains("data-week=\"2026-10-26\" data-amount=\"0.000000\""))
        Self.expectSelfContained(dom)
        await server.stop()
        Self.expectTokenNotLogged(server, [link.url])
    }

    /// Neither the token nor any part of it reached a log line.
    static func expectTokenNotLogged(_ server: TestServer, _ urls: [String]) {
        for url in urls {
            let token = String(url.split(separator: "/").last ?? "")
            let mac = String(token.split(separator: ".").last ?? "")
            #expect(token.count > 80 && mac.count == 64)
            for line in server.logs.all {
                #expect(!line.contains(mac), "a portal token reached the log: \(line.prefix(120))")
            }
        }
        #expect(server.logs.all.contains { $0.contains("route=/portal/{token}") }, "the page's requests are logged by their template")
    }

    @Test("an altered, forged, expired (test clock) or revoked link gets one and the same page with no data; revoking is idempotent")
    func refusedLinks() async throws {
        let server = try await TestServer.start(testClock: Self.start)
        _ = try await Self.purchase(server, "cus_a", "42", key: "p")
        let link = try await Self.link(server, #"{"consumer":"cus_a"}"#)
        let good = try await HTTP.send("GET", link.url)
        #expect(good.status == 200 && good.body.contains("42.000000"))
        let token = String(link.path.dropFirst("/portal/".count))
        let (id, mac) = (String(token.split(separator: ".")[0]), String(token.split(separator: ".")[1]))
        func flipped(_ text: String, at index: Int) -> String {
            var characters = Array(text)
            characters[index] = characters[index] == "0" ? "1" : "0"
            return String(characters)
        }
        // The same link signed under another secret: what a forger without the ledger's secret makes.
        let forger = PortalTokens(store: InMemoryPortalStore())
        let stored = try #require(try await server.service.portal.store.portalLink(id: id))
        let forged = try await forger.token(for: stored)
        #expect(forged != token && forged.hasPrefix(id + "."))
        let refused = [
            id + "." + flipped(mac, at: 63), id + "." + flipped(mac, at: 0), flipped(id, at: 5) + "." + mac, id + "." + mac.uppercased(),
            id + "." + mac.dropLast(2), id, id + "." + mac + "00", id + "." + mac + ".x", forged, "pl_" + String(repeating: "0", count: 24) + "." + mac,
            String(repeating: "a", count: 5_000),
        ]
        for bad in refused {
            let answer = try await server.send("GET", "/portal/" + bad)
            #expect(answer.status == 404, "\(bad.prefix(40))")
            #expect(answer.body == PortalPages.notFound)
            #expect(answer.headers["referrer-policy"] == "no-referrer")
            #expect(!answer.body.contains("cus_a") && !answer.body.contains("42"))
        }
        // Expired: it opens up to 24 h after it was made, not at 24 h.
        try await Self.move(server, to: "2026-11-03T08:59:59Z")
        #expect(try await HTTP.send("GET", link.url).status == 200)
        try await Self.move(server, to: "2026-11-03T09:00:00Z")
        let expired = try await HTTP.send("GET", link.url)
        #expect(expired.status == 404 && expired.body == PortalPages.notFound)
        // Revoked: refused from the next request on; a second revoke answers the first.
        let fresh = try await Self.link(server, #"{"consumer":"cus_a"}"#)
        #expect(try await HTTP.send("GET", fresh.url).status == 200)
        let revoked = try await server.send("DELETE", "/v1/portal/links/\(fresh.id)", key: server.adminKey)
        #expect(revoked.status == 200)
        #expect(revoked.string("revoked_at") == "2026-11-03T09:00:00Z")
        #expect(revoked.string("consumer") == "cus_a")
        let gone = try await HTTP.send("GET", fresh.url)
        #expect(gone.status == 404 && gone.body == PortalPages.notFound)
        try await Self.move(server, to: "2026-11-03T09:30:00Z")
        #expect(try await server.send("DELETE", "/v1/portal/links/\(fresh.id)", key: server.adminKey).string("revoked_at") == "2026-11-03T09:00:00Z")
        #expect(try await server.send("DELETE", "/v1/portal/links/pl_000000000000000000000000", key: server.adminKey).status == 404)
        #expect(try await server.send("DELETE", "/v1/portal/links/nonsense", key: server.adminKey).status == 404)
        await server.stop()
        for line in server.logs.all { #expect(!line.contains(mac), "a portal token reached the log") }
    }

    @Test("who may make and revoke which link, and what a link request must name")
    func linkRequests() async throws {
        let server = try await TestServer.start(testClock: Self.start)
        let runtime = try await server.key(.runtime)
        let consumer = try await server.key(.consumer, consumer: "cus_a")
        // A creator's link: admin only, to make and to revoke.
        #expect(try await server.send("POST", "/v1/portal/links", key: runtime, json: "{\"creator\":\"\(Self.creator)\"}").status == 403)
        let creatorLink = try await Self.link(server, "{\"creator\":\"\(Self.creator)\"}")
        #expect(try await server.send("DELETE", "/v1/portal/links/\(creatorLink.id)", key: runtime).status == 403)
        #expect(try await server.send("DELETE", "/v1/portal/links/\(creatorLink.id)", key: consumer).status == 403)
        #expect(try await HTTP.send("GET", creatorLink.url).status == 200)
        // The answer: id, subject, url, created and expiry (24 h later), not revoked.
        let made = try await server.send("POST", "/v1/portal/links", key: runtime, json: #"{"consumer":"cus_new"}"#)
        #expect(made.status == 201)
        #expect(made.string("consumer") == "cus_new" && made.string("created_at") == "2026-11-02T09:00:00Z" && made.string("expires_at") == "2026-11-03T09:00:00Z")
        #expect(made.json?["revoked_at"] is NSNull)
        // A consumer with no history yet: its page shows zeros.
        let fresh = try await HTTP.send("GET", try #require(made.string("url")))
        #expect(fresh.status == 200 && fresh.body.contains("data-balance=\"available\">0.000000<"))
        for body in [#"{}"#, #"{"consumer":"cus_a","creator":"x"}"#, #"{"consumer":""}"#, #"{"consumer":"cus_a","extra":1}"#, #"{"consumer":7}"#] {
            let answer = try await server.send("POST", "/v1/portal/links", key: server.adminKey, json: body)
            #expect(answer.status == 400, "\(body): \(answer.status)")
        }
        // Behind a TLS-terminating proxy the URL is https.
        let proxied = try await server.send("POST", "/v1/portal/links", key: server.adminKey, json: #"{"consumer":"cus_a"}"#,
                                            headers: ["X-Forwarded-Proto": "https"])
        #expect(proxied.string("url")?.hasPrefix("https://127.0.0.1:\(server.port)/portal/pl_") == true)
        await server.stop()
    }

    @Test("the token: every one-character change at every position opens nothing; the MAC binds the id, the subject and the expiry")
    func tokenBinding() async throws {
        let now = Self.start, day = Int64(86_400) * 1_000_000_000
        let store = InMemoryPortalStore()
        let tokens = PortalTokens(store: store)
        let link = PortalLinkRecord(id: "pl_00112233445566778899aabb", subject: .consumer("cus_a"), createdAt: now, expiresAt: now.adding(nanoseconds: day)!)
        let other = PortalLinkRecord(id: "pl_bbaa99887766554433221100", subject: .consumer("cus_b"), createdAt: now, expiresAt: now.adding(nanoseconds: day)!)
        try await store.insertPortalLink(link)
        try await store.insertPortalLink(other)
        let token = try await tokens.token(for: link)
        #expect(try await tokens.openLink(token: token, now: now) == link)
        // Every position, every replacement among digits, letters and the separator: nothing opens.
        let characters = Array(token)
        for index in characters.indices {
            for replacement in ["0", "9", "a", "f", "g", "A", ".", "_"] where String(characters[index]) != replacement {
                var altered = characters
                altered[index] = Character(replacement)
                #expect(try await tokens.openLink(token: String(altered), now: now) == nil, "\(index) -> \(replacement)")
            }
        }
        // Another link's MAC on this id, and this MAC on another id.
        let otherToken = try await tokens.token(for: other)
        let mac = token.split(separator: ".")[1], otherMAC = otherToken.split(separator: ".")[1]
        #expect(try await tokens.openLink(token: link.id + "." + otherMAC, now: now) == nil)
        #expect(try await tokens.openLink(token: other.id + "." + mac, now: now) == nil)
        // A row changed behind the service's back (another subject, a later expiry) no longer matches its MAC.
        let secret = try await store.portalSecret(storingIfAbsent: "")
        for changed in [PortalLinkRecord(id: link.id, subject: .consumer("cus_b"), createdAt: now, expiresAt: link.expiresAt),
                        PortalLinkRecord(id: link.id, subject: .creator("cus_a"), createdAt: now, expiresAt: link.expiresAt),
                        PortalLinkRecord(id: link.id, subject: .consumer("cus_a"), createdAt: now, expiresAt: now.adding(nanoseconds: 30 * day)!)] {
            let tampered = InMemoryPortalStore()
            _ = try await tampered.portalSecret(storingIfAbsent: secret)
            try await tampered.insertPortalLink(changed)
            #expect(try await PortalTokens(store: tampered).openLink(token: token, now: now) == nil)
        }
        // It opens up to its expiry, not at it.
        #expect(try await tokens.openLink(token: token, now: link.expiresAt.adding(nanoseconds: -1)!) == link)
        #expect(try await tokens.openLink(token: token, now: link.expiresAt) == nil)
    }

    @Test("every store keeps the portal's links and one secret: the first secret written stays, a revoke keeps its first instant")
    func stores() async throws {
        let path = temporaryPath("portal.sqlite")
        let sqlite = try SQLiteBackend(path: path, currency: Currency(code: "USD")!)
        for store in [InMemoryPortalStore() as any PortalStore, sqlite] {
            let first = try await store.portalSecret(storingIfAbsent: String(repeating: "ab", count: 32))
            #expect(first == String(repeating: "ab", count: 32))
            #expect(try await store.portalSecret(storingIfAbsent: String(repeating: "cd", count: 32)) == first)
            let link = PortalLinkRecord(id: "pl_0123456789abcdef01234567", subject: .creator("acct_1"), createdAt: Self.start,
                                        expiresAt: Self.start.adding(nanoseconds: 86_400_000_000_000)!)
            try await store.insertPortalLink(link)
            await #expect(throws: SettlementError.self) { try await store.insertPortalLink(link) }
            #expect(try await store.portalLink(id: link.id) == link)
            #expect(try await store.portalLink(id: "pl_ffffffffffffffffffffffff") == nil)
            let later = Self.start.adding(nanoseconds: 60_000_000_000)!
            #expect(try await store.revokePortalLink(id: link.id, at: later)?.revokedAt == later)
            #expect(try await store.revokePortalLink(id: link.id, at: later.adding(nanoseconds: 1)!)?.revokedAt == later)
            #expect(try await store.revokePortalLink(id: "pl_ffffffffffffffffffffffff", at: later) == nil)
        }
    }

    @Test("tariff serve as a process on a SQLite file: a link survives a restart (the secret is in the ledger), and its token is in neither log")
    func serveProcess() async throws {
        let directory = temporaryPath("portal-serve")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let adminKey = APIKeys.newSecret()
        TestServer.secrets.withLock { _ = $0.insert(adminKey) }
        try adminKey.write(toFile: directory + "/admin.key", atomically: true, encoding: .utf8)
        let arguments = ["--ledger", "sqlite:" + directory + "/ledger.sqlite", "--plans", repositoryRoot + "/plans", "--rules", repositoryRoot + "/rules",
                         "--admin-key-file", directory + "/admin.key", "--rail-log", directory + "/rail.log"]
        let first = try await ServeProcess.start(arguments, directory: directory)
        let bought = try await HTTP.send("POST", first.base + "/v1/purchases", key: adminKey, body: Data(#"{"consumer":"cus_a","amount":"3.21"}"#.utf8),
                                         headers: ["Idempotency-Key": "k"])
        #expect(bought.status == 201)
        let made = try await HTTP.send("POST", first.base + "/v1/portal/links", key: adminKey, body: Data(#"{"consumer":"cus_a"}"#.utf8))
        let url = try #require(made.string("url"))
        let path = try #require(URL(string: url)?.path)
        #expect(try await HTTP.send("GET", first.base + path).body.contains("data-balance=\"available\">3.210000<"))
        await first.stop()
        let second = try await ServeProcess.start(arguments, directory: directory)
        #expect(try await HTTP.send("GET", second.base + path).status == 200)
        #expect(try await HTTP.send("DELETE", second.base + "/v1/portal/links/\(made.string("id") ?? "")", key: adminKey).status == 200)
        #expect(try await HTTP.send("GET", second.base + path).status == 404)
        await second.stop()
        let mac = String(path.split(separator: ".").last ?? "")
        #expect(mac.count == 64)
        for server in [first, second] {
            let log = server.errorLog + ((try? String(contentsOfFile: server.outputFile, encoding: .utf8)) ?? "")
            #expect(!log.contains(mac), "a portal token reached the log of tariff serve")
            #expect(log.contains("/portal/{token}"), "the page's requests are logged by their template")
        }
    }

    @Test("two servers on one SQLite ledger: a link made by one opens on the other, and a revoke on either closes it on both")
    func sharedSQLiteLedger() async throws {
        let path = temporaryPath("portal-shared.sqlite")
        let first = try await TestServer.start(backend: try SQLiteBackend(path: path, currency: Currency(code: "USD")!))
        let second = try await TestServer.start(backend: try SQLiteBackend(path: path, currency: Currency(code: "USD")!))
        _ = try await Self.purchase(first, "cus_a", "12.34", key: "s")
        let link = try await Self.link(first, #"{"consumer":"cus_a"}"#)
        let elsewhere = "http://127.0.0.1:\(second.port)" + link.path
        let shown = try await HTTP.send("GET", elsewhere)
        #expect(shown.status == 200 && shown.body.contains("data-balance=\"available\">12.340000<"))
        #expect(try await second.send("DELETE", "/v1/portal/links/\(link.id)", key: second.adminKey).status == 200)
        #expect(try await HTTP.send("GET", link.url).status == 404)
        #expect(try await HTTP.send("GET", elsewhere).status == 404)
        await first.stop()
        await second.stop()
    }
}

/// The portal on a PostgreSQL ledger (run by `.ci/run` with `--filter PostgresServerTests`).
@Suite("PostgreSQL: the portal's links across servers", .serialized,
       .enabled(if: ServicePostgres.url != nil, "TARIFF_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against (.ci/run starts one)"))
struct PortalPostgresServerTests {
    @Test("two servers on one PostgreSQL ledger: one secret, a link made by one opens on the other with its purchases, a revoke on either closes it on both")
    func sharedLedger() async throws {
        let url = ServicePostgresServerTests.freshURL()
        let backendA = try await PostgresBackend(url: url, currency: Currency(code: "USD")!)
        let backendB = try await PostgresBackend(url: url)
        defer {
            backendA.shutdown()
            backendB.shutdown()
        }
        // The store itself: the first secret written stays; a revoke keeps its first instant.
        let secret = try await backendA.portalSecret(storingIfAbsent: String(repeating: "12", count: 32))
        #expect(try await backendB.portalSecret(storingIfAbsent: String(repeating: "34", count: 32)) == secret)
        let record = PortalLinkRecord(id: "pl_00000000000000000000abcd", subject: .consumer("cus_x"), createdAt: PortalTests.start,
                                      expiresAt: PortalTests.start.adding(nanoseconds: 86_400_000_000_000)!)
        try await backendA.insertPortalLink(record)
        await #expect(throws: SettlementError.self) { try await backendB.insertPortalLink(record) }
        #expect(try await backendB.portalLink(id: record.id) == record)
        let later = PortalTests.start.adding(nanoseconds: 1_000)!
        #expect(try await backendB.revokePortalLink(id: record.id, at: later)?.revokedAt == later)
        #expect(try await backendA.revokePortalLink(id: record.id, at: later.adding(nanoseconds: 1)!)?.revokedAt == later)

        let first = try await TestServer.start(backend: backendA)
        let second = try await TestServer.start(backend: backendB)
        _ = try await PortalTests.purchase(first, "cus_a", "12.34", key: "s1")
        _ = try await PortalTests.purchase(second, "cus_a", "5", key: "s2")
        _ = try await PortalTests.purchase(second, "cus_b", "99", key: "s3")
        let link = try await PortalTests.link(first, #"{"consumer":"cus_a"}"#)
        let elsewhere = "http://127.0.0.1:\(second.port)" + link.path
        let shown = try await HTTP.send("GET", elsewhere)
        #expect(shown.status == 200)
        #expect(shown.body.contains("data-balance=\"available\">17.340000<"))
        #expect(Set(try PortalTests.figures(shown.body, "data-purchase-amount").values) == ["12.340000", "5.000000"])
        #expect(!shown.body.contains("99.000000") && !shown.body.contains("cus_b"))
        #expect(try await second.send("DELETE", "/v1/portal/links/\(link.id)", key: second.adminKey).status == 200)
        #expect(try await HTTP.send("GET", link.url).status == 404)
        #expect(try await HTTP.send("GET", elsewhere).status == 404)
        await first.stop()
        await second.stop()
    }
}
