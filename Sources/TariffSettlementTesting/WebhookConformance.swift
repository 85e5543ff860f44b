import Foundation
import Tariff
import TariffSettlement
import Testing

/// The outbox's contract (service.md, "Events out (webhooks)"), run against every backend: events
/// written in the step that causes them, none for a step rolled back, threshold events once per
/// crossing, and deliveries claimed in order per subject under a lease.
public enum WebhookConformance {
    static let usd = Currency(code: "USD")!
    static let start = Timestamp(nanosecondsSinceEpoch: 1_800_000_000 * 1_000_000_000)

    static func outbox(_ factory: BackendFactory) async throws -> any SettlementBackend & WebhookOutbox {
        let backend = try await factory.make(usd)
        guard let outbox = backend as? any SettlementBackend & WebhookOutbox else {
            throw SettlementError(.invalidInput, "backend \(factory.name) keeps no outbox")
        }
        return outbox
    }

    /// An endpoint taking every event: a ledger writes only the events an endpoint listens to.
    static func listenToEverything(_ outbox: any WebhookOutbox, id: String = "whe_all") async throws {
        try await outbox.addWebhookEndpoint(WebhookEndpoint(id: id, url: "http://127.0.0.1:1/all", events: WebhookEventType.allCases.map(\.rawValue),
                                                            secret: "s", createdAt: start))
    }

    /// A backend whose outbox has an endpoint listening to every event.
    static func listening(_ factory: BackendFactory) async throws -> any SettlementBackend & WebhookOutbox {
        let backend = try await outbox(factory)
        try await listenToEverything(backend)
        return backend
    }

    static func dollars(_ units: Int64) -> Money { Money(micros: units * 1_000_000) }

    static func reserve(_ backend: any SettlementBackend, _ execution: String, _ consumer: String, _ amount: Money, at now: Timestamp,
                        ttlSeconds: Int64 = 900) async throws -> Hold {
        try await backend.reserve(ReserveCommand(execution: execution, fingerprint: "f-\(execution)", consumer: consumer, plan: "p", version: 1,
                                                 periodStart: nil, amount: amount, expiresAt: now.adding(nanoseconds: ttlSeconds * 1_000_000_000)!,
                                                 now: now))
    }

    static func purchase(_ backend: any SettlementBackend, _ key: String, _ consumer: String, _ amount: Money) async throws {
        _ = try await backend.purchase(PurchaseCommand(key: key, fingerprint: "f-\(key)-\(amount.micros)", consumer: consumer, amount: amount, now: start))
    }

    static func events(_ outbox: any WebhookOutbox) async throws -> [OutboxEvent] {
        try await outbox.outboxEvents(after: 0, limit: 10_000)
    }

    /// A consumer with 12.00 under the default threshold of 10.00, holds placed and given back:
    /// each crossing once, whatever the number of executions on the same side.
    public static func thresholdsOncePerCrossing(_ factory: BackendFactory) async throws {
        let backend = try await listening(factory)
        try await purchase(backend, "buy-1", "c1", dollars(12))
        // Opening at 0 then 12.00: recovered (accounts open at 0, below the threshold).
        #expect(try await events(backend).map(\.type).sorted() == ["balance.recovered", "purchase.succeeded"])
        let before = try await events(backend).count
        // 12 -> 9 (low), -> 8, -> 7, -> 6: one balance.low for four holds below.
        for index in 1...4 {
            _ = try await reserve(backend, "e\(index)", "c1", dollars(index == 1 ? 3 : 1), at: start)
        }
        var types = try await events(backend).dropFirst(before).map(\.type)
        #expect(types == ["balance.low"])
        // Back to 12: recovered once; then down to exactly 0: low, then depleted, in that order.
        for index in 1...4 { _ = try await backend.release(ReleaseCommand(execution: "e\(index)", now: start)) }
        _ = try await reserve(backend, "e5", "c1", dollars(12), at: start)
        types = try await events(backend).dropFirst(before).map(\.type)
        #expect(types == ["balance.low", "balance.recovered", "balance.low", "credits.depleted"])
        let depleted = try #require(try await events(backend).last)
        #expect(depleted.subject == "c1")
        #expect(depleted.data.contains("\"available_micros\":0") || depleted.data.contains("\"available_micros\" : 0")
                || depleted.data.contains("\"available_micros\": 0"))
        // A threshold of the consumer's own (0.50) after the default: 0 -> 1.00 recovers against it.
        try await backend.setLowBalance(consumer: "c1", threshold: Money(micros: 500_000))
        try await backend.setDefaultLowBalance(Money(micros: 500_000))
        _ = try await backend.release(ReleaseCommand(execution: "e5", now: start))
        #expect(try await events(backend).last?.type == "balance.recovered")
    }

    /// A step that wrote rows (an expired hold given back: available rose past the threshold) and
    /// was then refused leaves no event; the same change committed writes one.
    public static func rolledBackStepEmitsNothing(_ factory: BackendFactory) async throws {
        let backend = try await listening(factory)
        try await purchase(backend, "buy-1", "c2", dollars(15))
        _ = try await reserve(backend, "held", "c2", dollars(10), at: start, ttlSeconds: 60)   // 15 -> 5: balance.low
        let before = try await events(backend)
        #expect(before.map(\.type).suffix(1) == ["balance.low"])
        let later = start.adding(nanoseconds: 120 * 1_000_000_000)!
        // The hold expired: the reserve gives it back (5 -> 15, recovered) inside its step, then is
        // refused for credits: the whole step rolls back, its event with it.
        await #expect(throws: SettlementError.self) { _ = try await reserve(backend, "too-big", "c2", dollars(100), at: later) }
        #expect(try await events(backend) == before)
        // A purchase under a reused key with another amount is refused too: nothing.
        await #expect(throws: SettlementError.self) { try await purchase(backend, "buy-1", "c2", dollars(16)) }
        #expect(try await events(backend) == before)
        // The same give-back committed: recovered.
        _ = try await backend.expireHolds(at: later)
        #expect(try await events(backend).dropFirst(before.count).map(\.type) == ["balance.recovered"])
        // A refusal the ledger records (a replay's): its event in its step, once however often retried.
        let refusal = ReserveCommand(execution: "kept", fingerprint: "f-kept", consumer: "c2", plan: "p", version: 1, periodStart: nil, amount: dollars(1_000),
                                     expiresAt: later.adding(nanoseconds: 900_000_000_000)!, now: later, recordsRefusal: true)
        let refusedOnce = try await backend.reserve(refusal), refusedAgain = try await backend.reserve(refusal)
        #expect(refusedOnce.refused && refusedAgain.refused)
        let refused = try await events(backend).filter { $0.type == "execution.refused" }
        #expect(refused.map(fields) == [["consumer": "c2", "execution": "kept", "reason": "insufficient_credits"]])
    }

    /// Deliveries: one per endpoint taking the type, the head of each subject only, leased to one
    /// owner at a time, retried on schedule, failed after 72 h and listed.
    public static func deliveriesInOrderUnderLease(_ factory: BackendFactory) async throws {
        let backend = try await outbox(factory)
        try await backend.addWebhookEndpoint(WebhookEndpoint(id: "whe_a", url: "http://127.0.0.1:1/a", events: ["purchase.succeeded"],
                                                             secret: "whsec_a", createdAt: start))
        try await backend.addWebhookEndpoint(WebhookEndpoint(id: "whe_b", url: "http://127.0.0.1:1/b", events: ["purchase.succeeded", "balance.low"],
                                                             secret: "whsec_b", createdAt: start))
        await #expect(throws: SettlementError.self) {
            try await backend.addWebhookEndpoint(WebhookEndpoint(id: "whe_a", url: "http://x", events: [], secret: "s", createdAt: start))
        }
        #expect(try await backend.webhookEndpoints().map(\.id) == ["whe_a", "whe_b"])
        for index in 1...3 { try await purchase(backend, "buy-x\(index)", "x", dollars(1)) }
        try await purchase(backend, "buy-y1", "y", dollars(1))
        let lease = start.adding(nanoseconds: WebhookBackoff.leaseSeconds * 1_000_000_000)!
        // Two workers claim at once: disjoint, and each (endpoint, subject) has only its head out.
        async let first = backend.claimDeliveries(now: start, owner: "w1", leaseUntil: lease, limit: 100)
        async let second = backend.claimDeliveries(now: start, owner: "w2", leaseUntil: lease, limit: 100)
        let (one, two) = try await (first, second)
        let claimed = one + two
        #expect(Set(one.map(\.id)).isDisjoint(with: two.map(\.id)))
        #expect(claimed.count == 4, "x and y, to each of the two endpoints: \(claimed.map { ($0.endpoint, $0.event.subject) })")
        #expect(Set(claimed.map { "\($0.endpoint)/\($0.event.subject)" }) == ["whe_a/x", "whe_a/y", "whe_b/x", "whe_b/y"])
        let xHeads = claimed.filter { $0.event.subject == "x" }
        #expect(Set(xHeads.map(\.event.data)).count == 1, "the first purchase of x to both")
        // Leased: nobody else gets them, nor the next of x.
        #expect(try await backend.claimDeliveries(now: start, owner: "w3", leaseUntil: lease, limit: 100).isEmpty)
        // A finish by a worker that does not hold the lease changes nothing.
        let head = try #require(claimed.first { $0.endpoint == "whe_a" && $0.event.subject == "x" })
        let headOwner = one.contains(head) ? "w1" : "w2"
        try await backend.finishDelivery(id: head.id, owner: "w3", result: .delivered, now: start)
        try await backend.finishDelivery(id: head.id, owner: headOwner, result: .delivered, now: start)
        let next = try await backend.claimDeliveries(now: start, owner: "w3", leaseUntil: lease, limit: 100)
        #expect(next.map(\.endpoint) == ["whe_a"])
        #expect(next.first.map { $0.event.sequence > head.event.sequence && $0.event.subject == "x" } == true)
        // Fail it: retried after 30 s, not before; after 72 h of failures it is given up and listed.
        let failing = try #require(next.first)
        let result = WebhookBackoff.afterFailure(attempts: 1, firstFailureAt: nil, now: start, error: "HTTP 500")
        #expect(result == .retry(nextAttemptAt: start.adding(nanoseconds: 30_000_000_000)!, firstFailureAt: start, error: "HTTP 500"))
        try await backend.finishDelivery(id: failing.id, owner: "w3", result: result, now: start)
        let at29 = start.adding(nanoseconds: 29_000_000_000)!, at30 = start.adding(nanoseconds: 30_000_000_000)!
        #expect(try await backend.claimDeliveries(now: at29, owner: "w4", leaseUntil: lease, limit: 100).filter { $0.id == failing.id }.isEmpty)
        let again = try await backend.claimDeliveries(now: at30, owner: "w4", leaseUntil: at30.adding(nanoseconds: 60_000_000_000)!, limit: 100)
        let retried = try #require(again.first { $0.id == failing.id })
        #expect(retried.attempts == 1 && retried.firstFailureAt == start && retried.lastError == "HTTP 500")
        let late = start.adding(nanoseconds: WebhookBackoff.giveUpAfterSeconds * 1_000_000_000)!
        let given = WebhookBackoff.afterFailure(attempts: 2, firstFailureAt: start, now: late, error: "HTTP 502")
        #expect(given == .failed(firstFailureAt: start, error: "HTTP 502"))
        try await backend.finishDelivery(id: failing.id, owner: "w4", result: given, now: late)
        let failed = try await backend.failedDeliveries()
        #expect(failed.map(\.id) == [failing.id] && failed.first?.attempts == 2 && failed.first?.lastError == "HTTP 502")
        // Removing an endpoint drops its pending deliveries.
        #expect(try await backend.removeWebhookEndpoint(id: "whe_b", at: start)?.removedAt == start)
        #expect(try await backend.removeWebhookEndpoint(id: "whe_b", at: start) == nil)
        #expect(try await backend.webhookEndpoints().map(\.id) == ["whe_a"])
        let remaining = try await backend.claimDeliveries(now: late, owner: "w5", leaseUntil: late.adding(nanoseconds: 60_000_000_000)!, limit: 100)
        #expect(remaining.allSatisfy { $0.endpoint == "whe_a" })
    }

    /// A step writes only the events an endpoint listens to (none could be delivered otherwise),
    /// and from the moment the endpoint is added to the moment it is removed; `emit` writes always.
    public static func onlyListenedEventsWritten(_ factory: BackendFactory) async throws {
        let backend = try await outbox(factory)
        // No endpoint: a purchase (purchase.succeeded, balance.recovered) and a hold taking the
        // balance below the threshold (balance.low) write nothing.
        try await purchase(backend, "buy-1", "c3", dollars(12))
        _ = try await reserve(backend, "e1", "c3", dollars(3), at: start)
        #expect(try await events(backend).isEmpty)
        // An endpoint for purchases only: the next purchase writes its event, not the balance
        // event of that purchase (9 -> 21: recovered).
        try await backend.addWebhookEndpoint(WebhookEndpoint(id: "whe_p", url: "http://127.0.0.1:1/p", events: ["purchase.succeeded"],
                                                             secret: "s", createdAt: start))
        try await purchase(backend, "buy-2", "c3", dollars(12))
        let written = try await events(backend)
        #expect(written.map(\.type) == ["purchase.succeeded"])
        let claimed = try await backend.claimDeliveries(now: start, owner: "w", leaseUntil: start.adding(nanoseconds: 60_000_000_000)!, limit: 100)
        #expect(claimed.map(\.event.type) == ["purchase.succeeded"])
        // Removed: nothing again.
        _ = try await backend.removeWebhookEndpoint(id: "whe_p", at: start)
        try await purchase(backend, "buy-3", "c3", dollars(12))
        #expect(try await events(backend) == written)
        // `emit` (an event whose cause wrote nothing) is written with no endpoint.
        let event = try await backend.emit(.autoTopUpFailed(consumer: "c3", crossing: 1, amount: dollars(50), reason: "card_declined"))
        #expect(try await events(backend) == written + [event])
    }

    /// `emit` writes alone (a refusal that wrote nothing, a declined top-up).
    public static func emitAlone(_ factory: BackendFactory) async throws {
        let backend = try await outbox(factory)
        let event = try await backend.emit(.autoTopUpFailed(consumer: "c\"q", crossing: 1, amount: dollars(50), reason: "card_declined"))
        #expect(event.type == "auto_top_up.failed" && event.subject == "c\"q")
        #expect(event.data == #"{"consumer":"c\"q","key":"topup:c\"q:1","amount_micros":50000000,"reason":"card_declined"}"#)
        #expect(try await events(backend) == [event])
        #expect(event.body == #"{"id":"evt_1","type":"auto_top_up.failed","created":\#(event.created),"data":\#(event.data)}"#)
    }

    /// An event's `data` as values (PostgreSQL's JSON text spaces its members; SQLite's and the in-memory one do not).
    static func fields(_ event: OutboxEvent) -> [String: String] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any] else { return [:] }
        return object.mapValues { "\($0)" }
    }

    /// The subscription lifecycle of the conformance suite (one fee after its subscription's first:
    /// metered's December fee; three periods closed), then a payout week with one creator refused:
    /// the events the ledger's own steps wrote, counted by hand.
    public static func ledgerEvents(_ factory: BackendFactory) async throws {
        let ledger = try await TestLedger.make(factory)
        let outbox = try #require(ledger.backend as? any WebhookOutbox)
        try await listenToEverything(outbox)
        try await SettlementConformance.subscriptionLifecycle(ledger)
        let written = try await events(outbox)
        // metered subscribed 2026-11-02 (its first fee: no event), renewed 2026-12-02; metered-max's first fee 2026-12-10: no event.
        let renewed = written.filter { $0.type == "subscription.renewed" }
        #expect(renewed.map(\.subject) == ["cus_s"])
        #expect(renewed.map(fields) == [["consumer": "cus_s", "plan": "metered", "period_start_ns": "1796205600000000000",
                                          "billed_micros": "10000000", "charged_micros": "10000000"]])
        // Closed: November's period, December's cut short at the replacement, metered-max's to its cancel.
        let closed = written.filter { $0.type == "period.closed" }.map(fields)
        #expect(closed.map { $0["plan"] } == ["metered", "metered", "metered-max"])
        #expect(closed.map { $0["period_end_ns"] } == ["1796205600000000000", "1796860800000000000", "1799539200000000000"])
        #expect(closed.map { $0["shortfall_micros"] } == ["0", "0", "0"])

        // Payouts: acct_c3 refused, the four others paid; the next week acct_c3 paid.
        let payouts = try await TestLedger.make(factory)
        let payoutOutbox = try #require(payouts.backend as? any WebhookOutbox)
        try await listenToEverything(payoutOutbox)
        try await SettlementConformance.refusedCreator(payouts)
        let payoutEvents = try await events(payoutOutbox).filter { $0.type.hasPrefix("payout.") }
        #expect(payoutEvents.map { "\($0.subject) \($0.type)" } == [
            "creator:acct_c1 payout.paid", "creator:acct_c2 payout.paid", "creator:acct_c3 payout.failed", "creator:acct_c4 payout.paid",
            "creator:acct_c5 payout.paid", "creator:acct_c3 payout.paid",
        ])
        let failed = try #require(payoutEvents.first { $0.type == "payout.failed" }.map(fields))
        #expect(failed["payout"] == "payout:acct_c3:2026-11-02" && failed["amount_micros"] == "10000000" && failed["reason"]?.contains("transfers") == true)
        #expect(payoutEvents.map(fields).last?["payout"] == "payout:acct_c3:2026-11-09")
        #expect(written.contains { $0.type == "purchase.succeeded" })
    }
}
