import TariffCore

/// Reads one `tests:` entry of a plan (plans.md, "Plan tests").
enum PlanTestReader {
    static func read(_ node: YAMLNode, metering: MeteringProfile, context: PlanLoweringContext, diagnostics: DiagnosticSink) -> PlanTestCase? {
        guard let reader = MappingReader(node, context: "a plan test", diagnostics: diagnostics) else { return nil }
        let name = reader.required("name", .text)
        let periodUsage = reader.optional("period_usage", .computeUnits)
        let periodSpend = reader.optional("period_spend", .money)
        let periodExecutions = reader.optional("period_executions", .integer(in: 0...Int(Int32.max)))
        var meters: [(meter: MeterIndex, value: MeterValue)] = []
        var failed = false
        var at: Timestamp?
        if let execution = reader.mapping("execution", required: true) {
            if let readings = execution.mapping("meters") {
                for meterName in readings.writtenKeys {
                    guard let value = readings.optional(meterName, .meterValue) else { continue }
                    guard let index = context.meter(named: meterName, at: value.keyLocation, diagnostics: diagnostics) else { continue }
                    if !metering.weighs(index) {
                        diagnostics.error("unknown-meter", at: value.keyLocation, "the plan's metering '\(metering.name)' does not weigh the meter '\(meterName)'",
                                          fix: "add a weight for it in rules/ or remove it from the test")
                        continue
                    }
                    meters.append((index, value.value))
                }
                readings.finish()
            }
            if let status = execution.optional("status", .oneOf(["succeeded", "failed"])) { failed = status.value == "failed" }
            at = execution.optional("at", .dateOrTimestamp)?.value
            execution.finish()
        }
        var expectation = PlanTestCase.Expectation()
        if let expect = reader.mapping("expect", required: true) {
            expectation.computeUnits = expect.optional("compute_units", .computeUnits)
            expectation.charge = expect.optional("charge", ledgerMoney)
            if let splitPair = expect.entry("split"), let split = MappingReader(splitPair, context: "the expected split", diagnostics: diagnostics) {
                let creator = split.required("creator", ledgerMoney)
                let platform = split.required("platform", ledgerMoney)
                let processing = split.required("processing", ledgerMoney)
                split.finish()
                if let creator, let platform, let processing {
                    expectation.split = Located(SplitShares(creator: creator.value, platform: platform.value, processing: processing.value),
                                                keyLocation: splitPair.keyLocation, valueLocation: splitPair.value.location)
                }
            }
            // `plugin:KIND`: a WebAssembly rule's refusal (plans.md, "Loadable rule plugins").
            let refusals = ValueType<String>.scalar("spend_cap, plugin:KIND or none") { text, location, diagnostics in
                if text == "spend_cap" || text == "none" { return String(text) }
                if text.hasPrefix("plugin:"), Identifier.isValid(text.dropFirst("plugin:".count)) { return String(text) }
                diagnostics.error("invalid-value", at: location, "'\(text)' is not a refusal a plan test can expect", fix: "use spend_cap, plugin:KIND or none")
                return nil
            }
            if let refused = expect.optional("refused", refusals) {
                expectation.refused = Located(refused.value == "none" ? nil : refused.value, keyLocation: refused.keyLocation, valueLocation: refused.valueLocation)
            }
            expect.finish()
        }
        reader.finish()
        guard let name else { return nil }
        return PlanTestCase(name: name.value, location: node.location, periodUsage: periodUsage?.value ?? .zero,
                            periodSpend: periodSpend.flatMap { $0.value.exact.roundedToMoney(.halfEven) } ?? .zero,
                            periodExecutions: Int64(periodExecutions?.value ?? 0), meters: meters, failed: failed, at: at, expect: expectation)
    }

    /// A ledger amount (at most 6 fractional digits; negative allowed for credits).
    static let ledgerMoney = ValueType<Money>.scalar("an amount such as 0.0035", optionType: .ledgerMoney) { text, location, diagnostics in
        do throws(DecimalText.Failure) { return try Money(parsing: text, allowNegative: true) } catch {
            diagnostics.error(error.diagnosticCode, at: location, "'\(text)' is not a ledger amount (at most 6 fractional digits): \(error)")
            return nil
        }
    }
}
