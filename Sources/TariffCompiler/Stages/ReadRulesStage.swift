import Foundation
import TariffCore

/// Stage 2: the shared definitions of `rules/`: metering profiles, splits, payouts, reservation.
struct ReadRulesStage: CompilerStage {
    let name = "read-rules"

    func run(_ state: inout CompilationState) {
        let diagnostics = state.diagnostics
        var meteringEntries: [(name: String, location: SourceLocation, reader: MappingReader)] = []
        var payoutsSeen: SourceLocation?
        var reservationSeen: SourceLocation?
        var graceSeen: SourceLocation?
        var lowBalanceSeen: SourceLocation?
        let sections = ["metering", "splits", "payouts", "reservation", "late_usage_grace", "low_balance", "plugins"]
        var pluginEntries: [(source: CatalogSource, node: YAMLNode)] = []
        for (source, root) in state.documents where source.kind == .rules {
            guard let root else { state.rulesIncomplete = true; continue }
            if case .null = root.kind { continue }
            guard let file = MappingReader(root, context: "a rules file", diagnostics: diagnostics) else { state.rulesIncomplete = true; continue }
            if file.writtenKeys.contains(where: { !sections.contains($0) })
                || ["metering", "splits"].contains(where: { file.entry($0).map { $0.value.pairs == nil } ?? false }) {
                state.rulesIncomplete = true
            }
            if let metering = file.mapping("metering") {
                for key in metering.writtenKeys {
                    guard let pair = metering.entry(key) else { continue }
                    guard checkName(key, at: pair.keyLocation, diagnostics) else { continue }
                    if let previous = meteringEntries.first(where: { $0.name == key }) {
                        diagnostics.error("duplicate-name", at: pair.keyLocation, "metering '\(key)' is already defined at \(previous.location)")
                        continue
                    }
                    guard let reader = MappingReader(pair, context: "metering '\(key)'", diagnostics: diagnostics) else {
                        state.brokenMeterings.insert(key)
                        continue
                    }
                    meteringEntries.append((key, pair.keyLocation, reader))
                }
                metering.finish()
            }
            if let splits = file.mapping("splits") {
                for key in splits.writtenKeys {
                    guard let pair = splits.entry(key), checkName(key, at: pair.keyLocation, diagnostics) else { continue }
                    if let previous = state.splits.first(where: { $0.name == key }) {
                        diagnostics.error("duplicate-name", at: pair.keyLocation, "split '\(key)' is already defined at \(previous.location)")
                        continue
                    }
                    if let rule = Self.readSplit(pair, context: "split '\(key)'", diagnostics: diagnostics) {
                        state.splits.append(SplitDefinition(name: key, rule: rule, location: pair.keyLocation))
                    } else {
                        state.brokenSplits.insert(key)
                    }
                }
                splits.finish()
            }
            if let pair = file.entry("payouts") {
                if let previous = payoutsSeen {
                    diagnostics.error("duplicate-name", at: pair.keyLocation, "payouts are already defined at \(previous)")
                } else if let payouts = MappingReader(pair, context: "payouts", diagnostics: diagnostics) {
                    payoutsSeen = pair.keyLocation
                    state.payouts = readPayouts(payouts, location: pair.keyLocation, diagnostics: diagnostics)
                }
            }
            if let plugins = file.sequence("plugins") {
                pluginEntries += plugins.value.map { (source, $0) }
            }
            if let reservation = file.optional("reservation", .money) {
                if let previous = reservationSeen {
                    diagnostics.error("duplicate-name", at: reservation.keyLocation, "reservation is already defined at \(previous)")
                } else {
                    reservationSeen = reservation.keyLocation
                    state.defaultReservation = reservation.value
                }
            }
            if let grace = file.optional("late_usage_grace", .graceDuration) {
                if let previous = graceSeen {
                    diagnostics.error("duplicate-name", at: grace.keyLocation, "late_usage_grace is already defined at \(previous)")
                } else {
                    graceSeen = grace.keyLocation
                    state.lateUsageGraceNanoseconds = grace.value
                }
            }
            if let low = file.optional("low_balance", .money) {
                if let previous = lowBalanceSeen {
                    diagnostics.error("duplicate-name", at: low.keyLocation, "low_balance is already defined at \(previous)")
                } else if low.value.picos < 0 {
                    diagnostics.error("invalid-value", at: low.valueLocation, "low_balance cannot be negative")
                } else {
                    lowBalanceSeen = low.keyLocation
                    state.lowBalance = low.value
                }
            }
            file.finish()
        }
        // Meters get catalog-wide indexes in order of first appearance, so readings travel as arrays.
        for entry in meteringEntries {
            var weights: [MeteringProfile.Weighting] = []
            if let weightsReader = entry.reader.mapping("weights", required: true) {
                for meter in weightsReader.writtenKeys {
                    guard let pair = weightsReader.entry(meter), checkName(meter, at: pair.keyLocation, diagnostics) else { continue }
                    // A wrong weight is reported and the meter still defined (weighing nothing; the
                    // catalog has an error anyway), so plans using the meter report nothing more.
                    let weight = weightsReader.optional(meter, .meterWeight)
                        ?? Located(MeterWeight(nanos: 0), keyLocation: pair.keyLocation, valueLocation: pair.value.location)
                    var index = state.meterNames.firstIndex(of: meter)
                    if index == nil {
                        guard state.meterNames.count < CatalogLimits.maximumMeters else {
                            diagnostics.error("limit-exceeded", at: weight.keyLocation, "the catalog weighs more than \(CatalogLimits.maximumMeters) distinct meters")
                            continue
                        }
                        state.meterNames.append(meter)
                        index = state.meterNames.count - 1
                    }
                    weights.append(.init(meter: MeterIndex(rawValue: index ?? 0), weight: weight.value, location: weight.keyLocation))
                }
                weightsReader.finish()
            }
            var precision = ComputeUnits(millis: 1)
            if let written = entry.reader.optional("precision", .computeUnits) {
                if written.value.millis <= 0 {
                    diagnostics.error("invalid-value", at: written.valueLocation, "precision must be a positive multiple of 0.001")
                } else {
                    precision = written.value
                }
            }
            entry.reader.finish()
            state.meterings.append(MeteringProfile(name: entry.name, weights: weights, precision: precision, location: entry.location))
        }
        // WebAssembly rule kinds (rules/plugins.yaml): after the meterings, whose meters they name.
        PluginDeclarations.read(pluginEntries, state: &state)
    }

    private func checkName(_ name: String, at location: SourceLocation, _ diagnostics: DiagnosticSink) -> Bool {
        guard Identifier.isValid(name) else {
            diagnostics.error("invalid-id", at: location, "'\(name)' is not a valid name: use letters, digits, '.', '_' and '-'")
            return false
        }
        return true
    }

    /// A split mapping (named in rules/ or inline in a plan): three percents adding up to 100%.
    static func readSplit(_ pair: YAMLPair, context: String, diagnostics: DiagnosticSink) -> SplitRule? {
        guard let reader = MappingReader(pair, context: context, diagnostics: diagnostics) else { return nil }
        let creator = reader.required("creator", .percent)
        let platform = reader.required("platform", .percent)
        let processing = reader.required("processing", .percent)
        reader.finish()
        guard let creator, let platform, let processing else { return nil }
        guard let rule = SplitRule(creator: creator.value, platform: platform.value, processing: processing.value) else {
            let sum = Percent(partsPerMillion: creator.value.partsPerMillion + platform.value.partsPerMillion + processing.value.partsPerMillion)
            diagnostics.error("split-sum", at: pair.keyLocation, "the shares of \(context) add up to \(sum), not 100%",
                              fix: "make creator + platform + processing exactly 100%")
            return nil
        }
        return rule
    }

    private func readPayouts(_ reader: MappingReader, location: SourceLocation, diagnostics: DiagnosticSink) -> PayoutCalendar {
        var calendar = PayoutCalendar(location: location)
        let days = Weekday.allCases.map(\.fullName)
        if let start = reader.optional("week_starts", .oneOf(days)), let day = Weekday(name: start.value) { calendar.weekStarts = day }
        if let payOn = reader.optional("pay_on", .oneOf(days)), let day = Weekday(name: payOn.value) { calendar.payOn = day }
        if let zone = reader.optional("timezone", .text) {
            if TimeZone(identifier: zone.value) == nil {
                diagnostics.error("unknown-timezone", at: zone.valueLocation, "'\(zone.value)' is not an IANA time zone", fix: "use a name such as UTC or Europe/Paris")
            } else {
                calendar.timezone = zone.value
            }
        }
        if let minimum = reader.optional("minimum", .money) {
            if let money = minimum.value.exact.roundedToMoney(.halfEven), money.exact.compare(minimum.value.exact) == 0 {
                calendar.minimum = money
            } else {
                diagnostics.error("too-many-digits", at: minimum.valueLocation, "the payout minimum must be whole micro-units (at most 6 fractional digits)")
            }
        }
        reader.finish()
        return calendar
    }
}

extension ValueType where Value == Int64 {
    /// A grace period (`late_usage_grace`): a whole number and a unit, `90s`, `15m`, `1h`, `2d`;
    /// zero allowed (close at the end); at most 400 days. In nanoseconds.
    static var graceDuration: ValueType<Int64> {
        .scalar("a duration such as 1h", optionType: .schema(["type": "string", "pattern": "^[0-9]+[smhd]$"])) { text, location, diagnostics in
            let seconds: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
            let maximumSeconds: Int64 = 400 * 86_400
            guard let unit = text.last, let perUnit = seconds[unit], text.count >= 2, text.dropLast().allSatisfy({ $0.isASCII && $0.isNumber }),
                  text.count <= 12, let count = Int64(text.dropLast()), count <= maximumSeconds / perUnit else {
                diagnostics.error("invalid-value", at: location, "'\(text)' is not a duration: write a whole number and a unit (s, m, h, d), at most 400d, e.g. 1h")
                return nil
            }
            return count * perUnit * 1_000_000_000
        }
    }
}
