import TariffCompiler
import TariffCore

/// `per_call`: a flat fee for each invocation (plans.md). The price is known before the run, so a
/// quote is exact and the reservation is the fee itself.
public struct PerCallModel: BillingModelPlugin {
    public let name = "per_call"
    public init() {}

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
