import TariffCore

/// Stage 4: versions of one plan id: unique versions, distinct `effective` dates, and the same
/// model, period, agent, currency and default mark across them.
struct CheckVersionsStage: CompilerStage {
    let name = "check-versions"

    func run(_ state: inout CompilationState) {
        let diagnostics = state.diagnostics
        let groups = Dictionary(grouping: state.plans.indices, by: { state.plans[$0].definition.id })
        for id in groups.keys.sorted() {
            // Compare each version with the lowest (ties: by file), reporting at the later one, so the
            // version that changed something is the one named.
            let members = (groups[id] ?? []).sorted {
                let (a, b) = (state.plans[$0].definition, state.plans[$1].definition)
                return (a.version, a.file) < (b.version, b.file)
            }
            guard let firstIndex = members.first else { continue }
            let first = state.plans[firstIndex]
            for (position, index) in members.enumerated() {
                let plan = state.plans[index]
                let earlier = members[..<position].map { state.plans[$0] }
                if let clash = earlier.first(where: { $0.definition.version == plan.definition.version }) {
                    diagnostics.error("duplicate-plan", at: plan.versionLocation,
                                      "plan '\(id)' version \(plan.definition.version) is already defined in \(clash.definition.file)",
                                      fix: "give this file another 'version:'")
                    continue
                }
                if let clash = earlier.first(where: { $0.definition.effective == plan.definition.effective }) {
                    let when = plan.definition.effective?.description ?? "the beginning of time"
                    diagnostics.error("duplicate-effective", at: plan.effectiveLocation ?? plan.versionLocation,
                                      "versions \(clash.definition.version) and \(plan.definition.version) of plan '\(id)' are both effective from \(when)",
                                      fix: "give each version its own 'effective:' date")
                }
                guard position > 0 else { continue }
                // Another model brings its own period (per_call has none): that is the model's change alone.
                let sameModel = plan.definition.model == first.definition.model
                let differences: [(String, Bool, SourceLocation)] = [
                    ("model", !sameModel, plan.definition.modelLocation),
                    ("period", sameModel && plan.definition.period != first.definition.period, plan.periodLocation ?? plan.definition.modelLocation),
                    ("agent", plan.definition.agent != first.definition.agent, plan.agentLocation),
                    ("currency", plan.definition.currency != first.definition.currency, plan.currencyLocation),
                ]
                for (what, differs, location) in differences where differs {
                    diagnostics.error("version-mismatch", at: location,
                                      "version \(plan.definition.version) of plan '\(id)' changes its \(what) (version \(first.definition.version) in \(first.definition.file) differs)",
                                      fix: "versions may change prices and options, not the \(what): create a new plan id instead")
                }
                if (plan.defaultMark?.value ?? false) != (first.defaultMark?.value ?? false) {
                    diagnostics.error("default-mismatch", at: plan.defaultMark?.keyLocation ?? plan.definition.location,
                                      "versions of plan '\(id)' disagree on 'default' (the mark belongs to the plan id, all its versions)",
                                      fix: "write the same 'default:' in every version")
                }
            }
        }
    }
}

/// Stage 5: the default-plan rule (plans.md, "Which plan prices an execution").
struct ResolveDefaultsStage: CompilerStage {
    let name = "resolve-defaults"

    func run(_ state: inout CompilationState) {
        let diagnostics = state.diagnostics
        for index in state.plans.indices {
            let plan = state.plans[index]
            if plan.defaultMark?.value == true, plan.definition.period != nil {
                diagnostics.error("default-not-per-call", at: plan.defaultMark?.keyLocation ?? plan.definition.location,
                                  "only a per_call plan can be an agent's default plan; '\(plan.definition.id)' is '\(plan.definition.model)'",
                                  fix: "remove 'default: true': consumers subscribe to this plan")
            }
        }
        let byAgent = Dictionary(grouping: state.plans.indices.filter { state.plans[$0].definition.period == nil },
                                 by: { state.plans[$0].definition.agent })
        for agent in byAgent.keys.sorted() {
            let indices = byAgent[agent] ?? []
            let ids = Set(indices.map { state.plans[$0].definition.id }).sorted()
            let marked = ids.filter { id in indices.contains { state.plans[$0].definition.id == id && state.plans[$0].defaultMark?.value == true } }
            var chosen: String?
            if marked.count > 1 {
                for id in marked.dropFirst() {
                    let location = indices.map { state.plans[$0] }.first { $0.definition.id == id }.map { $0.defaultMark?.keyLocation ?? $0.definition.location }
                    diagnostics.error("duplicate-default", at: location ?? SourceLocation(file: "?", line: 1, column: 1),
                                      "agent '\(agent)' has two default plans: '\(marked[0])' and '\(id)'", fix: "mark only one plan 'default: true'")
                }
            }
            if let first = marked.first { chosen = first } else if ids.count == 1 { chosen = ids[0] }
            for index in indices {
                let id = state.plans[index].definition.id
                state.plans[index].definition.isDefault = id == chosen
                // A second plan marked default already has its duplicate-default error.
                if id != chosen && !marked.contains(id) {
                    diagnostics.warning("unreachable-plan", at: state.plans[index].definition.location,
                                        "per_call plan '\(id)' is not the default plan of agent '\(agent)', so it can never price an execution",
                                        fix: "mark one per_call plan of the agent 'default: true', or remove this one")
                }
            }
        }
    }
}
