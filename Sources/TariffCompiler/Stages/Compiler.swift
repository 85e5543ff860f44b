import TariffCore

/// A catalog file handed to the compiler: from disk or from memory (a catalog kept in a database).
public struct CatalogSource: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A file of `plans/`: one plan version.
        case plan
        /// A file of `rules/`: metering, splits, payouts, reservation.
        case rules
    }
    /// The name used in diagnostics (`plans/pro.yaml`).
    public var path: String
    public var text: String
    public var kind: Kind

    public init(path: String, text: String, kind: Kind) {
        self.path = path
        self.text = text
        self.kind = kind
    }
}


/// The state the stages pass along.
public struct CompilationState {
    public var sources: [CatalogSource]
    public var registry: PluginRegistry
    public var diagnostics = DiagnosticSink()
    /// Stage 1 output: each source's YAML (nil when it could not be parsed).
    public var documents: [(source: CatalogSource, root: YAMLNode?)] = []
    /// Stage 2 output.
    public var meterNames: [String] = []
    public var meterings: [MeteringProfile] = []
    public var splits: [SplitDefinition] = []
    public var payouts = PayoutCalendar()
    public var defaultReservation = PlanMoney(picos: 1_000_000_000_000)
    /// `late_usage_grace:` of rules/, in nanoseconds.
    public var lateUsageGraceNanoseconds = CatalogDefinition.defaultLateUsageGraceNanoseconds
    /// `low_balance:` of rules/.
    public var lowBalance = CatalogDefinition.defaultLowBalance
    /// Names of rules/ definitions written with an error (reported there): a plan naming one
    /// reports nothing more, so one mistake makes one diagnostic.
    public var brokenMeterings: Set<String> = []
    public var brokenSplits: Set<String> = []
    /// Rule kinds declared in rules/plugins.yaml whose module could not be used (reported there).
    public var brokenRuleKinds: Set<String> = []
    /// True when part of rules/ could not be read (a YAML error, an unknown top-level key, a section
    /// that is not a mapping): any metering, split or meter may be defined in what was lost.
    public var rulesIncomplete = false
    /// Stage 3 output: plans read, with the positions the later checks point at.
    public var plans: [ReadPlan] = []

    public init(sources: [CatalogSource], registry: PluginRegistry) {
        self.sources = sources
        self.registry = registry
    }
}

/// A plan after reading, before the catalog-wide checks settle its default mark.
public struct ReadPlan {
    public var definition: PlanDefinition
    public var versionLocation: SourceLocation
    public var effectiveLocation: SourceLocation?
    /// `default:` as written (nil when absent), and where.
    public var defaultMark: Located<Bool>?
    public var agentLocation: SourceLocation
    public var currencyLocation: SourceLocation
    public var periodLocation: SourceLocation?
}

/// One named step of the compiler. The stages run in order over one `CompilationState`.
public protocol CompilerStage {
    var name: String { get }
    func run(_ state: inout CompilationState)
}

/// Compiles catalogs: YAML -> syntax -> checks -> rule graph, as an ordered list of named stages.
public struct Compiler: Sendable {
    public var registry: PluginRegistry

    public init(registry: PluginRegistry) { self.registry = registry }

    /// The stages, in order. Each reads what the earlier ones produced and reports into one sink,
    /// so every mistake of a catalog is reported at once.
    public static let stageNames = ["parse-yaml", "read-rules", "read-plans", "check-versions", "resolve-defaults", "lint", "verify-graph"]

    static func stages() -> [any CompilerStage] {
        [ParseYAMLStage(), ReadRulesStage(), ReadPlansStage(), CheckVersionsStage(), ResolveDefaultsStage(), LintStage()]
    }

    /// Compiles the sources. Returns the catalog when there is no error, and every diagnostic
    /// (warnings too), sorted by position.
    public func compile(_ sources: [CatalogSource]) -> (catalog: CatalogDefinition?, diagnostics: [Diagnostic]) {
        var state = CompilationState(sources: sources, registry: registry)
        for stage in Self.stages() { stage.run(&state) }
        let diagnostics = Diagnostic.sorted(state.diagnostics.diagnostics)
        guard !state.diagnostics.hasErrors else { return (nil, diagnostics) }
        let plans = state.plans.map(\.definition).sorted { ($0.id, $0.version) < ($1.id, $1.version) }
        var catalog = CatalogDefinition(plans: plans, meterNames: state.meterNames, meterings: state.meterings,
                                        splits: state.splits, payouts: state.payouts, defaultReservation: state.defaultReservation)
        catalog.lateUsageGraceNanoseconds = state.lateUsageGraceNanoseconds
        catalog.lowBalance = state.lowBalance
        // The last stage, verify-graph: what the plugins produced, checked against every invariant
        // the engine relies on (GraphVerifier). It runs on a catalog without errors only, so a
        // mistake the readers reported is not reported again as a graph violation.
        let violations = GraphVerifier.verify(catalog)
        guard violations.isEmpty else { return (nil, Diagnostic.sorted(diagnostics + violations)) }
        return (catalog, diagnostics)
    }
}

struct ParseYAMLStage: CompilerStage {
    let name = "parse-yaml"
    func run(_ state: inout CompilationState) {
        if state.sources.filter({ $0.kind == .plan }).count > CatalogLimits.maximumPlans,
           let first = state.sources.first {
            state.diagnostics.error("limit-exceeded", at: SourceLocation(file: first.path, line: 1, column: 1),
                                    "the catalog has more than \(CatalogLimits.maximumPlans) plan files")
        }
        for source in state.sources.sorted(by: { $0.path < $1.path }) {
            state.documents.append((source, YAMLLoader.load(source.text, file: source.path, diagnostics: state.diagnostics)))
        }
    }
}
