import Foundation
import Testing
import Tariff
@testable import TariffServer
import TariffSettlement

/// A ledger whose storage fails on every step (a database gone away).
struct FailingBackend: SettlementBackend {
    let currency = Currency(code: "USD")!
    static let failure = SettlementError(.storage, "disk I/O error")
    func purchase(_ command: PurchaseCommand) async throws -> PurchaseReceipt { throw Self.failure }
    func balance(consumer: String, at now: Timestamp) async throws -> Balance { throw Self.failure }
    func reserve(_ command: ReserveCommand) async throws -> Hold { throw Self.failure }
    func periodState(_ key: PeriodKey) async throws -> PeriodState { throw Self.failure }
    func hold(execution: String) async throws -> HoldRecord? { throw Self.failure }
    func extendHold(_ command: ExtendCommand) async throws -> MeterReceipt { throw Self.failure }
    func settle(_ command: SettleCommand, pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) async throws -> SettleReceipt { throw Self.failure }
    func release(_ command: ReleaseCommand) async throws -> ReleaseReceipt { throw Self.failure }
    func chargePeriod(_ command: PeriodChargeCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt { throw Self.failure }
    func expireHolds(at now: Timestamp) async throws -> Int { throw Self.failure }
    func recordPayout(_ command: PayoutCommand) async throws -> PayoutStep { throw Self.failure }
    func failPayout(key: String, reason: String, now: Timestamp) async throws -> PayoutRecord { throw Self.failure }
    func reversePayout(key: String, reversedTotal: Money, transfer: String, now: Timestamp) async throws -> PayoutRecord { throw Self.failure }
    func releaseCreator(_ creator: String) async throws -> Bool { throw Self.failure }
    func creatorHolds() async throws -> [CreatorHold] { throw Self.failure }
    func markPayoutSent(key: String, reference: String) async throws { throw Self.failure }
    func payouts(weekStart: CivilDate) async throws -> [PayoutRecord] { throw Self.failure }
    func chargeRecords(_ query: ChargeQuery) async throws -> [ChargeRecord] { throw Self.failure }
    func snapshot() async throws -> LedgerSnapshot { throw Self.failure }
    func beginPurchase(_ command: PendingPurchaseCommand) async throws -> PendingPurchaseReceipt { throw Self.failure }
    func updatePurchase(key: String, reference: String?, state: PurchaseRecord.State) async throws -> PurchaseRecord { throw Self.failure }
    func purchaseRecord(key: String) async throws -> PurchaseRecord? { throw Self.failure }
    func purchaseRecord(reference: String) async throws -> PurchaseRecord? { throw Self.failure }
    func refund(_ command: RefundCommand) async throws -> ReversalRecord { throw Self.failure }
    func completeRefund(key: String, reference: String?, failed: Bool, now: Timestamp) async throws -> ReversalRecord { throw Self.failure }
    func disputeLost(_ command: DisputeCommand) async throws -> ReversalRecord { throw Self.failure }
    func openPeriod(_ record: PeriodCloseRecord) async throws -> PeriodCloseRecord { throw Self.failure }
    func closePeriod(_ command: PeriodCloseCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt {
        throw Self.failure
    }
    func periodCloses() async throws -> [PeriodCloseRecord] { throw Self.failure }
    func subscribe(_ command: SubscribeCommand) async throws -> SubscribeReceipt { throw Self.failure }
    func cancelSubscription(id: String, at: Timestamp) async throws -> SubscriptionRecord { throw Self.failure }
    func advanceSubscription(id: String, chargedPeriods: Int) async throws -> SubscriptionRecord { throw Self.failure }
    func subscriptions(consumer: String?) async throws -> [SubscriptionRecord] { throw Self.failure }
    func subscription(id: String) async throws -> SubscriptionRecord? { throw Self.failure }
    func dueSubscriptions(at now: Timestamp) async throws -> [SubscriptionRecord] { throw Self.failure }
}

@Suite("Storage failures")
struct StorageFailureTests {
    @Test("a ledger that cannot be reached: 503 storage with Retry-After, /readyz 503, /healthz 200, never a 500")
    func unavailable() async throws {
        let server = try await TestServer.start(backend: FailingBackend(), store: InMemoryServiceStore())
        let admin = server.adminKey
        #expect(try await server.send("GET", "/healthz").status == 200)
        let ready = try await server.send("GET", "/readyz")
        #expect(ready.status == 503)
        #expect(ready.code == "storage")
        for (method, path, body) in [("GET", "/v1/balance?consumer=cus_a", nil), ("POST", "/v1/executions", #"{"execution":"e","consumer":"c","agent":"agt_research"}"#),
                                     ("GET", "/v1/ledger/verify", nil), ("GET", "/v1/usage", nil), ("GET", "/v1/executions/e", nil)] as [(String, String, String?)] {
            let answer = try await server.send(method, path, key: admin, json: body)
            #expect(answer.status == 503, "\(method) \(path): \(answer.status)")
            #expect(answer.code == "storage")
            #expect(answer.headers["retry-after"] != nil)
            #expect(!answer.body.contains("disk I/O"), "the storage's own message is not shown to clients")
        }
        await server.stop()
    }
}
