import Dispatch
import Synchronization
import Tariff
import TariffSettlement
import TariffStripe

/// The consumers with an auto top-up setting, as this process last read them: a settle checks
/// only those, so the common case (no setting) costs no read of the ledger. Re-read when older
/// than `refreshNanoseconds` (a setting saved on another server sharing the ledger is seen within
/// that, and the clock's sweep checks every setting anyway); this server's own `PUT` adds at once.
final class AutoTopUpConsumers: Sendable {
    static let refreshNanoseconds: UInt64 = 1_000_000_000
    private let state = Mutex<(consumers: Set<ByteKey>, loadedAt: UInt64?)>(([], nil))

    func add(_ consumer: String) { state.withLock { _ = $0.consumers.insert(ByteKey(consumer)) } }

    /// Whether `consumer` may have a setting (true when the set could not be read: check anyway).
    func mayHave(_ consumer: String, store: any AutoTopUpStore) async -> Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        let cached = state.withLock { state -> Bool? in
            guard let loadedAt = state.loadedAt, now &- loadedAt < Self.refreshNanoseconds else { return nil }
            return state.consumers.contains(ByteKey(consumer))
        }
        if let cached { return cached }
        guard let settings = try? await store.autoTopUps() else { return true }
        let consumers = Set(settings.map { ByteKey($0.consumer) })
        return state.withLock { state in
            // Settings are never deleted: the set only grows (a consumer added by a `PUT` while the read ran stays).
            state.consumers.formUnion(consumers)
            state.loadedAt = now
            return state.consumers.contains(ByteKey(consumer))
        }
    }
}

extension TariffService {
    // MARK: Auto top-up (service.md, "Auto top-up"; docs/auto-top-up.md)

    var autoTopUps: (any AutoTopUpStore)? { configuration.store as? any AutoTopUpStore }

    /// `PUT /v1/consumers/{id}/auto-top-up` `{"below","amount"}` (the consumer's own key or an
    /// admin's): saves the setting, armed (a declined one is tried again only after this), then
    /// checks at once, so a consumer already below `below` is topped up now.
    func putAutoTopUp(_ request: ServiceRequest, id: String, _ principal: Principal) async throws -> ServiceResponse {
        guard let consumer = try consumer(named: id, for: principal, required: true) else { throw APIError.invalid("a consumer id is required") }
        let body = try await body(request, allowed: ["below", "amount"])
        guard let below = try body.amount("below") else { throw APIError(400, "invalid_amount", "'below' is required") }
        guard let amount = try body.amount("amount") else { throw APIError(400, "invalid_amount", "'amount' is required") }
        guard below.micros >= 0 else { throw APIError(400, "invalid_amount", "'below' cannot be negative") }
        guard amount.micros > 0 else { throw APIError(400, "invalid_amount", "'amount' must be above zero") }
        guard let store = autoTopUps else { throw APIError(503, "storage", "this ledger keeps no auto top-up settings", headers: [("Retry-After", "1")]) }
        let saved = try await store.saveAutoTopUp(consumer: consumer, below: below, amount: amount, now: clock.now())
        autoTopUpConsumers.add(consumer)
        await checkAutoTopUp(consumer, in: store)
        let current = try await store.autoTopUp(consumer: consumer) ?? saved
        return .json(200, current.json)
    }

    /// The check after a change of `available` (a settle, a meter sample, a period fee or close):
    /// reads the setting, then the balance, then acts by compare-and-set on the setting's version
    /// (`AutoTopUpRules.decide`), so of all the checks racing on one crossing, on this server or
    /// another sharing the ledger, exactly one claims it and buys. Never throws: the request that
    /// triggered it succeeded; a failed check is logged and the next one tries again (a purchase
    /// left in flight by a failure of the rail or the storage is taken over, under its key, once
    /// its claim is stale).
    func checkAutoTopUp(_ consumer: String) async {
        guard let store = autoTopUps, await autoTopUpConsumers.mayHave(consumer, store: store) else { return }
        await checkAutoTopUp(consumer, in: store)
    }

    /// The check itself, for a consumer known to have a setting (the sweep, the `PUT`, after a purchase).
    func checkAutoTopUp(_ consumer: String, in store: any AutoTopUpStore) async {
        do {
            guard let setting = try await store.autoTopUp(consumer: consumer), setting.state != .failed else { return }
            // A consumer with no ledger history yet has nothing available.
            let available: Money
            do { available = try await settlement.balance(consumer: consumer).available } catch let error as SettlementError where error.code == .unknownConsumer {
                available = .zero
            }
            switch AutoTopUpRules.decide(setting, available: available, now: clock.now()) {
            case .none:
                return
            case .rearm(let next):
                _ = try await store.replaceAutoTopUp(next, expectedVersion: setting.version)
            case .claim(let next):
                guard try await store.replaceAutoTopUp(next, expectedVersion: setting.version) else { return }
                try await buyTopUp(next, store: store)
            }
        } catch {
            configuration.logger.warning("auto top-up check failed; the next check tries again",
                                         metadata: ["error": .string((error as? SettlementError)?.code.rawValue ?? "storage")])
        }
    }

    /// Every consumer's check (the clock's sweep: fees and closes change `available` too).
    func sweepAutoTopUps() async {
        guard let store = autoTopUps, let settings = try? await store.autoTopUps() else { return }
        for setting in settings { await checkAutoTopUp(setting.consumer, in: store) }
    }

    /// The longest failure reason kept with a setting, in characters.
    static let maximumTopUpFailureLength = 500

    /// Codes that end a top-up as declined (recorded, not retried until the setting changes);
    /// any other failure (the rail unreachable, the storage) leaves it in flight, retried later.
    static let autoTopUpDeclines: Set<SettlementError.Code> = [.paymentDeclined, .railRejected, .invalidInput, .invalidKey, .wrongCurrency]

    /// The purchase of a claimed crossing: `amount` under `topup:CONSUMER:N`, off-session, charged
    /// to the consumer's recorded Stripe customer's default payment method (the log rail writes it).
    func buyTopUp(_ claim: AutoTopUpSetting, store: any AutoTopUpStore) async throws {
        let consumer = claim.consumer, crossing = claim.crossings
        func declined(_ reason: String) async throws {
            // A rail's message, bounded as a failed payout's is (it is kept and answered).
            let kept = String(reason.prefix(Self.maximumTopUpFailureLength))
            try await store.recordAutoTopUpFailure(consumer: consumer, crossing: crossing, reason: kept, now: clock.now())
            configuration.logger.info("auto top-up declined", metadata: ["crossing": .stringConvertible(crossing)])
        }
        let settings = try await configuration.store.consumerSettings(consumer)
        var payer = settings?.stripeCustomer ?? consumer, paymentMethod = "default"
        if case .stripe(let rail) = configuration.rail {
            guard let customer = settings?.stripeCustomer else {
                return try await declined("no Stripe customer is recorded for the consumer (PUT /v1/consumers/{id})")
            }
            do {
                guard let method = try await rail.defaultPaymentMethod(ofCustomer: customer) else {
                    return try await declined("the Stripe customer has no default payment method")
                }
                paymentMethod = method
            } catch let error as SettlementError where Self.autoTopUpDeclines.contains(error.code) {
                return try await declined(error.message)
            }
            payer = customer
        }
        let settlement = settlement
        var purchase = CreditPurchase(consumer: consumer, amount: claim.amount, currency: settlement.currency,
                                      idempotencyKey: AutoTopUpSetting.purchaseKey(consumer: consumer, crossing: crossing), payer: payer,
                                      paymentMethod: paymentMethod)
        purchase.offSession = true
        do {
            let result = try await configuration.rail.charge(purchase, on: settlement)
            switch result.outcome {
            case .succeeded:
                try await store.completeAutoTopUp(consumer: consumer, crossing: crossing, now: clock.now())
                // Armed again at once when the purchase lifted `available` to `below` or above, so the
                // next fall below is the next crossing even if no other check comes in between.
                await checkAutoTopUp(consumer, in: store)
            case .pending:
                // Off-session, nobody is there to authenticate: a payment that needs the customer is a failure
                // (the webhook still credits it if the customer completes it).
                try await declined("the payment needs the customer's authentication, which an off-session charge cannot ask for")
            }
        } catch let error as SettlementError where Self.autoTopUpDeclines.contains(error.code) {
            try await declined(error.message)
        }
    }
}
