/// Runs the `tests:` of a catalog's plans (plans.md, "Plan tests").
public enum PlanTestRunner {
    public struct Mismatch: Sendable {
        public var field: String
        public var expected: String
        public var actual: String
    }

    public struct Outcome: Sendable {
        public var plan: String
        public var version: Int
        public var name: String
        public var location: SourceLocation
        public var mismatches: [Mismatch]
        public var explanation: Explanation
        public var passed: Bool { mismatches.isEmpty }
    }

    /// Every test of every plan version, in plan order.
    public static func run(_ catalog: CompiledCatalog) -> [Outcome] {
        var outcomes: [Outcome] = []
        for id in catalog.planIDs {
            for handle in catalog.versions(of: id) {
                let plan = catalog.plan(handle)
                for test in plan.tests {
                    let execution = ExecutionInput(meters: MeterReadings(test.meters.map { ($0.meter, $0.value) }), failed: test.failed,
                                                   endedAt: test.at ?? plan.effective ?? Timestamp(nanosecondsSinceEpoch: 0))
                    let state = PeriodState(usedComputeUnits: test.periodUsage, usageCharges: test.periodSpend, executions: test.periodExecutions)
                    let (result, explanation) = catalog.explain(handle, execution, state: state)
                    var mismatches: [Mismatch] = []
                    if let expected = test.expect.computeUnits, expected.value != result.computeUnits {
                        mismatches.append(Mismatch(field: "compute_units", expected: expected.value.description, actual: result.computeUnits.description))
                    }
                    if let expected = test.expect.charge, expected.value != result.charge {
                        mismatches.append(Mismatch(field: "charge", expected: expected.value.description, actual: result.charge.description))
                    }
                    if let expected = test.expect.split, expected.value != result.split {
                        func text(_ s: SplitShares) -> String { "creator \(s.creator), platform \(s.platform), processing \(s.processing)" }
                        mismatches.append(Mismatch(field: "split", expected: text(expected.value), actual: text(result.split)))
                    }
                    if let expected = test.expect.refused, expected.value != result.reason(in: plan) {
                        mismatches.append(Mismatch(field: "refused", expected: expected.value ?? "none", actual: result.reason(in: plan) ?? "none"))
                    }
                    outcomes.append(Outcome(plan: plan.id, version: plan.version, name: test.name, location: test.location,
                                            mismatches: mismatches, explanation: explanation))
                }
            }
        }
        return outcomes
    }
}
