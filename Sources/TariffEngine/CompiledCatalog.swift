import Synchronization
import TariffGraph
import TariffCore

/// A catalog definition the engine refused: the graph breaks an invariant the evaluator relies on
/// (GraphVerifier). The diagnostics name the plugin that produced each violation.
public struct InvalidCatalogGraph: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Each compiled catalog's identity, carried by its handles so a handle of another catalog (kept
/// across a hot reload) is refused rather than pricing whatever plan has the same index here.
private let catalogIdentities = Atomic<UInt32>(0)

/// A compiled catalog: immutable, `Sendable`, shared by every thread that prices.
///
/// Built once from the compiler's `CatalogDefinition`; plan selection (by id and time, by agent's
/// default) resolves to a `PlanHandle`, and pricing a handle is a flat, allocation-free evaluation.
public final class CompiledCatalog: Sendable {
    public let definition: CatalogDefinition
    @usableFromInline let plans: [CompiledPlan]
    /// Plan id -> handles of its versions, sorted by `effective` (nil first).
    private let versionsByID: [String: [PlanHandle]]
    /// Agent -> its default plan id.
    private let defaultPlanByAgent: [String: String]

    /// This catalog's identity (its handles carry it).
    @usableFromInline let identity: UInt32

    /// Verifies the graph (GraphVerifier: whoever produced it, the engine evaluates only a graph
    /// that cannot trap it) and flattens every plan for evaluation.
    /// - throws: `InvalidCatalogGraph` with a diagnostic for each violation.
    public init(_ definition: CatalogDefinition) throws(InvalidCatalogGraph) {
        let violations = GraphVerifier.verify(definition)
        guard violations.isEmpty else { throw InvalidCatalogGraph(diagnostics: violations) }
        let identity = catalogIdentities.wrappingAdd(1, ordering: .relaxed).newValue
        self.identity = identity
        self.definition = definition
        plans = definition.plans.map(CompiledPlan.init)
        var versions: [String: [PlanHandle]] = [:]
        var defaults: [String: String] = [:]
        for (index, plan) in definition.plans.enumerated() {
            versions[plan.id, default: []].append(PlanHandle(index: Int32(index), catalog: identity))
            if plan.isDefault { defaults[plan.agent] = plan.id }
        }
        for (id, handles) in versions {
            versions[id] = handles.sorted {
                let a = definition.plans[Int($0.index)].effective?.nanosecondsSinceEpoch ?? .min
                let b = definition.plans[Int($1.index)].effective?.nanosecondsSinceEpoch ?? .min
                return a < b
            }
        }
        versionsByID = versions
        defaultPlanByAgent = defaults
    }

    /// The plan definition behind a handle (its id, version, nodes and their source positions).
    /// The handle must come from this catalog (`contains`): pricing refuses a foreign handle, but
    /// this look-up has nothing else to return, and reading another catalog's plan would lie.
    public func plan(_ handle: PlanHandle) -> PlanDefinition {
        precondition(contains(handle), "a PlanHandle of another catalog")
        return plans[Int(handle.index)].definition
    }

    /// The loaded (WebAssembly) rule functions the catalog's plans call, one per module.
    public var externalRuleFunctions: [any ExternalRuleFunction] {
        var seen: [any ExternalRuleFunction] = []
        for plan in plans {
            for rule in plan.externals where !seen.contains(where: { $0 === rule.function }) { seen.append(rule.function) }
        }
        return seen
    }

    /// Per loaded rule kind, how many calls failed so far and the last reason (each failure kept
    /// the charge before the rule). Compare two readings to report a run's failures.
    public func externalRuleFailures() -> [(kind: String, count: Int, lastReason: String?)] {
        externalRuleFunctions.map { function in
            let failures = function.failures
            return (function.kind, failures.count, failures.lastReason)
        }
    }

    /// One warning per loaded rule that failed since `before` (an earlier `externalRuleFailures()`).
    public func externalRuleWarnings(since before: [(kind: String, count: Int, lastReason: String?)]) -> [String] {
        externalRuleFailures().compactMap { now in
            let earlier = before.first { $0.kind == now.kind }?.count ?? 0
            guard now.count > earlier else { return nil }
            return "plugin '\(now.kind)' failed \(now.count - earlier) time(s) and was skipped for those executions (their charge is the one before it); last: \(now.lastReason ?? "?")"
        }
    }

    /// Whether `handle` was resolved by this catalog (a handle kept across a hot reload was not).
    @inlinable
    public func contains(_ handle: PlanHandle) -> Bool {
        handle.catalog == identity && handle.index >= 0 && Int(handle.index) < plans.count
    }

    public var meterNames: [String] { definition.meterNames }

    public func meter(named name: String) -> MeterIndex? {
        definition.meterNames.firstIndex(of: name).map { MeterIndex(rawValue: $0) }
    }

    /// Every plan version's handle, in the order of `definition.plans` (handle `i` is plan `i`),
    /// so callers can keep per-plan facts in arrays rather than look plans up by id.
    public var allPlans: [PlanHandle] { (0..<plans.count).map { PlanHandle(index: Int32($0), catalog: identity) } }

    /// Every plan id, sorted.
    public var planIDs: [String] { versionsByID.keys.sorted() }

    /// A plan version by id and version number.
    public func plan(id: String, version: Int) -> PlanHandle? {
        versionsByID[id]?.first { plans[Int($0.index)].definition.version == version }
    }

    /// The version of plan `id` in effect at `instant`: the latest `effective` at or before it.
    public func plan(id: String, at instant: Timestamp) -> PlanHandle? {
        versionsByID[id]?.last { handle in
            guard let effective = plans[Int(handle.index)].definition.effective else { return true }
            return effective <= instant
        }
    }

    /// All versions of a plan id, oldest `effective` first.
    public func versions(of id: String) -> [PlanHandle] { versionsByID[id] ?? [] }

    /// The agent's default plan (its only per-call plan, or the one marked `default: true`) in effect at `instant`.
    public func defaultPlan(agent: String, at instant: Timestamp) -> PlanHandle? {
        guard let id = defaultPlanByAgent[agent] else { return nil }
        return plan(id: id, at: instant)
    }

    /// Whether any plan names this agent.
    public func hasPlans(forAgent agent: String) -> Bool { definition.plans.contains { $0.agent == agent } }

    // MARK: Pricing

    /// Prices one execution with `plan` in period `state`. Pure and allocation-free.
    @inlinable
    public func price(_ plan: PlanHandle, _ execution: ExecutionInput, state: PeriodState) -> PricingResult {
        // A handle of another catalog (kept across a hot reload) is refused: not a trap, and not
        // the plan that happens to have the same index here.
        guard contains(plan) else {
            return PricingResult(computeUnits: .zero, charge: .zero, split: .zero, refusal: .noPlan, state: state, lines: .empty)
        }
        var collector = LineCollector()
        var result = plans[Int(plan.index)].evaluate(execution, state: state, tracer: &collector)
        // A refused execution has no lines, whatever the nodes before the refusal produced.
        result.lines = result.refusal == nil ? collector.lines : .empty
        return result
    }

    /// Prices with a tracer that sees every node's input and output (explain).
    @inlinable
    /// The result's `lines` are left empty: the tracer receives them.
    public func price<Tracer: PricingTracer>(_ plan: PlanHandle, _ execution: ExecutionInput, state: PeriodState, tracer: inout Tracer) -> PricingResult {
        guard contains(plan) else {
            return PricingResult(computeUnits: .zero, charge: .zero, split: .zero, refusal: .noPlan, state: state, lines: .empty)
        }
        return plans[Int(plan.index)].evaluate(execution, state: state, tracer: &tracer)
    }

    /// The compute units of a reading set under a plan's metering (nil beyond the documented limit).
    public func computeUnits(_ plan: PlanHandle, _ meters: MeterReadings) -> ComputeUnits? {
        guard contains(plan) else { return nil }
        return plans[Int(plan.index)].computeUnits(meters).map { ComputeUnits(millis: $0.millis) }
    }
}

/// One execution of a batch: the plan, the execution, and the period state it is priced in.
public struct BatchItem: Sendable {
    public var plan: PlanHandle
    public var execution: ExecutionInput
    public var state: PeriodState
    @inlinable public init(plan: PlanHandle, execution: ExecutionInput, state: PeriodState) {
        self.plan = plan
        self.execution = execution
        self.state = state
    }
}

/// The compact result of a batch entry (lines are left out: `price` returns them one at a time).
public struct BatchResult: Sendable {
    public var computeUnits: ComputeUnits
    public var charge: Money
    public var split: SplitShares
    public var refusal: Refusal?
    public var state: PeriodState
    @inlinable public init(computeUnits: ComputeUnits = .zero, charge: Money = .zero, split: SplitShares = .zero, refusal: Refusal? = nil, state: PeriodState = .empty) {
        self.computeUnits = computeUnits
        self.charge = charge
        self.split = split
        self.refusal = refusal
        self.state = state
    }
}

extension CompiledCatalog {
    /// Prices a batch into a caller-owned buffer: no allocation per execution, results in order.
    /// `results` must have at least `items.count` elements; extra items are ignored.
    @inlinable
    public func price(batch items: UnsafeBufferPointer<BatchItem>, into results: UnsafeMutableBufferPointer<BatchResult>) {
        let count = min(items.count, results.count)
        plans.withUnsafeBufferPointer { plans in
            for index in 0..<count {
                let item = items[index]
                let planIndex = Int(item.plan.index)
                guard item.plan.catalog == identity && planIndex >= 0 && planIndex < plans.count else {
                    results[index] = BatchResult(refusal: .noPlan, state: item.state)
                    continue
                }
                var tracer = NoTrace()
                let result = plans[planIndex].evaluate(item.execution, state: item.state, tracer: &tracer)
                results[index] = BatchResult(computeUnits: result.computeUnits, charge: result.charge, split: result.split,
                                             refusal: result.refusal, state: result.state)
            }
        }
    }

    /// Prices a batch held in an array (convenience over the buffer form).
    public func price(batch items: [BatchItem]) -> [BatchResult] {
        var results = [BatchResult](repeating: BatchResult(), count: items.count)
        items.withUnsafeBufferPointer { input in
            results.withUnsafeMutableBufferPointer { output in price(batch: input, into: output) }
        }
        return results
    }
}
