import TariffCore

/// Checks every invariant the evaluator relies on, whoever produced the graph: a shipped plugin, a
/// third party's, a program building a `CatalogDefinition` by hand, or a fuzzer.
///
/// The compiler runs it as its last stage and `CompiledCatalog` runs it again before it flattens a
/// plan, so the engine never sees a graph that could trap it (a meter index past the readings, a
/// scale past the powers-of-ten table, a zero metering precision), silently misprice (tiers out of
/// order, a percent above 100%, a split that does not add up, a period rule on a plan that keeps no
/// period state) or break a promise of plans.md (a rule after the caps). A violation is an error
/// diagnostic at the node's position that names the plugin that produced it; never a trap.
///
/// Codes (docs/diagnostics.md): `invalid-graph` (a structural violation: a plugin bug),
/// `graph-needs-period` (a period-scoped operation on a plan without a period) and
/// `unweighed-meter` (an operation reads a meter the plan's metering does not weigh, so a reading
/// that "adds nothing" would add something).
public enum GraphVerifier {
    /// The deepest scale (decimal places) an exact charge may reach: rounding divides by
    /// `10^(scale - 6)` from a table of `10^0 ... 10^38`.
    public static let maximumScale = 44

    /// The codes (docs/diagnostics.md, "The rule graph").
    public static let invalidGraph: DiagnosticCode = "invalid-graph"
    public static let needsPeriod: DiagnosticCode = "graph-needs-period"
    public static let unweighedMeter: DiagnosticCode = "unweighed-meter"

    /// Every violation in the catalog (empty: the engine may evaluate it).
    public static func verify(_ catalog: CatalogDefinition) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        let catalogLocation = catalog.plans.first.map { SourceLocation(file: $0.file, line: 1, column: 1) }
            ?? SourceLocation(file: "<catalog>", line: 1, column: 1)
        if catalog.meterNames.count > CatalogLimits.maximumMeters {
            diagnostics.append(Diagnostic(.error, invalidGraph, at: catalogLocation,
                                          "the catalog has \(catalog.meterNames.count) meters; the engine reads at most \(CatalogLimits.maximumMeters)"))
        }
        if catalog.plans.count > CatalogLimits.maximumPlans {
            diagnostics.append(Diagnostic(.error, invalidGraph, at: catalogLocation, "the catalog has more than \(CatalogLimits.maximumPlans) plans"))
        }
        if catalog.defaultReservation.picos < 0 || catalog.defaultReservation.picos > maximumPicos {
            diagnostics.append(Diagnostic(.error, invalidGraph, at: catalogLocation, "the default reservation is outside 0 to 10^12"))
        }
        for plan in catalog.plans { verify(plan, meterCount: min(catalog.meterNames.count, CatalogLimits.maximumMeters), into: &diagnostics) }
        return Diagnostic.sorted(diagnostics)
    }

    /// Plan amounts are bounded so every product the engine forms fits `Int128` (ExactAmount.swift).
    static let maximumPicos = PlanMoney.maximumWholeUnits * 1_000_000_000_000

    /// The violations of one plan. `meterCount`: how many meters the catalog's readings carry.
    public static func verify(_ plan: PlanDefinition, meterCount: Int, into diagnostics: inout [Diagnostic]) {
        var check = PlanCheck(plan: plan, meterCount: meterCount)
        check.run()
        diagnostics += check.diagnostics
    }
}

/// The checks of one plan, collecting diagnostics.
private struct PlanCheck {
    let plan: PlanDefinition
    let meterCount: Int
    var diagnostics: [Diagnostic] = []

    init(plan: PlanDefinition, meterCount: Int) {
        self.plan = plan
        self.meterCount = meterCount
    }

    /// Reports at `location`, naming the plugin (the reader of the message is the plugin's author).
    mutating func fail(_ plugin: String, at location: SourceLocation, _ message: String, code: DiagnosticCode = GraphVerifier.invalidGraph, fix: String? = nil) {
        diagnostics.append(Diagnostic(.error, code, at: location, "plugin '\(plugin)' (plan '\(plan.id)' version \(plan.version)): \(message)",
                                      fix: fix ?? (code == GraphVerifier.invalidGraph ? "this is a bug in the plugin '\(plugin)': its lowering must produce a valid graph" : nil)))
    }

    func money(_ amount: PlanMoney) -> Bool { amount.picos >= 0 && amount.picos <= GraphVerifier.maximumPicos }
    func percent(_ value: Percent) -> Bool { value.partsPerMillion >= 0 && value.partsPerMillion <= Percent.partsPerWhole }
    func meter(_ index: MeterIndex) -> Bool { index.rawValue >= 0 && index.rawValue < meterCount }

    mutating func run() {
        verifyMetering()
        verifySplit()
        if let reserve = plan.reserve, !money(reserve) {
            fail(plan.model, at: plan.modelLocation, "the reservation \(reserve) is outside 0 to 10^12")
        }
        if plan.isDefault && plan.period != nil {
            fail(plan.model, at: plan.modelLocation, "a plan with a period cannot be an agent's default plan")
        }
        if plan.version < 1 || plan.version > CatalogLimits.maximumVersion {
            fail(plan.model, at: plan.location, "version \(plan.version) is outside 1 to \(CatalogLimits.maximumVersion)")
        }
        verifyPipeline()
        verifyPeriodNodes()
    }

    mutating func verifyMetering() {
        let metering = plan.metering
        if metering.precision.millis <= 0 || metering.precision.millis > ComputeUnits.maximum.millis {
            fail(plan.model, at: metering.location, "metering '\(metering.name)' has precision \(metering.precision); it must be a positive multiple of 0.001")
        }
        var seen = Set<Int>()
        for weighting in metering.weights {
            if !meter(weighting.meter) {
                fail(plan.model, at: weighting.location, "metering '\(metering.name)' weighs meter #\(weighting.meter.rawValue), outside the catalog's \(meterCount) meters")
            } else if !seen.insert(weighting.meter.rawValue).inserted {
                fail(plan.model, at: weighting.location, "metering '\(metering.name)' weighs meter #\(weighting.meter.rawValue) twice")
            }
            if weighting.weight.nanos < 0 || weighting.weight.nanos > 1_000_000 * 1_000_000_000 {
                fail(plan.model, at: weighting.location, "metering '\(metering.name)' has weight \(weighting.weight); weights are 0 to 1,000,000")
            }
        }
    }

    mutating func verifySplit() {
        let rule = plan.split.rule
        let shares = [rule.creator, rule.platform, rule.processing]
        if !shares.allSatisfy(percent) || shares.reduce(Int64(0), { $0 &+ $1.partsPerMillion }) != Percent.partsPerWhole {
            fail(plan.model, at: plan.split.location, "the split's shares (\(rule.creator), \(rule.platform), \(rule.processing)) must each be 0% to 100% and add up to 100%")
        }
    }

    /// The execution pipeline: operations, phases, scales, inputs.
    mutating func verifyPipeline() {
        let nodes = plan.executionNodes
        if nodes.isEmpty {
            fail(plan.model, at: plan.modelLocation, "the model produced no pricing step: every execution would cost 0 by accident",
                 fix: "lower a free model to perExecutionFee(0) so that free is written down")
        }
        if nodes.count > CatalogLimits.maximumExecutionNodes {
            fail(plan.model, at: plan.modelLocation, "\(nodes.count) pricing steps; the engine keeps at most \(CatalogLimits.maximumExecutionNodes) lines")
        }
        let phases = plan.phases
        if phases.rulesStart < 0 || phases.rulesStart > phases.guardrailsStart || phases.guardrailsStart > nodes.count {
            fail(plan.model, at: plan.modelLocation, "the phase boundaries (rules at \(phases.rulesStart), guardrails at \(phases.guardrailsStart)) do not fit \(nodes.count) steps")
        }
        let weighed = Set(plan.metering.weights.map(\.meter.rawValue))
        // The largest scale the running charge can have after each node (a conditional node keeps
        // the larger of its two outcomes), as the evaluator computes it.
        var scale = 0
        var seenSpendCap = false
        for (index, node) in nodes.enumerated() {
            let operation = node.operation
            if operation.isPeriodOperation {
                fail(node.plugin, at: node.location, "the period operation \(operation.kindName) is in the execution pipeline")
                continue
            }
            // Phases: pricing -> rules -> guardrails, the caps last (plans.md, "Rule plugins").
            if operation.isGuardrail != (index >= phases.guardrailsStart) {
                fail(node.plugin, at: node.location, operation.isGuardrail
                     ? "the guardrail \(operation.kindName) is step \(index + 1), before the guardrails phase: a later step could charge more than it allows"
                     : "\(operation.kindName) is step \(index + 1), after the guardrails: it could charge more than a cap allows")
            }
            if case .spendCap = operation { seenSpendCap = true } else if seenSpendCap {
                fail(node.plugin, at: node.location, "\(operation.kindName) comes after the spend cap, which must be the last step")
            }
            if !operation.periodInputs.isEmpty && plan.period == nil {
                fail(node.plugin, at: node.location,
                     "'\(node.rule)' (\(operation.kindName)) reads the period state (\(operation.periodInputs.map(\.rawValue).joined(separator: ", "))), but a '\(plan.model)' plan has no period: it keeps no period state, so it would apply to every execution",
                     code: GraphVerifier.needsPeriod, fix: "use it on a plan with a period (subscription, enterprise), or remove it")
            }
            for meterIndex in operation.meters {
                if !meter(meterIndex) {
                    fail(node.plugin, at: node.location, "\(operation.kindName) reads meter #\(meterIndex.rawValue), outside the catalog's \(meterCount) meters")
                } else if !weighed.contains(meterIndex.rawValue) {
                    fail(node.plugin, at: node.location,
                         "'\(node.rule)' reads a meter that metering '\(plan.metering.name)' does not weigh; such a reading adds nothing anywhere (quote, test, simulate, ledger), so this rule could never see it",
                         code: GraphVerifier.unweighedMeter, fix: "add the meter to metering '\(plan.metering.name)' (a weight of 0 is allowed), or use another meter")
                }
            }
            verifyValues(node)
            scale = nextScale(operation, after: scale)
            if scale > GraphVerifier.maximumScale {
                fail(node.plugin, at: node.location,
                     "after \(operation.kindName) the exact charge may have \(scale) decimal places; the engine rounds from at most \(GraphVerifier.maximumScale) (round half-even between chained percentages)")
                scale = 6
            }
        }
        if plan.quoteIsExact, let reader = nodes.first(where: { !Set($0.operation.inputs).isDisjoint(with: [.meters, .computeUnits, .endedAt]) }) {
            fail(reader.plugin, at: reader.location, "the plan says its quote is exact, but \(reader.operation.kindName) reads what the run measures")
        }
    }

    /// The scale after `operation` (Evaluator.swift), at most.
    func nextScale(_ operation: RuleOperation, after scale: Int) -> Int {
        switch operation {
        case .perExecutionFee: 12
        case .allowanceOverage, .graduatedTiers: 15
        case .percentOff: scale + 6
        case .roundHalfEven: 6
        case .capPerExecution, .spendCap, .conditionalPercentOff, .minimumCharge: max(scale, 12)
        case .meterSurcharge: 18
        case .freeExecutions: max(scale, 6)
        case .external: max(scale, 6)
        case .periodFee, .commitmentShortfall, .slaCredit: scale
        }
    }

    mutating func verifyValues(_ node: RuleNode) {
        func bad(_ what: String) { fail(node.plugin, at: node.location, "\(node.operation.kindName): \(what)") }
        switch node.operation {
        case .perExecutionFee(let fee): if !money(fee) { bad("the fee \(fee) is outside 0 to 10^12") }
        case .allowanceOverage(let allowance, let price):
            if allowance.millis < 0 || allowance.millis > ComputeUnits.maximum.millis { bad("the allowance \(allowance) is outside 0 to 10^12 CU") }
            if !money(price) { bad("the price \(price) is outside 0 to 10^12") }
        case .graduatedTiers(let tiers):
            if tiers.isEmpty || tiers.count > CatalogLimits.maximumTiers { bad("\(tiers.count) tiers; 1 to \(CatalogLimits.maximumTiers)") }
            var previous: Int64 = 0
            for (index, tier) in tiers.enumerated() {
                if !money(tier.price) { bad("tier \(index + 1)'s price \(tier.price) is outside 0 to 10^12") }
                if let upTo = tier.upTo {
                    if index == tiers.count - 1 { bad("the last tier has an upper bound; it must be open") }
                    if upTo.millis <= previous || upTo.millis > ComputeUnits.maximum.millis {
                        bad("tier \(index + 1) ends at \(upTo), not after the tier before it (tiers must strictly increase)")
                    }
                    previous = upTo.millis
                } else if index != tiers.count - 1 {
                    bad("tier \(index + 1) is open but not the last")
                }
            }
        case .percentOff(let value): if !percent(value) { bad("\(value) is outside 0% to 100%") }
        case .roundHalfEven: break
        case .capPerExecution(let cap): if !money(cap) { bad("the cap \(cap) is outside 0 to 10^12") }
        case .spendCap(let cap): if !money(cap) { bad("the cap \(cap) is outside 0 to 10^12") }
        case .conditionalPercentOff(let value, let condition):
            if !percent(value) { bad("\(value) is outside 0% to 100%") }
            verify(condition, node)
        case .minimumCharge(let amount): if !money(amount) { bad("the amount \(amount) is outside 0 to 10^12") }
        case .meterSurcharge(_, let price): if !money(price) { bad("the price \(price) is outside 0 to 10^12") }
        case .freeExecutions(let count): if count < 0 { bad("a negative count \(count)") }
        case .external(let rule):
            if rule.options.count > ExternalRule.maximumOptions { bad("\(rule.options.count) options; at most \(ExternalRule.maximumOptions)") }
            if rule.meters.count > CatalogLimits.maximumMeters { bad("\(rule.meters.count) meters; at most \(CatalogLimits.maximumMeters)") }
        case .periodFee, .commitmentShortfall, .slaCredit: break
        }
    }

    mutating func verify(_ condition: ExecutionCondition, _ node: RuleNode) {
        func bad(_ what: String) { fail(node.plugin, at: node.conditionLocation ?? node.location, "condition: \(what)") }
        func clock(_ clock: LocalClock) {
            if case .utcOffset(let seconds) = clock, seconds.magnitude > 26 * 3_600 { bad("the UTC offset \(seconds) s is beyond a day") }
        }
        switch condition {
        case .weekdays(_, let localClock):
            // Any mask is harmless (bits 1...7 are the days; a mask of none never holds: lint's business).
            clock(localClock)
        case .hours(let from, let to, let localClock):
            if !(0...23).contains(from) || !(0...24).contains(to) || from == to { bad("the hours [\(from), \(to)) are not a range of the day") }
            clock(localClock)
        case .dateRange(let from, let to):
            if let from, let to, to <= from { bad("the date range ends before it starts") }
        case .meterAtLeast(let index, let threshold):
            if threshold.micros < 0 { bad("a negative meter threshold") }
            if !meter(index) { bad("meter #\(index.rawValue) is outside the catalog's \(meterCount) meters") }
        case .all(let parts):
            if parts.count > 64 { bad("more than 64 parts") }
            for part in parts { verify(part, node) }
        }
    }

    mutating func verifyPeriodNodes() {
        for node in plan.periodNodes {
            guard node.operation.isPeriodOperation else {
                fail(node.plugin, at: node.location, "the execution operation \(node.operation.kindName) is among the period lines")
                continue
            }
            if plan.period == nil {
                fail(node.plugin, at: node.location, "the period line \(node.operation.kindName) is on a '\(plan.model)' plan, which has no period",
                     code: GraphVerifier.needsPeriod, fix: "give the model a period, or drop the period line")
            }
            switch node.operation {
            case .periodFee(let fee): if !money(fee) { fail(node.plugin, at: node.location, "the period fee \(fee) is outside 0 to 10^12") }
            case .commitmentShortfall(let commitment):
                if !money(commitment) { fail(node.plugin, at: node.location, "the commitment \(commitment) is outside 0 to 10^12") }
            case .slaCredit(let promised, let bands):
                if let promised, !percent(promised) { fail(node.plugin, at: node.location, "the promised availability \(promised) is outside 0% to 100%") }
                if bands.count > CatalogLimits.maximumSLABands { fail(node.plugin, at: node.location, "more than \(CatalogLimits.maximumSLABands) SLA bands") }
                for band in bands where !percent(band.below) || !percent(band.credit) {
                    fail(node.plugin, at: node.location, "an SLA band (below \(band.below), credit \(band.credit)) is outside 0% to 100%")
                }
            default: break
            }
        }
    }
}
