import Foundation
import Tariff
import Testing

/// Compiles one plan (with the minimal rules) in memory.
private func compile(plan: String, plugins: PluginRegistry = ShippedPlugins.registry) -> CatalogCompilation {
    CatalogLoader.compile(sources: MinimalCatalog.sources(plan: plan), plugins: plugins)
}

/// The minimal subscription plan with one line replaced (`"  fee: 49.00"` -> `"  fee: 1e3"`).
private func plan(replacing line: String, with replacement: String) -> String {
    let lines = MinimalCatalog.plan.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    precondition(lines.contains(line), "the minimal plan has no line '\(line)'")
    return lines.map { $0 == line ? replacement : $0 }.joined(separator: "\n")
}

/// `code file:line:column` of each diagnostic.
private func summary(_ compilation: CatalogCompilation) -> [String] {
    compilation.diagnostics.map { "\($0.code.rawValue) \($0.location)" }
}

private let enterprisePlan = """
    plan: corp
    agent: agt_demo
    creator: acct_demo
    currency: USD
    model: enterprise
    enterprise:
      period: month
      fee: 2000.00
      usage:
        - up_to: 500000
          price: 0
        - price: 0.003
      discount: 10%

    """

@Suite struct DidYouMeanTests {
    @Test func misspeltKey() {
        let compilation = compile(plan: plan(replacing: "  allowance: 10000", with: "  alowance: 10000"))
        #expect(summary(compilation) == ["unknown-key plans/pro.yaml:9:3"])
        #expect(compilation.diagnostics.first?.message == "unknown key 'alowance'; did you mean 'allowance'?")
        #expect(compilation.diagnostics.first?.description == "plans/pro.yaml:9:3: error[unknown-key]: unknown key 'alowance'; did you mean 'allowance'?")
    }

    @Test func misspeltModel() {
        let compilation = compile(plan: plan(replacing: "model: subscription", with: "model: subscriptoin"))
        #expect(summary(compilation) == ["unknown-model plans/pro.yaml:5:8"])
        #expect(compilation.diagnostics.first?.message == "unknown model 'subscriptoin'; did you mean 'subscription'?")
    }

    @Test func misspeltSplit() {
        let compilation = compile(plan: plan(replacing: "currency: USD", with: "currency: USD\nsplit: standrd"))
        #expect(summary(compilation) == ["unknown-split plans/pro.yaml:5:8"])
        #expect(compilation.diagnostics.first?.message == "unknown split 'standrd'; did you mean 'standard'?")
    }

    @Test func misspeltCurrency() {
        let compilation = compile(plan: plan(replacing: "currency: USD", with: "currency: USDD"))
        #expect(summary(compilation) == ["unknown-currency plans/pro.yaml:4:11"])
        #expect(compilation.diagnostics.first?.message.hasSuffix("did you mean 'USD'?") == true)
    }

    @Test func misspeltRuleKindAndPeriod() {
        let rule = compile(plan: MinimalCatalog.plan + "rules:\n  - kind: discont\n    percent: 10%\n")
        #expect(summary(rule) == ["unknown-rule-kind plans/pro.yaml:12:11"])
        #expect(rule.diagnostics.first?.message == "unknown rule kind 'discont'; did you mean 'discount'?")
        let period = compile(plan: plan(replacing: "  period: month", with: "  period: monthly"))
        #expect(period.diagnostics.first?.message == "'monthly' is not one of week, month, year; did you mean 'month'?")
    }

    @Test func noSuggestionWhenNothingIsClose() {
        let compilation = compile(plan: plan(replacing: "model: subscription", with: "model: barter"))
        #expect(compilation.diagnostics.first?.message == "unknown model 'barter'")
    }
}

@Suite struct CompilerTests {
    /// Several independent mistakes in several files: all reported in one compilation, sorted by
    /// file, line and column (not in the order the stages found them).
    @Test func everyDiagnosticAtOnceSortedByPosition() {
        let sources = [
            CatalogSource(path: "plans/b.yaml", text: plan(replacing: "currency: USD", with: "currency: USDD"), kind: .plan),
            CatalogSource(path: "plans/a.yaml", text: plan(replacing: "plan: pro", with: "plan: pro-a")
                .replacingOccurrences(of: "  fee: 49.00", with: "  fee: 1e3")
                .replacingOccurrences(of: "  overage: 0.005", with: "  overage: 0.005\n  bill_faild: true"), kind: .plan),
            CatalogSource(path: "rules/splits.yaml", text: MinimalCatalog.splits, kind: .rules),
            CatalogSource(path: "rules/metering.yaml", text: MinimalCatalog.metering, kind: .rules),
            CatalogSource(path: "rules/payouts.yaml", text: "payouts:\n  timezone: Europe/Pariss\n", kind: .rules),
        ]
        let compilation = CatalogLoader.compile(sources: sources)
        #expect(summary(compilation) == [
            "exponent-number plans/a.yaml:8:8",
            "unknown-key plans/a.yaml:11:3",
            "unknown-currency plans/b.yaml:4:11",
            "unknown-timezone rules/payouts.yaml:2:13",
        ])
        #expect(compilation.diagnostics == Diagnostic.sorted(compilation.diagnostics))
        #expect(compilation.catalog == nil)
        #expect(compilation.errorCount == 4)
    }

    /// Scalars are text, read by the field's type: YAML 1.1's `no`, `on`, `yes` stay words and
    /// `0.10` stays the exact decimal.
    @Test func yamlScalarsAreReadByTheFieldType() throws {
        let text = """
            plan: no
            agent: on
            creator: yes
            currency: USD
            model: subscription
            subscription:
              period: month
              fee: 0.10
              allowance: 10000
              overage: 0.10

            """
        let compilation = compile(plan: text)
        #expect(compilation.diagnostics.isEmpty)
        let definition = try #require(compilation.catalog?.definition.plans.first)
        #expect(definition.id == "no")
        #expect(definition.agent == "on")
        #expect(definition.creator == "yes")
        #expect(definition.executionNodes.first?.operation
            == .allowanceOverage(allowance: ComputeUnits(millis: 10_000_000), overagePerUnit: PlanMoney(picos: 100_000_000_000)))
        #expect(definition.periodNodes.first?.operation == .periodFee(PlanMoney(picos: 100_000_000_000)))
        // A quoted value is the same text.
        let quoted = compile(plan: text.replacingOccurrences(of: "plan: no", with: "plan: \"no\""))
        #expect(quoted.catalog?.definition.plans.first?.id == "no")
    }

    /// A boolean is `true` or `false` only: YAML 1.1's `no` would silently flip a plan's default.
    @Test func yaml11BooleansAreNotBooleans() {
        let compilation = compile(plan: plan(replacing: "currency: USD", with: "currency: USD\ndefault: no"))
        #expect(summary(compilation) == ["invalid-value plans/pro.yaml:5:10"])
        #expect(compilation.diagnostics.first?.message == "'no' is not a boolean: write true or false")
    }

    @Test(arguments: ["1e3", "1E3", "2.5e-3", "1e+2"])
    func exponentNotationIsRejected(_ written: String) {
        let compilation = compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: \(written)"))
        #expect(summary(compilation) == ["exponent-number plans/pro.yaml:8:8"])
        #expect(compilation.diagnostics.first?.fix == "write the number out in plain digits, e.g. 1000 instead of 1e3")
    }

    @Test func moneyHasAtMost12FractionalDigits() throws {
        let thirteen = compile(plan: plan(replacing: "  overage: 0.005", with: "  overage: 0.0000000000001"))
        #expect(summary(thirteen) == ["too-many-digits plans/pro.yaml:10:12"])
        // Twelve are fine, and trailing zeros do not count.
        for written in ["0.000000000001", "0.0000000000010", "\"0.0000125\"", "49.000000000000000000"] {
            let compilation = compile(plan: plan(replacing: "  overage: 0.005", with: "  overage: \(written)"))
            #expect(compilation.diagnostics.isEmpty, "overage: \(written)")
        }
        let twelve = try #require(compile(plan: plan(replacing: "  overage: 0.005", with: "  overage: 0.000000000001")).catalog)
        #expect(twelve.definition.plans.first?.executionNodes.first?.operation
            == .allowanceOverage(allowance: ComputeUnits(millis: 10_000_000), overagePerUnit: PlanMoney(picos: 1)))
    }

    @Test func computeUnitsHaveAtMost3FractionalDigits() {
        let compilation = compile(plan: plan(replacing: "  allowance: 10000", with: "  allowance: 0.0001"))
        #expect(summary(compilation) == ["too-many-digits plans/pro.yaml:9:14"])
    }

    @Test func aPercentNeedsItsSign() {
        let compilation = compile(plan: enterprisePlan.replacingOccurrences(of: "discount: 10%", with: "discount: 10"))
        #expect(summary(compilation) == ["invalid-percent plans/pro.yaml:13:13"])
        #expect(compilation.diagnostics.first?.message == "'10' is not a percent: a percent ends with '%'")
        #expect(compilation.diagnostics.first?.fix == "write it as 10%")
    }

    /// A decimal fraction (money-like) where a percent is expected.
    @Test func moneyWhereAPercentIsExpected() {
        let compilation = compile(plan: enterprisePlan.replacingOccurrences(of: "discount: 10%", with: "discount: 0.10"))
        #expect(summary(compilation) == ["invalid-percent plans/pro.yaml:13:13"])
        #expect(compilation.diagnostics.first?.fix?.hasPrefix("write 10% for the share 0.10") == true)
        let rule = compile(plan: MinimalCatalog.plan + "rules:\n  - kind: discount\n    percent: 0.2\n")
        #expect(summary(rule) == ["invalid-percent plans/pro.yaml:13:14"])
    }

    @Test func aPercentWhereMoneyIsExpected() {
        let compilation = compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: 10%"))
        #expect(summary(compilation) == ["invalid-number plans/pro.yaml:8:8"])
        #expect(compilation.diagnostics.first?.message.contains("is a percent, but") == true)
    }

    @Test(arguments: [("180%", "percent-range"), ("-5%", "percent-range"), ("12.12345%", "too-many-digits"), ("1e1%", "exponent-number"), ("ten%", "invalid-percent")])
    func wrongPercents(_ written: String, _ code: String) {
        let compilation = compile(plan: enterprisePlan.replacingOccurrences(of: "discount: 10%", with: "discount: \"\(written)\""))
        #expect(summary(compilation) == ["\(code) plans/pro.yaml:13:13"])
    }

    @Test func negativeAndHugeAmounts() {
        #expect(summary(compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: -1"))) == ["negative-amount plans/pro.yaml:8:8"])
        #expect(summary(compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: 1000000000001"))) == ["out-of-range plans/pro.yaml:8:8"])
        #expect(compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: 1000000000000")).diagnostics.isEmpty)
    }

    /// The sample catalog of the repository, read into memory: no diagnostic at all.
    @Test func theSampleCatalogCompilesInMemory() throws {
        var sources: [CatalogSource] = []
        for (folder, kind) in [("plans", CatalogSource.Kind.plan), ("rules", .rules)] {
            let directory = SourceCodes.packageRoot.appendingPathComponent(folder)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
            for name in names {
                let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
                sources.append(CatalogSource(path: "\(folder)/\(name)", text: text, kind: kind))
            }
        }
        #expect(sources.count { $0.kind == .plan } >= 6)
        let compilation = CatalogLoader.compile(sources: sources)
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let catalog = try #require(compilation.catalog)
        #expect(catalog.planIDs.contains("research-pro"))
        #expect(catalog.versions(of: "research-pro").count == 2)
    }

    /// Compiling the same sources twice gives the same diagnostics (no hidden state).
    @Test func compilationIsDeterministic() {
        let text = plan(replacing: "  allowance: 10000", with: "  alowance: 10000").replacingOccurrences(of: "currency: USD", with: "currency: EURO")
        #expect(compile(plan: text).diagnostics == compile(plan: text).diagnostics)
        #expect(compile(plan: text).diagnostics.count == 2)
    }
}

/// A billing model defined here, with the public API only: a prepaid bundle of executions sold
/// at a price per execution, rounded like per_call.
struct PrepaidBundleModel: BillingModelPlugin {
    let name = "prepaid_bundle"

    func lower(_ section: MappingReader, context: PlanLoweringContext) -> ModelLowering? {
        let price = section.required("price_per_execution", .money)
        let size = section.required("bundle_size", .integer(in: 1...1_000_000))
        guard let price, size != nil else { return nil }
        let nodes = [
            RuleNode(rule: "bundle", operation: .perExecutionFee(price.value), location: price.keyLocation, plugin: name),
            RuleNode(rule: "bundle", operation: .roundHalfEven, location: price.keyLocation, plugin: name),
        ]
        return ModelLowering(period: nil, billFailed: false, executionNodes: nodes, reserve: price.value, quoteIsExact: true)
    }
}

@Suite struct PluginModelTests {
    static let bundlePlan = """
        plan: bundle
        agent: agt_demo
        creator: acct_demo
        currency: USD
        model: prepaid_bundle
        prepaid_bundle:
          price_per_execution: 0.015
          bundle_size: 1000

        """

    static var registry: PluginRegistry {
        var registry = ShippedPlugins.registry
        registry.register(model: PrepaidBundleModel())
        return registry
    }

    @Test func aRegisteredModelCompiles() throws {
        let compilation = compile(plan: Self.bundlePlan, plugins: Self.registry)
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let definition = try #require(compilation.catalog?.definition.plans.first)
        #expect(definition.model == "prepaid_bundle")
        #expect(definition.isDefault)   // the agent's only per-execution plan
        #expect(definition.executionNodes.map(\.operation) == [.perExecutionFee(PlanMoney(picos: 15_000_000_000)), .roundHalfEven])
        #expect(definition.executionNodes.first?.location == SourceLocation(file: "plans/pro.yaml", line: 7, column: 3))
        #expect(definition.executionNodes.first?.plugin == "prepaid_bundle")
    }

    @Test func aPluginsOptionsAreCheckedLikeTheShippedOnes() {
        let misspelt = compile(plan: Self.bundlePlan.replacingOccurrences(of: "bundle_size", with: "bundle_sise"), plugins: Self.registry)
        #expect(summary(misspelt) == ["unknown-key plans/pro.yaml:8:3"])
        #expect(misspelt.diagnostics.first?.message == "unknown key 'bundle_sise'; did you mean 'bundle_size'?")
        let wrong = compile(plan: Self.bundlePlan.replacingOccurrences(of: "0.015", with: "1.5e-2"), plugins: Self.registry)
        #expect(summary(wrong) == ["exponent-number plans/pro.yaml:7:24"])
        let other = compile(plan: Self.bundlePlan + "subscription:\n  fee: 1\n", plugins: Self.registry)
        #expect(summary(other) == ["unused-section plans/pro.yaml:9:1"])
    }

    @Test func withoutRegistrationTheModelIsUnknown() {
        let compilation = compile(plan: Self.bundlePlan)
        #expect(summary(compilation) == ["unknown-model plans/pro.yaml:5:8"])
    }
}

@Suite struct TimeZoneDiagnosticTests {
    /// The minimal plan with a discount whose `when:` is `when` (line 14: the plan is 11 lines, then `rules:`, `- kind`, `percent`; `{` at column 11).
    static func plan(when: String) -> String {
        MinimalCatalog.plan + "rules:\n  - kind: discount\n    percent: 20%\n    when: \(when)\n"
    }

    @Test func anUnknownZoneIsReportedAtTheValueWithADidYouMean() throws {
        let compilation = compile(plan: Self.plan(when: "{ weekday: [sat], timezone: Europe/Pariss }"))
        // "    when: { weekday: [sat], timezone: " is 38 characters: the value starts at column 39.
        #expect(summary(compilation) == ["unknown-timezone plans/pro.yaml:14:39"])
        let diagnostic = try #require(compilation.diagnostics.first)
        #expect(diagnostic.message == "'Europe/Pariss' is not an IANA time zone; did you mean 'Europe/Paris'?")
        #expect(diagnostic.severity == .error)
    }

    @Test func foundationsFixedOffsetNamesAreNotZones() throws {
        let compilation = compile(plan: Self.plan(when: "{ hours: { from: 22, to: 6 }, timezone: GMT+1 }"))
        // Column 10 + len("{ hours: { from: 22, to: 6 }, timezone: ") = 10 + 40, so the value is at 51.
        #expect(summary(compilation) == ["unknown-timezone plans/pro.yaml:14:51"])
        #expect(compilation.diagnostics.first?.fix?.contains("utc_offset") == true)
    }

    @Test func twoClocksInOneWhenAreOneMistake() {
        let compilation = compile(plan: Self.plan(when: #"{ weekday: [sat], utc_offset: "+01:00", timezone: Europe/Paris }"#))
        // At the second clock's key: 10 + len(#"{ weekday: [sat], utc_offset: "+01:00", "#) = 10 + 40, so column 51.
        #expect(summary(compilation) == ["invalid-value plans/pro.yaml:14:51"])
    }

    @Test func aZoneCompilesIntoTheCondition() throws {
        let compilation = compile(plan: Self.plan(when: "{ weekday: [sat, sun], timezone: Europe/Paris }"))
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let node = try #require(compilation.catalog?.definition.plans.first?.executionNodes.last)
        guard case .conditionalPercentOff(_, let condition) = node.operation, case .weekdays(_, .timeZone(let table)) = condition else {
            Issue.record("expected a weekday condition on a zone, got \(node.operation)")
            return
        }
        #expect(table.identifier == "Europe/Paris")
        #expect(condition.description == "weekday in [sat,sun] Europe/Paris")
    }
}
