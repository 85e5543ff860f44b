import Tariff

/// The reference backend: the whole ledger in memory, in an actor.
///
/// For tests, simulations and examples. Each step runs `LedgerSteps` on the actor's state with an
/// undo log: a step that throws is rolled back entry by entry, so a refused operation leaves the
/// state exactly as it was. Time comes from the commands (the lifecycle's injected clock).
public actor InMemoryBackend {
    public nonisolated let currency: Currency
    private var state = MemoryState()

    public init(currency: Currency) {
        self.currency = currency
    }

    /// Runs one step: commits on return, undoes every write on throw.
    private func step<Result>(_ body: (inout MemoryStore) throws -> Result) throws -> Result {
        // Move the state into the store (no copy-on-write copy of the dictionaries), then back.
        var store = MemoryStore(state: state, currency: currency)
        state = MemoryState()
        defer { state = store.state }
        do {
            return try body(&store)
        } catch {
            store.rollBack()
            throw error
        }
    }

    /// Reads or writes the state outside a ledger step (the outbox's own writes).
    func withState<Result>(_ body: (inout MemoryState) throws -> Result) rethrows -> Result {
        try body(&state)
    }
}

extension InMemoryBackend: SettlementBackend {
    /// The batch in one turn of the actor: each step on its own undo log, so a refused step is
    /// undone alone and the others stay.
    public func apply(_ steps: [LedgerStep]) -> [Result<LedgerStepOutcome, SettlementError>] {
        steps.map { step in
            do {
                return .success(try self.step { try LedgerSteps.apply(step, in: &$0) })
            } catch let error as SettlementError {
                return .failure(error)
            } catch {
                return .failure(SettlementError(.storage, "\(error)"))
            }
        }
    }

    public func purchase(_ command: PurchaseCommand) throws -> PurchaseReceipt {
        try step { try LedgerSteps.purchase(command, in: &$0) }
    }

    public func balance(consumer: String, at now: Timestamp) throws -> Balance {
        guard let record = state.consumers[ByteKey(consumer)] else {
            throw SettlementError(.unknownConsumer, "no credits were ever purchased for consumer '\(consumer)'")
        }
        // Holds past their expiry already count as available (without writing anything).
        var expired: Int64 = 0
        for execution in state.activeHolds[ByteKey(consumer)] ?? [] {
            if let hold = state.holds[execution], !(now < hold.expiresAt) { expired += hold.amount.micros }
        }
        return Balance(consumer: consumer, currency: currency, available: Money(micros: record.available.micros + expired),
                       reserved: Money(micros: record.reserved.micros - expired))
    }

    public func reserve(_ command: ReserveCommand) throws -> Hold {
        try step { try LedgerSteps.reserve(command, in: &$0) }
    }

    public func periodState(_ key: PeriodKey) -> PeriodState {
        state.periods[ByteKey(key.rawValue)] ?? .empty
    }

    public func hold(execution: String) -> HoldRecord? {
        state.holds[ByteKey(execution)]
    }

    public func extendHold(_ command: ExtendCommand) throws -> MeterReceipt {
        try step { try LedgerSteps.extendHold(command, in: &$0) }
    }

    public func settle(_ command: SettleCommand, pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) throws -> SettleReceipt {
        try step { try LedgerSteps.settle(command, pricing: pricing, in: &$0) }
    }

    public func release(_ command: ReleaseCommand) throws -> ReleaseReceipt {
        try step { try LedgerSteps.release(command, in: &$0) }
    }

    public func chargePeriod(_ command: PeriodChargeCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) throws -> PeriodChargeReceipt {
        try step { try LedgerSteps.chargePeriod(command, lines: lines, in: &$0) }
    }

    public func expireHolds(at now: Timestamp) throws -> Int {
        try step { try LedgerSteps.expireHolds(at: now, in: &$0) }
    }

    public func recordPayout(_ command: PayoutCommand) throws -> PayoutStep {
        try step { try LedgerSteps.recordPayout(command, in: &$0) }
    }

    public func failPayout(key: String, reason: String, now: Timestamp) throws -> PayoutRecord {
        try step { try LedgerSteps.failPayout(key: key, reason: reason, now: now, in: &$0) }
    }

    public func reversePayout(key: String, reversedTotal: Money, transfer: String, now: Timestamp) throws -> PayoutRecord {
        try step { try LedgerSteps.reversePayout(key: key, reversedTotal: reversedTotal, transfer: transfer, now: now, in: &$0) }
    }

    public func releaseCreator(_ creator: String) throws -> Bool {
        try step { try LedgerSteps.releaseCreator(creator, in: &$0) }
    }

    public func creatorHolds() -> [CreatorHold] {
        state.creatorHolds.values.sorted { $0.creator.bytesPrecede($1.creator) }
    }

    public func payoutRecords() -> [PayoutRecord] {
        state.payouts.values.sorted { $0.key.bytesPrecede($1.key) }
    }

    public func markPayoutSent(key: String, reference: String) throws {
        try step { try LedgerSteps.markPayoutSent(key: key, reference: reference, in: &$0) }
    }

    public func beginPurchase(_ command: PendingPurchaseCommand) throws -> PendingPurchaseReceipt {
        try step { try LedgerSteps.beginPurchase(command, in: &$0) }
    }

    public func updatePurchase(key: String, reference: String?, state: PurchaseRecord.State) throws -> PurchaseRecord {
        try step { try LedgerSteps.updatePurchase(key: key, reference: reference, state: state, in: &$0) }
    }

    public func purchaseRecord(key: String) -> PurchaseRecord? { state.purchases[ByteKey(key)] }

    public func purchaseRecord(reference: String) -> PurchaseRecord? {
        state.purchases.values.filter { $0.reference == reference }.min { $0.key.bytesPrecede($1.key) }
    }

    public func refund(_ command: RefundCommand) throws -> ReversalRecord {
        try step { try LedgerSteps.refund(command, in: &$0) }
    }

    public func completeRefund(key: String, reference: String?, failed: Bool, now: Timestamp) throws -> ReversalRecord {
        try step { try LedgerSteps.completeRefund(key: key, reference: reference, failed: failed, now: now, in: &$0) }
    }

    public func disputeLost(_ command: DisputeCommand) throws -> ReversalRecord {
        try step { try LedgerSteps.disputeLost(command, in: &$0) }
    }

    public func openPeriod(_ record: PeriodCloseRecord) throws -> PeriodCloseRecord {
        try step { try LedgerSteps.openPeriod(record, in: &$0) }
    }

    public func closePeriod(_ command: PeriodCloseCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) throws -> PeriodChargeReceipt {
        try step { try LedgerSteps.closePeriod(command, lines: lines, in: &$0) }
    }

    public func periodCloses() -> [PeriodCloseRecord] {
        state.closes.values.sorted { $0.key.bytesPrecede($1.key) }
    }

    public func subscribe(_ command: SubscribeCommand) throws -> SubscribeReceipt {
        try step { try LedgerSteps.subscribe(command, in: &$0) }
    }

    public func cancelSubscription(id: String, at: Timestamp) throws -> SubscriptionRecord {
        try step { try LedgerSteps.cancelSubscription(id: id, at: at, in: &$0) }
    }

    public func advanceSubscription(id: String, chargedPeriods: Int) throws -> SubscriptionRecord {
        try step { try LedgerSteps.advanceSubscription(id: id, chargedPeriods: chargedPeriods, in: &$0) }
    }

    public func subscriptions(consumer: String?) -> [SubscriptionRecord] {
        state.subscriptions.values.filter { record in consumer.map { record.consumer.bytesEqual($0) } ?? true }.sorted(by: SubscriptionRecord.listed)
    }

    public func subscription(id: String) -> SubscriptionRecord? { state.subscriptions[ByteKey(id)] }

    public func dueSubscriptions(at now: Timestamp) -> [SubscriptionRecord] {
        state.subscriptions.values.filter { $0.nextPeriodStart.map { $0 <= now } ?? false }.sorted { $0.id.bytesPrecede($1.id) }
    }

    public func payouts(weekStart: CivilDate) -> [PayoutRecord] {
        state.payouts.values.filter { $0.weekStart == weekStart }.sorted { $0.creator.bytesPrecede($1.creator) }
    }

    public func chargeRecords(_ query: ChargeQuery) -> [ChargeRecord] {
        state.charges.filter(query.matches)
    }

    public func snapshot() -> LedgerSnapshot {
        var snapshot = LedgerSnapshot(
            currency: currency,
            consumers: state.consumers.values.sorted { $0.id.bytesPrecede($1.id) },
            holds: state.holds.values.sorted { $0.execution.bytesPrecede($1.execution) },
            entries: state.entries,
            charges: state.charges,
            operations: state.operations.values.sorted { $0.key.bytesPrecede($1.key) },
            payouts: state.payouts.values.sorted { $0.key.bytesPrecede($1.key) },
            periods: state.periods.map { PeriodRecord(key: $0.key.string, state: $0.value) }.sorted { $0.key.bytesPrecede($1.key) },
            purchases: state.purchases.values.sorted { $0.key.bytesPrecede($1.key) },
            reversals: state.reversals.values.sorted { $0.key.bytesPrecede($1.key) })
        snapshot.closes = periodCloses()
        snapshot.subscriptions = state.subscriptions.values.sorted { $0.id.bytesPrecede($1.id) }
        return snapshot
    }
}

/// The in-memory ledger's rows, keyed by ids as UTF-8 bytes (`ByteKey`): as SQLite and PostgreSQL
/// key them, so precomposed and decomposed `café` are two consumers here too.
struct MemoryState {
    var consumers: [ByteKey: ConsumerRecord] = [:]
    var holds: [ByteKey: HoldRecord] = [:]
    /// Consumer -> executions of its active holds (expiry looks only at these).
    var activeHolds: [ByteKey: Set<ByteKey>] = [:]
    var periods: [ByteKey: PeriodState] = [:]
    var operations: [ByteKey: OperationRecord] = [:]
    var payouts: [ByteKey: PayoutRecord] = [:]
    var creatorHolds: [ByteKey: CreatorHold] = [:]
    var entries: [Entry] = []
    var charges: [ChargeRecord] = []
    var purchases: [ByteKey: PurchaseRecord] = [:]
    var reversals: [ByteKey: ReversalRecord] = [:]
    var closes: [ByteKey: PeriodCloseRecord] = [:]
    var subscriptions: [ByteKey: SubscriptionRecord] = [:]
    /// Events out: the outbox, the thresholds its balance events use, endpoints and deliveries.
    var events: [OutboxEvent] = []
    var defaultLowBalance = EventRules.defaultLowBalance
    var lowBalances: [ByteKey: Money] = [:]
    var endpoints: [WebhookEndpoint] = []
    var deliveries: [MemoryDelivery] = []

    mutating func setHold(_ execution: ByteKey, _ hold: HoldRecord?) {
        let consumer = (hold?.consumer ?? holds[execution]?.consumer).map(ByteKey.init)
        holds[execution] = hold
        guard let consumer else { return }
        if hold?.state == .active {
            activeHolds[consumer, default: []].insert(execution)
        } else {
            activeHolds[consumer]?.remove(execution)
            if activeHolds[consumer]?.isEmpty == true { activeHolds[consumer] = nil }
        }
    }
}

/// `LedgerStore` over `MemoryState`, recording how to undo each write.
struct MemoryStore: LedgerStore {
    var state: MemoryState
    let currency: Currency
    private var undo: [Undo] = []

    private enum Undo {
        case consumer(ByteKey, ConsumerRecord?)
        case hold(ByteKey, HoldRecord?)
        case period(ByteKey, PeriodState?)
        case operation(ByteKey, OperationRecord?)
        case payout(ByteKey, PayoutRecord?)
        case creatorHold(ByteKey, CreatorHold?)
        case entries(Int)
        case charges(Int)
        case purchase(ByteKey, PurchaseRecord?)
        case reversal(ByteKey, ReversalRecord?)
        case close(ByteKey, PeriodCloseRecord?)
        case subscription(ByteKey, SubscriptionRecord?)
        case events(eventCount: Int, deliveryCount: Int)
    }

    init(state: MemoryState, currency: Currency) {
        self.state = state
        self.currency = currency
    }

    mutating func rollBack() {
        while let last = undo.popLast() {
            switch last {
            case .consumer(let key, let old): state.consumers[key] = old
            case .hold(let key, let old): state.setHold(key, old)
            case .period(let key, let old): state.periods[key] = old
            case .operation(let key, let old): state.operations[key] = old
            case .payout(let key, let old): state.payouts[key] = old
            case .creatorHold(let key, let old): state.creatorHolds[key] = old
            case .entries(let count): state.entries.removeSubrange(count...)
            case .charges(let count): state.charges.removeSubrange(count...)
            case .purchase(let key, let old): state.purchases[key] = old
            case .reversal(let key, let old): state.reversals[key] = old
            case .close(let key, let old): state.closes[key] = old
            case .subscription(let key, let old): state.subscriptions[key] = old
            case .events(let eventCount, let deliveryCount):
                state.events.removeSubrange(eventCount...)
                state.deliveries.removeSubrange(deliveryCount...)
            }
        }
    }

    func consumer(_ id: String) -> ConsumerRecord? { state.consumers[ByteKey(id)] }

    mutating func saveConsumer(_ record: ConsumerRecord, isNew: Bool) {
        let key = ByteKey(record.id)
        let old = state.consumers[key]
        undo.append(.consumer(key, old))
        state.consumers[key] = record
        // A consumer's accounts open at 0 (as PostgreSQL inserts the row, then updates it).
        emit(EventRules.balanceEvents(consumer: record.id, old: old?.available ?? .zero, new: record.available,
                                      threshold: state.lowBalances[key] ?? state.defaultLowBalance))
    }

    /// Appends the events some endpoint listens to (and a delivery per endpoint that takes them),
    /// undone with the step. An event nobody listens to is not written, as on SQLite and
    /// PostgreSQL: it could never be delivered.
    mutating func emit(_ drafts: [EventDraft]) {
        guard !drafts.isEmpty, !state.endpoints.isEmpty else { return }
        let listened = drafts.filter(state.isListened)
        guard !listened.isEmpty else { return }
        undo.append(.events(eventCount: state.events.count, deliveryCount: state.deliveries.count))
        for draft in listened { _ = state.appendEvent(draft) }
    }

    func hold(_ execution: String) -> HoldRecord? { state.holds[ByteKey(execution)] }

    mutating func saveHold(_ record: HoldRecord, isNew: Bool) {
        let key = ByteKey(record.execution)
        let old = state.holds[key]
        undo.append(.hold(key, old))
        state.setHold(key, record)
        emit(EventRules.holdEvents(old: old, new: record))
    }

    func expiredHolds(consumer: String?, at now: Timestamp) -> [HoldRecord] {
        let executions: [ByteKey] = consumer.map { Array(state.activeHolds[ByteKey($0)] ?? []) } ?? state.activeHolds.values.flatMap { $0 }
        return executions.compactMap { state.holds[$0] }.filter { $0.state == .active && !(now < $0.expiresAt) }
            .sorted { $0.execution.bytesPrecede($1.execution) }
    }

    func periodState(_ key: String) -> PeriodState? { state.periods[ByteKey(key)] }

    mutating func savePeriodState(_ key: String, _ value: PeriodState) {
        let key = ByteKey(key)
        undo.append(.period(key, state.periods[key]))
        state.periods[key] = value
    }

    func operation(_ key: String) -> OperationRecord? { state.operations[ByteKey(key)] }

    mutating func saveOperation(_ record: OperationRecord) {
        let key = ByteKey(record.key)
        undo.append(.operation(key, state.operations[key]))
        state.operations[key] = record
    }

    func payout(_ key: String) -> PayoutRecord? { state.payouts[ByteKey(key)] }

    mutating func savePayout(_ record: PayoutRecord, isNew: Bool) {
        let key = ByteKey(record.key)
        let old = state.payouts[key]
        undo.append(.payout(key, old))
        state.payouts[key] = record
        emit(EventRules.payoutEvents(old: old, new: record))
    }

    func creatorHold(_ creator: String) -> CreatorHold? { state.creatorHolds[ByteKey(creator)] }

    mutating func saveCreatorHold(_ hold: CreatorHold) {
        let key = ByteKey(hold.creator)
        undo.append(.creatorHold(key, state.creatorHolds[key]))
        state.creatorHolds[key] = hold
    }

    mutating func removeCreatorHold(_ creator: String) -> Bool {
        let key = ByteKey(creator)
        guard let old = state.creatorHolds[key] else { return false }
        undo.append(.creatorHold(key, old))
        state.creatorHolds[key] = nil
        return true
    }

    func creatorEarnings(_ creator: String, before: Timestamp) -> Int128 {
        var total = Int128(0)
        for charge in state.charges where charge.datedAt < before && charge.creator.bytesEqual(creator) { total += Int128(charge.split.creator.micros) }
        return total
    }

    func netPaidOut(_ creator: String) -> Int128 {
        var total = Int128(0)
        for payout in state.payouts.values where payout.creator.bytesEqual(creator) { total += Int128(payout.netAmount.micros) }
        return total
    }

    func purchaseRecord(_ key: String) -> PurchaseRecord? { state.purchases[ByteKey(key)] }

    mutating func savePurchaseRecord(_ record: PurchaseRecord, isNew: Bool) {
        let key = ByteKey(record.key)
        undo.append(.purchase(key, state.purchases[key]))
        state.purchases[key] = record
    }

    func reversal(_ key: String) -> ReversalRecord? { state.reversals[ByteKey(key)] }

    func reversals(ofPurchase key: String) -> [ReversalRecord] {
        state.reversals.values.filter { $0.purchase.bytesEqual(key) }.sorted { $0.key.bytesPrecede($1.key) }
    }

    mutating func saveReversal(_ record: ReversalRecord, isNew: Bool) {
        let key = ByteKey(record.key)
        undo.append(.reversal(key, state.reversals[key]))
        state.reversals[key] = record
    }

    func periodClose(_ key: String) -> PeriodCloseRecord? { state.closes[ByteKey(key)] }

    mutating func savePeriodClose(_ record: PeriodCloseRecord, isNew: Bool) {
        let key = ByteKey(record.key)
        let old = state.closes[key]
        undo.append(.close(key, old))
        state.closes[key] = record
        emit(EventRules.closeEvents(old: old, new: record))
    }

    func subscription(_ id: String) -> SubscriptionRecord? { state.subscriptions[ByteKey(id)] }

    func subscriptions(consumer: String) -> [SubscriptionRecord] {
        state.subscriptions.values.filter { $0.consumer.bytesEqual(consumer) }.sorted(by: SubscriptionRecord.listed)
    }

    mutating func saveSubscription(_ record: SubscriptionRecord, isNew: Bool) {
        let key = ByteKey(record.id)
        undo.append(.subscription(key, state.subscriptions[key]))
        state.subscriptions[key] = record
    }

    func consumerUncollected(_ consumer: String) -> Int128 {
        var total = Int128(0)
        for charge in state.charges where charge.consumer.bytesEqual(consumer) { total += Int128(charge.uncollected.micros) }
        return total
    }

    mutating func append(_ entry: Entry) {
        undo.append(.entries(state.entries.count))
        var entry = entry
        entry.sequence = Int64(state.entries.count + 1)
        state.entries.append(entry)
        emit(EventRules.entryEvents(entry))
    }

    mutating func append(_ charge: ChargeRecord) {
        undo.append(.charges(state.charges.count))
        var charge = charge
        charge.sequence = Int64(state.charges.count + 1)
        state.charges.append(charge)
        if charge.kind == .fee { emit(EventRules.chargeEvents(charge, subscriptions: subscriptions(consumer: charge.consumer))) }
    }
}
