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
            // Read without error; an overage below 49.00 / 10000 is only the reviewer's cheap-overage warning.
            #expect(compilation.diagnostics.filter { $0.code != "cheap-overage" }.isEmpty, "overage: \(written)")
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
        // The largest fee is read (a fee of 10^12 for 10000 CU makes the 0.005 overage a cheap one: a warning only).
        #expect(summary(compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: 1000000000000"))) == ["cheap-overage plans/pro.yaml:10:12"])
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
        // Worked out from the text: `currency: EURO` (line 4, the value at column 11) and `alowance`
        // (line 9, the key at column 3); each compilation gives exactly these, whatever ran before.
        let expected = ["unknown-currency plans/pro.yaml:4:11", "unknown-key plans/pro.yaml:9:3"]
        for _ in 0..<3 { #expect(summary(compile(plan: text)) == expected) }
        #expect(compile(plan: text).diagnostics.map(\.message).last == "unknown key 'alowance'; did you mean 'allowance'?")
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

/// The pricing reviewer's lint, with the instants and amounts worked out by hand.
@Suite struct LintTests {
    /// The minimal plan (fee 49.00, allowance 10000, overage 0.005) with `rules` appended.
    static func withRules(_ rules: String) -> String { MinimalCatalog.plan + "rules:\n" + rules }

    static func discount(_ percent: String, _ when: String) -> String {
        "  - kind: discount\n    percent: \(percent)\n    when: \(when)\n"
    }

    @Test func anOverageCheaperThanTheAllowanceSaysByHowMuch() throws {
        // 49.00 / 10000 CU = 0.0049 per CU: 0.0048 is cheaper, 0.0049 is not.
        let cheap = compile(plan: plan(replacing: "  overage: 0.005", with: "  overage: 0.0048"))
        #expect(summary(cheap) == ["cheap-overage plans/pro.yaml:10:12"])
        let diagnostic = try #require(cheap.diagnostics.first)
        #expect(diagnostic.severity == .warning)
        #expect(diagnostic.message.contains("fee 49 / allowance 10000 CU = 0.0049 per CU"))
        #expect(diagnostic.fix == "raise 'overage' to at least 0.0049, or lower 'fee' or raise 'allowance'")
        #expect(compile(plan: plan(replacing: "  overage: 0.005", with: "  overage: 0.0049")).diagnostics.isEmpty)
        // 49.00 / 30000 CU = 0.00163333...: not exact, so "about" and rounded up to 0.001633333334.
        let thirds = compile(plan: plan(replacing: "  allowance: 10000", with: "  allowance: 30000").replacingOccurrences(of: "overage: 0.005", with: "overage: 0.0016"))
        #expect(thirds.diagnostics.first?.message.contains("= about 0.001633333334 per CU") == true)
        // Nothing included: the fee buys access, not units.
        #expect(compile(plan: plan(replacing: "  allowance: 10000", with: "  allowance: 0")).diagnostics.isEmpty)
    }

    @Test func aFeeFinerThanTheMinorUnit() throws {
        // JPY has no minor unit: 4900.5 cannot be charged; 4900 can. USD has cents: 49.001 cannot.
        let jpy = MinimalCatalog.plan.replacingOccurrences(of: "currency: USD", with: "currency: JPY")
            .replacingOccurrences(of: "fee: 49.00", with: "fee: 4900.5").replacingOccurrences(of: "overage: 0.005", with: "overage: 0.5")
        let compilation = compile(plan: jpy)
        #expect(summary(compilation) == ["sub-minor-unit plans/pro.yaml:8:8"])
        #expect(compilation.diagnostics.first?.message == "the fee 4900.5 is finer than JPY's minor unit (0 decimal places): it is billed as one amount, which JPY cannot represent")
        #expect(compile(plan: jpy.replacingOccurrences(of: "4900.5", with: "4900")).diagnostics.isEmpty)
        #expect(summary(compile(plan: plan(replacing: "  fee: 49.00", with: "  fee: 49.001"))) == ["sub-minor-unit plans/pro.yaml:8:8"])
        // A per-unit price finer than a cent is the point of metering: not reported.
        #expect(compile(plan: plan(replacing: "  overage: 0.005", with: "  overage: 0.0051")).diagnostics.isEmpty)
    }

    @Test func aHundredPercentDiscount() {
        let always = compile(plan: Self.withRules("  - kind: discount\n    percent: 100%\n"))
        #expect(summary(always) == ["full-discount plans/pro.yaml:13:14"])
        let enterprise = compile(plan: enterprisePlan.replacingOccurrences(of: "discount: 10%", with: "discount: 100%"))
        #expect(summary(enterprise) == ["full-discount plans/pro.yaml:13:13"])   // the 13th line, "  discount: 100%"
    }

    @Test func discountsThatExcludeEachOtherAreNotOverlapping() {
        let weekdaysAndWeekend = Self.withRules(Self.discount("10%", "{ weekday: [mon, tue, wed, thu, fri] }") + Self.discount("20%", "{ weekday: [sat, sun] }"))
        #expect(compile(plan: weekdaysAndWeekend).diagnostics.isEmpty)
        let dayAndNight = Self.withRules(Self.discount("10%", "{ hours: { from: 8, to: 20 } }") + Self.discount("20%", "{ hours: { from: 20, to: 8 } }"))
        #expect(compile(plan: dayAndNight).diagnostics.isEmpty)
        let decemberAndJanuary = Self.withRules(Self.discount("10%", "{ dates: { to: 2027-01-01 } }") + Self.discount("20%", "{ dates: { from: 2027-01-01 } }"))
        #expect(compile(plan: decemberAndJanuary).diagnostics.isEmpty)
    }

    @Test func overlappingDiscountsNameAnInstantAndTheCompoundPercent() throws {
        // Weekend 20% and nights 10%: from 1970-01-01 (a Thursday) the first such instant is Saturday 1970-01-03 00:00 UTC.
        let compilation = compile(plan: Self.withRules(Self.discount("20%", "{ weekday: [sat, sun] }") + Self.discount("10%", "{ hours: { from: 22, to: 6 } }")))
        #expect(summary(compilation) == ["overlapping-discounts plans/pro.yaml:17:5"])
        let message = try #require(compilation.diagnostics.first?.message)
        // 1 - 0.8 x 0.9 = 0.28.
        #expect(message == "this discount and the one at plans/pro.yaml:14:5 can apply to the same execution (e.g. one ending at 1970-01-03T00:00:00Z): 20% then 10% compound to 28% off")
        // A discount without 'when' overlaps every other one: reported at its 'percent:'. 1 - 0.9 x 0.875 = 0.2125.
        let unconditional = compile(plan: Self.withRules(Self.discount("10%", "{ weekday: [sat] }") + "  - kind: discount\n    percent: 12.5%\n"))
        #expect(summary(unconditional) == ["overlapping-discounts plans/pro.yaml:16:5"])
        #expect(unconditional.diagnostics.first?.message.hasSuffix("10% then 12.5% compound to 21.25% off") == true)
        // Three weekend discounts: the second and the third each get one diagnostic, not one per pair.
        let three = Self.withRules((1...3).map { _ in Self.discount("5%", "{ weekday: [sun] }") }.joined())
        #expect(summary(compile(plan: three)) == ["overlapping-discounts plans/pro.yaml:17:5", "overlapping-discounts plans/pro.yaml:20:5"])
    }

    @Test func overlapAcrossClocks() throws {
        // Saturday in UTC and Friday in Tokyo (+09:00) never coincide: Tokyo's Friday ends at Friday 15:00 UTC.
        let never = Self.withRules(Self.discount("10%", "{ weekday: [sat] }") + Self.discount("10%", "{ weekday: [fri], timezone: Asia/Tokyo }"))
        #expect(compile(plan: never).diagnostics.isEmpty)
        // Saturday in UTC and Sunday in Tokyo do, from Saturday 15:00 UTC: the first is 1970-01-03T15:00:00Z.
        let sometimes = compile(plan: Self.withRules(Self.discount("10%", "{ weekday: [sat] }") + Self.discount("10%", "{ weekday: [sun], timezone: Asia/Tokyo }")))
        #expect(summary(sometimes) == ["overlapping-discounts plans/pro.yaml:17:5"])
        #expect(sometimes.diagnostics.first?.message.contains("1970-01-03T15:00:00Z") == true)
        // Paris office hours and New York office hours overlap 14:00-17:00 Paris time (08:00-11:00 in New York):
        // from 1970-01-01, Paris is +01:00 and New York -05:00, so 09:00 New York = 14:00 UTC = 15:00 Paris.
        let offices = compile(plan: Self.withRules(Self.discount("10%", "{ hours: { from: 9, to: 17 }, timezone: Europe/Paris }")
            + Self.discount("10%", "{ hours: { from: 9, to: 17 }, timezone: America/New_York }")))
        #expect(offices.diagnostics.first?.message.contains("1970-01-01T14:00:00Z") == true)
    }

    @Test func conditionsThatCanNeverHold() throws {
        // No day listed.
        let noDay = compile(plan: Self.withRules(Self.discount("10%", "{ weekday: [] }")))
        #expect(summary(noDay) == ["unreachable-rule plans/pro.yaml:14:5"])
        #expect(noDay.diagnostics.first?.message.hasSuffix("'weekday' lists no day") == true)
        // Spring forward in Paris: 2026-03-29 00:00-12:00 UTC is 01:00 CET then 03:00 CEST onwards; hour 2 never comes.
        let skipped = compile(plan: Self.withRules(Self.discount("10%", "{ hours: { from: 2, to: 3 }, dates: { from: 2026-03-29T00:00:00Z, to: 2026-03-29T12:00:00Z }, timezone: Europe/Paris }")))
        #expect(summary(skipped) == ["unreachable-rule plans/pro.yaml:14:5"])
        // The same hours on the fall-back day happen (twice): reachable.
        let doubled = compile(plan: Self.withRules(Self.discount("10%", "{ hours: { from: 2, to: 3 }, dates: { from: 2026-10-25T00:00:00Z, to: 2026-10-25T12:00:00Z }, timezone: Europe/Paris }")))
        #expect(doubled.diagnostics.isEmpty)
        // An unreachable discount is not also reported as overlapping another.
        let both = compile(plan: Self.withRules(Self.discount("10%", "{ weekday: [sat] }") + Self.discount("10%", "{ weekday: [] }")))
        #expect(summary(both) == ["unreachable-rule plans/pro.yaml:17:5"])
    }

    @Test func theVersionsLifetimeBoundsTheConditions() {
        // Version 1 of a per_call plan prices until version 2's effective (2027-01-01): a discount from 2027 on never applies.
        let v1 = """
            plan: payg
            effective: 2026-01-01
            agent: agt_demo
            creator: acct_demo
            currency: USD
            model: per_call
            per_call:
              fee: 0.02
            rules:
              - kind: discount
                percent: 10%
                when: { dates: { from: 2027-01-01 } }

            """
        let v2 = v1.replacingOccurrences(of: "effective: 2026-01-01", with: "version: 2\neffective: 2027-01-01")
            .replacingOccurrences(of: "from: 2027-01-01", with: "from: 2026-06-01")
        let sources = [CatalogSource(path: "plans/payg.yaml", text: v1, kind: .plan), CatalogSource(path: "plans/payg-v2.yaml", text: v2, kind: .plan)]
            + MinimalCatalog.sources().filter { $0.kind == .rules }
        let compilation = CatalogLoader.compile(sources: sources)
        #expect(summary(compilation) == ["unreachable-rule plans/payg.yaml:12:5"])
        #expect(compilation.diagnostics.first?.message.contains("(from 2026-01-01T00:00:00Z until 2027-01-01T00:00:00Z)") == true)
        // A monthly plan's version 1 still prices periods that started before 2027-01-01, for up to 31 days.
        let monthly = sources.map { source in
            var copy = source
            copy.text = copy.text.replacingOccurrences(of: "model: per_call\nper_call:\n  fee: 0.02", with: "model: subscription\nsubscription:\n  period: month\n  fee: 49\n  allowance: 10000\n  overage: 0.005")
                .replacingOccurrences(of: "from: 2027-01-01 }", with: "from: 2027-01-15 }")
            return copy
        }
        #expect(summary(CatalogLoader.compile(sources: monthly)).isEmpty)
    }

    @Test func aBandUnderZeroPercent() {
        let text = enterprisePlan + "  sla:\n    credits:\n      - below: 0%\n        credit: 50%\n"
        // enterprisePlan has 13 lines (discount last); sla: 14, credits: 15, the band 16, its value at column 16.
        #expect(summary(compile(plan: text)) == ["unreachable-band plans/pro.yaml:16:16"])
    }

    @Test func theReviewersLintIsFastEnoughForLargeCatalogs() {
        // Two discounts on different zones, never overlapping (Saturday in Paris vs Monday in New York):
        // the solver walks the tables 1970-2100 in 8-day stretches. It must stay well under a millisecond budget per plan.
        let rules = Self.discount("10%", "{ weekday: [sat], hours: { from: 12, to: 13 }, timezone: Europe/Paris }")
            + Self.discount("10%", "{ weekday: [mon], hours: { from: 12, to: 13 }, timezone: America/New_York }")
        _ = compile(plan: Self.withRules(rules))   // tables the two zones (cached for the process)
        let start = ContinuousClock.now
        let compilation = compile(plan: Self.withRules(rules))
        let elapsed = ContinuousClock.now - start
        #expect(compilation.diagnostics.isEmpty)
        // Debug build on a shared machine: generous; the release figure is in `tariff bench compile`.
        #expect(elapsed < .milliseconds(500), "compiling the plan took \(elapsed)")
    }
}

/// The lint's condition solver against an independent oracle: the engine itself, pricing an
/// execution every 15 minutes (every offset and transition of these zones falls on that grid).
@Suite struct LintAgreesWithTheEngineTests {
    struct SplitMix {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    /// A random `when`: some weekdays, some hours, on one of five clocks, within a few days of the
    /// 2026 DST changes (Paris 2026-03-29, New York 2026-03-08 and 2026-11-01).
    static func randomWhen(_ random: inout SplitMix) -> (yaml: String, from: String, days: Int) {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        var parts: [String] = []
        if random.next(3) > 0 {
            let days = names.indices.filter { _ in random.next(3) == 0 }.map { names[$0] }
            parts.append("weekday: [\((days.isEmpty ? ["sun"] : days).joined(separator: ", "))]")
        }
        if random.next(3) > 0 {
            let from = random.next(24)
            var to = random.next(25)
            if to % 24 == from { to = (from + 1) % 24 }
            parts.append("hours: { from: \(from), to: \(to) }")
        }
        let clocks = ["", "utc_offset: \"+05:30\"", "timezone: Europe/Paris", "timezone: America/New_York", "timezone: Asia/Tokyo"]
        let clock = clocks[random.next(clocks.count)]
        if !clock.isEmpty { parts.append(clock) }
        let starts = ["2026-03-06", "2026-03-26", "2026-03-28", "2026-10-30"]
        let from = starts[random.next(starts.count)]
        let days = 1 + random.next(6)
        return (parts.joined(separator: ", "), from, days)
    }

    @Test func overlapsAndUnreachableRulesMatchBruteForce() throws {
        var random = SplitMix(state: 2026)
        let quarterHour: Int64 = 900_000_000_000
        for index in 0..<40 {
            let a = Self.randomWhen(&random), b = Self.randomWhen(&random)
            func window(_ w: (yaml: String, from: String, days: Int)) throws -> (Int64, Int64) {
                let start = try #require(Timestamp(dateOrTimestamp: w.from)).nanosecondsSinceEpoch
                return (start, start + Int64(w.days) * 86_400_000_000_000)
            }
            let (aFrom, aTo) = try window(a), (bFrom, bTo) = try window(b)
            func when(_ w: (yaml: String, from: String, days: Int), _ to: Int64) -> String {
                let dates = "dates: { from: \(w.from), to: \(Timestamp(nanosecondsSinceEpoch: to)) }"
                return "{ " + ([dates] + (w.yaml.isEmpty ? [] : [w.yaml])).joined(separator: ", ") + " }"
            }
            // A: 50% off, B: 20% off; the charge of 1.00 tells which held: 0.5 A, 0.8 B, 0.4 both.
            let plan = """
                plan: p
                agent: agt_demo
                creator: acct_demo
                currency: USD
                model: per_call
                per_call:
                  fee: 1.00
                rules:
                  - kind: discount
                    percent: 50%
                    when: \(when(a, aTo))
                  - kind: discount
                    percent: 20%
                    when: \(when(b, bTo))

                """
            let compilation = compile(plan: plan)
            let codes = compilation.diagnostics.map { "\($0.code) line \($0.location.line)" }
            let catalog = try #require(compilation.catalog, "case \(index): \(compilation.diagnostics)")
            let handle = try #require(catalog.plan(id: "p", version: 1))
            var seen: Set<Int64> = []
            var instant = min(aFrom, bFrom)
            while instant < max(aTo, bTo) {
                let result = catalog.price(handle, ExecutionInput(meters: MeterReadings(), endedAt: Timestamp(nanosecondsSinceEpoch: instant)), state: .empty)
                seen.insert(result.charge.micros)
                instant += quarterHour
            }
            let aHolds = seen.contains(500_000) || seen.contains(400_000)
            let bHolds = seen.contains(800_000) || seen.contains(400_000)
            var expected: [String] = []
            if !aHolds { expected.append("unreachable-rule line 11") }
            if !bHolds { expected.append("unreachable-rule line 14") }
            if aHolds && bHolds && seen.contains(400_000) { expected.append("overlapping-discounts line 14") }
            #expect(codes == expected, "case \(index): A \(when(a, aTo)), B \(when(b, bTo)); charges \(seen.sorted())")
        }
    }
}
