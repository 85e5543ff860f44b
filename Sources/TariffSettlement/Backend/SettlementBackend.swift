import Tariff

/// Where settlement keeps its ledger: a plugin behind one protocol (in-memory, SQLite, PostgreSQL,
/// or a third party's).
///
/// ## The contract
///
/// A backend stores, for one currency, each consumer's `available` and `reserved` credits, the
/// holds, the append-only double-entry entries (`Entry`), the charge records, the period states,
/// the applied operations and the payouts. The lifecycle (`Settlement`) validates every input and
/// calls one method per lifecycle step; each method is **one atomic step**: it either applies
/// completely and durably before it returns, or throws a `SettlementError` and changes nothing,
/// not a row, not a byte of state a reader could see.
///
/// `LedgerSteps` is the reference semantics of every step, written once over a transactional
/// `LedgerStore`: a backend over any store with transactions (the in-memory and SQLite ones)
/// calls it inside a transaction and gets the exact semantics for free. A backend that runs each
/// step as one statement or server-side function (PostgreSQL, one round trip per step) must
/// implement the same rules:
///
/// - **Idempotency.** Every step carries a key: the execution id for `reserve`, `settle`,
///   `release` (and meter samples), the caller's key for `purchase`, `period-start:...` /
///   `period-end:...` for period charges, `payout:CREATOR:WEEK` for payouts (a week's record is kept
///   whatever the balances say later: it is never recorded twice); and a fingerprint
///   of its parameters. A key already applied with the same fingerprint returns the first result
///   and writes nothing; with another fingerprint (or for another operation on the same
///   execution, such as a release after a settle) it throws `idempotency_conflict`. A refused step
///   records nothing, so retrying it evaluates again.
/// - **Money.** Amounts are `Int64` micro-units; every sum is checked (`out_of_range`, never a
///   wrapped value); `available` and `reserved` are never negative; every step appends entries
///   that move money between accounts exactly as `LedgerSteps` does, and updates the consumer's
///   running balances in the same step.
/// - **Expiry.** A hold is live while `now < expiresAt` (the `now` of the command). A hold past
///   its expiry counts as available in `balance`, is given back (`reserved -> available` entries,
///   state `expired`) by any step that writes to its consumer, and by `expireHolds`; settling or
///   extending it throws `reservation_expired` and changes nothing.
/// - **Pricing inside the step.** `settle` and `chargePeriod` call their pricing closure with the
///   period state as stored at the moment the step applies, and store the state it returns in the
///   same step, so two concurrent executions never both consume the last of an allowance. The
///   closures are pure and may be called more than once: a backend may price optimistically
///   (read the state, price, then write only if the state is unchanged, else retry). A period
///   state is its own version: every priced execution adds to its `succeeded` or `failed`
///   count, which never go down, so an equal state is an unchanged one.
/// - **Collection.** A settle charges `min(billed, held + available)` (`SettlementMath.collect`),
///   records the rest as uncollected, and gives back what is left of the hold; a period line is
///   collected up to `available`; a negative line (an SLA credit) is given back in full.
/// - **Reads** (`balance`, `periodState`, `chargeRecords`, `snapshot`) see only completed steps.
///
/// Conformance: `TariffSettlementTesting`'s suite runs the same tests against every backend.
public protocol SettlementBackend: Sendable {
    /// The ledger's one currency: every amount it holds is in it.
    var currency: Currency { get }

    /// Adds credits (`purchases -> available`), opening the consumer's accounts on first use.
    /// - throws: `idempotency_conflict`, `out_of_range`.
    func purchase(_ command: PurchaseCommand) async throws -> PurchaseReceipt

    /// The consumer's credits at `now` (holds past their expiry count as available).
    /// - throws: `unknown_consumer`.
    func balance(consumer: String, at now: Timestamp) async throws -> Balance

    /// Holds `command.amount` for the execution.
    /// - throws: `unknown_consumer`, `insufficient_credits`, `idempotency_conflict`.
    func reserve(_ command: ReserveCommand) async throws -> Hold

    /// The stored state of a period (empty when nothing was priced in it yet).
    func periodState(_ key: PeriodKey) async throws -> PeriodState

    /// The hold of an execution, if any (meter samples read its plan and period).
    func hold(execution: String) async throws -> HoldRecord?

    /// Extends a live hold to `command.required` from available credits; `exhausted` when they
    /// cannot cover it (the hold is then left as it was).
    /// - throws: `unknown_reservation`, `reservation_expired`, `idempotency_conflict` (closed hold).
    func extendHold(_ command: ExtendCommand) async throws -> MeterReceipt

    /// Settles a live hold, pricing with `pricing(state)` inside the step.
    /// - throws: `unknown_reservation`, `reservation_expired`, `idempotency_conflict`, `out_of_range`,
    ///   or what `pricing` throws.
    func settle(_ command: SettleCommand, pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) async throws -> SettleReceipt

    /// Gives a live hold back in full.
    /// - throws: `unknown_reservation`, `reservation_expired`, `idempotency_conflict` (settled).
    func release(_ command: ReleaseCommand) async throws -> ReleaseReceipt

    /// Charges period lines without a hold, with `lines(state)` computed inside the step.
    /// Opens the consumer's accounts if needed (a fee can come before any purchase: all uncollected).
    /// - throws: `idempotency_conflict`, `out_of_range`, or what `lines` throws.
    func chargePeriod(_ command: PeriodChargeCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt

    /// Gives back every hold past its expiry at `now`; returns how many.
    func expireHolds(at now: Timestamp) async throws -> Int

    /// Records a creator's payout for a week from the ledger's balances (`earnings -> paid_out`),
    /// computed inside the step (`LedgerSteps.recordPayout`): concurrent runs pay each creator once.
    /// A record already there for the key is returned unchanged; nil record when nothing is due.
    /// - throws: `idempotency_conflict`, `out_of_range`.
    func recordPayout(_ command: PayoutCommand) async throws -> PayoutStep

    /// Marks a recorded payout as confirmed by the payment rail (idempotent).
    /// - throws: `invalid_input` when no payout has that key.
    func markPayoutSent(key: String, reference: String) async throws

    /// Marks a recorded, unconfirmed payout `failed` with the rail's reason and gives its amount
    /// back to earnings (`paid_out -> earnings`); idempotent (`LedgerSteps.failPayout`).
    /// - throws: `invalid_input` when no payout has that key or it was confirmed sent.
    func failPayout(key: String, reason: String, now: Timestamp) async throws -> PayoutRecord

    /// Every recorded payout (all weeks), by key (default: from `snapshot()`).
    func payoutRecords() async throws -> [PayoutRecord]

    /// Returns what a reversed transfer took back to earnings and holds the creator
    /// (`LedgerSteps.reversePayout`); idempotent.
    /// - throws: `invalid_input` when no payout has that key.
    func reversePayout(key: String, reversedTotal: Money, transfer: String, now: Timestamp) async throws -> PayoutRecord

    /// Lifts the hold on a creator's payouts; whether there was one.
    func releaseCreator(_ creator: String) async throws -> Bool

    /// The creators whose payouts are held, by creator.
    func creatorHolds() async throws -> [CreatorHold]

    /// The recorded payouts of one week (`weekStart`), by creator.
    func payouts(weekStart: CivilDate) async throws -> [PayoutRecord]

    /// Writes a purchase as `pending` before its rail is called, or finds it (`LedgerSteps.beginPurchase`).
    /// - throws: `idempotency_conflict`, `invalid_amount`.
    func beginPurchase(_ command: PendingPurchaseCommand) async throws -> PendingPurchaseReceipt

    /// Stores a purchase's rail reference and state (`LedgerSteps.updatePurchase`).
    /// - throws: `unknown_purchase`, `idempotency_conflict`, `invalid_input`.
    func updatePurchase(key: String, reference: String?, state: PurchaseRecord.State) async throws -> PurchaseRecord

    /// The purchase recorded through a rail under `key`.
    func purchaseRecord(key: String) async throws -> PurchaseRecord?

    /// The purchase recorded through a rail whose payment is `reference` (`pi_...`).
    func purchaseRecord(reference: String) async throws -> PurchaseRecord?

    /// Takes a refund's credits back before the rail is asked (`LedgerSteps.refund`).
    /// - throws: `idempotency_conflict`, `invalid_amount`, `unknown_purchase`, `invalid_input`, `insufficient_credits`.
    func refund(_ command: RefundCommand) async throws -> ReversalRecord

    /// Confirms a refund, or gives its credits back when the rail refused it (`LedgerSteps.completeRefund`).
    func completeRefund(key: String, reference: String?, failed: Bool, now: Timestamp) async throws -> ReversalRecord

    /// Records a lost dispute (`LedgerSteps.disputeLost`).
    /// - throws: `idempotency_conflict`, `invalid_amount`, `unknown_purchase`, `invalid_input`.
    func disputeLost(_ command: DisputeCommand) async throws -> ReversalRecord

    /// Charge records matching a query, in ledger order.
    func chargeRecords(_ query: ChargeQuery) async throws -> [ChargeRecord]

    /// Every row, for `verify` and for tests.
    func snapshot() async throws -> LedgerSnapshot

    // MARK: Period close (settlement.md, "Periods close")

    /// Registers an open period with its scheduled end (`LedgerSteps.openPeriod`); idempotent.
    func openPeriod(_ record: PeriodCloseRecord) async throws -> PeriodCloseRecord

    /// Charges a period's end lines computed inside the step and records it closed, in one step
    /// (`LedgerSteps.closePeriod`). A later settle of an execution dated in it (`SettleCommand.periodEnd`)
    /// writes adjustment lines in its own step (`LedgerSteps.applyAdjustments`).
    /// - throws: `idempotency_conflict`, `out_of_range`, or what `lines` throws.
    func closePeriod(_ command: PeriodCloseCommand, lines: @escaping @Sendable (PeriodState) throws -> [PricedLine]) async throws -> PeriodChargeReceipt

    /// Every registered or closed period, by key.
    func periodCloses() async throws -> [PeriodCloseRecord]

    // MARK: Subscriptions (service.md, "Live subscriptions and the period clock")

    /// Starts a subscription, or answers the consumer's existing one to the same plan, or replaces
    /// its subscription to another plan of the agent (`LedgerSteps.subscribe`), in one step.
    /// - throws: `idempotency_conflict`, `invalid_input`.
    func subscribe(_ command: SubscribeCommand) async throws -> SubscribeReceipt

    /// Ends a subscription at the end of the period containing `at` (`LedgerSteps.cancelSubscription`).
    /// - throws: `not_found`.
    func cancelSubscription(id: String, at: Timestamp) async throws -> SubscriptionRecord

    /// Records the clock's progress (`LedgerSteps.advanceSubscription`): it never moves back.
    /// - throws: `not_found`.
    func advanceSubscription(id: String, chargedPeriods: Int) async throws -> SubscriptionRecord

    /// The subscriptions of one consumer (or of all), by consumer in byte order, then start, then id.
    func subscriptions(consumer: String?) async throws -> [SubscriptionRecord]

    /// One subscription by id.
    func subscription(id: String) async throws -> SubscriptionRecord?

    /// The subscriptions with a period whose fee is due at `now` (`nextPeriodStart <= now`), by id.
    func dueSubscriptions(at now: Timestamp) async throws -> [SubscriptionRecord]

    /// Every consumer's id, in byte order (default: from `snapshot()`).
    func consumerIDs() async throws -> [String]

    /// What every charge line left uncollected, summed exactly (default: from `snapshot()`).
    func uncollectedTotal() async throws -> MoneySum

    /// Every consumer's balance at `now`, in byte order of the ids (default: `consumerIDs` then
    /// `balance` for each; a backend with a query answers it in one read).
    func balances(at now: Timestamp) async throws -> [Balance]

    /// Applies `steps` in order, each with exactly the outcome it would have applied alone after
    /// the ones before it: one outcome per step, in order. A refused step (any `SettlementError`
    /// but `storage`) is its outcome and leaves nothing behind; the others apply. A backend with
    /// transactions applies the whole batch in one (each step in its own savepoint) and commits
    /// once: what a replay needs to reach thousands of steps a second on a durable ledger.
    /// Default: `applyOneByOne` (a commit per step).
    /// - throws: `storage` when the batch could not be applied: then any prefix of it may have
    ///   been (each step is idempotent by its key, so applying the same batch again is safe).
    func apply(_ steps: [LedgerStep]) async throws -> [Result<LedgerStepOutcome, SettlementError>]
}

extension SettlementBackend {
    public func apply(_ steps: [LedgerStep]) async throws -> [Result<LedgerStepOutcome, SettlementError>] {
        try await applyOneByOne(steps)
    }
}

// Reads a replay's summary needs, without loading every row of the ledger (`snapshot()` held some
// 4 KB per replayed event). A backend answers them with a query; the defaults read the snapshot.
extension SettlementBackend {
    /// Every consumer's id, in byte order.
    public func consumerIDs() async throws -> [String] {
        try await snapshot().consumers.map(\.id).sorted { $0.bytesPrecede($1) }
    }

    /// Every consumer's balance at `now`, in byte order of the ids.
    public func balances(at now: Timestamp) async throws -> [Balance] {
        var balances: [Balance] = []
        for consumer in try await consumerIDs() { balances.append(try await balance(consumer: consumer, at: now)) }
        return balances
    }

    /// Every recorded payout, by key.
    public func payoutRecords() async throws -> [PayoutRecord] { try await snapshot().payouts }

    /// What every charge line left uncollected, summed exactly.
    public func uncollectedTotal() async throws -> MoneySum {
        var total = MoneySum()
        for charge in try await snapshot().charges { total.add(charge.uncollected) }
        return total
    }
}
