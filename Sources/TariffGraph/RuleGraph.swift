import TariffCore

/// A plan's rule graph as nodes and edges: the inputs an execution brings, the metering node,
/// the execution pipeline in order, the split, and the period nodes. What `tariff graph` prints.
public struct RuleGraph: Sendable {
    public struct Node: Sendable {
        public var id: String
        public var kind: String
        public var rule: String?
        public var parameters: [(String, String)]
        public var location: SourceLocation?
    }
    public struct Edge: Sendable {
        public var from: String
        public var to: String
    }
    public var nodes: [Node] = []
    public var edges: [Edge] = []

    public init(plan: PlanDefinition, meterNames: [String]) {
        var usedInputs: [GraphInput] = [.meters]
        let weights = plan.metering.weights.map { (meterNames[$0.meter.rawValue], $0.weight.description) }
        nodes.append(Node(id: "metering", kind: "metering", rule: plan.metering.name,
                          parameters: weights + [("precision", plan.metering.precision.description)], location: plan.metering.location))
        edges.append(Edge(from: "input_meters", to: "metering"))
        var previous = "metering"
        for (index, node) in plan.executionNodes.enumerated() {
            let id = "e\(index)"
            nodes.append(Node(id: id, kind: node.operation.kindName, rule: node.rule, parameters: node.operation.parameters, location: node.location))
            edges.append(Edge(from: previous, to: id))
            for input in node.operation.inputs where input != .computeUnits {
                if !usedInputs.contains(input) { usedInputs.append(input) }
                edges.append(Edge(from: "input_\(input.rawValue)", to: id))
            }
            previous = id
        }
        if !plan.billFailed {
            usedInputs.append(.status)
            edges.append(Edge(from: "input_status", to: plan.executionNodes.isEmpty ? "split" : "e0"))
        }
        nodes.append(Node(id: "split", kind: "split", rule: plan.split.name ?? "inline",
                          parameters: [("creator", plan.split.rule.creator.description), ("platform", plan.split.rule.platform.description),
                                       ("processing", plan.split.rule.processing.description)], location: plan.split.location))
        edges.append(Edge(from: previous, to: "split"))
        for (index, node) in plan.periodNodes.enumerated() {
            let id = "p\(index)"
            nodes.append(Node(id: id, kind: node.operation.kindName, rule: node.rule, parameters: node.operation.parameters, location: node.location))
            for input in node.operation.inputs {
                if !usedInputs.contains(input) { usedInputs.append(input) }
                edges.append(Edge(from: "input_\(input.rawValue)", to: id))
            }
            edges.append(Edge(from: id, to: "split"))
        }
        let inputNodes = usedInputs.map { Node(id: "input_\($0.rawValue)", kind: "input", rule: $0.rawValue, parameters: [], location: nil) }
        nodes.insert(contentsOf: inputNodes, at: 0)
    }
}
