import ArgumentParser
import Foundation
import Tariff

/// `tariff quote`: prices one execution from the flags alone.
struct QuoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote",
        abstract: "Price one execution without any state but what the flags give."
    )

    @OptionGroup var catalog: CatalogOptions

    @Option(help: "The plan id.")
    var plan: String

    @Option(help: "A plan version (default: the version in effect at --at).")
    var version: Int?

    @Option(help: "When the execution ends (RFC 3339 or a date; default: now). Picks the version and feeds conditions.")
    var at: String?

    @Option(name: .customLong("meter"), help: "A meter reading NAME=VALUE (repeatable).")
    var meters: [String] = []

    @Option(help: "Compute units already used in the period.")
    var periodUsage: String = "0"

    @Option(help: "Usage charges already billed in the period.")
    var periodSpend: String = "0"

    @Option(help: "Executions already billed in the period (free_executions).")
    var periodExecutions: Int = 0

    @Option(help: "succeeded or failed.")
    var status: String = "succeeded"

    @Flag(help: "Show every rule graph node that contributed, its inputs, output and source position.")
    var explain = false

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        if version != nil && at != nil { throw ValidationError("give --version or --at, not both") }
        if status != "succeeded" && status != "failed" { throw ValidationError("--status is succeeded or failed, not '\(status)'") }
        if periodExecutions < 0 { throw ValidationError("--period-executions must not be negative") }
    }

    func run() throws {
        try stopping {
            let catalog = try self.catalog.load()
            let request = try makeRequest()
            let quote: Quote
            do throws(QuoteError) { quote = try catalog.quote(request, explain: explain) } catch { throw InputError(error.description) }
            for warning in quote.warnings { printError("warning: \(warning)") }
            switch format {
            case .json: print(json(quote, catalog: catalog).rendered)
            case .text: print(text(quote, catalog: catalog))
            }
        }
    }

    private func makeRequest() throws -> QuoteRequest {
        var instant = Timestamp(nanosecondsSinceEpoch: Int64(Date().timeIntervalSince1970) * 1_000_000_000)
        if let at {
            guard let parsed = Timestamp(dateOrTimestamp: at) else { throw InputError("--at '\(at)' is not an RFC 3339 timestamp or a date") }
            instant = parsed
        }
        var readings: [(name: String, value: MeterValue)] = []
        var seen: Set<ByteKey> = []
        for meter in meters {
            guard let equals = meter.firstIndex(of: "=") else { throw InputError("--meter '\(SafeText.escaping(meter))' is not NAME=VALUE") }
            let name = String(meter[..<equals])
            let text = meter[meter.index(after: equals)...]
            guard !name.isEmpty else { throw InputError("--meter '\(SafeText.escaping(meter))' has no meter name: write NAME=VALUE, e.g. cpu_ms=1200") }
            // A repeated meter was silently the last one: which reading was meant is not ours to guess.
            guard seen.insert(ByteKey(name)).inserted else {
                throw InputError("--meter \(SafeText.escaping(name)) is given twice; give each meter once")
            }
            do throws(DecimalText.Failure) {
                readings.append((name, try MeterValue(parsing: text)))
            } catch {
                throw InputError("--meter \(SafeText.escaping(name)): '\(SafeText.escaping(String(text)))' is not a valid reading: \(error)")
            }
        }
        let usage: ComputeUnits
        do throws(DecimalText.Failure) { usage = try ComputeUnits(parsing: Substring(periodUsage)) } catch {
            throw InputError("--period-usage '\(periodUsage)': \(error)")
        }
        let spend: Money
        do throws(DecimalText.Failure) { spend = try Money(parsing: Substring(periodSpend)) } catch {
            throw InputError("--period-spend '\(periodSpend)': \(error)")
        }
        return QuoteRequest(planID: plan, version: version, at: instant, meters: readings, periodUsage: usage, periodSpend: spend,
                            periodExecutions: Int64(periodExecutions), failed: status == "failed")
    }

    private func json(_ quote: Quote, catalog: CompiledCatalog) -> JSON {
        let result = quote.result
        let lines = result.lines.map { line -> JSON in
            let node = quote.plan.executionNodes[Int(line.node)]
            return .object([("rule", .string(node.rule)), ("amount", .string(line.amount.description)), ("source", .string(node.location.description))])
        }
        var fields: [(String, JSON)] = [
            ("plan", .string(quote.plan.id)), ("version", .integer(Int64(quote.plan.version))),
            ("currency", .string(quote.plan.currency.code)), ("model", .string(quote.plan.model)),
            ("compute_units", .string(result.computeUnits.description)), ("charge", .string(result.charge.description)),
            ("split", .object([("creator", .string(result.split.creator.description)), ("platform", .string(result.split.platform.description)),
                               ("processing", .string(result.split.processing.description))])),
            ("lines", .array(lines)),
            ("refused", .optional(result.reason(in: quote.plan))),
            ("priority", .optional(quote.plan.attribute("priority"))), ("support", .optional(quote.plan.attribute("support"))),
            ("exact", .bool(quote.isExact)), ("reservation", .string(quote.reservation.description)),
            ("warnings", .array(quote.warnings.map { .string($0) })),
        ]
        if let explanation = quote.explanation {
            fields.append(("explain", .array(explanation.steps.map { step in
                .object([("kind", .string(step.kind)), ("rule", .string(step.rule)), ("source", .string(step.location.description)),
                         ("inputs", .object(step.renderedInputs.map { ($0.name, .string($0.value)) })), ("output", .string(step.output.description)),
                         ("contributed", .bool(step.contributed))])
            })))
        }
        return .object(fields)
    }

    private func text(_ quote: Quote, catalog: CompiledCatalog) -> String {
        let result = quote.result
        var rows: [[String]] = [
            ["plan", "\(quote.plan.id) v\(quote.plan.version) (\(quote.plan.model))"],
            ["currency", quote.plan.currency.code],
            ["compute units", result.computeUnits.description],
            ["charge", result.charge.description + (quote.isExact ? "  (exact before the run)" : "")],
        ]
        if let reason = result.reason(in: quote.plan) { rows.append(["refused", reason]) }
        for line in result.lines {
            let node = quote.plan.executionNodes[Int(line.node)]
            rows.append(["  \(node.rule)", "\(line.amount)  \(node.location)"])
        }
        rows.append(["split", "creator \(result.split.creator)  platform \(result.split.platform)  processing \(result.split.processing)"])
        if let priority = quote.plan.attribute("priority") { rows.append(["priority", priority]) }
        if let support = quote.plan.attribute("support") { rows.append(["support", support]) }
        rows.append(["reservation", quote.reservation.description])
        var output = table(rows)
        if let explanation = quote.explanation {
            output += "\n\nexplain:\n"
            var stepRows: [[String]] = [["node", "rule", "inputs", "output", "source"]]
            for step in explanation.steps {
                let inputs = step.renderedInputs.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
                stepRows.append([step.kind + (step.contributed ? "" : " (no change)"), step.rule, inputs, step.output.description, step.location.description])
            }
            output += table(stepRows, indent: "  ")
        }
        return output
    }
}
