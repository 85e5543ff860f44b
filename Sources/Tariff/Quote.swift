/// What to price in a quote: a plan (by version or by time), readings by meter name, the period
/// state, the status.
public struct QuoteRequest: Sendable {
    public var planID: String
    public var version: Int?
    /// Picks the version in effect at this instant when `version` is nil.
    public var at: Timestamp
    public var meters: [(name: String, value: MeterValue)]
    public var periodUsage: ComputeUnits
    public var periodSpend: Money
    public var periodExecutions: Int64
    public var failed: Bool

    public init(planID: String, version: Int? = nil, at: Timestamp, meters: [(name: String, value: MeterValue)] = [],
                periodUsage: ComputeUnits = .zero, periodSpend: Money = .zero, periodExecutions: Int64 = 0, failed: Bool = false) {
        self.planID = planID
        self.version = version
        self.at = at
        self.meters = meters
        self.periodUsage = periodUsage
        self.periodSpend = periodSpend
        self.periodExecutions = periodExecutions
        self.failed = failed
    }
}

/// A priced quote: the plan version, the result, and what a caller should know about the inputs.
public struct Quote: Sendable {
    public var plan: PlanDefinition
    public var handle: PlanHandle
    public var result: PricingResult
    /// Inputs that were ignored (a meter the plan does not weigh), one sentence each.
    public var warnings: [String]
    /// The amount a reservation would hold for this plan (settlement.md).
    public var reservation: Money
    /// True when the price is known before the run (per-call plans).
    public var isExact: Bool
    public var explanation: Explanation?
}

/// Why a quote could not be made.
public enum QuoteError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownPlan(String, suggestion: String?)
    case unknownVersion(String, Int, available: [Int])
    case notYetEffective(String, Timestamp)

    public var description: String {
        switch self {
        case .unknownPlan(let id, let suggestion):
            "unknown plan '\(id)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
        case .unknownVersion(let id, let version, let available):
            "plan '\(id)' has no version \(version) (versions: \(available.map(String.init).joined(separator: ", ")))"
        case .notYetEffective(let id, let at):
            "no version of plan '\(id)' is effective at \(at)"
        }
    }
}

extension CompiledCatalog {
    /// The plan version a request names: by `version`, else the one in effect at `at`.
    public func resolve(planID: String, version: Int?, at: Timestamp) throws(QuoteError) -> PlanHandle {
        guard !versions(of: planID).isEmpty else {
            throw .unknownPlan(planID, suggestion: Suggestion.closest(to: planID, among: planIDs))
        }
        if let version {
            guard let found = plan(id: planID, version: version) else {
                throw .unknownVersion(planID, version, available: versions(of: planID).map { plan($0).version }.sorted())
            }
            return found
        }
        guard let found = plan(id: planID, at: at) else { throw .notYetEffective(planID, at) }
        return found
    }

    /// Prices one execution with no state but what the request gives (`tariff quote`).
    public func quote(_ request: QuoteRequest, explain: Bool = false) throws(QuoteError) -> Quote {
        let handle = try resolve(planID: request.planID, version: request.version, at: request.at)
        let definition = plan(handle)
        var readings = MeterReadings()
        var warnings: [String] = []
        for (name, value) in request.meters {
            guard let meter = meter(named: name), definition.metering.weighs(meter) else {
                warnings.append("meter '\(name)' is not weighed by metering '\(definition.metering.name)' of plan '\(definition.id)'; it adds nothing")
                continue
            }
            readings[meter] = value
        }
        let execution = ExecutionInput(meters: readings, failed: request.failed, endedAt: request.at)
        let state = PeriodState(usedComputeUnits: request.periodUsage, usageCharges: request.periodSpend, executions: request.periodExecutions)
        var explanation: Explanation?
        let result: PricingResult
        let failuresBefore = externalRuleFailures()
        if explain {
            let explained = self.explain(handle, execution, state: state)
            result = explained.result
            explanation = explained.explanation
        } else {
            result = price(handle, execution, state: state)
        }
        // A WebAssembly rule that failed was skipped: the quote says which and why.
        warnings += externalRuleWarnings(since: failuresBefore)
        return Quote(plan: definition, handle: handle, result: result, warnings: warnings,
                     reservation: reservationEstimate(handle), isExact: definition.quoteIsExact, explanation: explanation)
    }
}
