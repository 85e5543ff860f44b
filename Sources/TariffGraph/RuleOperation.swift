import TariffCore

/// The instruction set of the pricing core: every plugin, shipped or third-party, lowers its
/// section into these operations, and the engine evaluates nothing else.
///
/// Execution operations transform the running charge of one execution, in order; period
/// operations produce the lines at period starts and ends. A closed enum keeps evaluation a flat
/// `switch` with no existentials and no dictionary look-ups on the hot path.
public enum RuleOperation: Sendable, Hashable {
    // MARK: Execution pipeline

    /// The charge is `fee` (exact), whatever the meters: a per-call price.
    case perExecutionFee(PlanMoney)
    /// The charge is `overage_cu * overagePerUnit`, where `covered = min(cu, max(0, allowance - used))`.
    case allowanceOverage(allowance: ComputeUnits, overagePerUnit: PlanMoney)
    /// The charge is the graduated price of the range `(used, used + cu]` over `tiers`.
    case graduatedTiers([PriceTier])
    /// The charge times `(1 - percent)`, exact (before rounding).
    case percentOff(Percent)
    /// The charge rounded half-to-even to micro-units: from here on it is a ledger amount.
    case roundHalfEven
    /// `min(charge, cap)`: one execution never costs more than `cap`.
    case capPerExecution(PlanMoney)
    /// Refuses the execution (`spend_cap`) when the period's usage charges reached `cap`,
    /// else `min(charge, cap - usage_so_far)`.
    case spendCap(PlanMoney)
    /// The (rounded) charge times `(1 - percent)`, rounded half-even, while `condition` holds.
    case conditionalPercentOff(Percent, ExecutionCondition)
    /// `max(charge, amount)` for a billable execution.
    case minimumCharge(PlanMoney)
    /// `charge + reading(meter) * pricePerUnit`, rounded half-even.
    case meterSurcharge(meter: MeterIndex, pricePerUnit: PlanMoney)
    /// The charge is zero for the first `count` executions of each period.
    case freeExecutions(count: Int64)
    /// A rule kind loaded at run time (a WebAssembly module of rules/plugins.yaml): the charge is
    /// what it answers, in micro-units; `-1` refuses the execution; a failure leaves the charge.
    case external(ExternalRule)

    // MARK: Period lines

    /// A fee charged at the start of every period.
    case periodFee(PlanMoney)
    /// At period end: `max(0, commitment - (fee + usage charges))`.
    case commitmentShortfall(PlanMoney)
    /// At period end: a negative line of `credit * (fee + usage + shortfall)` for the band measured
    /// availability falls under.
    case slaCredit(promised: Percent?, bands: [SLABand])

    /// Whether the operation belongs to the period (start or end) rather than to an execution.
    public var isPeriodOperation: Bool {
        switch self {
        case .periodFee, .commitmentShortfall, .slaCredit: true
        default: false
        }
    }

    /// Whether the operation is a guardrail (`max_cost_per_execution`, `spend_cap`): guardrails run
    /// last, after the model's pricing and every rule, so a cap is never exceeded (plans.md).
    public var isGuardrail: Bool {
        switch self {
        case .capPerExecution, .spendCap: true
        default: false
        }
    }

    /// The period state the operation reads: it needs a plan with a period (a per-call plan keeps
    /// none, so `free_executions` there would make every call free).
    public var periodInputs: [GraphInput] {
        inputs.filter { [.periodUsage, .periodSpend, .periodExecutions, .periodFees, .availability].contains($0) }
    }

    /// The meters the operation reads (a surcharge's, a meter condition's).
    public var meters: [MeterIndex] {
        switch self {
        case .meterSurcharge(let meter, _): [meter]
        case .conditionalPercentOff(_, let condition): condition.meters
        case .external(let rule): rule.meters
        default: []
        }
    }

    /// The kind name shown in graphs and explain traces.
    public var kindName: String {
        switch self {
        case .perExecutionFee: "per_execution_fee"
        case .allowanceOverage: "allowance_overage"
        case .graduatedTiers: "graduated_tiers"
        case .percentOff: "percent_off"
        case .roundHalfEven: "round_half_even"
        case .capPerExecution: "cap_per_execution"
        case .spendCap: "spend_cap"
        case .conditionalPercentOff: "conditional_percent_off"
        case .minimumCharge: "minimum_charge"
        case .meterSurcharge: "meter_surcharge"
        case .freeExecutions: "free_executions"
        case .external: "wasm_rule"
        case .periodFee: "period_fee"
        case .commitmentShortfall: "commitment_shortfall"
        case .slaCredit: "sla_credit"
        }
    }

    /// The engine inputs an operation reads besides the running charge (graph edges).
    public var inputs: [GraphInput] {
        switch self {
        case .perExecutionFee: []
        case .allowanceOverage: [.computeUnits, .periodUsage]
        case .graduatedTiers: [.computeUnits, .periodUsage]
        case .percentOff, .roundHalfEven, .capPerExecution, .minimumCharge: []
        case .spendCap: [.periodSpend]
        case .conditionalPercentOff(_, let condition): condition.inputs
        case .meterSurcharge: [.meters]
        case .freeExecutions: [.periodExecutions]
        case .external(let rule):
            [.computeUnits, .status, .endedAt] + (rule.meters.isEmpty ? [] : [.meters])
                + (rule.readsPeriod ? [.periodUsage, .periodSpend, .periodExecutions] : [])
        case .periodFee: []
        case .commitmentShortfall: [.periodFees, .periodSpend]
        case .slaCredit: [.periodFees, .periodSpend, .availability]
        }
    }

    /// The parameters, as name/value text pairs, for graphs and explain traces.
    public var parameters: [(String, String)] {
        switch self {
        case .perExecutionFee(let fee): [("fee", fee.description)]
        case .allowanceOverage(let allowance, let price): [("allowance", allowance.description), ("overage", price.description)]
        case .graduatedTiers(let tiers): tiers.enumerated().map { index, tier in
            ("tier\(index + 1)", "\(tier.upTo.map { "up to \($0)" } ?? "beyond") at \(tier.price)")
        }
        case .percentOff(let percent): [("percent", percent.description)]
        case .roundHalfEven: [("to", "0.000001")]
        case .capPerExecution(let cap): [("max", cap.description)]
        case .spendCap(let cap): [("cap", cap.description)]
        case .conditionalPercentOff(let percent, let condition): [("percent", percent.description), ("when", condition.description)]
        case .minimumCharge(let amount): [("amount", amount.description)]
        case .meterSurcharge(let meter, let price): [("meter", "#\(meter.rawValue)"), ("per_unit", price.description)]
        case .freeExecutions(let count): [("count", String(count))]
        case .external(let rule): [("kind", rule.kind), ("options", rule.options.map(String.init).joined(separator: ", "))]
        case .periodFee(let fee): [("fee", fee.description)]
        case .commitmentShortfall(let commitment): [("commitment", commitment.description)]
        case .slaCredit(let promised, let bands):
            [("availability", promised?.description ?? "-")] + bands.map { ("below \($0.below)", $0.credit.description) }
        }
    }
}

/// One graduated tier: the price per compute unit up to `upTo` (nil: the open last tier).
public struct PriceTier: Sendable, Hashable {
    public var upTo: ComputeUnits?
    public var price: PlanMoney
    public init(upTo: ComputeUnits?, price: PlanMoney) {
        self.upTo = upTo
        self.price = price
    }
}

/// An SLA credit band: when measured availability is strictly below `below`, credit `credit`.
public struct SLABand: Sendable, Hashable {
    public var below: Percent
    public var credit: Percent
    public init(below: Percent, credit: Percent) {
        self.below = below
        self.credit = credit
    }
}

/// A meter's position in the catalog's meter table: executions carry readings by index, not name.
public struct MeterIndex: RawRepresentable, Sendable, Hashable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
}

/// When a conditional rule applies, evaluated on the execution's `ended_at` and readings.
public indirect enum ExecutionCondition: Sendable, Hashable, CustomStringConvertible {
    /// The day of week of `ended_at` on `clock` is one of `days` (bit n = weekday raw value n).
    case weekdays(mask: UInt8, clock: LocalClock)
    /// The hour of `ended_at` on `clock` is in `[fromHour, toHour)` (wrapping past midnight when `fromHour > toHour`).
    case hours(fromHour: Int, toHour: Int, clock: LocalClock)
    /// `from <= ended_at < to` (either bound may be open).
    case dateRange(from: Timestamp?, to: Timestamp?)
    /// The reading of `meter` is at least `threshold`.
    case meterAtLeast(meter: MeterIndex, threshold: MeterValue)
    /// Every condition holds.
    case all([ExecutionCondition])

    public var inputs: [GraphInput] {
        switch self {
        case .weekdays, .hours, .dateRange: [.endedAt]
        case .meterAtLeast: [.meters]
        case .all(let conditions): Array(Set(conditions.flatMap(\.inputs))).sorted { $0.rawValue < $1.rawValue }
        }
    }

    /// The meters the condition reads.
    public var meters: [MeterIndex] {
        switch self {
        case .meterAtLeast(let meter, _): [meter]
        case .all(let conditions): conditions.flatMap(\.meters)
        default: []
        }
    }

    /// The conditions that must all hold, flattened out of nested `all`s.
    public var parts: [ExecutionCondition] {
        if case .all(let list) = self { return list.flatMap(\.parts) }
        return [self]
    }

    public var description: String {
        switch self {
        case .weekdays(let mask, let clock):
            let names = Weekday.allCases.filter { mask & (1 << UInt8($0.rawValue)) != 0 }.map(\.shortName)
            return "weekday in [\(names.joined(separator: ","))] \(clock)"
        case .hours(let from, let to, let clock):
            return "hour in [\(from), \(to)) \(clock)"
        case .dateRange(let from, let to):
            return "ended_at in [\(from?.description ?? "-inf"), \(to?.description ?? "+inf"))"
        case .meterAtLeast(let meter, let threshold):
            return "meter #\(meter.rawValue) >= \(threshold)"
        case .all(let conditions):
            return conditions.isEmpty ? "always" : conditions.map(\.description).joined(separator: " and ")
        }
    }
}

/// The values an execution brings into the graph: the sources of its edges.
public enum GraphInput: String, Sendable, Hashable, CaseIterable {
    case meters
    case computeUnits = "compute_units"
    case status
    case endedAt = "ended_at"
    case periodUsage = "period_usage"
    case periodSpend = "period_spend"
    case periodExecutions = "period_executions"
    case periodFees = "period_fees"
    case availability
}

/// One node of a plan's rule graph: an operation, the rule name its lines carry, and the YAML
/// position that declared it.
public struct RuleNode: Sendable, Hashable {
    /// The name on the charge lines this node produces (`overage`, `fee`, `discount`).
    public var rule: String
    public var operation: RuleOperation
    /// The `file:line:column` of the key that declared it.
    public var location: SourceLocation
    /// The plugin that lowered it (`subscription`, `discount`).
    public var plugin: String
    /// Where the node's condition is written (a discount's `when:`), for the compiler's lint about
    /// conditions (one that can never hold, two discounts that can apply at once); nil: `location`.
    public var conditionLocation: SourceLocation?

    public init(rule: String, operation: RuleOperation, location: SourceLocation, plugin: String) {
        self.rule = rule
        self.operation = operation
        self.location = location
        self.plugin = plugin
    }
}
