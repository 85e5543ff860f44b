import Foundation
import Testing
import Tariff
import TariffPostgres
@testable import TariffServer
import TariffSettlement
import TariffSQLite

/// service.md, "Idempotency": a request whose key is still in flight waits for the first's
/// answer, or gets 409 `request_in_progress` after 10 s, across restarts and across servers
/// sharing a ledger, because the claim is a row of the ledger's answers table.
@Suite("A key in flight, on any server of the ledger", .serialized)
struct RequestInProgressTests {
    static let second: Int64 = 1_000_000_000

    /// The claim rules every store must keep, on one store seen by two "servers".
    static func claims(_ store: any ServiceStore) async throws {
        let now: Int64 = 1_800_000_000 * Self.second
        let first = AnswerClaim(token: "first", claimedAtNanoseconds: now)
        let other = AnswerClaim(token: "other", claimedAtNanoseconds: now + 5 * Self.second)
        let stale: Int64 = 120 * Self.second
        #expect(try await store.claimAnswer(key: "purchase:k", claim: first, staleAfterNanoseconds: stale) == .claimed)
        // Held: the other waits; the claim is no answer.
        #expect(try await store.claimAnswer(key: "purchase:k", claim: other, staleAfterNanoseconds: stale) == .busy)
        #expect(try await store.answer(key: "purchase:k") == nil)
        // Abandoned (the request failed): the key is free again, and a foreign token removes nothing.
        try await store.abandonClaim(key: "purchase:k", claim: other)
        #expect(try await store.claimAnswer(key: "purchase:k", claim: other, staleAfterNanoseconds: stale) == .busy)
        try await store.abandonClaim(key: "purchase:k", claim: first)
        #expect(try await store.claimAnswer(key: "purchase:k", claim: other, staleAfterNanoseconds: stale) == .claimed)
        // Answered: every later claim gets the answer.
        let answer = StoredAnswer(key: "purchase:k", fingerprint: "amount=1", status: 201, body: "{}")
        #expect(try await store.completeClaim(other, with: answer) == answer)
        #expect(try await store.answer(key: "purchase:k") == answer)
        #expect(try await store.claimAnswer(key: "purchase:k", claim: first, staleAfterNanoseconds: stale) == .answered(answer))
        // A second completion (a claim taken over, answered twice) keeps the first answer.
        #expect(try await store.completeClaim(first, with: StoredAnswer(key: "purchase:k", fingerprint: "amount=1", status: 201, body: "{\"x\":1}")) == answer)
        // A claim left by a dead server is taken over once it is stale, not before.
        let dead = AnswerClaim(token: "dead", claimedAtNanoseconds: now)
        #expect(try await store.claimAnswer(key: "purchase:d", claim: dead, staleAfterNanoseconds: stale) == .claimed)
        let early = AnswerClaim(token: "early", claimedAtNanoseconds: now + stale)
        #expect(try await store.claimAnswer(key: "purchase:d", claim: early, staleAfterNanoseconds: stale) == .busy)
        let late = AnswerClaim(token: "late", claimedAtNanoseconds: now + stale + 1)
        #expect(try await store.claimAnswer(key: "purchase:d", claim: late, staleAfterNanoseconds: stale) == .claimed)
        // The dead server's token no longer abandons it.
        try await store.abandonClaim(key: "purchase:d", claim: dead)
        #expect(try await store.claimAnswer(key: "purchase:d", claim: early, staleAfterNanoseconds: stale) == .busy)
    }

    @Test("the claim rules: in memory and on SQLite")
    func storeRules() async throws {
        try await Self.claims(InMemoryServiceStore())
        try await Self.claims(try SQLiteBackend(path: temporaryPath("claims") + ".sqlite"))
    }

    @Test("the claim rules on PostgreSQL", .enabled(if: ServicePostgres.url != nil, "TARIFF_TEST_POSTGRES_URL is not set"))
    func storeRulesPostgres() async throws {
        try await Self.claims(try await PostgresBackend(url: ServicePostgresServerTests.freshURL()))
    }

    @Test("two servers on one SQLite ledger: a key claimed by one makes the other wait, then 409; its answer is then replayed by both")
    func twoServers() async throws {
        let path = temporaryPath("in-progress") + ".sqlite"
        let first = try await TestServer.start(backend: try SQLiteBackend(path: path))
        let second = try await TestServer.start(backend: try SQLiteBackend(path: path))
        // The first server's request is in flight: its claim, as the purchase handler writes it.
        let answerKey = "purchase:" + TariffService.ledgerPurchaseKey(consumer: "cus_p", key: "order-7")
        let claim = AnswerClaim(token: "in-flight", claimedAtNanoseconds: SystemClock().now().nanosecondsSinceEpoch)
        #expect(try await first.service.configuration.store.claimAnswer(key: answerKey, claim: claim, staleAfterNanoseconds: TariffService.staleClaimNanoseconds) == .claimed)
        let started = ContinuousClock.now
        let waited = try await second.send("POST", "/v1/purchases", key: second.adminKey, json: #"{"consumer":"cus_p","amount":"5"}"#,
                                           headers: ["Idempotency-Key": "order-7"])
        let elapsed = ContinuousClock.now - started
        #expect(waited.status == 409)
        #expect(waited.code == "request_in_progress")
        #expect(elapsed >= .seconds(10) && elapsed < .seconds(20), "\(elapsed)")
        // Nothing was bought meanwhile.
        #expect(try await second.send("GET", "/v1/balance?consumer=cus_p", key: second.adminKey).status == 404)

        // Another request of the same key, while the first finishes: it waits and gets that answer.
        async let pending = second.send("POST", "/v1/purchases", key: second.adminKey, json: #"{"consumer":"cus_p","amount":"5.00"}"#,
                                        headers: ["Idempotency-Key": "order-7"])
        try await Task.sleep(for: .milliseconds(300))
        let body = #"{"purchase":{"consumer":"cus_p","amount":"5.000000","key":"order-7","status":"succeeded"}}"#
        _ = try await first.service.configuration.store.completeClaim(claim, with: StoredAnswer(key: answerKey, fingerprint: "amount=5000000;payment_method=-",
                                                                                                 status: 201, body: body))
        let answered = try await pending
        #expect(answered.status == 201)
        #expect(answered.body == body)
        #expect(answered.headers["idempotent-replayed"] == "true")
        await first.stop()
        await second.stop()
    }
}
