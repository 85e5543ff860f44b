import TariffCompiler
import TariffCore

/// `enterprise`: a negotiated agreement: a period fee, graduated usage tiers, a discount on usage,
/// a commitment, SLA credits, guardrails, and the support and priority classes (plans.md).
///
/// Lowered to the pipeline of plans.md's steps 1-6: tiers -> discount -> round -> per-execution
/// cap -> spend cap, and the period lines fee, shortfall, SLA credit.
public struct EnterpriseModel: BillingModelPlugin {
    public let name = "enterprise"
    public init() {}

    /// The section's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public enum Tier {
            public static let upTo = PluginOption("up_to", .computeUnits, "The tier's upper bound in the period's cumulative compute units; strictly increasing; the last tier has none.", defaultNote: "none (the last tier only)", example: "500000")
            public static let price = PluginOption("price", .money, required: true, "Price per compute unit inside the tier (0: included).", example: "0.004")
            public static let schema = OptionsSchema("A graduated tier: its price applies to the part of the period's usage up to 'up_to'.", declaring: [upTo, price])
        }
        public enum Band {
            public static let below = PluginOption("below", .percent, required: true, "Applies when measured availability is strictly under this (the lowest such band wins).", example: "99.9%")
            public static let credit = PluginOption("credit", .percent, required: true, "Credited off the period's fee, usage and shortfall.", example: "10%")
            public static let schema = OptionsSchema("An SLA credit band.", declaring: [below, credit])
        }
        public enum SLA {
            public static let availability = PluginOption("availability", .percent, "The promised availability (shown in quotes and invoices; the bands alone decide credits).", example: "99.9%")
            public static let credits = OptionSchema("credits", .list(.mapping(Band.schema), minItems: 0), required: true, "The credit bands, at most \(CatalogLimits.maximumSLABands).")
            public static let schema = OptionsSchema("The service level: the promise shown in quotes and the credit bands.", declaring: [availability, credits])
        }
        public enum Guardrails {
            public static let maxCostPerExecution = PluginOption("max_cost_per_execution", .money, "One execution is never charged more than this.", example: "5.00")
            public static let spendCap = PluginOption("spend_cap", .money, "Usage charges in one period never exceed this; once reached, executions are refused (spend_cap).", example: "20000.00")
            public static let schema = OptionsSchema("Limits on what an execution and a period may cost.", declaring: [maxCostPerExecution, spendCap])
        }
        public static let period = PluginOption("period", .oneOf(PeriodUnit.allCases.map(\.rawValue)), required: true, "The billing period.", example: "month")
        public static let fee = PluginOption("fee", .money, required: true, "Charged per period (platform access, dedicated support).", example: "2000.00")
        public static let usage = OptionSchema("usage", .list(.mapping(Tier.schema), minItems: 1), required: true, "Graduated tiers over the period's cumulative compute units: strictly increasing 'up_to', one open last tier; at most \(CatalogLimits.maximumTiers).")
        public static let discount = PluginOption("discount", .percent, "Off usage charges (not the fee), before the one rounding.", example: "10%")
        public static let commitment = PluginOption("commitment", .money, "The minimum billed per period (fee + usage) before SLA credits; a shortfall line makes up the difference.", example: "5000.00")
        public static let sla = OptionSchema("sla", .mapping(SLA.schema), "SLA credits.")
        public static let support = PluginOption("support", .oneOf(["standard", "priority", "dedicated"]), "The support class (reported in quotes and invoices).", example: "dedicated")
        public static let priority = PluginOption("priority", .oneOf(["standard", "high", "critical"]), "The compute allocation class (reported in quotes).", example: "high")
        public static let guardrails = OptionSchema("guardrails", .mapping(Guardrails.schema), "Per-execution and per-period caps.")
        public static let billFailed = PluginOption("bill_failed", .boolean, "Whether failed executions are billed.", default: "false", example: "true")
        public static let reserve = PluginOption("reserve", .money, "The amount held before a run.", defaultNote: "max_cost_per_execution, else rules/ 'reservation'", example: "5.00")
        public static let schema = OptionsSchema("enterprise: a negotiated agreement: a period fee, graduated usage tiers, discount, commitment, SLA credits, guardrails.",
                                                 declaring: [period, fee, usage, discount, commitment, sla, support, priority, guardrails, billFailed, reserve])
    }

    public var sectionSchema: OptionsSchema? { Options.schema }

    public func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let diagnostics = section.diagnostics
        let period = section.read(Options.period)
        let fee = section.read(Options.fee)
        let tiers = readTiers(section)
        let discount = section.read(Options.discount)
        let commitment = section.read(Options.commitment)
        let sla = readSLA(section)
        let support = section.read(Options.support)
        let priority = section.read(Options.priority)
        let billFailed = section.value(Options.billFailed) == true
        let reserve = section.read(Options.reserve)
        var maxCost: Located<PlanMoney>?
        var spendCap: Located<PlanMoney>?
        if let guardrails = section.mapping(Options.guardrails) {
            maxCost = guardrails.read(Options.Guardrails.maxCostPerExecution)
            spendCap = guardrails.read(Options.Guardrails.spendCap)
            guardrails.finish()
        }
        if let maxCost, let spendCap, spendCap.value < maxCost.value {
            diagnostics.warning("spend-cap-below-execution-cap", at: spendCap.valueLocation,
                                "the spend cap \(spendCap.value) is below the per-execution cap \(maxCost.value): one execution can exhaust the period",
                                fix: "raise spend_cap or lower max_cost_per_execution")
        }
        if let fee { context.checkMinorUnit(fee, "fee", diagnostics: diagnostics) }
        if let commitment { context.checkMinorUnit(commitment, "commitment", diagnostics: diagnostics) }
        if let discount, discount.value == .hundred {
            diagnostics.warning("full-discount", at: discount.valueLocation,
                                "a 100% discount makes all usage free: only the fee (and any commitment shortfall) is ever billed",
                                fix: "if usage is meant to be included, write a tier with price 0 instead; otherwise correct the percent")
        }
        guard let period, let unit = PeriodUnit(rawValue: period.value), let fee, let tiers else { return nil }

        var nodes = [RuleNode(rule: "usage", operation: .graduatedTiers(tiers.value), location: tiers.keyLocation, plugin: name)]
        if let discount, discount.value.partsPerMillion > 0 {
            nodes.append(RuleNode(rule: "discount", operation: .percentOff(discount.value), location: discount.keyLocation, plugin: name))
        }
        nodes.append(RuleNode(rule: "usage", operation: .roundHalfEven, location: tiers.keyLocation, plugin: name))
        if let maxCost {
            nodes.append(RuleNode(rule: "max_cost_per_execution", operation: .capPerExecution(maxCost.value), location: maxCost.keyLocation, plugin: name))
        }
        if let spendCap {
            nodes.append(RuleNode(rule: "spend_cap", operation: .spendCap(spendCap.value), location: spendCap.keyLocation, plugin: name))
        }
        var periodNodes = [RuleNode(rule: "fee", operation: .periodFee(fee.value), location: fee.keyLocation, plugin: name)]
        if let commitment {
            periodNodes.append(RuleNode(rule: "shortfall", operation: .commitmentShortfall(commitment.value), location: commitment.keyLocation, plugin: name))
        }
        if let sla {
            periodNodes.append(RuleNode(rule: "sla_credit", operation: .slaCredit(promised: sla.value.promised, bands: sla.value.bands), location: sla.keyLocation, plugin: name))
        }
        var attributes: [(key: String, value: String)] = []
        if let support { attributes.append(("support", support.value)) }
        if let priority { attributes.append(("priority", priority.value)) }
        return ModelLowering(period: unit, billFailed: billFailed, executionNodes: nodes, periodNodes: periodNodes,
                             reserve: reserve?.value ?? maxCost?.value, attributes: attributes, periodLocation: period.keyLocation)
    }

    /// `usage:` tiers: strictly increasing `up_to`, exactly one open last tier.
    private func readTiers(_ section: MappingReader) -> Located<[PriceTier]>? {
        let diagnostics = section.diagnostics
        guard let list = section.sequence(Options.usage) else { return nil }
        guard !list.value.isEmpty else {
            diagnostics.error("tiers-open-last", at: list.valueLocation, "'usage' needs at least one tier, the last with no 'up_to'")
            return nil
        }
        guard list.value.count <= CatalogLimits.maximumTiers else {
            diagnostics.error("limit-exceeded", at: list.keyLocation, "at most \(CatalogLimits.maximumTiers) tiers")
            return nil
        }
        var tiers: [PriceTier] = []
        var valid = true
        var previous: Located<ComputeUnits>?
        for (position, entry) in list.value.enumerated() {
            guard let reader = MappingReader(entry, context: "a usage tier", diagnostics: diagnostics) else { valid = false; continue }
            let upTo = reader.read(Options.Tier.upTo)
            let price = reader.read(Options.Tier.price)
            reader.finish()
            let isLast = position == list.value.count - 1
            if let upTo {
                if isLast {
                    diagnostics.error("tiers-open-last", at: upTo.keyLocation, "the last tier must have no 'up_to': it prices everything beyond the tier before",
                                      fix: "remove 'up_to' from the last tier, or add an open tier after it")
                    valid = false
                }
                if let previous, upTo.value <= previous.value {
                    diagnostics.error("tiers-not-increasing", at: upTo.valueLocation,
                                      "tier bounds must increase: \(upTo.value) is not above the previous tier's \(previous.value)")
                    valid = false
                } else if previous == nil, upTo.value.millis <= 0 {
                    diagnostics.error("tiers-not-increasing", at: upTo.valueLocation, "the first tier's 'up_to' must be above 0")
                    valid = false
                }
                previous = upTo
            } else if !isLast {
                diagnostics.error("tiers-open-last", at: entry.location, "only the last tier may omit 'up_to'",
                                  fix: "give this tier an 'up_to', or move it to the end")
                valid = false
            }
            guard let price else { valid = false; continue }
            tiers.append(PriceTier(upTo: upTo?.value, price: price.value))
        }
        guard valid else { return nil }
        return Located(tiers, keyLocation: list.keyLocation, valueLocation: list.valueLocation)
    }

    private func readSLA(_ section: MappingReader) -> Located<(promised: Percent?, bands: [SLABand])>? {
        let diagnostics = section.diagnostics
        guard let pair = section.entry(Options.sla.name), let sla = MappingReader(pair, context: "'sla'", diagnostics: diagnostics) else { return nil }
        let promised = sla.read(Options.SLA.availability)
        var bands: [SLABand] = []
        if let credits = sla.sequence(Options.SLA.credits) {
            if credits.value.count > CatalogLimits.maximumSLABands {
                diagnostics.error("limit-exceeded", at: credits.keyLocation, "at most \(CatalogLimits.maximumSLABands) SLA credit bands")
            }
            for entry in credits.value.prefix(CatalogLimits.maximumSLABands) {
                guard let band = MappingReader(entry, context: "an SLA credit band", diagnostics: diagnostics) else { continue }
                let below = band.read(Options.Band.below)
                let credit = band.read(Options.Band.credit)
                band.finish()
                if let below, let credit {
                    if bands.contains(where: { $0.below == below.value }) {
                        diagnostics.error("duplicate-name", at: below.valueLocation, "two SLA bands are both below \(below.value)")
                    } else if below.value == .zero {
                        // Measured availability is succeeded / (succeeded + failed) >= 0%: never strictly under 0%.
                        diagnostics.warning("unreachable-band", at: below.valueLocation,
                                            "an SLA credit band below 0% can never apply: measured availability is never under 0%",
                                            fix: "give the band the availability it starts under (e.g. below: 95%), or remove it")
                    }
                    bands.append(SLABand(below: below.value, credit: credit.value))
                }
            }
        }
        sla.finish()
        return Located((promised?.value, bands), keyLocation: pair.keyLocation, valueLocation: pair.value.location)
    }
}
