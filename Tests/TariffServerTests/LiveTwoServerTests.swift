import Foundation
import Synchronization
import Testing
import Tariff
@testable import TariffCommands
@testable import TariffServer
import TariffSettlement
import TariffSimulation

/// Issue 16's first "must be shown", whole: the month and a half of `LiveSubscriptionTests` (live
/// subscriptions, a replacement, cancels, executions) plus each week's payouts, sent through the
/// HTTP API of two `tariff serve` processes with test clocks on one PostgreSQL ledger, clients
/// spread over both, one server SIGKILLed halfway through (the clients retry on the other under the
/// same keys), charges to the micro-unit what `simulate` prices for the same events: per consumer,
/// per plan version and kind (fees, overage, shortfall, SLA credit), and each creator's payout of
/// each week (earnings, amount, carried).
///
/// The clock is global: both servers' clocks are moved together (each runs the sweeps, so the
/// period clock runs on two servers at once) at every instant where what prices a run changes (a
/// purchase, subscribe or cancel, every period boundary of every subscription, a payout run); the
/// executions between two such instants run concurrently, one client per consumer, each settle
/// in `ended_at` order per consumer and on the other server than its reserve.
enum LiveTwoServers {
    typealias Event = LiveSubscriptionTests.Event

    /// One thing the driver does at an instant.
    enum Step {
        case event(Event)
        /// A period boundary: only the clock moves (a fee is due, or a subscription ends).
        case boundary
        /// The payout run of the week starting on this date (run on its pay date, 02:00 UTC: past
        /// the grace of every period that ended in the week).
        case payouts(CivilDate)
    }

    /// The servers, which of them are gone, and the requests done (to kill one halfway).
    final class Cluster: Sendable {
        let servers: [ServeProcess]
        let adminKey: String
        private let gone = Mutex<Set<Int>>([])
        private let completed = Mutex(0)
        private let failedOver = Mutex(0)

        init(servers: [ServeProcess], adminKey: String) {
            self.servers = servers
            self.adminKey = adminKey
        }

        var alive: [Int] { let gone = gone.withLock { $0 }; return servers.indices.filter { !gone.contains($0) } }
        var done: Int { completed.withLock { $0 } }
        /// Requests that got no answer (a lost connection) and were sent again, to the other server.
        var retried: Int { failedOver.withLock { $0 } }

        /// Sends to server `preferred` (modulo the servers alive); a lost connection, a 503 or a
        /// 409 `request_in_progress` is retried on the next one, under the same keys, as a client
        /// behind a load balancer would.
        func send(_ method: String, _ path: String, preferring preferred: Int, json: String? = nil, headers: [String: String] = [:]) async throws -> Answer {
            var index = preferred
            let deadline = DispatchTime.now().uptimeNanoseconds + 120 * 1_000_000_000
            while true {
                let alive = alive
                guard !alive.isEmpty else { throw ServeProcessFailed(description: "no server is alive") }
                let server = alive[index % alive.count]
                do {
                    let answer = try await HTTP.send(method, servers[server].base + path, key: adminKey, body: json.map { Data($0.utf8) }, headers: headers)
                    if answer.status != 503 && !(answer.status == 409 && answer.code == "request_in_progress") {
                        completed.withLock { $0 += 1 }
                        return answer
                    }
                } catch {
                    failedOver.withLock { $0 += 1 }
                    if !servers[server].process.isRunning { _ = gone.withLock { $0.insert(server) } }
                    if DispatchTime.now().uptimeNanoseconds > deadline { throw error }
                }
                index += 1
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        /// SIGKILL: no drain, no answer to what is in flight.
        func kill(_ server: Int) async {
            servers[server].signal(SIGKILL)
            _ = await servers[server].wait()
            _ = gone.withLock { $0.insert(server) }
        }

        /// Moves the clock of every live server to `instant`, all at once (each runs the sweeps).
        func moveClock(to instant: Timestamp) async throws {
            try await withThrowingTaskGroup(of: Answer.self) { group in
                for server in alive {
                    group.addTask { [servers, adminKey] in
                        try await HTTP.send("POST", servers[server].base + "/v1/clock", key: adminKey, body: Data(#"{"now":"\#(instant.rfc3339)"}"#.utf8))
                    }
                }
                for try await answer in group { #expect(answer.status == 200, "clock: \(answer.body)") }
            }
        }
    }

    static let payoutSchedule: PayoutSchedule = {
        // rules/payouts.yaml: weeks start on Monday (UTC), paid on the Wednesday after.
        let compilation = CatalogLoader.compile(plansDirectory: repositoryRoot + "/plans", rulesDirectory: repositoryRoot + "/rules")
        return PayoutSchedule(compilation.catalog!.definition.payouts)!
    }()

    /// The events with the clock's other stops: every period boundary of every subscription the
    /// events make (anchored at the subscribe, plans.md's calendar periods) and each week's payout run.
    static func steps(_ events: [(Timestamp, Event)], end: Timestamp) -> [(Timestamp, Step)] {
        var steps = events.map { ($0.0, Step.event($0.1)) }
        for (time, event) in events {
            guard case .subscribe(_, let plan) = event else { continue }
            let unit: PeriodUnit = plan == "translate-weekly" ? .week : .month
            var index = 1
            while let boundary = Timestamp.periodStart(anchor: time, unit: unit, index: index), boundary < end {
                steps.append((boundary, .boundary))
                index += 1
            }
        }
        var week = payoutSchedule.week(containing: LiveSubscriptionTests.t0)
        while let payDay = Timestamp(date: week.payDate.description), let run = payDay.adding(nanoseconds: 2 * 3_600 * 1_000_000_000), run < end {
            steps.append((run, .payouts(week.weekStart)))
            week = payoutSchedule.week(containing: week.end)
        }
        // A stop at an execution's instant comes first (simulate processes boundaries first).
        return steps.enumerated().sorted { left, right in
            if left.element.0 != right.element.0 { return left.element.0 < right.element.0 }
            if case .event(.execution) = left.element.1 { return false }
            if case .event(.execution) = right.element.1 { return true }
            return left.offset < right.offset
        }.map(\.element)
    }

    /// Drives every step through the cluster; kills server 0 once half the executions are done,
    /// while the clients of that stretch are running. Returns the refusals (422 `no_plan`) per consumer.
    static func drive(_ cluster: Cluster, _ steps: [(Timestamp, Step)]) async throws -> (refused: [String: Int], killedWhileRunning: Bool,
                                                                                        payouts: [String: [String]]) {
        let executions = steps.filter { if case .event(.execution) = $0.1 { return true } else { return false } }.count
        let progress = Progress()
        var refused: [String: Int] = [:]
        var subscriptionIDs: [String: String] = [:]
        // "CREATOR WEEK" -> earnings, amount, carried, status, as the week's payout run answered.
        var payouts: [String: [String]] = [:]
        var batch: [(Timestamp, Event)] = []
        var turn = 0

        func runBatch() async throws {
            guard !batch.isEmpty else { return }
            var grouped: [String: [(Timestamp, Event)]] = [:]
            for item in batch { if case .execution(_, let consumer, _, _, _, _) = item.1 { grouped[consumer, default: []].append(item) } }
            let byConsumer = grouped.sorted { $0.key < $1.key }
            let before = progress.lifecycles
            let batchEnd = before + batch.count
            let killHere = progress.killed == nil && before < executions / 2 && batchEnd > executions / 2
            batch = []
            let results = try await withThrowingTaskGroup(of: [String: Int].self) { group in
                if killHere {
                    group.addTask {
                        while progress.lifecycles < executions / 2 { try await Task.sleep(for: .milliseconds(1)) }
                        let running = progress.lifecycles < batchEnd
                        await cluster.kill(0)
                        progress.killed = running
                        return [:]
                    }
                }
                for (client, (consumer, runs)) in byConsumer.enumerated() {
                    group.addTask {
                        var refusals = 0
                        for (number, (time, event)) in runs.enumerated() {
                            guard case .execution(let id, _, let agent, let cpu, let calls, let failed) = event else { continue }
                            let server = client + number
                            let reserve = try await cluster.send("POST", "/v1/executions", preferring: server,
                                                                 json: #"{"execution":"\#(id)","consumer":"\#(consumer)","agent":"\#(agent)"}"#)
                            if reserve.status == 422 {
                                #expect(reserve.code == "no_plan", "\(reserve.body)")
                                refusals += 1
                            } else {
                                #expect(reserve.status == 201, "reserve: \(reserve.body)")
                                let settle = try await cluster.send("POST", "/v1/executions/\(id)/settle", preferring: server + 1,
                                                                    json: #"{"ended_at":"\#(time.rfc3339)","status":"\#(failed ? "failed" : "succeeded")","meters":{"cpu_ms":\#(cpu),"inference_calls":\#(calls)}}"#)
                                #expect(settle.status == 200, "settle: \(settle.body)")
                            }
                            progress.addLifecycle()
                        }
                        return refusals > 0 ? [consumer: refusals] : [:]
                    }
                }
                var all: [String: Int] = [:]
                for try await result in group { all.merge(result, uniquingKeysWith: +) }
                return all
            }
            refused.merge(results, uniquingKeysWith: +)
        }

        for (time, step) in steps {
            if case .event(.execution) = step {
                batch.append((time, { if case .event(let event) = step { return event } else { fatalError() } }()))
                continue
            }
            try await runBatch()
            try await cluster.moveClock(to: time)
            turn += 1
            switch step {
            case .boundary, .event(.execution):
                break
            case .event(.purchase(let consumer, let amount)):
                let answer = try await cluster.send("POST", "/v1/purchases", preferring: turn, json: #"{"consumer":"\#(consumer)","amount":"\#(amount)"}"#,
                                                    headers: ["Idempotency-Key": "p_\(consumer)"])
                #expect(answer.status == 201, "purchase: \(answer.body)")
            case .event(.subscribe(let consumer, let plan)):
                let answer = try await cluster.send("POST", "/v1/subscriptions", preferring: turn, json: #"{"consumer":"\#(consumer)","plan":"\#(plan)"}"#)
                #expect(answer.status == 201 || answer.status == 200, "subscribe: \(answer.body)")
                if answer.status == 201, let id = answer.string("id") { subscriptionIDs["\(consumer) \(plan)"] = id }
            case .event(.cancel(let consumer, let plan)):
                let id = subscriptionIDs["\(consumer) \(plan)"] ?? "missing"
                let answer = try await cluster.send("DELETE", "/v1/subscriptions/\(id)", preferring: turn)
                #expect(answer.status == 200 && answer.string("status") == "canceled", "cancel: \(answer.body)")
            case .payouts(let week):
                // Every live server runs the week at once: each creator is paid once, and both answer the same rows.
                let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                    for server in cluster.alive {
                        group.addTask { try await cluster.send("POST", "/v1/payouts/\(week)/execute", preferring: server) }
                    }
                    var answers: [Answer] = []
                    for try await answer in group { answers.append(answer) }
                    return answers
                }
                for answer in answers { #expect(answer.status == 200, "payouts \(week): \(answer.body)") }
                #expect(Set(answers.map { payoutRows($0) }).count == 1, "the servers answered different payouts for \(week)")
                for (creator, row) in answers.first.map(payoutRows) ?? [:] { payouts["\(creator) \(week)"] = row }
            }
        }
        try await runBatch()
        return (refused, progress.killed ?? false, payouts)
    }

    /// Lifecycles done, and whether the kill came while clients were running (nil: not yet killed).
    final class Progress: Sendable {
        private let state = Mutex<(lifecycles: Int, killed: Bool?)>((0, nil))
        var lifecycles: Int { state.withLock { $0.lifecycles } }
        func addLifecycle() { state.withLock { $0.lifecycles += 1 } }
        var killed: Bool? {
            get { state.withLock { $0.killed } }
            set { state.withLock { $0.killed = newValue } }
        }
    }

    /// A payouts answer's rows: creator -> earnings, amount, carried, status.
    static func payoutRows(_ answer: Answer) -> [String: [String]] {
        var rows: [String: [String]] = [:]
        for row in answer.json?["payouts"] as? [[String: Any]] ?? [] {
            let creator = row["creator"] as? String ?? "?"
            rows[creator] = ["earnings", "amount", "carried", "status"].map { row[$0] as? String ?? "?" }
        }
        return rows
    }
}

extension ServicePostgresServerTests {
    @Test("live subscriptions, executions and payouts through two tariff serve processes on one PostgreSQL ledger, one SIGKILLed halfway: what simulate prices, to the micro-unit")
    func liveSubscriptionsTwoServersOneKilled() async throws {
        let events = LiveSubscriptionTests.events()
        let end = LiveSubscriptionTests.end
        let steps = LiveTwoServers.steps(events, end: end)
        let directory = temporaryPath("pg-live")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let adminKey = APIKeys.newSecret()
        TestServer.secrets.withLock { _ = $0.insert(adminKey) }
        try adminKey.write(toFile: directory + "/admin.key", atomically: true, encoding: .utf8)
        let ledger = Self.freshURL()
        let arguments = ["--ledger", ledger, "--plans", repositoryRoot + "/plans", "--rules", repositoryRoot + "/rules",
                         "--admin-key-file", directory + "/admin.key", "--rail-log", directory + "/rail.log",
                         "--test-clock", LiveSubscriptionTests.t0.rfc3339]
        // The schema is made once before two servers race for it.
        #expect(try runTariff(["ledger", "migrate", "--ledger", ledger]).status == 0)
        async let startedA = ServeProcess.start(arguments, directory: directory)
        async let startedB = ServeProcess.start(arguments, directory: directory)
        let cluster = LiveTwoServers.Cluster(servers: try await [startedA, startedB], adminKey: adminKey)

        let (refused, killedWhileRunning, paidRows) = try await LiveTwoServers.drive(cluster, steps)
        #expect(cluster.alive == [1], "server 0 was not killed")
        #expect(killedWhileRunning, "the kill came after every client of its stretch was done")
        let survivor = cluster.servers[1]
        // Past the last period end inside the window by the grace: every such period is closed.
        try await cluster.moveClock(to: LiveSubscriptionTests.at(end, plus: 3_600))
        let verify = try await HTTP.send("GET", survivor.base + "/v1/ledger/verify", key: adminKey)
        #expect(verify.json?["ok"] as? Bool == true, "\(verify.body)")

        // Each week's payouts: as its run answered them (paid, or carried below the minimum), and
        // for the weeks not yet due at the end, as the ledger has them now (due or carried).
        var ledgerPayouts = paidRows
        var week = LiveTwoServers.payoutSchedule.week(containing: LiveSubscriptionTests.t0)
        while week.start < end {
            if Timestamp(date: week.payDate.description)! > end {
                let answer = try await HTTP.send("GET", survivor.base + "/v1/payouts?week=\(week.weekStart)", key: adminKey)
                #expect(answer.status == 200, "\(answer.body)")
                for (creator, row) in LiveTwoServers.payoutRows(answer) { ledgerPayouts["\(creator) \(week.weekStart)"] = row }
            }
            week = LiveTwoServers.payoutSchedule.week(containing: week.end)
        }
        var weeksPaid = 0
        for (key, row) in ledgerPayouts {
            let due = Timestamp(date: String(key.suffix(10)))! < end
            #expect(due ? (row[3] == "paid") == (row[1] != "0.000000") && (row[3] == "paid" || row[3] == "carried")
                        : row[3] == "due" || row[3] == "carried", "\(key): \(row)")
            if row[3] == "paid" { weeksPaid += 1 }
        }
        ledgerPayouts = ledgerPayouts.filter { $0.value[0] != "0.000000" || $0.value[1] != "0.000000" }.mapValues { Array($0[0..<3]) }
        await survivor.stop()

        let options = try LedgerOptions.parse(["--ledger", ledger])
        let backend = try await options.backend()
        let report = try await LiveSubscriptionTests.expectAgreement(backend: backend, events: events, refused: refused)
        // Payouts, per creator and week: the week's earnings, the amount paid and what carries on.
        var simulated: [String: [String]] = [:]
        for row in report.payouts where row.earnings.micros != 0 || row.amount.micros != 0 {
            simulated["\(row.creator) \(row.week.weekStart)"] = [row.earnings.description, row.amount.description, row.carried.description]
        }
        #expect(ledgerPayouts == simulated, "ledger \(ledgerPayouts.sorted { $0.key < $1.key }) simulate \(simulated.sorted { $0.key < $1.key })")
        // Every week whose pay date passed was paid where simulate pays it (amount above the minimum).
        let simulatedPaid = report.payouts.filter { $0.amount.micros > 0 && Timestamp(date: $0.week.payDate.description)! < end }.count
        #expect(weeksPaid == simulatedPaid && weeksPaid >= 4, "payouts paid: \(weeksPaid), simulate \(simulatedPaid)")
        // Each payout sent through the rail once, whichever server ran it.
        let rail = (try? String(contentsOfFile: directory + "/rail.log", encoding: .utf8)) ?? ""
        let keys = rail.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: #""idempotency_key":"payout:"#) else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }
        #expect(Set(keys).count == weeksPaid, "rail payouts: \(keys.count) lines, \(Set(keys).count) keys, \(weeksPaid) paid")
        FileHandle.standardError.write(Data("two servers: \(steps.count) steps, \(report.priced) executions priced, \(refused.values.reduce(0, +)) refused, \(cluster.done) requests (\(cluster.retried) sent again after a lost connection), \(weeksPaid) payouts paid\n".utf8))
    }
}
