import TariffCompiler

/// The plugins Tariff ships, registered explicitly. A caller adds its own on top:
///
/// ```swift
/// var registry = ShippedPlugins.registry
/// registry.register(model: PrepaidBundleModel())
/// ```
public enum ShippedPlugins {
    public static var registry: PluginRegistry {
        var registry = PluginRegistry()
        registry.register(model: PerCallModel())
        registry.register(model: SubscriptionModel())
        registry.register(model: EnterpriseModel())
        registry.register(ruleKind: DiscountRule())
        registry.register(ruleKind: MinimumChargeRule())
        registry.register(ruleKind: SurchargeRule())
        registry.register(ruleKind: FreeExecutionsRule())
        return registry
    }
}
