import TariffCompiler
import TariffCore

/// `subscription`: a periodic fee with an included compute-unit allowance and a price per unit
/// beyond it (plans.md). Unused allowance expires at period end.
public struct SubscriptionModel: BillingModelPlugin {
    public let name = "subscription"
    public init() {}

    /// The section's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public static let period = PluginOption("period", .oneOf(PeriodUnit.allCases.map(\.rawValue)), required: true, "The billing period, anchored at the subscription's start (month ends clamped: Jan 31 -> Feb 28).", example: "month")
        public static let fee = PluginOption("fee", .money, required: true, "Charged at the start of every period.", example: "49.00")
        public static let allowance = PluginOption("allowance", .computeUnits, required: true, "Compute units included in every period; what is unused expires at period end.", example: "10000")
        public static let overage = PluginOption("overage", .money, required: true, "Price per compute unit beyond the allowance.", example: "0.005")
        public static let billFailed = PluginOption("bill_failed", .boolean, "Whether failed executions are billed (and consume allowance).", default: "false", example: "true")
        public static let reserve = PluginOption("reserve", .money, "The amount held before a run (settlement).", defaultNote: "rules/ 'reservation'", example: "0.50")
        public static let schema = OptionsSchema("subscription: a periodic fee with an included compute-unit allowance, overage per unit beyond it.",
                                                 declaring: [period, fee, allowance, overage, billFailed, reserve])
    }

    public var sectionSchema: OptionsSchema? { Options.schema }

    public func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let period = section.read(Options.period)
        let fee = section.read(Options.fee)
        let allowance = section.read(Options.allowance)
        let overage = section.read(Options.overage)
        let billFailed = section.value(Options.billFailed) == true
        let reserve = section.read(Options.reserve)
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
