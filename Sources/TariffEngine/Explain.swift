import TariffGraph
import TariffCore

/// A value in an explain trace, kept typed: formatting to text happens only when rendered.
public enum ExplainValue: Sendable, CustomStringConvertible {
    case amount(ExactAmount)
    case money(Money)
    case computeUnits(ComputeUnits)
    /// A reading times its weight.
    case weighted(MeterValue, MeterWeight)
    case percent(Percent)
    case count(Int64)
    case timestamp(Timestamp)
    case shares(SplitShares)
    case text(String)

    public var description: String {
        switch self {
        case .amount(let amount): amount.description
        case .money(let money): money.description
        case .computeUnits(let units): units.description
        case .weighted(let value, let weight): "\(value) x \(weight)"
        case .percent(let percent): percent.description
        case .count(let count): String(count)
        case .timestamp(let timestamp): timestamp.description
        case .shares(let shares): "creator \(shares.creator), platform \(shares.platform), processing \(shares.processing)"
        case .text(let text): text
        }
    }
}

/// The trace of one priced execution: each rule graph node that took part, its inputs, its
/// output and the YAML position that declared it. Built only on request (the slow path).
public struct Explanation: Sendable {
    public struct Step: Sendable {
        /// The node's kind (`metering`, `allowance_overage`, `split`).
        public var kind: String
        /// The rule name its line carries (`overage`), or the metering/split name.
        public var rule: String
        public var location: SourceLocation
        /// The execution's values the node read (the running charge, compute units, period state).
        public var inputs: [(name: String, value: ExplainValue)]
        public var output: ExplainValue
        /// False for a node that ran but changed nothing (a discount whose condition did not hold).
        public var contributed: Bool
        /// The node's own parameters (prices, allowance, percent), when it is a rule graph node.
        public var operation: RuleOperation?

        /// Inputs followed by the node's parameters, as text, for rendering.
        public var renderedInputs: [(name: String, value: String)] {
            inputs.map { ($0.name, $0.value.description) } + (operation?.parameters ?? [])
        }
    }
    public var steps: [Step]
}

/// Records the evaluator's steps (input and output amount of every execution node) and lines.
public struct RecordingTracer: PricingTracer {
    public var computeUnits: ComputeUnits = .zero
    public var exactFemtos: Int128 = 0
    public var steps: [(node: Int, input: ExactAmount, output: ExactAmount)] = []
    public var lines = ChargeLines()
    public init() { steps.reserveCapacity(8) }
    public mutating func meteredComputeUnits(_ computeUnits: ComputeUnits, exactFemtos: Int128) {
        self.computeUnits = computeUnits
        self.exactFemtos = exactFemtos
    }
    public mutating func step(_ node: Int, input: ExactAmount, output: ExactAmount) {
        steps.append((node, input, output))
    }
    public mutating func line(_ line: ChargeLine) { lines.append(line) }
    /// Loaded rules skipped (node, reason): explain shows the reason on the rule's step.
    public var skipped: [(node: Int, reason: String)] = []
    public mutating func ruleSkipped(_ node: Int, reason: String) { skipped.append((node, reason)) }
}

extension CompiledCatalog {
    /// Prices an execution and explains it. The result equals `price`'s exactly.
    public func explain(_ handle: PlanHandle, _ execution: ExecutionInput, state: PeriodState) -> (result: PricingResult, explanation: Explanation) {
        guard contains(handle) else { return (price(handle, execution, state: state), Explanation(steps: [])) }
        var tracer = RecordingTracer()
        var result = price(handle, execution, state: state, tracer: &tracer)
        result.lines = result.refusal == nil ? tracer.lines : .empty
        let plan = plans[Int(handle.index)].definition
        var steps: [Explanation.Step] = []
        steps.reserveCapacity(tracer.steps.count + 3)
        var meterInputs: [(name: String, value: ExplainValue)] = []
        meterInputs.reserveCapacity(plan.metering.weights.count + 2)
        for weighting in plan.metering.weights {
            meterInputs.append((definition.meterNames[weighting.meter.rawValue], .weighted(execution.meters[weighting.meter], weighting.weight)))
        }
        meterInputs.append(("precision", .computeUnits(plan.metering.precision)))
        meterInputs.append(("exact", .amount(ExactAmount(units: tracer.exactFemtos, scale: 15))))
        let outOfRange = result.refusal == .outOfRange && tracer.steps.isEmpty
        steps.append(.init(kind: "metering", rule: plan.metering.name, location: plan.metering.location, inputs: meterInputs,
                           output: outOfRange ? .text("out of range") : .computeUnits(result.computeUnits), contributed: true, operation: nil))
        if execution.failed && !plan.billFailed {
            steps.append(.init(kind: "status", rule: "failed", location: plan.modelLocation, inputs: [("status", .text("failed"))],
                               output: .text("free: consumes nothing"), contributed: true, operation: nil))
        }
        for recorded in tracer.steps {
            let node = plan.executionNodes[recorded.node]
            var inputs: [(name: String, value: ExplainValue)] = []
            if recorded.node > 0 { inputs.append(("charge", .amount(recorded.input))) }
            for input in node.operation.inputs {
                switch input {
                case .computeUnits: inputs.append(("compute_units", .computeUnits(result.computeUnits)))
                case .periodUsage: inputs.append(("period_usage", .computeUnits(state.usedComputeUnits)))
                case .periodSpend: inputs.append(("period_spend", .money(state.usageCharges)))
                case .periodExecutions: inputs.append(("period_executions", .count(state.executions)))
                case .endedAt: inputs.append(("ended_at", .timestamp(execution.endedAt)))
                case .meters:
                    for meter in node.operation.meters where meter.rawValue >= 0 && meter.rawValue < definition.meterNames.count {
                        inputs.append((definition.meterNames[meter.rawValue], .text(execution.meters[meter].description)))
                    }
                default: break
                }
            }
            if let skipped = tracer.skipped.first(where: { $0.node == recorded.node }) {
                inputs.append(("skipped", .text("plugin '\(node.rule)' failed: \(skipped.reason); the charge is what it was before it")))
            }
            let changed = recorded.node == 0 || recorded.input.compare(recorded.output) != 0
            steps.append(.init(kind: node.operation.kindName, rule: node.rule, location: node.location, inputs: inputs,
                               output: .amount(recorded.output), contributed: changed, operation: node.operation))
        }
        if let refusal = result.refusal {
            let reason = result.reason(in: plan) ?? refusal.rawValue
            steps.append(.init(kind: "refusal", rule: reason, location: plan.modelLocation, inputs: [],
                               output: .text("refused: \(reason)"), contributed: true, operation: nil))
        } else {
            let split = plan.split
            steps.append(.init(kind: "split", rule: split.name ?? "inline", location: split.location,
                               inputs: [("charge", .money(result.charge)), ("creator", .percent(split.rule.creator)),
                                        ("platform", .percent(split.rule.platform)), ("processing", .percent(split.rule.processing))],
                               output: .shares(result.split), contributed: true, operation: nil))
        }
        return (result, Explanation(steps: steps))
    }
}

extension PricingResult {
    /// The refusal as plans.md writes it: `spend_cap`, `no_plan`, `out_of_range`, or `plugin:KIND`
    /// for a loaded rule's refusal (its kind read from `plan`'s refusing node). nil when priced.
    public func reason(in plan: PlanDefinition) -> String? {
        guard let refusal else { return nil }
        if refusal == .plugin, refusingNode >= 0, Int(refusingNode) < plan.executionNodes.count {
            return "plugin:\(plan.executionNodes[Int(refusingNode)].rule)"
        }
        return refusal.rawValue
    }
}
