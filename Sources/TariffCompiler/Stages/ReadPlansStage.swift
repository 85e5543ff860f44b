import TariffCore

/// Stage 3: each plan file's header, its model section (lowered by the model plugin), its
/// `rules:` (lowered by rule plugins) and its `tests:`.
struct ReadPlansStage: CompilerStage {
    let name = "read-plans"

    /// The engine inputs that only exist within a billing period.
    static let periodInputs: Set<GraphInput> = [.periodUsage, .periodSpend, .periodExecutions, .periodFees, .availability]

    func run(_ state: inout CompilationState) {
        for (source, root) in state.documents where source.kind == .plan {
            guard let root else { continue }
            if let plan = readPlan(root, file: source.path, state: state) { state.plans.append(plan) }
        }
    }

    private func readPlan(_ root: YAMLNode, file: String, state: CompilationState) -> ReadPlan? {
        let diagnostics = state.diagnostics
        if case .null = root.kind {
            diagnostics.error("missing-key", at: root.location, "the plan file is empty", fix: "start it with 'plan: <id>'")
            return nil
        }
        guard let reader = MappingReader(root, context: "the plan", diagnostics: diagnostics) else { return nil }
        let id = reader.required("plan", .id)
        let version = reader.optional("version", .integer(in: 1...CatalogLimits.maximumVersion))
        let effective = reader.optional("effective", .dateOrTimestamp)
        let agent = reader.required("agent", .id)
        let creator = reader.required("creator", .id)
        let currency = reader.required("currency", .currency)
        let meteringName = reader.optional("metering", .id)
        let defaultMark = reader.optional("default", .boolean)
        let modelNames = state.registry.models.map(\.name)
        // Every model's section name is a known key, so a section for another model is reported
        // as unused rather than unknown.
        for name in modelNames { reader.allow(name) }
        let model = reader.required("model", .id)
        let ruleEntries = reader.sequence("rules")
        let testEntries = reader.sequence("tests")

        let metering = resolveMetering(meteringName, reader: reader, state: state)
        let split = resolveSplit(reader, state: state)
        var context = PlanLoweringContext(planID: id?.value ?? "?", currency: currency?.value, meterNames: state.meterNames)
        context.meterNamesAreComplete = !state.rulesIncomplete

        var lowering: ModelLowering?
        var plugin: (any BillingModelPlugin)?
        if let model {
            if let found = state.registry.model(named: model.value) {
                plugin = found
                if let section = reader.mapping(model.value) {
                    let errorsBefore = diagnostics.errorCount
                    lowering = found.lower(section, context: context)
                    section.finish()
                    if lowering == nil && diagnostics.errorCount == errorsBefore {
                        Self.reportSilentRefusal(plugin: found.name, what: "model", at: model.keyLocation, diagnostics)
                    }
                } else if reader.entry(model.value) == nil {
                    reader.reportMissing(model.value, "a '\(model.value)' plan needs a '\(model.value):' section with its settings",
                                         at: model.keyLocation, fix: "add a '\(model.value):' mapping")
                }
            } else {
                // The section named after the unknown model (a model whose plugin is not registered)
                // is not a second mistake.
                reader.allow(model.value)
                var message = "unknown model '\(model.value)'"
                if let suggestion = Suggestion.closest(to: model.value, among: modelNames) { message += "; did you mean '\(suggestion)'?" }
                diagnostics.error("unknown-model", at: model.valueLocation, message,
                                  fix: "models: \(modelNames.joined(separator: ", ")); a plugin's model needs its plugin registered")
            }
        }
        // Only with a known model is another model's section surely unused: with a misspelt or missing
        // 'model:', the section written is the one meant, and that mistake is already reported.
        for other in modelNames where plugin != nil && other != model?.value {
            if let pair = reader.entry(other) {
                diagnostics.error("unused-section", at: pair.keyLocation,
                                  "the '\(other)' section is not used: this plan's model is '\(model?.value ?? "?")'", fix: "remove it or change 'model:'")
            }
        }

        // A per-call price is known before the run only while no rule reads what the run measures
        // (meters, compute units, when it ends): a surcharge per inference call makes a quote an estimate.
        var quoteIsExact = lowering?.quoteIsExact ?? false
        var ruleNodes: [RuleNode] = []
        if let ruleEntries {
            if ruleEntries.value.count > CatalogLimits.maximumRulesPerPlan {
                diagnostics.error("limit-exceeded", at: ruleEntries.keyLocation, "a plan has at most \(CatalogLimits.maximumRulesPerPlan) rules")
            }
            for entry in ruleEntries.value {
                let nodes = lowerRule(entry, context: context, state: state)
                // plans.md: a rule whose meaning needs a period on a model that has none (per_call)
                // is an error with a fix, never a silent "every call is free" (its period state
                // would stay empty for good).
                if let lowering, lowering.period == nil, let model,
                   let reading = nodes.first(where: { !Set($0.operation.inputs).isDisjoint(with: Self.periodInputs) }),
                   let kind = entry.pairs?.first(where: { $0.key == "kind" }) {
                    diagnostics.error("rule-needs-period", at: kind.keyLocation,
                                      "the rule '\(reading.plugin)' reads the period state (\(reading.operation.inputs.filter(Self.periodInputs.contains).map(\.rawValue).joined(separator: ", "))), but a '\(model.value)' plan has no billing period: it would apply to every execution as if each were the first of its period",
                                      fix: "remove the rule, or price this agent with a plan that has a period (subscription or enterprise), e.g. a subscription with an allowance for the free part")
                }
                ruleNodes += nodes
            }
            if ruleNodes.contains(where: { !Set($0.operation.inputs).isDisjoint(with: [.meters, .computeUnits, .endedAt]) }) { quoteIsExact = false }
        }
        // Explicit phases: the model's pricing, then the rules in order, then the guardrails (the
        // model's and a rule's caps per execution, then the spend cap), so "never charged more than
        // this" holds whatever the rules add (plans.md, "Rule plugins").
        let modelNodes = lowering?.executionNodes ?? []
        let guardrails = (modelNodes + ruleNodes).filter(\.operation.isGuardrail)
        let pricing = modelNodes.filter { !$0.operation.isGuardrail }
        let rules = ruleNodes.filter { !$0.operation.isGuardrail }
        let orderedGuardrails = guardrails.filter { if case .spendCap = $0.operation { false } else { true } }
            + guardrails.filter { if case .spendCap = $0.operation { true } else { false } }
        var executionNodes = pricing + rules + orderedGuardrails
        var phases = PipelinePhases(rulesStart: pricing.count, guardrailsStart: pricing.count + rules.count)
        // The engine keeps an execution's lines inline (no heap), one per node at most.
        if executionNodes.count > CatalogLimits.maximumExecutionNodes {
            diagnostics.error("limit-exceeded", at: model?.keyLocation ?? reader.location,
                              "the model and rules of this plan make \(executionNodes.count) pricing steps; at most \(CatalogLimits.maximumExecutionNodes)",
                              fix: "use fewer rules")
            executionNodes = []
            phases = PipelinePhases(rulesStart: 0, guardrailsStart: 0)
        }
        var tests: [PlanTestCase] = []
        if let testEntries, let metering {
            if testEntries.value.count > CatalogLimits.maximumTestsPerPlan {
                diagnostics.error("limit-exceeded", at: testEntries.keyLocation, "a plan has at most \(CatalogLimits.maximumTestsPerPlan) tests")
            }
            for entry in testEntries.value.prefix(CatalogLimits.maximumTestsPerPlan) {
                if let test = PlanTestReader.read(entry, metering: metering, context: context, diagnostics: diagnostics) { tests.append(test) }
            }
        }
        reader.finish()

        // A header field written with a wrong value (already reported) would otherwise be read as
        // its default (version 1, effective forever, not default), and the catalog checks would
        // report conflicts with other plans that the author never wrote.
        let unreadableHeader = [("version", version == nil), ("effective", effective == nil), ("default", defaultMark == nil)]
            .contains { key, unread in unread && reader.entry(key) != nil }
        guard !unreadableHeader, let id, let agent, let creator, let currency, let model, plugin != nil, let lowering, let metering, let split else { return nil }
        let definition = PlanDefinition(
            id: id.value, version: version?.value ?? 1, effective: effective?.value, agent: agent.value, creator: creator.value,
            currency: currency.value, metering: metering, split: split, isDefault: defaultMark?.value ?? false, model: model.value,
            period: lowering.period, billFailed: lowering.billFailed, executionNodes: executionNodes, periodNodes: lowering.periodNodes,
            reserve: lowering.reserve, quoteIsExact: quoteIsExact, attributes: lowering.attributes, tests: tests, file: file,
            location: id.keyLocation, modelLocation: model.keyLocation, phases: phases)
        return ReadPlan(definition: definition, versionLocation: version?.keyLocation ?? id.keyLocation, effectiveLocation: effective?.keyLocation,
                        defaultMark: defaultMark, agentLocation: agent.keyLocation, currencyLocation: currency.keyLocation,
                        periodLocation: lowering.periodLocation)
    }

    private func resolveMetering(_ written: Located<String>?, reader: MappingReader, state: CompilationState) -> MeteringProfile? {
        let name = written?.value ?? "standard"
        if let profile = state.meterings.first(where: { $0.name == name }) { return profile }
        // Defined with an error, or perhaps in a rules file that could not be read: already reported.
        if state.brokenMeterings.contains(name) || state.rulesIncomplete { return nil }
        var message = written == nil
            ? "the plan uses the default metering 'standard', but rules/ defines no metering named 'standard'"
            : "unknown metering '\(name)'"
        if written != nil, let suggestion = Suggestion.closest(to: name, among: state.meterings.map(\.name)) { message += "; did you mean '\(suggestion)'?" }
        state.diagnostics.error("unknown-metering", at: written?.valueLocation ?? reader.location, message,
                                fix: "define it under 'metering:' in a rules/ file")
        return nil
    }

    private func resolveSplit(_ reader: MappingReader, state: CompilationState) -> SplitDefinition? {
        guard let pair = reader.entry("split") else {
            if let standard = state.splits.first(where: { $0.name == "standard" }) { return standard }
            if state.brokenSplits.contains("standard") || state.rulesIncomplete { return nil }
            state.diagnostics.error("unknown-split", at: reader.location, "the plan uses the default split 'standard', but rules/ defines no split named 'standard'",
                                    fix: "define it under 'splits:' in a rules/ file, or write an inline split")
            return nil
        }
        if pair.value.pairs != nil {
            guard let rule = ReadRulesStage.readSplit(pair, context: "the inline split", diagnostics: state.diagnostics) else { return nil }
            return SplitDefinition(name: nil, rule: rule, location: pair.keyLocation)
        }
        guard let name = ValueType<String>.id.read(pair.value, state.diagnostics) else { return nil }
        if let split = state.splits.first(where: { $0.name == name }) { return split }
        if state.brokenSplits.contains(name) || state.rulesIncomplete { return nil }
        var message = "unknown split '\(name)'"
        if let suggestion = Suggestion.closest(to: name, among: state.splits.compactMap(\.name)) { message += "; did you mean '\(suggestion)'?" }
        state.diagnostics.error("unknown-split", at: pair.value.location, message, fix: "define it under 'splits:' in a rules/ file, or write an inline split")
        return nil
    }

    private func lowerRule(_ entry: YAMLNode, context: PlanLoweringContext, state: CompilationState) -> [RuleNode] {
        guard let options = MappingReader(entry, context: "a rule", diagnostics: state.diagnostics) else { return [] }
        guard let kind = options.required("kind", .id) else {
            // Without a kind its options cannot be checked; only a misspelt 'kind' is reported (as unknown-key).
            for key in options.writtenKeys where Suggestion.closest(to: key, among: ["kind"]) == nil { options.allow(key) }
            options.finish()
            return []
        }
        guard let plugin = state.registry.ruleKind(named: kind.value) else {
            if state.brokenRuleKinds.contains(kind.value) {
                // A plugin of rules/plugins.yaml that could not be loaded: reported at its declaration.
                for key in options.writtenKeys { options.allow(key) }
                options.finish()
                return []
            }
            let kinds = state.registry.ruleKinds.map(\.kind)
            var message = "unknown rule kind '\(kind.value)'"
            if let suggestion = Suggestion.closest(to: kind.value, among: kinds) { message += "; did you mean '\(suggestion)'?" }
            state.diagnostics.error("unknown-rule-kind", at: kind.valueLocation, message,
                                    fix: "rule kinds: \(kinds.joined(separator: ", ")); a plugin's rule kind needs its plugin registered")
            return []
        }
        let errorsBefore = state.diagnostics.errorCount
        let nodes = plugin.lower(options, context: context)
        options.finish()
        if (nodes ?? []).isEmpty && state.diagnostics.errorCount == errorsBefore {
            Self.reportSilentRefusal(plugin: plugin.kind, what: "rule kind", at: kind.valueLocation, state.diagnostics)
        }
        return nodes ?? []
    }

    /// A plugin that lowers to nothing must say why: otherwise the plan (or its rule) would vanish
    /// from the catalog without a word. Reported at the plan's `model:` or the rule's `kind:`.
    static func reportSilentRefusal(plugin: String, what: String, at location: SourceLocation, _ diagnostics: DiagnosticSink) {
        diagnostics.error("plugin-silent-refusal", at: location,
                          "the \(what) plugin '\(plugin)' lowered this to nothing and reported no diagnostic, so the compiler cannot say what is wrong",
                          fix: "this is a bug in the plugin '\(plugin)': a lowering that refuses must report an error at the value it refuses")
    }
}
