import TariffCompiler
import TariffCore

/// `discount`: a percentage off an execution's charge while a condition holds.
///
/// ```yaml
/// - kind: discount
///   percent: 20%
///   when: { weekday: [sat, sun], hours: { from: 22, to: 6 }, dates: { from: 2026-12-01, to: 2027-01-01 },
///           meter: { name: inference_calls, at_least: 10 }, timezone: Europe/Paris }
/// ```
/// The weekday and hours are read on one clock: `timezone` (an IANA zone, daylight saving time
/// included) or `utc_offset` (fixed); UTC without either.
/// Every condition written must hold (and); without `when` the discount always applies. The
/// discounted charge is rounded half-to-even to micro-units.
public struct DiscountRule: RuleKindPlugin {
    public let kind = "discount"
    public init() {}

    /// The rule's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public static let percent = PluginOption("percent", .percent, required: true, "Off the charge so far, rounded half-to-even.", example: "20%")
        public static let when = OptionSchema("when", .mapping(ConditionReader.schema), "When the discount applies (every condition written must hold).", defaultNote: "always")
        public static let schema = OptionsSchema("discount: a percentage off the execution's charge while a condition holds.", declaring: [percent, when])
    }

    public var optionsSchema: OptionsSchema? { Options.schema }

    public func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
        let diagnostics = options.diagnostics
        let percent = options.read(Options.percent)
        var condition: ExecutionCondition?
        var valid = true
        if let pair = options.entry(Options.when.name) {
            if let when = MappingReader(pair, context: "'when'", diagnostics: diagnostics) {
                let parsed = ConditionReader.read(when, context: context)
                condition = parsed.condition
                valid = parsed.valid
                when.finish()
            } else {
                valid = false
            }
        }
        if let percent, percent.value == .hundred {
            diagnostics.warning("full-discount", at: percent.valueLocation,
                                "a 100% discount makes every execution it applies to free\(condition == nil ? ", always" : "")",
                                fix: "if free is meant, 'free_executions' or a price of 0 says so; otherwise correct the percent")
        }
        guard let percent, valid else { return nil }
        let operation: RuleOperation = condition.map { .conditionalPercentOff(percent.value, $0) }
            ?? .conditionalPercentOff(percent.value, .all([]))
        var node = RuleNode(rule: "discount", operation: operation, location: percent.keyLocation, plugin: kind)
        // The compiler's lint (a condition that can never hold, two discounts that overlap) points here.
        node.conditionLocation = options.entry(Options.when.name)?.keyLocation
        return [node]
    }
}

/// `minimum_charge`: a billed execution is never charged less than `amount`. Executions that cost
/// nothing (inside an allowance, free, or failed and not billed) stay free.
public struct MinimumChargeRule: RuleKindPlugin {
    public let kind = "minimum_charge"
    public init() {}

    /// The rule's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public static let amount = PluginOption("amount", .money, required: true, "The minimum charge of an execution whose charge is above zero.", example: "0.01")
        public static let schema = OptionsSchema("minimum_charge: a billed execution costs at least this; free executions stay free.", declaring: [amount])
    }

    public var optionsSchema: OptionsSchema? { Options.schema }

    public func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
        guard let amount = options.read(Options.amount) else { return nil }
        return [RuleNode(rule: "minimum_charge", operation: .minimumCharge(amount.value), location: amount.keyLocation, plugin: kind)]
    }
}

/// `surcharge`: an extra price per unit of one meter (e.g. per inference call on a premium model),
/// added to the charge and rounded half-to-even.
public struct SurchargeRule: RuleKindPlugin {
    public let kind = "surcharge"
    public init() {}

    /// The rule's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public static let meter = PluginOption("meter", .id, required: true, "The meter (weighed by a metering in rules/).", example: "inference_calls")
        public static let perUnit = PluginOption("per_unit", .money, required: true, "Price per unit of the meter's reading.", example: "0.002")
        public static let schema = OptionsSchema("surcharge: an extra price per unit of one meter, added to the charge.", declaring: [meter, perUnit])
    }

    public var optionsSchema: OptionsSchema? { Options.schema }

    public func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
        let meter = options.read(Options.meter)
        let price = options.read(Options.perUnit)
        guard let meter, let price else { return nil }
        guard let index = context.meter(named: meter.value, at: meter.valueLocation, diagnostics: options.diagnostics) else { return nil }
        return [RuleNode(rule: "surcharge", operation: .meterSurcharge(meter: index, pricePerUnit: price.value), location: price.keyLocation, plugin: kind)]
    }
}

/// `free_executions`: the first `count` billable executions of each period cost nothing (they are
/// still metered, and count against an allowance).
public struct FreeExecutionsRule: RuleKindPlugin {
    public let kind = "free_executions"
    public init() {}

    /// The rule's options, declared once: read below, and described by `tariff schema`.
    public enum Options {
        public static let count = PluginOption("count", .integer(in: 1...1_000_000_000), required: true, "How many billable executions of each period are free (still metered); only on a plan with a period.", example: "3")
        public static let schema = OptionsSchema("free_executions: the first executions of each period are free (still metered).", declaring: [count])
    }

    public var optionsSchema: OptionsSchema? { Options.schema }

    public func lower(_ options: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
        guard let count = options.read(Options.count) else { return nil }
        return [RuleNode(rule: "free_executions", operation: .freeExecutions(count: Int64(count.value)), location: count.keyLocation, plugin: kind)]
    }
}

/// Reads a `when:` mapping into an `ExecutionCondition`.
enum ConditionReader {
    // The options of `when:`, declared once: read below, and described by `tariff schema`.
    enum Hours {
        static let from = PluginOption("from", .integer(in: 0...23), required: true, "The first hour.", example: "22")
        static let to = PluginOption("to", .integer(in: 0...24), required: true, "The hour after the last.", example: "6")
        static let schema = OptionsSchema("Local hours [from, to), wrapping past midnight when from > to.", declaring: [from, to])
    }
    enum Dates {
        static let from = PluginOption("from", .dateOrTimestamp, "The first instant.", example: "2026-12-01")
        static let to = PluginOption("to", .dateOrTimestamp, "The instant after the last.", example: "2027-01-01")
        static let schema = OptionsSchema("from <= ended_at < to (a date is midnight UTC); at least one bound.", declaring: [from, to],
                                          constraints: [["minProperties": 1]])
    }
    enum Meter {
        static let name = PluginOption("name", .id, required: true, "The meter.", example: "inference_calls")
        static let atLeast = PluginOption("at_least", .meterValue, required: true, "The reading is at least this.", example: "10")
        static let schema = OptionsSchema("A meter threshold.", declaring: [name, atLeast])
    }
    static let weekday = OptionSchema("weekday", .list(.weekday, minItems: 0), "The local day of ended_at is one of these (mon ... sun or full names).", defaultNote: "any day")
    static let hours = OptionSchema("hours", .mapping(Hours.schema), "The local hour of ended_at is in [from, to); {from: 0, to: 24} is the whole day, the same hour twice is an error.", defaultNote: "any hour")
    static let dates = OptionSchema("dates", .mapping(Dates.schema), "ended_at is in the range.", defaultNote: "any time")
    static let meter = OptionSchema("meter", .mapping(Meter.schema), "The meter reading is at least a threshold.")
    static let timezone = PluginOption("timezone", .timeZone, "The IANA zone weekdays and hours are read in, daylight saving time included.", example: "Europe/Paris")
    // Read as text and parsed below (`parseOffset`), with its own message.
    static let utcOffset = OptionSchema("utc_offset", .utcOffset, "A fixed offset weekdays and hours are read in (not with timezone).", default: "UTC", example: "+05:30")
    static let schema = OptionsSchema("Conditions on the execution; every one written must hold. Weekdays and hours are read on one clock: 'timezone' or 'utc_offset' (UTC without either).",
                                      declaring: [weekday, hours, dates, meter, timezone, utcOffset],
                                      constraints: [["not": ["required": ["timezone", "utc_offset"]]]])

    static func read(_ when: MappingReader, context: PlanLoweringContext) -> (condition: ExecutionCondition, valid: Bool) {
        let diagnostics = when.diagnostics
        var valid = true
        var clock = LocalClock.utc
        let offset = when.optional(utcOffset.name, .text)
        if let offset {
            if let seconds = parseOffset(offset.value) { clock = .utcOffset(seconds: seconds) } else {
                diagnostics.error("invalid-value", at: offset.valueLocation, "'\(offset.value)' is not a UTC offset such as +01:00 or -05:30")
                valid = false
            }
        }
        // A zone follows daylight saving time; its offsets are tabled here, at compile time.
        if let pair = when.entry(timezone.name) {
            if let offset {
                diagnostics.error("invalid-value", at: pair.keyLocation, "'when' has both 'utc_offset' (at \(offset.keyLocation)) and 'timezone': give one clock",
                                  fix: "keep 'timezone' to follow daylight saving time, or 'utc_offset' for a fixed offset")
                valid = false
            } else if let zone = when.read(timezone) {
                clock = .timeZone(zone.value)
            } else {
                valid = false
            }
        }
        var conditions: [ExecutionCondition] = []
        if let days = when.sequence(Self.weekday) {
            var mask: UInt8 = 0
            for day in days.value {
                guard let text = day.scalarText, let weekday = Weekday(name: text) else {
                    var message = "'\(day.scalarText ?? day.kindName)' is not a day of the week"
                    if let text = day.scalarText, let suggestion = Suggestion.closest(to: text, among: Weekday.allCases.map(\.shortName)) {
                        message += "; did you mean '\(suggestion)'?"
                    }
                    diagnostics.error("invalid-value", at: day.location, message, fix: "use mon, tue, wed, thu, fri, sat, sun")
                    valid = false
                    continue
                }
                mask |= 1 << UInt8(weekday.rawValue)
            }
            conditions.append(.weekdays(mask: mask, clock: clock))
        }
        if let hours = when.mapping(Self.hours) {
            let from = hours.read(Hours.from)
            let to = hours.read(Hours.to)
            hours.finish()
            if let from, let to {
                // [from, to) with to up to 24: `from: 0, to: 24` is the whole day; only the same
                // hour twice (`from: 5, to: 5`) is empty.
                if from.value == to.value {
                    diagnostics.error("invalid-value", at: to.valueLocation, "the hours range is empty: 'from' and 'to' are the same hour")
                    valid = false
                } else {
                    conditions.append(.hours(fromHour: from.value, toHour: to.value, clock: clock))
                }
            } else { valid = false }
        }
        if let dates = when.mapping(Self.dates) {
            let from = dates.read(Dates.from)
            let to = dates.read(Dates.to)
            dates.finish()
            if let from, let to, to.value <= from.value {
                diagnostics.error("invalid-value", at: to.valueLocation, "the date range ends before it starts")
                valid = false
            } else if from == nil, to == nil {
                diagnostics.error("missing-key", at: dates.location, "'dates' needs 'from', 'to' or both")
                valid = false
            } else {
                conditions.append(.dateRange(from: from?.value, to: to?.value))
            }
        }
        if let meter = when.mapping(Self.meter) {
            let name = meter.read(Meter.name)
            let threshold = meter.read(Meter.atLeast)
            meter.finish()
            if let name, let threshold, let index = context.meter(named: name.value, at: name.valueLocation, diagnostics: diagnostics) {
                conditions.append(.meterAtLeast(meter: index, threshold: threshold.value))
            } else { valid = false }
        }
        return (conditions.count == 1 ? conditions[0] : .all(conditions), valid)
    }

    /// `+01:00`, `-05:30`, `Z`, `UTC`.
    static func parseOffset(_ text: String) -> Int64? {
        if text == "Z" || text == "UTC" { return 0 }
        let bytes = Array(text.utf8)
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"), bytes[3] == UInt8(ascii: ":") else { return nil }
        func digit(_ i: Int) -> Int64? { bytes[i] >= 48 && bytes[i] <= 57 ? Int64(bytes[i] - 48) : nil }
        guard let h1 = digit(1), let h2 = digit(2), let m1 = digit(4), let m2 = digit(5) else { return nil }
        let hours = h1 * 10 + h2, minutes = m1 * 10 + m2
        guard hours <= 23, minutes <= 59 else { return nil }
        let seconds = hours * 3600 + minutes * 60
        return bytes[0] == UInt8(ascii: "-") ? -seconds : seconds
    }
}
