import TariffCompiler
import TariffCore

/// `per_call`: a flat fee for each invocation (plans.md). The price is known before the run, so a
/// quote is exact and the reservation is the fee itself.
public struct PerCallModel: BillingModelPlugin {
    public let name = "per_call"
    public init() {}

    public var sectionSchema: OptionsSchema? {
        OptionsSchema("per_call: a flat fee for each invocation; a quote is exact.", [
            .init("fee", .money, required: true, "Charged for each execution, rounded half-to-even to micro-units.", example: "0.02"),
            .init("bill_failed", .boolean, "Whether failed executions are billed too (otherwise they are free and consume nothing).", default: "false"),
        ])
    }

    public func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let fee = section.required("fee", .money)
        let billFailed = section.optional("bill_failed", .boolean)?.value ?? false
        guard let fee else { return nil }
        let nodes = [
            RuleNode(rule: "fee", operation: .perExecutionFee(fee.value), location: fee.keyLocation, plugin: name),
            RuleNode(rule: "fee", operation: .roundHalfEven, location: fee.keyLocation, plugin: name),
        ]
        return ModelLowering(period: nil, billFailed: billFailed, executionNodes: nodes, reserve: fee.value, quoteIsExact: true)
    }
}
