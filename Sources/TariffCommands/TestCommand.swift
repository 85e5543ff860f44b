import ArgumentParser
import Tariff

/// `tariff test`: runs the `tests:` of every plan.
struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "Run the tests of every plan (exit 1 on any failure).")

    @OptionGroup var catalog: CatalogOptions

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Argument(help: "Plan files, a plans folder, or a catalog folder.")
    var paths: [String] = []

    func run() throws {
        let compilation = compileCatalog(paths: paths, options: catalog)
        guard let catalog = compilation.catalog else {
            for diagnostic in compilation.diagnostics where diagnostic.severity == .error { print(diagnostic.description) }
            print("the catalog has \(compilation.errorCount) error(s): no test ran")
            throw ExitCode(1)
        }
        let outcomes = PlanTestRunner.run(catalog)
        let failures = outcomes.filter { !$0.passed }
        switch format {
        case .json:
            print(JSON.object([
                ("passed", .integer(Int64(outcomes.count - failures.count))), ("failed", .integer(Int64(failures.count))),
                ("failures", .array(failures.map { outcome in
                    .object([("plan", .string(outcome.plan)), ("version", .integer(Int64(outcome.version))), ("test", .string(outcome.name)),
                             ("source", .string(outcome.location.description)),
                             ("mismatches", .array(outcome.mismatches.map {
                                 .object([("field", .string($0.field)), ("expected", .string($0.expected)), ("actual", .string($0.actual))])
                             }))])
                })),
            ]).rendered)
        case .text:
            for failure in failures {
                print("\(failure.location): test '\(failure.name)' of plan '\(failure.plan)' v\(failure.version) failed")
                for mismatch in failure.mismatches {
                    print("  \(mismatch.field): expected \(mismatch.expected), actual \(mismatch.actual)")
                }
                for step in failure.explanation.steps {
                    let inputs = step.renderedInputs.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
                    print("    \(step.kind) \(step.rule) [\(inputs)] -> \(step.output)  \(step.location)")
                }
            }
            print("\(outcomes.count - failures.count) passed, \(failures.count) failed")
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
