import TariffCompiler
import TariffCore

/// `subscription`: a periodic fee with an included compute-unit allowance and a price per unit
/// beyond it (plans.md). Unused allowance expires at period end.
public struct SubscriptionModel: BillingModelPlugin {
    public let name = "subscription"
    public init() {}

    public var sectionSchema: OptionsSchema? {
        OptionsSchema("subscription: a periodic fee with an included compute-unit allowance, overage per unit beyond it.", [
            .init("period", .oneOf(PeriodUnit.allCases.map(\.rawValue)), required: true, "The billing period, anchored at the subscription's start (month ends clamped).", example: "month"),
            .init("fee", .money, required: true, "Charged at the start of every period.", example: "49.00"),
            .init("allowance", .computeUnits, required: true, "Compute units included in every period; what is unused expires at period end.", example: "10000"),
            .init("overage", .money, required: true, "Price per compute unit beyond the allowance.", example: "0.005"),
            .init("bill_failed", .boolean, "Whether failed executions are billed (and consume allowance).", default: "false"),
            .init("reserve", .money, "The amount held before a run (settlement); default: rules/ 'reservation'."),
        ])
    }

    public func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let period = section.required("period", .oneOf(PeriodUnit.allCases.map(\.rawValue)))
        let fee = section.required("fee", .money)
        let allowance = section.required("allowance", .computeUnits)
        let overage = section.required("overage", .money)
        let billFailed = section.optional("bill_failed", .boolean)?.value ?? false
        let reserve = section.optional("reserve", .money)
        if let fee { context.checkMinorUnit(fee, "fee", diagnostics: section.diagnostics) }
        if let fee, let allowance, let overage {
            context.checkOveragePrice(overage, fee: fee.value, included: allowance.value, diagnostics: section.diagnostics)
        }
        guard let period, let unit = PeriodUnit(rawValue: period.value), let fee, let allowance, let overage else { return nil }
        let nodes = [
            RuleNode(rule: "overage", operation: .allowanceOverage(allowance: allowance.value, overagePerUnit: overage.value),
                     location: overage.keyLocation, plugin: name),
            RuleNode(rule: "overage", operation: .roundHalfEven, location: overage.keyLocation, plugin: name),
        ]
        let periodNodes = [RuleNode(rule: "fee", operation: .periodFee(fee.value), location: fee.keyLocation, plugin: name)]
        return ModelLowering(period: unit, billFailed: billFailed, executionNodes: nodes, periodNodes: periodNodes, reserve: reserve?.value,
                             periodLocation: period.keyLocation)
    }
}
