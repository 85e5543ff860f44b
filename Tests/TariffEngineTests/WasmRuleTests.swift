import Foundation
import Tariff
import Testing

/// WebAssembly rule kinds (plans.md, "Loadable rule plugins"): the ABI, the limits, and a module
/// that misbehaves never harming the program nor making an execution free.
@Suite("WebAssembly rule kinds")
struct WasmRuleTests {
    /// A catalog in a fresh folder: rules/plugins.yaml declares `kind` -> rules/m.wat.
    struct Folder {
        let root: URL
        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-wasm-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("plans"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("rules"), withIntermediateDirectories: true)
            try TestCatalog.rules.write(to: root.appendingPathComponent("rules/rules.yaml"), atomically: true, encoding: .utf8)
        }
        func write(_ text: String, _ path: String) throws {
            try text.write(to: root.appendingPathComponent(path), atomically: true, encoding: .utf8)
        }
        func compile() -> CatalogCompilation {
            CatalogLoader.compile(plansDirectory: root.appendingPathComponent("plans").path, rulesDirectory: root.appendingPathComponent("rules").path)
        }
    }

    static let declaration = """
    plugins:
      - kind: probe
        wasm: m.wat
        meters: [inference_calls]
        options:
          add: money

    """

    /// A module that adds `add` to the charge, except that an execution with an inference call
    /// runs `misbehaviour` first (input 7 is the inference calls reading, input 8 the option).
    static func module(misbehaviour: String, extra: String = "") -> String {
        """
        (module
          \(extra)
          (memory (export "memory") 1)
          (func $rule (export "tariff_rule_v1") (param $ptr i32) (param $count i32) (result i64)
            (if (i64.gt_s (i64.load offset=56 (local.get $ptr)) (i64.const 0))
              (then \(misbehaviour)))
            (i64.add (i64.load (local.get $ptr)) (i64.load offset=64 (local.get $ptr))))
        )
        """
    }

    static let plan = TestCatalog.plan("p", model: "per_call", "  fee: 0.01", extra: "rules:\n  - kind: probe\n    add: 0.001\n")

    /// Compiles the catalog with `module`, prices an execution with an inference call (the
    /// misbehaving one) and one without.
    static func run(_ module: String) throws -> (misbehaving: PricingResult, next: PricingResult, failures: (count: Int, lastReason: String?), explanation: Explanation) {
        let folder = try Folder()
        try folder.write(Self.declaration, "rules/plugins.yaml")
        try folder.write(module, "rules/m.wat")
        try folder.write(Self.plan, "plans/p.yaml")
        let compilation = folder.compile()
        let catalog = try #require(compilation.catalog, "\(compilation.diagnostics)")
        let handle = try #require(catalog.plan(id: "p", version: 1))
        let bad = ExecutionInput(meters: TestCatalog.meters(catalog, ["inference_calls": 1]))
        let good = ExecutionInput(meters: TestCatalog.meters(catalog, ["cpu_ms": 1]))
        let misbehaving = catalog.price(handle, bad, state: .empty)
        let explanation = catalog.explain(handle, bad, state: .empty).explanation
        let next = catalog.price(handle, good, state: .empty)
        let external = catalog.plan(handle).executionNodes.compactMap { node -> ExternalRule? in
            if case .external(let rule) = node.operation { rule } else { nil }
        }.first
        guard let rule = external else {
            Issue.record("the rule is not an external node")
            return (misbehaving, next, (0, nil), explanation)
        }
        return (misbehaving, next, rule.function.failures, explanation)
    }

    @Test("a well-behaved module prices through the ABI: fee 0.01 + add 0.001")
    func wellBehaved() throws {
        let run = try Self.run(Self.module(misbehaviour: "(nop)"))
        #expect(run.misbehaving.charge == TestCatalog.money("0.011"))
        #expect(run.next.charge == TestCatalog.money("0.011"))
        #expect(run.failures.count == 0)
        // Lines: the fee, then the rule's +0.001 at its `kind:`.
        #expect(run.misbehaving.lines.map(\.amount) == [TestCatalog.money("0.01"), TestCatalog.money("0.001")])
    }

    /// Each misbehaviour: the misbehaving execution keeps the charge before the rule (0.01: not
    /// free), the failure is counted with its reason, and the next execution is priced (0.011).
    static func expectSkipped(_ misbehaviour: String, extra: String = "", reason: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try Self.run(Self.module(misbehaviour: misbehaviour, extra: extra))
        #expect(run.misbehaving.refusal == nil, sourceLocation: sourceLocation)
        #expect(run.misbehaving.charge == TestCatalog.money("0.01"), sourceLocation: sourceLocation)
        #expect(run.next.charge == TestCatalog.money("0.011"), sourceLocation: sourceLocation)
        // One failure when pricing, one when explaining the same execution.
        #expect(run.failures.count == 2, sourceLocation: sourceLocation)
        #expect(run.failures.lastReason?.contains(reason) == true, "\(run.failures.lastReason ?? "none")", sourceLocation: sourceLocation)
        let skipped = run.explanation.steps.flatMap(\.inputs).first { $0.name == "skipped" }
        #expect(skipped != nil, sourceLocation: sourceLocation)
    }

    @Test("a module that traps is skipped for that execution, with the reason; the next is priced")
    func traps() throws {
        try Self.expectSkipped("(unreachable)", reason: "trapped")
    }

    @Test("a module that loops forever runs out of fuel")
    func loopsForever() throws {
        try Self.expectSkipped("(loop $forever (br $forever))", reason: "ran out of fuel")
    }

    @Test("a module that grows memory without end is held at the memory limit and runs out of fuel")
    func growsMemory() throws {
        try Self.expectSkipped("(loop $grow (drop (memory.grow (i32.const 1))) (br $grow))", reason: "ran out of fuel")
        // Growing until refused stops at the limit, 16 pages: the module answers its memory size.
        let bounded = Self.module(misbehaviour: """
            (block $full (loop $grow (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $grow)))
            (return (i64.extend_i32_u (memory.size)))
            """)
        let run = try Self.run(bounded)
        #expect(run.misbehaving.charge == Money(micros: 16))
        #expect(run.failures.count == 0)
    }

    @Test("a module that recurses without end traps on the interpreter's stack, not ours")
    func recursesForever() throws {
        try Self.expectSkipped("(drop (call $rule (local.get $ptr) (local.get $count)))", reason: "trapped")
    }

    @Test("a negative or out-of-range answer is a failure (never a credit); -1 refuses with plugin:KIND")
    func answers() throws {
        try Self.expectSkipped("(return (i64.const -5))", reason: "returned -5")
        try Self.expectSkipped("(return (i64.const 1000000000000000001))", reason: "returned 1000000000000000001")
        let refusing = try Self.run(Self.module(misbehaviour: "(return (i64.const -1))"))
        #expect(refusing.misbehaving.refusal == .plugin)
        #expect(refusing.misbehaving.charge == .zero)
        #expect(refusing.misbehaving.lines.isEmpty)
        #expect(refusing.next.charge == TestCatalog.money("0.011"))
        #expect(refusing.failures.count == 0)
        #expect(refusing.explanation.steps.last?.rule == "plugin:probe")
    }

    /// `check` refuses a module it cannot use, at the `wasm:` of its declaration.
    static func loadDiagnostics(_ module: String, declaration: String = declaration) throws -> [String] {
        let folder = try Folder()
        try folder.write(declaration, "rules/plugins.yaml")
        try folder.write(module, "rules/m.wat")
        try folder.write(Self.plan, "plans/p.yaml")
        return folder.compile().diagnostics.map { "\($0.code) \($0.location.line):\($0.location.column) \($0.message)" }
    }

    @Test("a module that imports a function, lacks the entry point or memory, or has another signature is an invalid-plugin error")
    func refusedModules() throws {
        let imports = try Self.loadDiagnostics(Self.module(misbehaviour: "(nop)", extra: #"(import "env" "now" (func $now (result i64)))"#))
        // One error, at `wasm:` (line 3, column 11): the plan's rule of that kind reports nothing more.
        #expect(imports.count == 1, "\(imports)")
        #expect(imports.first?.hasPrefix("invalid-plugin 3:11") == true, "\(imports)")
        #expect(imports.first?.contains("imports env.now") == true, "\(imports)")
        let noEntry = try Self.loadDiagnostics(#"(module (memory (export "memory") 1) (func (export "rule") (result i64) (i64.const 0)))"#)
        #expect(noEntry.first?.contains("does not export the function 'tariff_rule_v1'") == true, "\(noEntry)")
        let noMemory = try Self.loadDiagnostics(#"(module (func (export "tariff_rule_v1") (param i32 i32) (result i64) (i64.const 0)))"#)
        #expect(noMemory.first?.contains("does not export 'memory'") == true, "\(noMemory)")
        let signature = try Self.loadDiagnostics(#"(module (memory (export "memory") 1) (func (export "tariff_rule_v1") (param i32) (result i32) (i32.const 0)))"#)
        #expect(signature.first?.contains("it must be (i32, i32) -> i64") == true, "\(signature)")
        let garbage = try Self.loadDiagnostics("(module (func")
        #expect(garbage.first?.hasPrefix("invalid-plugin") == true, "\(garbage)")
        let missing = try Self.loadDiagnostics("", declaration: Self.declaration.replacingOccurrences(of: "m.wat", with: "absent.wasm"))
        #expect(missing.first?.contains("cannot be read") == true, "\(missing)")
    }

    @Test("a period: true plugin on a plan without a period does not compile; option types are checked at the plan's rule")
    func declarationChecks() throws {
        let periodic = Self.declaration.replacingOccurrences(of: "    meters:", with: "    period: true\n    meters:")
        let onPerCall = try Self.loadDiagnostics(Self.module(misbehaviour: "(nop)"), declaration: periodic)
        // The compiler's own check for a period-scoped rule on a per_call plan (plans.md) reports it
        // once at the rule, before the graph verifier's backstop would.
        #expect(onPerCall.map { String($0.prefix { $0 != " " }) } == ["rule-needs-period"], "\(onPerCall)")
        let folder = try Folder()
        try folder.write(Self.declaration, "rules/plugins.yaml")
        try folder.write(Self.module(misbehaviour: "(nop)"), "rules/m.wat")
        try folder.write(Self.plan.replacingOccurrences(of: "add: 0.001", with: "add: 10%"), "plans/p.yaml")
        #expect(folder.compile().diagnostics.map(\.code.rawValue) == ["invalid-number"])
    }

    @Test("hot reload picks up a changed module")
    func hotReload() throws {
        let folder = try Folder()
        try folder.write(Self.declaration, "rules/plugins.yaml")
        try folder.write(Self.module(misbehaviour: "(nop)"), "rules/m.wat")
        try folder.write(Self.plan, "plans/p.yaml")
        let store = CatalogStore(try #require(folder.compile().catalog))
        func charge() throws -> Money {
            let catalog = store.catalog
            return catalog.price(try #require(catalog.plan(id: "p", version: 1)), ExecutionInput(meters: MeterReadings()), state: .empty).charge
        }
        #expect(try charge() == TestCatalog.money("0.011"))
        // The module now doubles the charge and adds nothing.
        try folder.write("""
            (module (memory (export "memory") 1)
              (func (export "tariff_rule_v1") (param $ptr i32) (param $count i32) (result i64)
                (i64.mul (i64.load (local.get $ptr)) (i64.const 2))))
            """, "rules/m.wat")
        store.reload { folder.compile() }
        #expect(try charge() == TestCatalog.money("0.02"))
    }
}
