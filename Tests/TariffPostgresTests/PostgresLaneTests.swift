import Foundation
import PostgresNIO
import Tariff
@testable import TariffPostgres
import TariffSettlement
import TariffSettlementTesting
import Testing

extension PostgresServerTests {
@Suite("PostgreSQL batching lanes (issue 14)")
struct PostgresLaneTests {
    @Test("a consumer whose reserve is stalled on a locked row does not delay another consumer's reserve", .timeLimit(.minutes(1)))
    func stalledConsumerStallsOnlyItsLane() async throws {
        let backend = try await PostgresBackend(url: PostgresTestServer.freshURL())
        defer { backend.shutdown() }
        let settlement = Settlement(backend: backend, catalog: TestLedger.catalog, clock: ManualClock(TestLedger.start))
        let plan = TestLedger.catalog.plan(id: "flat", at: TestLedger.start)!
        let slow = "cus_slow"
        // A consumer in another lane than the slow one (the lane is a fixed hash: found, not assumed).
        let fast = try #require((0..<64).map { "cus_fast_\($0)" }.first { backend.reserveBatcher.lane(of: $0) != backend.reserveBatcher.lane(of: slow) })
        for consumer in [slow, fast] {
            _ = try await settlement.purchase(consumer: consumer, amount: TestLedger.money("100.00"), idempotencyKey: "buy-\(consumer)")
        }
        // Another worker holds the slow consumer's row (a long transaction elsewhere).
        let other = PostgresClient(configuration: .init(host: backend.configuration.host, port: backend.configuration.port,
                                                        username: backend.configuration.user, password: backend.configuration.password,
                                                        database: backend.configuration.database, tls: .disable))
        let runner = Task { await other.run() }
        defer { runner.cancel() }
        let schema = backend.configuration.schema
        let locked = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await other.withTransaction(logger: PostgresBackend.logger) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "SELECT 1 FROM \"\(schema)\".consumers WHERE id = '\(slow)' FOR UPDATE"), logger: PostgresBackend.logger)
                locked.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        for await _ in locked.stream { break }
        let stalled = Task { try await settlement.reserve(ReservationRequest(execution: "exe_slow", consumer: slow, plan: plan)) }
        // The slow reserve is in flight (waiting on the lock) before the fast one arrives.
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        let hold = try await settlement.reserve(ReservationRequest(execution: "exe_fast", consumer: fast, plan: plan))
        let waited = ContinuousClock.now - started
        #expect(hold.amount > .zero)
        #expect(waited < .seconds(2), "the fast consumer's reserve waited \(waited) behind the stalled one")
        // The stalled one was still waiting all along, and goes through once the row is free.
        #expect(try await backend.hold(execution: "exe_slow") == nil)
        release.continuation.yield()
        try await holder.value
        let slowHold = try await stalled.value
        #expect(slowHold.amount == hold.amount)
        #expect(try await settlement.verify().passed)
    }

    @Test("the lane of a consumer is a fixed hash: FNV-1a of its bytes")
    func laneHash() {
        // FNV-1a 64 of "" is 0xcbf29ce484222325 (14695981039346656037), of "a" 0xaf63dc4c8601ec8c
        // (12638187200555641996): the published test vectors.
        #expect(StepBatcher<Int, Int>.lane(of: "", lanes: 256) == Int(UInt64(14_695_981_039_346_656_037) % 256))
        #expect(StepBatcher<Int, Int>.lane(of: "a", lanes: 1_000) == Int(UInt64(12_638_187_200_555_641_996) % 1_000))
        #expect(StepBatcher<Int, Int>.lane(of: "anything", lanes: 1) == 0)
    }
}
}
