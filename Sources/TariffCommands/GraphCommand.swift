import ArgumentParser
import Tariff

/// `tariff graph`: the compiled rule graph of a plan as DOT, Mermaid or JSON.
struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "graph", abstract: "Print the compiled rule graph of a plan.")

    enum GraphFormat: String, ExpressibleByArgument, CaseIterable { case dot, mermaid, json }

    @OptionGroup var catalog: CatalogOptions

    @Option(help: "The plan id.")
    var plan: String

    @Option(help: "A plan version (default: the version in effect now).")
    var version: Int?

    @Option(help: "dot, mermaid or json.")
    var format: GraphFormat = .dot

    func run() throws {
        try stopping {
            let catalog = try self.catalog.load()
            let handle: PlanHandle
            do throws(QuoteError) {
                handle = try catalog.resolve(planID: plan, version: version, at: Timestamp(nanosecondsSinceEpoch: Int64.max))
            } catch { throw InputError(error.description) }
            let definition = catalog.plan(handle)
            let graph = RuleGraph(plan: definition, meterNames: catalog.meterNames)
            switch format {
            case .dot: print(dot(graph, definition))
            case .mermaid: print(mermaid(graph))
            case .json: print(json(graph, definition).rendered)
            }
        }
    }

    private func label(_ node: RuleGraph.Node) -> [String] {
        var lines = [node.kind + (node.rule.map { $0 == node.kind ? "" : " (\($0))" } ?? "")]
        lines += node.parameters.map { "\($0.0): \($0.1)" }
        if let location = node.location { lines.append(location.description) }
        return lines
    }

    private func dot(_ graph: RuleGraph, _ plan: PlanDefinition) -> String {
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines = ["digraph \(quoted("\(plan.id)@\(plan.version)")) {", "  rankdir=LR;", "  node [shape=box, fontname=\"Helvetica\"];"]
        for node in graph.nodes {
            let shape = node.kind == "input" ? ", shape=ellipse" : ""
            lines.append("  \(node.id) [label=\(quoted(label(node).joined(separator: "\n")))\(shape)];")
        }
        for edge in graph.edges { lines.append("  \(edge.from) -> \(edge.to);") }
        lines.append("}")
        return lines.joined(separator: "\n")
    }

    private func mermaid(_ graph: RuleGraph) -> String {
        var lines = ["flowchart LR"]
        for node in graph.nodes {
            let text = label(node).joined(separator: "<br/>").replacingOccurrences(of: "\"", with: "#quot;")
            lines.append(node.kind == "input" ? "  \(node.id)([\"\(text)\"])" : "  \(node.id)[\"\(text)\"]")
        }
        for edge in graph.edges { lines.append("  \(edge.from) --> \(edge.to)") }
        return lines.joined(separator: "\n")
    }

    private func json(_ graph: RuleGraph, _ plan: PlanDefinition) -> JSON {
        .object([
            ("plan", .string(plan.id)), ("version", .integer(Int64(plan.version))), ("model", .string(plan.model)),
            ("nodes", .array(graph.nodes.map { node in
                .object([("id", .string(node.id)), ("kind", .string(node.kind)), ("rule", .optional(node.rule)),
                         ("parameters", .object(node.parameters.map { ($0.0, .string($0.1)) })),
                         ("source", .optional(node.location?.description))])
            })),
            ("edges", .array(graph.edges.map { .object([("from", .string($0.from)), ("to", .string($0.to))]) })),
        ])
    }
}
