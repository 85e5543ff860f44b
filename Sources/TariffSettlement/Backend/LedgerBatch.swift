import Tariff

/// One step of an ordered batch (`SettlementBackend.apply`): the commands a replay applies.
///
/// Built by `Settlement` (`purchaseStep`, `executionStep`), which validates the input exactly as
/// the single-step methods do. A period's start is two steps (`periodStartSteps`: the period
/// registered open, then its fee) and its close one (`periodEndStep`), so a replay keeps its
/// batches full where a period starts or ends (each applied alone cut the batch there and paid a
/// commit of its own).
public enum LedgerStep: Sendable {
    /// `SettlementBackend.purchase`.
    case purchase(PurchaseCommand)
    /// `SettlementBackend.chargePeriod`.
    case chargePeriod(PeriodChargeCommand, lines: @Sendable (PeriodState) throws -> [PricedLine])
    /// `SettlementBackend.openPeriod`: the period registered, open, with its scheduled end.
    case openPeriod(PeriodCloseRecord)
    /// `SettlementBackend.closePeriod`: its end lines charged and the period recorded closed.
    case closePeriod(PeriodCloseCommand, lines: @Sendable (PeriodState) throws -> [PricedLine])
    /// A finished execution's whole lifecycle as one step (`LedgerSteps.execution`).
    case execution(ExecutionLifecycle)
}

/// reserve -> one meter sample with the final meters -> settle, for an execution that has ended
/// (what `ledger replay` does for each execution of a trace), applied as one step.
///
/// Rerun, it repeats its first decision: a reserve already applied returns its first result (a
/// recorded refusal stays a refusal), a hold already settled is not metered again and its settle
/// returns the first receipt.
public struct ExecutionLifecycle: Sendable {
    /// With `recordsRefusal` (a replay's refusal is its execution id's first result).
    public var reserve: ReserveCommand
    /// The running cost of the sample from the period state as stored when the sample applies
    /// (the state of the hold's period; empty without one): `Settlement.meter`'s pricing.
    public var meterRunning: @Sendable (PeriodState) -> Money
    public var meterNow: Timestamp
    public var settle: SettleCommand
    public var pricing: @Sendable (PeriodState) throws -> PricedCharge

    public init(reserve: ReserveCommand, meterRunning: @escaping @Sendable (PeriodState) -> Money, meterNow: Timestamp, settle: SettleCommand,
                pricing: @escaping @Sendable (PeriodState) throws -> PricedCharge) {
        self.reserve = reserve
        self.meterRunning = meterRunning
        self.meterNow = meterNow
        self.settle = settle
        self.pricing = pricing
    }
}

/// What one step of a batch did.
public enum LedgerStepOutcome: Sendable, Hashable {
    case purchased(PurchaseReceipt)
    case charged(PeriodChargeReceipt)
    /// The period's record as registered (or as it already was).
    case periodOpened(PeriodCloseRecord)
    case settled(SettleReceipt)
    /// The execution was refused for credits (the refusal is recorded): nothing held, nothing charged.
    case refusedForCredits(Hold)
}

extension LedgerSteps {
    /// One batch step, on a store inside its own transaction or savepoint.
    public static func apply<Store: LedgerStore>(_ step: LedgerStep, in store: inout Store) throws -> LedgerStepOutcome {
        switch step {
        case .purchase(let command): .purchased(try purchase(command, in: &store))
        case .chargePeriod(let command, let lines): .charged(try chargePeriod(command, lines: lines, in: &store))
        case .openPeriod(let record): .periodOpened(try openPeriod(record, in: &store))
        case .closePeriod(let command, let lines): .charged(try closePeriod(command, lines: lines, in: &store))
        case .execution(let lifecycle): try execution(lifecycle, in: &store)
        }
    }

    /// reserve -> meter -> settle in one step (`ExecutionLifecycle`): the same rows as the three
    /// steps applied one after the other, or none when any of them is refused.
    public static func execution<Store: LedgerStore>(_ lifecycle: ExecutionLifecycle, in store: inout Store) throws -> LedgerStepOutcome {
        let hold = try reserve(lifecycle.reserve, in: &store)
        if hold.refused { return .refusedForCredits(hold) }
        if let stored = try store.hold(lifecycle.reserve.execution), stored.state == .active {
            let state = try stored.periodStart.flatMap { start in
                try store.periodState(PeriodKey(consumer: stored.consumer, plan: stored.plan, start: start).rawValue)
            } ?? .empty
            _ = try extendHold(ExtendCommand(execution: stored.execution, required: lifecycle.meterRunning(state), now: lifecycle.meterNow), in: &store)
        }
        return .settled(try settle(lifecycle.settle, pricing: lifecycle.pricing, in: &store))
    }
}

extension SettlementBackend {
    /// The batch applied one step at a time through the single-step methods: each step is atomic
    /// and idempotent by its key, so the outcomes are those of the steps applied alone, in order
    /// (what `apply` promises), with a commit each. An execution's three steps commit one by one:
    /// stopped between them, a rerun finds the reserve (or the settle) already applied and
    /// repeats its first result, so it ends in the same rows.
    public func applyOneByOne(_ steps: [LedgerStep]) async throws -> [Result<LedgerStepOutcome, SettlementError>] {
        var outcomes: [Result<LedgerStepOutcome, SettlementError>] = []
        outcomes.reserveCapacity(steps.count)
        for step in steps {
            do {
                switch step {
                case .purchase(let command): outcomes.append(.success(.purchased(try await purchase(command))))
                case .chargePeriod(let command, let lines): outcomes.append(.success(.charged(try await chargePeriod(command, lines: lines))))
                case .openPeriod(let record): outcomes.append(.success(.periodOpened(try await openPeriod(record))))
                case .closePeriod(let command, let lines): outcomes.append(.success(.charged(try await closePeriod(command, lines: lines))))
                case .execution(let lifecycle): outcomes.append(.success(try await executionOneByOne(lifecycle)))
                }
            } catch let error as SettlementError where error.code != .storage {
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }

    private func executionOneByOne(_ lifecycle: ExecutionLifecycle) async throws -> LedgerStepOutcome {
        let hold = try await reserve(lifecycle.reserve)
        if hold.refused { return .refusedForCredits(hold) }
        if let stored = try await self.hold(execution: lifecycle.reserve.execution), stored.state == .active {
            var state = PeriodState.empty
            if let start = stored.periodStart { state = try await periodState(PeriodKey(consumer: stored.consumer, plan: stored.plan, start: start)) }
            _ = try await extendHold(ExtendCommand(execution: stored.execution, required: lifecycle.meterRunning(state), now: lifecycle.meterNow))
        }
        return .settled(try await settle(lifecycle.settle, pricing: lifecycle.pricing))
    }
}
