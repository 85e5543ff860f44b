import Foundation
import PostgresNIO
import Tariff
import TariffPostgres
import TariffSettlement
import TariffSQLite
import Testing

/// Several settlement workers as separate `tariff` processes sharing one PostgreSQL ledger, each
/// replaying its shard of one trace's consumers (`tariff ledger replay --shard K/N`): together they
/// must write exactly the ledger one SQLite replay of the whole trace writes, and a worker killed
/// with SIGKILL and started again must lose nothing and charge nothing twice.
extension PostgresServerTests {
@Suite("PostgreSQL: many worker processes, one ledger")
struct PostgresProcessTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `tariff` binary next to the test bundle (the build makes every product before the tests run).
    static var executable: URL? {
        [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tariff"),
         repositoryRoot.appendingPathComponent(".build/debug/tariff")].first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Run: Sendable {
        var status: Int32
        var reason: Process.TerminationReason
        var error: String
    }

    static func start(_ arguments: [String], errorFile: URL, outputFile: URL? = nil) throws -> Process {
        let process = Process()
        guard let executable else { throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "the tariff executable is not built"]) }
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        guard FileManager.default.createFile(atPath: errorFile.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        process.standardOutput = try outputFile.map { try FileHandle(forWritingTo: $0) } ?? FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorFile)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits without holding one of the few threads the tests' tasks share.
    static func finish(_ process: Process, errorFile: URL) async -> Run {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        process.waitUntilExit()
        let error = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        return Run(status: process.terminationStatus, reason: process.terminationReason, error: error)
    }

    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-pg-processes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A ledger with the row order taken out: entries and charge lines without their sequence
    /// numbers, sorted (workers running at once append in another order than one replay; the
    /// rows themselves must be the same).
    static func canonical(_ snapshot: LedgerSnapshot) -> LedgerSnapshot {
        var snapshot = snapshot
        snapshot.entries = snapshot.entries.map { entry in
            var entry = entry
            entry.sequence = 0
            return entry
        }.sorted { String(describing: $0) < String(describing: $1) }
        snapshot.charges = snapshot.charges.map { charge in
            var charge = charge
            charge.sequence = 0
            return charge
        }.sorted { String(describing: $0) < String(describing: $1) }
        return snapshot
    }

    /// The trace and the SQLite reference: one `tariff ledger replay` of the whole trace.
    static func reference(in directory: URL) async throws -> (trace: String, snapshot: LedgerSnapshot) {
        let trace = directory.appendingPathComponent("trace.jsonl").path
        let generate = await finish(try start(["generate", "--events", "1200", "--consumers", "30", "--days", "14", "--seed", "3", "--output", trace],
                                        errorFile: directory.appendingPathComponent("generate.err")), errorFile: directory.appendingPathComponent("generate.err"))
        #expect(generate.status == 0, "\(generate.error)")
        let path = directory.appendingPathComponent("reference.sqlite").path
        let errors = directory.appendingPathComponent("reference.err")
        let replay = await finish(try start(["ledger", "replay", "--ledger", "sqlite:" + path, "--usage", trace, "--currency", "USD"], errorFile: errors),
                            errorFile: errors)
        #expect(replay.status == 0, "\(replay.error)")
        let snapshot = try await SQLiteBackend(path: path).snapshot()
        return (trace, snapshot)
    }

    static func replay(_ url: String, trace: String, shard: String) -> [String] {
        ["ledger", "replay", "--ledger", url, "--usage", trace, "--currency", "USD", "--shard", shard, "--pool-size", "2"]
    }

    /// Runs one `tariff` command to its end: status, standard output, standard error.
    static func run(_ arguments: [String], in directory: URL) async throws -> (status: Int32, output: String, error: String) {
        let outputFile = directory.appendingPathComponent("out-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: outputFile.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let errorFile = directory.appendingPathComponent("err-\(UUID().uuidString)")
        let process = try start(arguments, errorFile: errorFile, outputFile: outputFile)
        let run = await finish(process, errorFile: errorFile)
        return (run.status, (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "", run.error)
    }

    @Test("tariff ledger on a postgres:// URL: migrate, purchase, balance, verify; flags override the URL; the password is never printed")
    func commandLine() async throws {
        let directory = try Self.scratch()
        // The throwaway server trusts every local connection: the password is sent and ignored, and must not show.
        let base = PostgresTestServer.freshURL(pool: 2)
        let url = base.replacingOccurrences(of: "postgres://postgres@", with: "postgres://postgres:Pa55-secret@")
        var run = try await Self.run(["ledger", "migrate", "--ledger", url, "--format", "json"], in: directory)
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains(#""migrations":["1 ledger","2 recorded_refusals","3 settle_without_read","4 shorter_consumer_locks","5 reserve_batches","6 settle_batches","7 service","8 payouts","9 reversals","10 period_closes","11 subscriptions","12 webhooks","13 portal","14 auto_top_up","15 close_race","16 listened_events"]"#))
        // Twice is fine: nothing left to apply.
        run = try await Self.run(["ledger", "migrate", "--ledger", url, "--pool-size", "1", "--statement-timeout", "5"], in: directory)
        #expect(run.status == 0 && run.output.contains("up to date, 16 migrations applied") && run.output.contains("pool=1&") && run.output.contains("statement_timeout=5&"))
        run = try await Self.run(["ledger", "purchase", "--ledger", url, "--consumer", "cus_pg", "--amount", "42.50", "--idempotency-key", "k1", "--format", "json"], in: directory)
        #expect(run.output == #"{"consumer":"cus_pg","currency":"USD","amount":"42.500000","available":"42.500000","idempotency_key":"k1"}"# + "\n")
        run = try await Self.run(["ledger", "balance", "--ledger", url, "--consumer", "cus_pg", "--format", "json"], in: directory)
        #expect(run.output == #"{"consumer":"cus_pg","currency":"USD","available":"42.500000","reserved":"0.000000"}"# + "\n")
        run = try await Self.run(["ledger", "verify", "--ledger", url], in: directory)
        #expect(run.status == 0 && run.output.contains(" passed, 0 failed"))
        // Refusals: a flag out of range, a bad sslmode, a PostgreSQL flag on a SQLite ledger, a server that is not there.
        for (arguments, message) in [
            (["balance", "--ledger", url, "--consumer", "cus_pg", "--pool-size", "0"], "pool must be a whole number in 1...512"),
            (["balance", "--ledger", url, "--consumer", "cus_pg", "--sslmode", "maybe"], "sslmode must be one of"),
            (["balance", "--ledger", "sqlite:x.sqlite", "--consumer", "cus_pg", "--pool-size", "4"], "are for a postgres:// ledger"),
            (["balance", "--ledger", "postgres://postgres:Pa55-secret@127.0.0.1:1/x", "--consumer", "cus_pg", "--connect-timeout", "2"], "cannot reach the ledger"),
        ] {
            run = try await Self.run(["ledger"] + arguments, in: directory)
            #expect(run.status != 0, "\(arguments)")
            #expect(run.error.contains(message), "\(arguments): \(run.error)")
            #expect(!(run.output + run.error).contains("Pa55-secret"))
        }
    }

    @Test("four replay processes, one shard of the consumers each, write the ledger of one SQLite replay; verify passes", .timeLimit(.minutes(5)))
    func shardedProcesses() async throws {
        let directory = try Self.scratch()
        let (trace, reference) = try await Self.reference(in: directory)
        #expect(reference.charges.count > 500 && reference.holds.contains { $0.state == .refused })
        let url = PostgresTestServer.freshURL(pool: 2)
        let workers = try (1...4).map { shard in
            (shard, try Self.start(Self.replay(url, trace: trace, shard: "\(shard)/4"), errorFile: directory.appendingPathComponent("worker-\(shard).err")))
        }
        for (shard, process) in workers {
            let run = await Self.finish(process, errorFile: directory.appendingPathComponent("worker-\(shard).err"))
            #expect(run.status == 0, "worker \(shard): \(run.error)")
        }
        let backend = try await PostgresBackend(url: url)
        defer { backend.shutdown() }
        let shared = try await backend.snapshot()
        #expect(Self.canonical(shared) == Self.canonical(reference))
        #expect(try await Settlement(backend: backend, catalog: nil).verify().passed)
    }

    @Test("a worker killed with SIGKILL mid-run and started again: nothing lost, nothing charged twice", .timeLimit(.minutes(5)))
    func killedWorker() async throws {
        let directory = try Self.scratch()
        let (trace, reference) = try await Self.reference(in: directory)
        let url = PostgresTestServer.freshURL(pool: 2)
        let backend = try await PostgresBackend(url: url)
        defer { backend.shutdown() }
        // The victim's share of the reference's holds: it is killed once it has written a third of them.
        let shard = try #require(ReplayShardForTests("2/3"))
        let victimHolds = reference.holds.filter { shard.contains($0.consumer) }.count
        #expect(victimHolds > 100)
        let errors = (1...3).map { directory.appendingPathComponent("worker-\($0).err") }
        var workers = try (1...3).map { try Self.start(Self.replay(url, trace: trace, shard: "\($0)/3"), errorFile: errors[$0 - 1]) }
        var written = 0
        while written < victimHolds / 3 && workers[1].isRunning {
            try await Task.sleep(for: .milliseconds(20))
            written = try await backend.snapshot().holds.filter { shard.contains($0.consumer) }.count
        }
        kill(workers[1].processIdentifier, SIGKILL)
        let killed = await Self.finish(workers[1], errorFile: errors[1])
        #expect(killed.reason == .uncaughtSignal, "the worker finished before the kill (\(written) of \(victimHolds) holds written)")
        #expect(written < victimHolds)
        // Started again while the other two are still running.
        workers[1] = try Self.start(Self.replay(url, trace: trace, shard: "2/3"), errorFile: errors[1])
        for (index, process) in workers.enumerated() {
            let run = await Self.finish(process, errorFile: errors[index])
            #expect(run.status == 0, "worker \(index + 1): \(run.error)")
        }
        let shared = try await backend.snapshot()
        #expect(Self.canonical(shared) == Self.canonical(reference))
        #expect(try await Settlement(backend: backend, catalog: nil).verify().passed)
    }
}
}

/// `ReplayShard`'s hash, restated here from its definition (FNV-1a of the id's UTF-8 bytes, modulo
/// the count) so the test does not depend on the replay module to pick the victim's consumers.
struct ReplayShardForTests {
    let index: Int
    let count: Int
    init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else { return nil }
        (self.index, self.count) = (index, count)
    }
    func contains(_ consumer: String) -> Bool {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in consumer.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return Int(hash % UInt64(count)) == index - 1
    }
}
