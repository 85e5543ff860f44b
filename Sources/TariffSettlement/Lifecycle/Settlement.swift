import Tariff

/// The credit lifecycle of settlement.md on any backend: purchase, balance, reserve, meter,
/// settle, release, expiry, period fees and period-end lines; with usage, payouts and `verify`
/// (`Settlement+Reports.swift`).
///
/// It validates every input (ids and keys of 1 to 255 characters, amounts in range, the ledger's
/// currency), reads the time from the injected clock, prices with the compiled catalog, and hands
/// each step to the backend as one atomic, idempotent command.
///
/// ```swift
/// let settlement = Settlement(backend: InMemoryBackend(currency: usd), catalog: catalog)
/// _ = try await settlement.purchase(consumer: "cus_1", amount: Money(micros: 100_000_000), idempotencyKey: "order-1")
/// let hold = try await settlement.reserve(ReservationRequest(execution: "exe_1", consumer: "cus_1", plan: plan))
/// let receipt = try await settlement.settle(SettlementRequest(execution: "exe_1", meters: meters, endedAt: at))
/// ```
/// - throws: every method throws `SettlementError` (its `code` is what `tariff ledger` prints).
public struct Settlement: Sendable {
    public let backend: any SettlementBackend
    /// Prices executions and period lines; nil for a ledger used only for credits and reports.
    public let catalog: CompiledCatalog?
    public let clock: any SettlementClock
    /// What this process reserved, so settling it needs no read first (one backend call per step).
    private let reserved = HoldDirectory()

    /// A hold's default lifetime (settlement.md).
    public static let defaultTTL: Duration = .seconds(15 * 60)
    /// The longest hold: a limit on everything, so a forgotten hold cannot lock credits for ever.
    public static let maximumTTL: Duration = .seconds(7 * 86_400)
    /// The largest single purchase, and the largest hold: 10^12 currency units, the bound of every
    /// amount of a plan (plans.md) and of a trace's purchase (usage.md), so a replay accepts what
    /// `simulate` accepts. Sums past Int64's 9.2 * 10^12 units are checked (`out_of_range`), never wrapped.
    public static let maximumPurchase = Money(micros: 1_000_000_000_000 * 1_000_000)
    /// The longest id or idempotency key, in UTF-8 bytes (usage.md: ids are measured as bytes, so
    /// every backend agrees on what fits, whatever the normalization of the text).
    public static let maximumKeyLength = 255

    public init(backend: any SettlementBackend, catalog: CompiledCatalog?, clock: any SettlementClock = SystemClock()) {
        self.backend = backend
        self.catalog = catalog
        self.clock = clock
    }

    public var currency: Currency { backend.currency }

    // MARK: Credits

    /// Adds prepaid credits: a positive amount of whole cents in the ledger's currency.
    /// - throws: `invalid_amount`, `wrong_currency`, `invalid_key`, `idempotency_conflict`.
    @discardableResult
    public func purchase(consumer: String, amount: Money, currency: Currency? = nil, idempotencyKey: String) async throws -> PurchaseReceipt {
        return try await backend.purchase(try purchaseCommand(consumer: consumer, amount: amount, currency: currency, idempotencyKey: idempotencyKey))
    }

    /// The validated purchase command (`purchase`), dated now.
    func purchaseCommand(consumer: String, amount: Money, currency: Currency?, idempotencyKey: String) throws -> PurchaseCommand {
        try Self.validate(consumer, "consumer id")
        try Self.validate(idempotencyKey, "idempotency key")
        try checkCurrency(currency ?? self.currency, "the purchase")
        guard amount.micros > 0 else { throw SettlementError(.invalidAmount, "a purchase must be positive, not \(amount)") }
        guard amount.micros % 10_000 == 0 else { throw SettlementError(.invalidAmount, "a purchase is whole cents: \(amount) is not") }
        guard amount <= Self.maximumPurchase else {
            throw SettlementError(.invalidAmount, "a purchase is at most \(Self.maximumPurchase), not \(amount)")
        }
        let fingerprint = Self.purchaseFingerprint(consumer, amount, self.currency)
        return PurchaseCommand(key: idempotencyKey, fingerprint: fingerprint, consumer: consumer, amount: amount, now: clock.now())
    }

    /// The consumer's `available` and `reserved` credits now.
    /// - throws: `unknown_consumer`, `invalid_key`.
    public func balance(consumer: String) async throws -> Balance {
        try Self.validate(consumer, "consumer id")
        return try await backend.balance(consumer: consumer, at: clock.now())
    }

    // MARK: Executions

    /// Holds the estimated cost of a run; never an overdraft.
    /// - throws: `insufficient_credits`, `unknown_consumer`, `wrong_currency`, `invalid_amount`,
    ///   `invalid_input` (TTL), `invalid_key`, `idempotency_conflict`.
    @discardableResult
    public func reserve(_ request: ReservationRequest) async throws -> Hold {
        try await reserve(request, announcingRefusal: false)
    }

    /// `reserve`; with `announcingRefusal`, a reserve refused for credits also writes an
    /// `execution.refused` event to the outbox, alone (the refused step itself changes no row of
    /// the ledger; a refusal the ledger records writes its event in its own step). `tariff serve`
    /// announces them; a replay or a library caller that wants the ledger untouched does not.
    public func reserve(_ request: ReservationRequest, announcingRefusal: Bool) async throws -> Hold {
        let (command, plan) = try reserveCommand(request)
        let hold: Hold
        do {
            hold = try await backend.reserve(command)
        } catch let error as SettlementError where error.code == .insufficientCredits && announcingRefusal {
            // Best effort: the refusal is the answer either way.
            if let outbox = backend as? any WebhookOutbox {
                _ = try? await outbox.emit(.executionRefused(consumer: command.consumer, execution: command.execution, reason: error.code.rawValue))
            }
            throw error
        }
        if hold.refused {
            throw SettlementError(.insufficientCredits, "execution '\(request.execution)' was refused for credits (the refusal is recorded)")
        }
        reserved.remember(HoldDirectory.Info(consumer: hold.consumer, plan: plan.id, version: plan.version, periodStart: request.period.start),
                          for: request.execution)
        return hold
    }

    /// The validated reserve command (`reserve`), dated now, and the plan it prices with.
    func reserveCommand(_ request: ReservationRequest) throws -> (ReserveCommand, PlanDefinition) {
        try Self.validate(request.execution, "execution id")
        try Self.validate(request.consumer, "consumer id")
        let (catalog, plan) = try resolve(request.plan)
        try checkCurrency(plan.currency, "plan \(plan.id)")
        let estimate = request.estimate ?? catalog.reservationEstimate(request.plan)
        guard estimate.micros >= 0 else { throw SettlementError(.invalidAmount, "an estimate cannot be negative: \(estimate)") }
        guard estimate <= Self.maximumPurchase else { throw SettlementError(.invalidAmount, "an estimate is at most \(Self.maximumPurchase)") }
        guard request.ttl > .zero, request.ttl <= Self.maximumTTL else {
            throw SettlementError(.invalidInput, "a hold's TTL must be more than 0 and at most 7 days")
        }
        let now = clock.now()
        // Near the last representable instant (2262-04-11) the hold expires then: a run dated there
        // is still settled, as `simulate` prices it.
        let expiresAt = now.adding(nanoseconds: request.ttl.nanoseconds) ?? Timestamp(nanosecondsSinceEpoch: .max)
        let fingerprint = "consumer=\(request.consumer);plan=\(plan.id)@\(plan.version);period=\(Self.text(request.period.start));"
            + "estimate=\(estimate.micros);ttl_ns=\(request.ttl.nanoseconds)"
        return (ReserveCommand(execution: request.execution, fingerprint: fingerprint, consumer: request.consumer, plan: plan.id,
                               version: plan.version, periodStart: request.period.start, amount: estimate,
                               expiresAt: expiresAt, now: now, recordsRefusal: request.recordsRefusal), plan)
    }

    /// Prices the run so far and extends the hold when the running cost passed it; `exhausted`
    /// when the credits cannot cover it (the runtime stops the run, then settles it).
    /// - throws: `unknown_reservation`, `reservation_expired`, `idempotency_conflict` (a closed hold).
    public func meter(execution: String, sample: MeterSample) async throws -> MeterReceipt {
        try Self.validate(execution, "execution id")
        let hold = try await holdInfo(execution)
        let (catalog, handle, _) = try planOf(hold)
        var state = PeriodState.empty
        if let start = hold.periodStart { state = try await backend.periodState(PeriodKey(consumer: hold.consumer, plan: hold.plan, start: start)) }
        let running = Self.running(catalog, handle, sample)(state)
        return try await backend.extendHold(ExtendCommand(execution: execution, required: running, now: clock.now()))
    }

    /// A meter sample's running cost from a period state.
    static func running(_ catalog: CompiledCatalog, _ handle: PlanHandle, _ sample: MeterSample) -> @Sendable (PeriodState) -> Money {
        let input = ExecutionInput(meters: sample.meters, failed: false, endedAt: sample.at)
        return { state in
            let priced = catalog.price(handle, input, state: state)
            // A refused run (spend cap) would cost nothing: the hold stays as it is.
            return priced.refusal == nil ? priced.charge : .zero
        }
    }

    /// Prices the finished execution with the period state read in the same step, charges
    /// `min(actual, held + available)`, records the rest as uncollected and gives back what is left
    /// of the hold.
    /// - throws: `unknown_reservation`, `reservation_expired`, `idempotency_conflict`, `invalid_key`.
    @discardableResult
    public func settle(_ request: SettlementRequest) async throws -> SettleReceipt {
        try Self.validate(request.execution, "execution id")
        let (command, pricing) = try settleCommand(request, hold: try await holdInfo(request.execution))
        let receipt = try await backend.settle(command, pricing: pricing)
        reserved.forget(request.execution)
        return receipt
    }

    /// The settle command of a hold (`settle`), dated now, and its pricing.
    func settleCommand(_ request: SettlementRequest, hold: HoldDirectory.Info) throws -> (SettleCommand, @Sendable (PeriodState) throws -> PricedCharge) {
        let (catalog, handle, plan) = try planOf(hold)
        let periodStart = request.period.map { $0.start } ?? hold.periodStart
        let input = ExecutionInput(meters: request.meters, failed: request.failed, endedAt: request.endedAt)
        let rule = plan.split.rule
        var command = SettleCommand(execution: request.execution, fingerprint: Self.settleFingerprint(request, periodStart: periodStart, catalog: catalog),
                                    consumer: hold.consumer, agent: plan.agent, creator: plan.creator, plan: plan.id, version: plan.version,
                                    period: periodStart.map { PeriodKey(consumer: hold.consumer, plan: plan.id, start: $0) }, endedAt: request.endedAt,
                                    failed: request.failed, now: clock.now())
        if periodStart != nil { command.periodEnd = Self.periodEndPricing(catalog, handle, plan) }
        return (command, { state in
            let result = catalog.price(handle, input, state: state)
            return PricedCharge(billed: result.charge, split: result.split, rule: rule, computeUnits: result.computeUnits, state: result.state,
                                refusal: result.refusal)
        })
    }

    /// Gives the hold back in full: the run never happened.
    /// - throws: `unknown_reservation`, `reservation_expired`, `idempotency_conflict` (settled).
    @discardableResult
    public func release(execution: String) async throws -> ReleaseReceipt {
        try Self.validate(execution, "execution id")
        let receipt = try await backend.release(ReleaseCommand(execution: execution, now: clock.now()))
        reserved.forget(execution)
        return receipt
    }

    /// Gives back every hold past its TTL (holds past their TTL already count as available before
    /// this sweep; the sweep writes their entries).
    @discardableResult
    public func expireHolds() async throws -> Int {
        try await backend.expireHolds(at: clock.now())
    }

    // MARK: Period lines

    /// Charges a period's start lines (the fee) without a hold: up to `available`, the rest
    /// uncollected. Dated at the period start. Key: `period-start:CONSUMER:PLAN:START` by default.
    /// With `periodEnd` (its scheduled end) the period is registered first, open: `closeDuePeriods`
    /// closes it at that end plus `late_usage_grace` (settlement.md, "Periods close").
    @discardableResult
    public func chargePeriodStart(consumer: String, plan handle: PlanHandle, periodStart: Timestamp, periodEnd: Timestamp? = nil,
                                  idempotencyKey: String? = nil) async throws -> PeriodChargeReceipt {
        let steps = try periodStartSteps(consumer: consumer, plan: handle, periodStart: periodStart, periodEnd: periodEnd, idempotencyKey: idempotencyKey)
        if let open = steps.open { _ = try await backend.openPeriod(open) }
        return try await backend.chargePeriod(steps.charge, lines: steps.lines)
    }

    /// `chargePeriodStart` as batch steps (`apply`), validated the same way: the period
    /// registered open (with `periodEnd`), then its fee.
    public func periodStartSteps(consumer: String, plan handle: PlanHandle, periodStart: Timestamp, periodEnd: Timestamp? = nil,
                                 idempotencyKey: String? = nil) throws -> (open: PeriodCloseRecord?, charge: PeriodChargeCommand,
                                                                           lines: @Sendable (PeriodState) throws -> [PricedLine]) {
        try Self.validate(consumer, "consumer id")
        let (catalog, plan) = try resolve(handle)
        try checkCurrency(plan.currency, "plan \(plan.id)")
        let key = idempotencyKey ?? "period-start:\(consumer):\(plan.id):\(periodStart.rfc3339)"
        try Self.validate(key, "idempotency key")
        var open: PeriodCloseRecord?
        if let periodEnd {
            guard periodStart <= periodEnd else { throw SettlementError(.invalidInput, "a period cannot end before it starts") }
            open = try periodRecord(consumer: consumer, catalog: catalog, handle: handle, plan: plan, start: periodStart, end: periodEnd, fees: nil)
        }
        let rule = plan.split.rule
        let lines = catalog.periodStartLines(handle).map { PricedLine(kind: .fee, amount: $0.amount, split: $0.split, rule: rule) }
        let command = PeriodChargeCommand(key: key, fingerprint: "start;consumer=\(consumer);plan=\(plan.id)@\(plan.version);period=\(periodStart.nanosecondsSinceEpoch)",
                                          consumer: consumer, agent: plan.agent, creator: plan.creator, plan: plan.id, version: plan.version,
                                          period: PeriodKey(consumer: consumer, plan: plan.id, start: periodStart), datedAt: periodStart, now: clock.now())
        return (open, command, { _ in lines })
    }

    /// Charges a period's end lines (commitment shortfall, SLA credit) computed from the period
    /// state read in the same step. `fees`: what the period's start lines billed (default: the
    /// plan's fee). Dated at the period end. Key: `period-end:CONSUMER:PLAN:START` by default.
    /// This is the period's close (settlement.md, "Periods close"): in the same step the period is
    /// recorded closed at `periodEnd`, and a later settle of a run dated in it writes adjustment
    /// lines. A period closes once: another key for a closed period is `idempotency_conflict`.
    @discardableResult
    public func chargePeriodEnd(consumer: String, plan handle: PlanHandle, periodStart: Timestamp, periodEnd: Timestamp, fees: Money? = nil,
                                idempotencyKey: String? = nil) async throws -> PeriodChargeReceipt {
        let step = try periodEndStep(consumer: consumer, plan: handle, periodStart: periodStart, periodEnd: periodEnd, fees: fees, idempotencyKey: idempotencyKey)
        return try await backend.closePeriod(step.command, lines: step.lines)
    }

    /// `chargePeriodEnd` as a batch step (`apply`), validated the same way.
    public func periodEndStep(consumer: String, plan handle: PlanHandle, periodStart: Timestamp, periodEnd: Timestamp, fees: Money? = nil,
                              idempotencyKey: String? = nil) throws -> (command: PeriodCloseCommand, lines: @Sendable (PeriodState) throws -> [PricedLine]) {
        try Self.validate(consumer, "consumer id")
        let (catalog, plan) = try resolve(handle)
        try checkCurrency(plan.currency, "plan \(plan.id)")
        guard periodStart <= periodEnd else { throw SettlementError(.invalidInput, "a period cannot end before it starts") }
        let key = idempotencyKey ?? "period-end:\(consumer):\(plan.id):\(periodStart.rfc3339)"
        try Self.validate(key, "idempotency key")
        let billedFees = try fees ?? Self.planFees(catalog, handle)
        let fingerprint = "end;consumer=\(consumer);plan=\(plan.id)@\(plan.version);period=\(periodStart.nanosecondsSinceEpoch)-\(periodEnd.nanosecondsSinceEpoch);fees=\(billedFees.micros)"
        let command = PeriodChargeCommand(key: key, fingerprint: fingerprint, consumer: consumer, agent: plan.agent, creator: plan.creator, plan: plan.id,
                                          version: plan.version, period: PeriodKey(consumer: consumer, plan: plan.id, start: periodStart),
                                          datedAt: periodEnd, now: clock.now())
        let record = try periodRecord(consumer: consumer, catalog: catalog, handle: handle, plan: plan, start: periodStart, end: periodEnd, fees: billedFees)
        let pricing = Self.periodEndPricing(catalog, handle, plan)
        return (PeriodCloseCommand(charge: command, record: record), { state in try pricing.lines(state, billedFees) })
    }

    /// The period's record as registered (open) or closed.
    func periodRecord(consumer: String, catalog: CompiledCatalog, handle: PlanHandle, plan: PlanDefinition, start: Timestamp, end: Timestamp,
                      fees: Money?) throws -> PeriodCloseRecord {
        PeriodCloseRecord(key: PeriodKey(consumer: consumer, plan: plan.id, start: start).rawValue, consumer: consumer, plan: plan.id,
                          version: plan.version, agent: plan.agent, creator: plan.creator, start: start, end: end,
                          fees: try fees ?? Self.planFees(catalog, handle), commitment: catalog.commitment(handle))
    }

    /// What a period's start lines bill under the plan (its fees), checked for overflow.
    static func planFees(_ catalog: CompiledCatalog, _ handle: PlanHandle) throws -> Money {
        var total = Money.zero
        for line in catalog.periodStartLines(handle) { total = try SettlementMath.add(total, line.amount, "the period's fees") }
        return total
    }

    /// A plan's end lines as a function of (state, fees), for the close and for late settles.
    static func periodEndPricing(_ catalog: CompiledCatalog, _ handle: PlanHandle, _ plan: PlanDefinition) -> PeriodEndPricing {
        let rule = plan.split.rule
        return PeriodEndPricing(identity: "\(plan.id)@\(plan.version)", rule: rule) { state, fees in
            catalog.periodEndLines(handle, state: state, fees: fees).map {
                PricedLine(kind: $0.kind == .shortfall ? .shortfall : .slaCredit, amount: $0.amount, split: $0.split, rule: rule)
            }
        }
    }

    // MARK: Batches

    /// `purchase` as a batch step, validated the same way, dated now.
    public func purchaseStep(consumer: String, amount: Money, currency: Currency? = nil, idempotencyKey: String) throws -> LedgerStep {
        .purchase(try purchaseCommand(consumer: consumer, amount: amount, currency: currency, idempotencyKey: idempotencyKey))
    }

    /// An ended execution's reserve -> meter (one sample: its final meters at `endedAt`) -> settle
    /// as one batch step (`ExecutionLifecycle`), each part validated and fingerprinted as by
    /// `reserve`, `meter` and `settle`, dated now.
    public func executionStep(_ reservation: ReservationRequest, meters: MeterReadings, failed: Bool, endedAt: Timestamp) throws -> LedgerStep {
        let (reserve, plan) = try reserveCommand(reservation)
        let hold = HoldDirectory.Info(consumer: reservation.consumer, plan: plan.id, version: plan.version, periodStart: reservation.period.start)
        let (catalog, handle, _) = try planOf(hold)
        let (settle, pricing) = try settleCommand(SettlementRequest(execution: reservation.execution, meters: meters, failed: failed, endedAt: endedAt),
                                                  hold: hold)
        return .execution(ExecutionLifecycle(reserve: reserve, meterRunning: Self.running(catalog, handle, MeterSample(at: endedAt, meters: meters)),
                                             meterNow: clock.now(), settle: settle, pricing: pricing))
    }

    /// Applies steps in order (`SettlementBackend.apply`): one outcome each.
    public func apply(_ steps: [LedgerStep]) async throws -> [Result<LedgerStepOutcome, SettlementError>] {
        try await backend.apply(steps)
    }

    /// The grace after a period's end before it closes (`late_usage_grace` of rules/, default 1h).
    public var lateUsageGraceNanoseconds: Int64 {
        catalog?.definition.lateUsageGraceNanoseconds ?? CatalogDefinition.defaultLateUsageGraceNanoseconds
    }

    /// Closes every registered period due at `at` (default: now): its end plus `late_usage_grace`
    /// at or before `at`; each charges its end lines (commitment shortfall, SLA credit) computed
    /// from the period's state, dated at its end, and is recorded closed (`tariff ledger close`).
    /// Each period is closed once, by its `period-end:` key, however many runs overlap.
    /// - returns: the periods this call found due, as recorded after their close.
    /// - throws: `invalid_input` (a period's plan version is not in the catalog).
    @discardableResult
    public func closeDuePeriods(at instant: Timestamp? = nil) async throws -> [PeriodCloseRecord] {
        guard let catalog else { throw SettlementError(.invalidInput, "closing periods needs a catalog; this ledger was opened without one") }
        let now = instant ?? clock.now()
        let grace = lateUsageGraceNanoseconds
        var closing = Set<ByteKey>()
        var subscriptionsByConsumer: [ByteKey: [SubscriptionRecord]] = [:]
        for record in try await backend.periodCloses() where !record.isClosed {
            var end = record.end
            // A period of a subscription replaced inside it ends at the replacement, whatever end it
            // was registered with: a clock run on another server may have registered it with its
            // scheduled end just after the replacement cut the (not yet registered) period. The
            // subscription's own end is the one both agree on, as `simulate` closes it there.
            if let cut = try await subscriptionCut(of: record, cache: &subscriptionsByConsumer), cut < end { end = cut }
            // An end so late that end + grace leaves the range never closes (it is not due in this range).
            guard let due = end.adding(nanoseconds: grace), due <= now else { continue }
            guard let handle = catalog.plan(id: record.plan, version: record.version) else {
                throw SettlementError(.invalidInput, "plan \(record.plan) version \(record.version) of the period \(record.key) is not in the catalog")
            }
            try await chargePeriodEnd(consumer: record.consumer, plan: handle, periodStart: record.start, periodEnd: end, fees: record.fees)
            closing.insert(ByteKey(record.key))
        }
        guard !closing.isEmpty else { return [] }
        return try await backend.periodCloses().filter { closing.contains(ByteKey($0.key)) }
    }

    /// The end of the subscription a registered period belongs to, when it was replaced inside
    /// that period (at or after its start); nil for a period of no subscription (`tariff ledger
    /// close`, a replayed trace) or of one that was not cut short there.
    func subscriptionCut(of period: PeriodCloseRecord, cache: inout [ByteKey: [SubscriptionRecord]]) async throws -> Timestamp? {
        let consumer = ByteKey(period.consumer)
        if cache[consumer] == nil { cache[consumer] = try await backend.subscriptions(consumer: period.consumer) }
        for record in cache[consumer] ?? [] where record.plan.bytesEqual(period.plan) && record.ending == .replaced {
            guard let endsAt = record.endsAt, endsAt >= period.start, let index = record.periodIndex(containing: period.start),
                  record.periodStart(index) == period.start else { continue }
            return endsAt
        }
        return nil
    }

    // MARK: Validation

    /// Ids and keys: 1 to 255 characters, no control characters (they would make keys ambiguous in logs and storage).
    public static func validate(_ key: String, _ what: String) throws {
        guard !key.isEmpty else { throw SettlementError(.invalidKey, "the \(what) is empty") }
        // Printable ASCII (nearly every real key): one byte a character, nothing to look up.
        if key.utf8.count <= maximumKeyLength, key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return }
        let length = key.utf8.count
        guard length <= maximumKeyLength else {
            throw SettlementError(.invalidKey, "the \(what) is \(length) bytes long (UTF-8); at most \(maximumKeyLength)")
        }
        guard !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw SettlementError(.invalidKey, "the \(what) holds a control character")
        }
    }

    func checkCurrency(_ currency: Currency, _ what: String) throws {
        guard currency == self.currency else {
            throw SettlementError(.wrongCurrency, "\(what) is in \(currency.code); this ledger keeps \(self.currency.code)")
        }
    }

    func resolve(_ handle: PlanHandle) throws -> (CompiledCatalog, PlanDefinition) {
        guard let catalog else { throw SettlementError(.invalidInput, "pricing needs a catalog; this ledger was opened without one") }
        guard Int(handle.index) >= 0, Int(handle.index) < catalog.definition.plans.count else {
            throw SettlementError(.invalidInput, "the plan handle does not belong to this catalog")
        }
        return (catalog, catalog.plan(handle))
    }

    /// The plan a hold was placed for: remembered from this process's reserve, else read.
    /// - throws: `unknown_reservation`; `invalid_input` when the catalog no longer has it.
    public func plan(ofHold execution: String) async throws -> PlanDefinition {
        try planOf(try await holdInfo(execution)).2
    }

    /// The consumer, plan and period of a hold: remembered from this process's reserve, else read.
    private func holdInfo(_ execution: String) async throws -> HoldDirectory.Info {
        if let known = reserved.info(for: execution) { return known }
        guard let hold = try await backend.hold(execution: execution) else {
            throw SettlementError(.unknownReservation, "no hold was placed for execution '\(execution)'")
        }
        return HoldDirectory.Info(consumer: hold.consumer, plan: hold.plan, version: hold.version, periodStart: hold.periodStart)
    }

    func planOf(_ hold: HoldDirectory.Info) throws -> (CompiledCatalog, PlanHandle, PlanDefinition) {
        guard let catalog else { throw SettlementError(.invalidInput, "pricing needs a catalog; this ledger was opened without one") }
        guard let handle = catalog.plan(id: hold.plan, version: hold.version) else {
            throw SettlementError(.invalidInput, "plan \(hold.plan) version \(hold.version) of the hold is not in the catalog")
        }
        return (catalog, handle, catalog.plan(handle))
    }

    static func text(_ instant: Timestamp?) -> String { instant.map { String($0.nanosecondsSinceEpoch) } ?? "-" }

    /// The settle's parameters: final readings by meter name (so a reordered catalog reads the same), status, end, period.
    static func settleFingerprint(_ request: SettlementRequest, periodStart: Timestamp?, catalog: CompiledCatalog) -> String {
        var text = "ended=\(request.endedAt.nanosecondsSinceEpoch);failed=\(request.failed ? 1 : 0);period=\(Self.text(periodStart));meters="
        for (index, name) in catalog.meterNames.enumerated() {
            let value = request.meters[MeterIndex(rawValue: index)]
            if value.micros != 0 { text += "\(name)=\(value.micros),"}
        }
        return text
    }
}
