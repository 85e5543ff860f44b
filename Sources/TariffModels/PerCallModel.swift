import TariffCompiler
import TariffCore

/// `per_call`: a flat fee for each invocation (plans.md). The price is known before the run, so a
/// quote is exact and the reservation is the fee itself.
public struct PerCallModel: BillingModelPlugin {
    public let name = "per_call"
    public init() {}

    /// The section's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public static let fee = PluginOption("fee", .money, required: true, "Charged for each execution, rounded half-to-even to micro-units (0.0000125 -> 0.000012).", example: "0.02")
        public static let billFailed = PluginOption("bill_failed", .boolean, "Whether failed executions are billed too (otherwise they are free and consume nothing).", default: "false", example: "true")
        public static let schema = OptionsSchema("per_call: a flat fee for each invocation; a quote is exact.", declaring: [fee, billFailed])
    }

    public var sectionSchema: OptionsSchema? { Options.schema }

    public func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let fee = section.read(Options.fee)
        let billFailed = section.value(Options.billFailed) == true
        guard let fee else { return nil }
        let nodes = [
            RuleNode(rule: "fee", operation: .perExecutionFee(fee.value), location: fee.keyLocation, plugin: name),
            RuleNode(rule: "fee", operation: .roundHalfEven, location: fee.keyLocation, plugin: name),
        ]
        return ModelLowering(period: nil, billFailed: billFailed, executionNodes: nodes, reserve: fee.value, quoteIsExact: true)
    }
}
