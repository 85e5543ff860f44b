import TariffCompiler
import TariffCore

/// The trace of one priced execution: each rule graph node that took part, its inputs, its
/// output and the YAML position that declared it. Built only on request (the slow path).
public struct Explanation: Sendable {
    public struct Step: Sendable {
        /// The node's kind (`metering`, `allowance_overage`, `split`).
        public var kind: String
        /// The rule name its line carries (`overage`), or the metering/split name.
        public var rule: String
        public var location: SourceLocation
        /// Named input values, as exact decimal text.
        public var inputs: [(name: String, value: String)]
        public var output: String
        /// False for a node that ran but changed nothing (a discount whose condition did not hold).
        public var contributed: Bool
    }
    public var steps: [Step]
}

/// Records the evaluator's steps (input and output amount of every execution node).
public struct RecordingTracer: PricingTracer {
    public var computeUnits: ComputeUnits = .zero
    public var exactFemtos: Int128 = 0
    public var steps: [(node: Int, input: ExactAmount, output: ExactAmount)] = []
    public init() {}
    public mutating func meteredComputeUnits(_ computeUnits: ComputeUnits, exactFemtos: Int128) {
        self.computeUnits = computeUnits
        self.exactFemtos = exactFemtos
    }
    public mutating func step(_ node: Int, input: ExactAmount, output: ExactAmount) {
        steps.append((node, input, output))
    }
}

extension CompiledCatalog {
    /// Prices an execution and explains it. The result equals `price`'s exactly.
    public func explain(_ handle: PlanHandle, _ execution: ExecutionInput, state: PeriodState) -> (result: PricingResult, explanation: Explanation) {
        var tracer = RecordingTracer()
        let result = price(handle, execution, state: state, tracer: &tracer)
        let plan = plans[Int(handle.index)].definition
        var steps: [Explanation.Step] = []
        var meterInputs: [(name: String, value: String)] = []
        for weighting in plan.metering.weights {
            let name = definition.meterNames[weighting.meter.rawValue]
            meterInputs.append((name, "\(execution.meters[weighting.meter]) x \(weighting.weight)"))
        }
        meterInputs.append(("precision", plan.metering.precision.description))
        let exactCU = ExactAmount(units: tracer.exactFemtos, scale: 15)
        meterInputs.append(("exact", DecimalText.formatTrimmed(exactCU.units, fractionalDigits: 15, minimumFractionalDigits: 3)))
        steps.append(.init(kind: "metering", rule: plan.metering.name, location: plan.metering.location, inputs: meterInputs,
                           output: "\(result.refusal == .outOfRange && tracer.steps.isEmpty ? "out of range" : result.computeUnits.description) CU", contributed: true))
        if execution.failed && !plan.billFailed {
            steps.append(.init(kind: "status", rule: "failed", location: plan.modelLocation, inputs: [("status", "failed"), ("bill_failed", "false")],
                               output: "free: consumes nothing", contributed: true))
        }
        for recorded in tracer.steps {
            let node = plan.executionNodes[recorded.node]
            var inputs: [(name: String, value: String)] = [("charge", recorded.input.description)]
            if recorded.node == 0 || recorded.input.scale == 0 && recorded.input.units == 0 { inputs = [] }
            for input in node.operation.inputs {
                switch input {
                case .computeUnits: inputs.append(("compute_units", result.computeUnits.description))
                case .periodUsage: inputs.append(("period_usage", state.usedComputeUnits.description))
                case .periodSpend: inputs.append(("period_spend", state.usageCharges.description))
                case .periodExecutions: inputs.append(("period_executions", String(state.executions)))
                case .endedAt: inputs.append(("ended_at", execution.endedAt.description))
                case .meters:
                    if case .meterSurcharge(let meter, _) = node.operation {
                        inputs.append((definition.meterNames[meter.rawValue], execution.meters[meter].description))
                    }
                default: break
                }
            }
            inputs += node.operation.parameters
            let changed = recorded.input.compare(recorded.output) != 0 || recorded.node == 0
            steps.append(.init(kind: node.operation.kindName, rule: node.rule, location: node.location, inputs: inputs,
                               output: recorded.output.description, contributed: changed))
        }
        if let refusal = result.refusal {
            steps.append(.init(kind: "refusal", rule: refusal.rawValue, location: plan.modelLocation, inputs: [], output: "refused: \(refusal.rawValue)", contributed: true))
        } else {
            let split = plan.split
            steps.append(.init(kind: "split", rule: split.name ?? "inline", location: split.location,
                               inputs: [("charge", result.charge.description), ("creator", split.rule.creator.description),
                                        ("platform", split.rule.platform.description), ("processing", split.rule.processing.description)],
                               output: "creator \(result.split.creator), platform \(result.split.platform), processing \(result.split.processing)",
                               contributed: true))
        }
        return (result, Explanation(steps: steps))
    }
}
