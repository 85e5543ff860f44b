// A third party's billing model, written against Tariff's public API only: TariffCompiler (the
// plugin protocols, the option readers, the rule graph operations) and TariffCore (the exact
// values). Nothing here is known to the core; a program registers it explicitly:
//
//     var registry = ShippedPlugins.registry          // from TariffModels (or any registry)
//     ExamplePlugins.register(into: &registry)
//     let compilation = CatalogLoader.compile(plansDirectory: "plans", rulesDirectory: "rules", plugins: registry)
import TariffCompiler
import TariffCore

/// `prepaid_bundle`: a bundle of compute units bought for a fixed price every period, then a
/// fallback rate per compute unit once the bundle is used up.
///
/// ```yaml
/// model: prepaid_bundle
/// prepaid_bundle:
///   period: month      # week | month | year; default month
///   price: 25.00       # charged at the start of every period
///   units: 5000        # compute units the price buys, per period (unused units expire)
///   fallback: 0.006    # per compute unit past the bundle; default: the bundle's own rate, price / units
/// ```
///
/// Lowered to the core's operations: a period fee (`price`), then allowance-and-overage
/// (`units`, `fallback`) rounded half-to-even once, exactly like a subscription's execution
/// pipeline, so it prices, explains, quotes and tests like the shipped models.
public struct PrepaidBundleModel: BillingModelPlugin {
    public let name = "prepaid_bundle"
    public init() {}

    /// The section's options, declared once: `lower` reads them with these values, and `tariff
    /// schema` (JSON and `--format markdown`) describes them from the same ones.
    public enum Options {
        public static let period = PluginOption("period", .oneOf(PeriodUnit.allCases.map(\.rawValue)), "How often the bundle is bought.", default: "month")
        public static let price = PluginOption("price", .money, required: true, "The bundle's price, charged at the start of every period.", example: "25.00")
        public static let units = PluginOption("units", .computeUnits, required: true, "Compute units the price buys, per period (more than 0; unused units expire).", example: "5000")
        public static let fallback = PluginOption("fallback", .money, "Price per compute unit past the bundle.", defaultNote: "price / units, rounded up to 12 decimals")
        public static let schema = OptionsSchema("prepaid_bundle (example plugin): a bundle of compute units for a fixed price every period, then a fallback rate per unit.",
                                                 declaring: [period, price, units, fallback])
    }

    public var sectionSchema: OptionsSchema? { Options.schema }

    public func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let diagnostics = section.diagnostics
        let period = section.read(Options.period)
        let price = section.read(Options.price)
        let units = section.read(Options.units)
        let fallback = section.read(Options.fallback)
        // A bundle of nothing would make every unit a fallback unit and the price a pure fee:
        // that is a subscription with allowance 0, so the bundle refuses it.
        if let units, units.value.millis == 0 {
            diagnostics.error("invalid-value", at: units.valueLocation, "a prepaid bundle needs more than 0 units",
                              fix: "give the compute units the price buys, e.g. units: 5000")
            return nil
        }
        guard let period else { return nil }   // written wrong: already reported (left out, it is the declared default)
        // The core's shared reviewer checks, with this model's own key names.
        if let price { context.checkMinorUnit(price, "price", diagnostics: diagnostics) }
        if let price, let units, let fallback {
            context.checkOveragePrice(fallback, fee: price.value, included: units.value, diagnostics: diagnostics,
                                      overageKey: "fallback", feeKey: "price", includedKey: "units")
        }
        guard let price, let units else { return nil }
        guard let unit = PeriodUnit(rawValue: period.value) else { return nil }
        // Without `fallback`, units past the bundle cost what units inside it cost: price / units,
        // rounded up to the 12 decimals money is written in (never below the bundle's own rate).
        let rate = fallback?.value ?? PlanMoney(picos: (price.value.picos * 1_000).divided(by: Int128(units.value.millis), rounding: .up))
        let location = fallback?.keyLocation ?? units.keyLocation
        let nodes = [
            RuleNode(rule: "fallback", operation: .allowanceOverage(allowance: units.value, overagePerUnit: rate), location: location, plugin: name),
            RuleNode(rule: "fallback", operation: .roundHalfEven, location: location, plugin: name),
        ]
        let periodNodes = [RuleNode(rule: "bundle", operation: .periodFee(price.value), location: price.keyLocation, plugin: name)]
        return ModelLowering(period: unit, billFailed: false, executionNodes: nodes, periodNodes: periodNodes,
                             periodLocation: period.keyLocation)
    }
}

/// `cap_per_execution`: no execution costs more than `amount`, whatever the model and the rules
/// before it (the shipped models only offer such a cap inside `enterprise`'s guardrails).
///
/// ```yaml
/// rules:
///   - kind: cap_per_execution
///     amount: 2.00
/// ```
/// Lowered to the core's `capPerExecution`: `min(charge, amount)`, the result rounded half-to-even
/// to micro-units like every rule's.
public struct CapPerExecutionRule: RuleKindPlugin {
    public let kind = "cap_per_execution"
    public init() {}

    public enum Options {
        public static let amount = PluginOption("amount", .money, required: true, "The most one execution is charged (more than 0).", example: "2.00")
        public static let schema = OptionsSchema("cap_per_execution (example plugin): no execution costs more than this.", declaring: [amount])
    }

    public var optionsSchema: OptionsSchema? { Options.schema }

    public func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
        guard let amount = options.read(Options.amount) else { return nil }
        guard amount.value.picos > 0 else {
            options.diagnostics.error("invalid-value", at: amount.valueLocation, "a cap of 0 would make every execution free",
                                      fix: "give the most one execution may cost, e.g. amount: 2.00; for free executions use free_executions")
            return nil
        }
        return [RuleNode(rule: "cap_per_execution", operation: .capPerExecution(amount.value), location: amount.keyLocation, plugin: kind)]
    }
}

/// The example plugins, registered on top of a caller's registry (explicitly: nothing registers
/// itself behind the caller's back).
public enum ExamplePlugins {
    public static func register(into registry: inout PluginRegistry) {
        registry.register(model: PrepaidBundleModel())
        registry.register(ruleKind: CapPerExecutionRule())
    }
}
