import Tariff

/// The billing period an execution's period state is kept in.
public enum BillingPeriod: Sendable, Hashable {
    /// No period (a per-call plan): every execution is priced from the empty period state and
    /// nothing is kept, as `tariff simulate` prices per-call plans.
    case unbounded
    /// The period starting at this instant (a subscription's or enterprise agreement's).
    case starting(Timestamp)

    public var start: Timestamp? {
        if case .starting(let start) = self { return start }
        return nil
    }

    init(start: Timestamp?) { self = start.map(BillingPeriod.starting) ?? .unbounded }
}

/// Hold credits before a run.
public struct ReservationRequest: Sendable {
    /// The execution id: the idempotency key of the reserve, its meter samples, settle and release.
    public var execution: String
    public var consumer: String
    /// The plan version that will price the run.
    public var plan: PlanHandle
    /// The period the run starts in (meter samples are priced in it).
    public var period: BillingPeriod
    /// nil: the plan's estimate (settlement.md: the per-call fee, `reserve:`, `max_cost_per_execution`,
    /// else the catalog's default reservation).
    public var estimate: Money?
    /// How long the hold lives unless settled or released (default 15 minutes, at most 7 days).
    public var ttl: Duration
    /// Keep a refusal for credits as this execution id's first result (a retry is refused the same
    /// way even after a purchase). Off by default: a runtime may retry once credits are bought.
    /// `ledger replay` sets it, so a rerun after a crash repeats every decision of the first run.
    public var recordsRefusal: Bool

    public init(execution: String, consumer: String, plan: PlanHandle, period: BillingPeriod = .unbounded, estimate: Money? = nil,
                ttl: Duration = Settlement.defaultTTL, recordsRefusal: Bool = false) {
        self.execution = execution
        self.consumer = consumer
        self.plan = plan
        self.period = period
        self.estimate = estimate
        self.ttl = ttl
        self.recordsRefusal = recordsRefusal
    }
}

/// A running execution's meters so far (cumulative readings), reported while it runs.
public struct MeterSample: Sendable {
    public var at: Timestamp
    public var meters: MeterReadings
    public init(at: Timestamp, meters: MeterReadings) {
        self.at = at
        self.meters = meters
    }
}

/// Settle a finished execution.
public struct SettlementRequest: Sendable {
    public var execution: String
    /// The final readings.
    public var meters: MeterReadings
    public var failed: Bool
    public var endedAt: Timestamp
    /// The period the execution ended in; nil: the period it was reserved in.
    public var period: BillingPeriod?

    public init(execution: String, meters: MeterReadings, failed: Bool = false, endedAt: Timestamp, period: BillingPeriod? = nil) {
        self.execution = execution
        self.meters = meters
        self.failed = failed
        self.endedAt = endedAt
        self.period = period
    }
}
