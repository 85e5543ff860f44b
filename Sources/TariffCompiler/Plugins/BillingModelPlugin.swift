import TariffCore

/// A billing model: reads the plan section named after it and lowers it to rule graph nodes.
///
/// The shipped models (`per_call`, `subscription`, `enterprise`) are implemented with exactly this
/// public API; a third party adds a model by conforming a type and registering it in a
/// `PluginRegistry`, with no change to the core.
///
/// ```swift
/// struct PrepaidBundle: BillingModelPlugin {
///     let name = "prepaid_bundle"
///     func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? { ... }
/// }
/// ```
public protocol BillingModelPlugin: Sendable {
    /// The `model:` value, which is also the key of the plan's section (`subscription:`).
    var name: String { get }
    /// Reads the section's options (unknown keys are reported by the caller through `finish()`),
    /// reports mistakes at their positions, and returns the lowering, or nil if it is unusable.
    func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering?
}

/// A rule kind (`rules:` entries of a plan): lowered to nodes applied after the model's own.
public protocol RuleKindPlugin: Sendable {
    /// The `kind:` value.
    var kind: String { get }
    /// Reads the rule's options (its `kind` key is already read) and returns its nodes.
    func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]?
}

/// What a plugin knows about the plan being compiled.
public struct PlanLoweringContext: Sendable {
    public var planID: String
    public var currency: Currency?
    /// The catalog's meters (from `rules/` metering), in index order.
    public var meterNames: [String]
    /// False when part of rules/ could not be read (an error already reported): an unknown meter
    /// may be defined there, so `meter(named:)` returns nil without a diagnostic of its own.
    public var meterNamesAreComplete = true

    public init(planID: String, currency: Currency?, meterNames: [String]) {
        self.planID = planID
        self.currency = currency
        self.meterNames = meterNames
    }

    /// The index of a meter by name, or nil (with an `unknown-meter` diagnostic at `location`).
    public func meter(named name: String, at location: SourceLocation, diagnostics: DiagnosticSink) -> MeterIndex? {
        if let index = meterNames.firstIndex(of: name) { return MeterIndex(rawValue: index) }
        guard meterNamesAreComplete else { return nil }
        var message = "unknown meter '\(name)': no metering in rules/ weighs it"
        if let suggestion = Suggestion.closest(to: name, among: meterNames) { message += "; did you mean '\(suggestion)'?" }
        diagnostics.error("unknown-meter", at: location, message)
        return nil
    }
}

/// What a billing model lowers to.
public struct ModelLowering: Sendable {
    /// The billing period (models billed per period: they are subscribed to); nil for per-execution models.
    public var period: PeriodUnit?
    /// Where the period is written (`period:`), for diagnostics that compare versions of a plan.
    public var periodLocation: SourceLocation?
    /// Whether `failed` executions are billed (`bill_failed`, default false).
    public var billFailed: Bool
    /// The execution pipeline, in order.
    public var executionNodes: [RuleNode]
    /// Period lines (fees at starts, shortfall and credits at ends).
    public var periodNodes: [RuleNode]
    /// The amount reserved before a run, when the model knows one (`reserve:`, a cap, or the exact fee).
    public var reserve: PlanMoney?
    /// True when the price is known before the run (per-call): a quote is exact.
    public var quoteIsExact: Bool
    /// Informational attributes shown in quotes and invoices (`support`, `priority`).
    public var attributes: [(key: String, value: String)]

    public init(period: PeriodUnit?, billFailed: Bool, executionNodes: [RuleNode], periodNodes: [RuleNode] = [],
                reserve: PlanMoney? = nil, quoteIsExact: Bool = false, attributes: [(key: String, value: String)] = [],
                periodLocation: SourceLocation? = nil) {
        self.period = period
        self.periodLocation = periodLocation
        self.billFailed = billFailed
        self.executionNodes = executionNodes
        self.periodNodes = periodNodes
        self.reserve = reserve
        self.quoteIsExact = quoteIsExact
        self.attributes = attributes
    }
}

/// The explicit list of plugins a compilation uses. Nothing registers itself behind the caller's back.
public struct PluginRegistry: Sendable {
    public private(set) var models: [any BillingModelPlugin] = []
    public private(set) var ruleKinds: [any RuleKindPlugin] = []

    public init() {}

    /// Adds a model; a later registration of the same name replaces the earlier one.
    public mutating func register(model plugin: any BillingModelPlugin) {
        models.removeAll { $0.name == plugin.name }
        models.append(plugin)
    }

    public mutating func register(ruleKind plugin: any RuleKindPlugin) {
        ruleKinds.removeAll { $0.kind == plugin.kind }
        ruleKinds.append(plugin)
    }

    public func model(named name: String) -> (any BillingModelPlugin)? { models.first { $0.name == name } }
    public func ruleKind(named kind: String) -> (any RuleKindPlugin)? { ruleKinds.first { $0.kind == kind } }
}
