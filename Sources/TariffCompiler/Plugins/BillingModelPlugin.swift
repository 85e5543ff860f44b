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
    /// The section's options for `tariff schema` (editors validate and complete with it); nil, the
    /// default, leaves the section open in the schema (any keys; `check` still reads it).
    var sectionSchema: OptionsSchema? { get }
}

extension BillingModelPlugin {
    public var sectionSchema: OptionsSchema? { nil }
}

/// A rule kind (`rules:` entries of a plan): lowered to nodes applied after the model's own.
public protocol RuleKindPlugin: Sendable {
    /// The `kind:` value.
    var kind: String { get }
    /// Reads the rule's options (its `kind` key is already read) and returns its nodes.
    func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]?
    /// The rule's options (besides `kind`) for `tariff schema`; nil, the default, leaves them open.
    var optionsSchema: OptionsSchema? { get }
}

extension RuleKindPlugin {
    public var optionsSchema: OptionsSchema? { nil }
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

    // MARK: Lint a model shares with every model (a pricing reviewer's warnings)

    /// Warns (`sub-minor-unit`) when an amount billed as one whole line, such as a period fee or a
    /// commitment, is finer than the plan currency's minor unit (a JPY fee of 0.5, a USD fee of
    /// 49.001): no card or bank can charge it. Per-unit prices are not checked: they are meant to
    /// be fine (0.005 per CU) and only their sums are billed.
    public func checkMinorUnit(_ amount: Located<PlanMoney>, _ what: String, diagnostics: DiagnosticSink) {
        guard let currency else { return }
        let step = PowerOfTen.int128(PlanMoney.fractionalDigits - min(currency.minorUnitDigits, PlanMoney.fractionalDigits))
        guard amount.value.picos % step != 0 else { return }
        let places = currency.minorUnitDigits == 1 ? "1 decimal place" : "\(currency.minorUnitDigits) decimal places"
        diagnostics.warning("sub-minor-unit", at: amount.valueLocation,
                            "the \(what) \(amount.value.exact.description(trimmed: true)) is finer than \(currency.code)'s minor unit (\(places)): it is billed as one amount, which \(currency.code) cannot represent",
                            fix: currency.minorUnitDigits == 0 ? "write the \(what) as a whole number of \(currency.code), or check 'currency:'"
                                : "write the \(what) with at most \(places), or check 'currency:'")
    }

    /// Warns (`cheap-overage`) when the price per compute unit beyond an included quantity is
    /// below what the included units themselves cost (`overage < fee / included`): a consumer then
    /// pays less per unit the more they use past the allowance, which undercuts the plan's own fee.
    /// Nothing is reported when nothing is included (the fee then buys access, not units).
    public func checkOveragePrice(_ overage: Located<PlanMoney>, fee: PlanMoney, included: ComputeUnits, diagnostics: DiagnosticSink,
                                  overageKey: String = "overage", feeKey: String = "fee", includedKey: String = "allowance") {
        guard included.millis > 0, fee.picos > 0, overage.value.picos >= 0 else { return }
        // overage < fee / (millis / 1000)  <=>  overage.picos * millis < fee.picos * 1000 (exact, no
        // division). Amounts read from YAML are at most 10^24 picos; a plugin's own larger values are
        // compared without a trap (an overflowing side is simply the larger one).
        let (product, overflow) = overage.value.picos.multipliedReportingOverflow(by: Int128(included.millis))
        let (feeThousands, feeOverflow) = fee.picos.multipliedReportingOverflow(by: 1_000)
        guard !overflow, !feeOverflow, product < feeThousands else { return }
        // The included units' own price, rounded up to the picos money is written in (so "at least" holds).
        let unitPicos = feeThousands.divided(by: Int128(included.millis), rounding: .up)
        let exact = unitPicos.multipliedReportingOverflow(by: Int128(included.millis)) == (feeThousands, false)
        let unitPrice = PlanMoney(picos: unitPicos).exact.description(trimmed: true)
        diagnostics.warning("cheap-overage", at: overage.valueLocation,
                            "the \(overageKey) \(overage.value.exact.description(trimmed: true)) per CU is cheaper than the included units' own price (\(feeKey) \(fee.exact.description(trimmed: true)) / \(includedKey) \(DecimalText.formatTrimmed(Int128(included.millis), fractionalDigits: 3)) CU = \(exact ? "" : "about ")\(unitPrice) per CU): usage beyond the \(includedKey) costs less than usage inside it",
                            fix: "raise '\(overageKey)' to at least \(unitPrice), or lower '\(feeKey)' or raise '\(includedKey)'")
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
    /// Loads the WebAssembly rule kinds of `rules/plugins.yaml` (TariffWasm's; `CatalogLoader` sets
    /// it when a registry has none). Without one, a catalog declaring plugins is an `invalid-plugin` error.
    public var externalRuleLoader: (any ExternalRuleLoader)?

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
