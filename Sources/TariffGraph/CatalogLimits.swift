// The rule graph: the values every plugin lowers to and the engine evaluates. No YAML, no
// Foundation: the compiler produces it, the engine reads it, and a program may build one itself
// (GraphVerifier checks it whoever did).
/// Limits on everything a catalog may hold (TIGER_STYLE): enforced by the compiler with a
/// `limit-exceeded` diagnostic, so the engine can rely on them.
public enum CatalogLimits {
    public static let maximumPlans = 100_000
    public static let maximumMeters = 16
    public static let maximumTiers = 64
    public static let maximumRulesPerPlan = 16
    /// Pricing steps of one plan (model nodes plus rule nodes): the engine's inline line capacity.
    public static let maximumExecutionNodes = 24
    public static let maximumSLABands = 16
    public static let maximumTestsPerPlan = 1_000
    public static let maximumVersion = 1_000_000
}
