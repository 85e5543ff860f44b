import Foundation
import Tariff
import TariffSettlement
import TariffSettlementTesting
@testable import TariffStripe
import Testing

/// `transfer.reversed`: the reversed amount goes back to earnings, the creator is held.
@Suite("Reversed transfers (webhook)")
struct StripeTransferReversalTests {
    typealias S = StripeTestSupport

    static func reversal(id: String, transfer: String, key: String, amount: Int64, reversed: Int64, currency: String = "usd") -> Data {
        Data("""
            {"id":"\(id)","object":"event","type":"transfer.reversed","livemode":false,"data":{"object":{"id":"\(transfer)","object":"transfer",\
            "amount":\(amount),"amount_reversed":\(reversed),"currency":"\(currency)","destination":"acct_creator2","reversed":\(reversed == amount),\
            "transfer_group":"2026-11-02","metadata":{"tariff_payout_key":"\(key)"}}}}
            """.utf8)
    }

    @Test("a signed transfer.reversed returns the reversed amount to earnings once, holds the creator, and the next run skips it until released")
    func reversed() async throws {
        let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
        let settlement = Settlement(backend: InMemoryBackend(currency: S.usd), catalog: StripePayoutRunTests.catalog, clock: clock)
        try await StripePayoutRunTests.seed(settlement)
        clock.set(Timestamp(rfc3339: "2026-11-11T08:00:00Z")!)
        let rail = RefusingRail()
        _ = try await settlement.executePayouts(week: Timestamp(date: "2026-11-02")!.civilDate, rail: rail)
        let webhook = try StripeWebhook(endpointSecret: "whsec_test_reversal")
        let now = clock.now()
        let key = "payout:acct_creator2:2026-11-02"
        // A partial reversal (15.00 of the 20.00), then the whole: each delivery twice.
        for (reversed, expected) in [(Int64(1_500), "15.00"), (2_000, "20.00")] {
            for _ in 0..<2 {
                let payload = Self.reversal(id: "evt_\(reversed)", transfer: "tr_2", key: key, amount: 2_000, reversed: reversed)
                let event = try webhook.verify(payload: payload, signatureHeader: webhook.signatureHeader(payload: payload, timestamp: now.nanosecondsSinceEpoch / 1_000_000_000), now: now)
                #expect(try await webhook.apply(event, to: settlement) == nil) // not a purchase
                let record = try await webhook.applyTransferReversal(event, to: settlement)
                #expect(record?.returned == S.money(expected))
            }
        }
        let snapshot = try await settlement.backend.snapshot()
        #expect(snapshot.entries.filter { $0.operation == "payout-reversed:" + key }.map(\.amount) == [S.money("15.00"), S.money("5.00")])
        #expect(snapshot.balances[Account(.earnings, "acct_creator2")] == 20_000_000)
        #expect(try await settlement.creatorHolds().map(\.creator) == ["acct_creator2"])
        // Another currency is refused; a transfer made outside Tariff (no key) is ignored.
        let yen = Self.reversal(id: "evt_y", transfer: "tr_2", key: key, amount: 2_000, reversed: 2_000, currency: "jpy")
        let yenEvent = try webhook.verify(payload: yen, signatureHeader: webhook.signatureHeader(payload: yen, timestamp: now.nanosecondsSinceEpoch / 1_000_000_000), now: now)
        await #expect(throws: SettlementError.self) { try await webhook.applyTransferReversal(yenEvent, to: settlement) }

        // The next week: acct_creator2 is held and skipped, then released and paid its 20.00.
        clock.set(Timestamp(rfc3339: "2026-11-18T08:00:00Z")!)
        let week = Timestamp(date: "2026-11-09")!.civilDate
        #expect(try await settlement.executePayouts(week: week, rail: rail).map(\.status) == [.held])
        #expect(rail.paid.count == 6)
        #expect(try await settlement.releaseCreator("acct_creator2"))
        let paid = try await settlement.executePayouts(week: week, rail: rail)
        #expect(paid.map(\.creator) == ["acct_creator2"] && paid.map(\.amount) == [S.money("20.00")] && paid.map(\.status) == [.paid])
        let report = try await settlement.verify()
        #expect(report.passed, "\(report.invariants.filter { !$0.holds })")
    }
}
