import TariffCore

/// Stage 6: what a pricing reviewer checks across a plan's rules once every plan is read: a
/// discount whose condition can never hold while its version prices executions
/// (`unreachable-rule`), and two discounts that can apply to the same execution
/// (`overlapping-discounts`, they compound). Warnings: the catalog still compiles.
///
/// Works on the lowered nodes (`conditionalPercentOff`), so a third-party rule kind that lowers
/// to a conditional discount is checked like the shipped `discount`.
struct LintStage: CompilerStage {
    let name = "lint"

    func run(_ state: inout CompilationState) {
        let windows = Self.lifetimes(state.plans.map(\.definition))
        var solver = CachingSolver()
        for (index, read) in state.plans.enumerated() {
            guard let window = windows[index] else { continue }
            lintDiscounts(read.definition, window: window, solver: &solver, diagnostics: state.diagnostics)
        }
    }

    /// Catalogs repeat themselves (versions of a plan, generated plans): the same conditions over
    /// the same lifetime are solved once per compilation.
    struct CachingSolver {
        struct Question: Hashable {
            var conditions: [ExecutionCondition]
            var window: Range<Int64>
        }
        var answers: [Question: Int64?] = [:]

        mutating func witness(_ conditions: [ExecutionCondition], in window: Range<Int64>) -> Int64? {
            let question = Question(conditions: conditions, window: window)
            if let known = answers[question] { return known }
            let answer = ConditionSolver.witness(conditions, in: window)
            answers[question] = answer
            return answer
        }
    }

    /// The instants `[from, to)` at which a version can price an execution (nil when empty, e.g. two
    /// versions with one `effective`, an error already reported). From its `effective` (or the
    /// beginning of time) until the next version takes over: at the next `effective` for a
    /// per-execution plan; for a plan billed per period, a period that started just before the next
    /// `effective` still runs on this version for up to one period (31 days for a month, 366 for a year).
    static func lifetimes(_ plans: [PlanDefinition]) -> [Range<Int64>?] {
        var windows = [Range<Int64>?](repeating: nil, count: plans.count)
        let byID = Dictionary(grouping: plans.indices, by: { plans[$0].id })
        for indices in byID.values {
            let ordered = indices.sorted {
                (plans[$0].effective?.nanosecondsSinceEpoch ?? .min, plans[$0].version) < (plans[$1].effective?.nanosecondsSinceEpoch ?? .min, plans[$1].version)
            }
            for (position, index) in ordered.enumerated() {
                let plan = plans[index]
                let from = plan.effective?.nanosecondsSinceEpoch ?? .min
                var to = Int64.max
                if position + 1 < ordered.count, let next = plans[ordered[position + 1]].effective?.nanosecondsSinceEpoch {
                    let overhangDays: Int64 = switch plan.period {
                    case nil: 0
                    case .week: 7
                    case .month: 31
                    case .year: 366
                    }
                    let (end, overflow) = next.addingReportingOverflow(overhangDays * ConditionSolver.nanosecondsPerDay)
                    to = overflow ? .max : end
                }
                if from < to { windows[index] = from..<to }
            }
        }
        return windows
    }

    private func lintDiscounts(_ plan: PlanDefinition, window: Range<Int64>, solver: inout CachingSolver, diagnostics: DiagnosticSink) {
        var reachable: [(node: RuleNode, percent: Percent, condition: ExecutionCondition)] = []
        for node in plan.executionNodes {
            guard case .conditionalPercentOff(let percent, let condition) = node.operation, percent.partsPerMillion > 0 else { continue }
            let location = node.conditionLocation ?? node.location
            guard solver.witness([condition], in: window) != nil else {
                diagnostics.warning("unreachable-rule", at: location,
                                    "this \(node.rule)'s 'when' can never hold while version \(plan.version) of plan '\(plan.id)' prices executions (\(Self.describe(window))): \(Self.reason(condition, window))",
                                    fix: "correct the condition's dates, weekdays or hours, or remove the rule")
                continue
            }
            // One diagnostic per discount: against the first earlier discount it can coincide with.
            for earlier in reachable {
                guard let instant = solver.witness([earlier.condition, condition], in: window) else { continue }
                let compound = Self.compound(earlier.percent, percent)
                diagnostics.warning("overlapping-discounts", at: location,
                                    "this \(node.rule) and the one at \(earlier.node.conditionLocation ?? earlier.node.location) can apply to the same execution (e.g. one ending at \(Timestamp(nanosecondsSinceEpoch: instant))): \(earlier.percent) then \(percent) compound to \(compound) off",
                                    fix: "if both are meant, keep them (they multiply); otherwise make the 'when' conditions exclude each other (other weekdays, hours or dates)")
                break
            }
            reachable.append((node, percent, condition))
        }
    }

    /// `1 - (1 - a)(1 - b)` exactly, as a percent with up to 10 fractional digits.
    static func compound(_ a: Percent, _ b: Percent) -> String {
        let whole = Int128(Percent.partsPerWhole)
        // Parts per 10^12 of the whole: the product of two parts-per-million.
        let remaining = (whole - Int128(a.partsPerMillion)) * (whole - Int128(b.partsPerMillion))
        let off = whole * whole - remaining
        // A percent is parts per 10^12 divided by 10^10.
        return DecimalText.formatTrimmed(off, fractionalDigits: 10) + "%"
    }

    static func describe(_ window: Range<Int64>) -> String {
        let from = window.lowerBound == .min ? "from the beginning of time" : "from \(Timestamp(nanosecondsSinceEpoch: window.lowerBound))"
        let to = window.upperBound == .max ? "on" : "until \(Timestamp(nanosecondsSinceEpoch: window.upperBound))"
        return "\(from) \(to)"
    }

    /// Why a condition never holds, in the author's terms.
    static func reason(_ condition: ExecutionCondition, _ window: Range<Int64>) -> String {
        for part in condition.parts {
            if case .weekdays(0, _) = part { return "'weekday' lists no day" }
        }
        for part in condition.parts {
            if case .dateRange(let from, let to) = part {
                let start = max(from?.nanosecondsSinceEpoch ?? .min, window.lowerBound)
                let end = min(to?.nanosecondsSinceEpoch ?? .max, window.upperBound)
                if start >= end { return "its dates fall outside that time" }
            }
        }
        return "none of its instants falls on a listed weekday at a listed hour"
    }
}

/// Decides whether rule conditions can hold together, and finds the first instant they do.
///
/// Meter thresholds can always be met (a reading may be as large as any threshold), so only the
/// clock parts (weekdays, hours, each on its own clock) and the date ranges matter. Between two
/// consecutive "critical" instants (a local hour boundary of one of the clocks, a zone's offset
/// transition) every clock part keeps its truth value, so checking those instants alone is exact.
/// Long stretches are cut short: with every offset constant the pattern repeats every week, so
/// 8 days of a stretch show everything it can show.
enum ConditionSolver {
    static let nanosecondsPerHour: Int64 = 3_600_000_000_000
    static let nanosecondsPerDay: Int64 = 24 * nanosecondsPerHour
    /// Past one week, a stretch of constant offsets repeats itself; 8 days leaves a margin.
    static let periodicStretch: Int64 = 8 * nanosecondsPerDay

    /// The first instant in `window` at which every condition holds (meters aside), or nil.
    static func witness(_ conditions: [ExecutionCondition], in window: Range<Int64>) -> Int64? {
        var from = window.lowerBound, to = window.upperBound
        var clockParts: [ExecutionCondition] = []
        var clocks: [LocalClock] = []
        var weekdays: UInt8 = 0xFF
        var hours: UInt32 = (1 << 24) - 1
        for part in conditions.flatMap(\.parts) {
            switch part {
            case .dateRange(let start, let end):
                from = max(from, start?.nanosecondsSinceEpoch ?? .min)
                to = min(to, end?.nanosecondsSinceEpoch ?? .max)
            case .weekdays(let mask, let clock):
                clockParts.append(part)
                if !clocks.contains(clock) { clocks.append(clock) }
                weekdays &= mask
            case .hours(let start, let end, let clock):
                clockParts.append(part)
                if !clocks.contains(clock) { clocks.append(clock) }
                hours &= hourMask(start, end)
            case .meterAtLeast, .all:
                continue
            }
        }
        guard from < to else { return nil }
        if clockParts.isEmpty { return from }
        // On one clock, no common weekday or no common hour can never hold, whatever the dates.
        if clocks.count == 1, weekdays & 0xFE == 0 || hours == 0 { return nil }
        // Unbounded below: before 1970 every offset is constant (zones are tabled from 1970), so the
        // stretch starting at 1970-01-01 shows the same patterns.
        if from == .min {
            let (earlier, overflow) = to.subtractingReportingOverflow(periodicStretch)
            from = to > periodicStretch ? 0 : (overflow ? .min : earlier)
        }
        // Stretches of constant offsets, one after the other. Two complete stretches (8 days or
        // more) with the same offsets show the same patterns, so each combination is scanned once:
        // a zone pair's 130 years of daylight saving time come down to a few combinations.
        var exhausted: [[Int64]] = []
        var instant = from
        while instant < to {
            var offsets: [Int64] = []
            var transition = Int64.max
            for clock in clocks {
                offsets.append(clock.offsetSeconds(at: Timestamp(nanosecondsSinceEpoch: instant)))
                if case .timeZone(let table) = clock {
                    let entry = table.entryIndex(at: instant)
                    if entry + 1 < table.startNanoseconds.count { transition = min(transition, table.startNanoseconds[entry + 1]) }
                }
            }
            let stretchEnd = min(transition, to)
            let (scanLimit, overflow) = instant.addingReportingOverflow(periodicStretch)
            let complete = !overflow && scanLimit <= stretchEnd
            if !(complete && exhausted.contains(offsets)) {
                if let found = scan(clockParts, clocks: clocks, offsets: offsets, from: instant, to: complete ? scanLimit : stretchEnd) { return found }
                if complete { exhausted.append(offsets) }
            }
            guard stretchEnd < to else { return nil }
            instant = stretchEnd
        }
        return nil
    }

    /// The first instant of `[from, to)` at which every clock part holds, the clocks at fixed
    /// `offsets` (seconds) throughout: checked at `from` and at each local hour boundary after it.
    private static func scan(_ parts: [ExecutionCondition], clocks: [LocalClock], offsets: [Int64], from: Int64, to: Int64) -> Int64? {
        var instant = from
        while instant < to {
            if parts.allSatisfy({ holds($0, at: instant, offset: offsets[clocks.firstIndex(of: clock(of: $0)) ?? 0]) }) { return instant }
            var next = Int64.max
            for offset in offsets { next = min(next, nextHourBoundary(after: instant, offsetSeconds: offset)) }
            guard next > instant else { return nil }
            instant = next
        }
        return nil
    }

    private static func clock(of part: ExecutionCondition) -> LocalClock {
        switch part {
        case .weekdays(_, let clock), .hours(_, _, let clock): clock
        default: .utc
        }
    }

    /// Bits 0...23: the hours of `[from, to)`, wrapping past midnight when `from > to`.
    static func hourMask(_ from: Int, _ to: Int) -> UInt32 {
        var mask: UInt32 = 0
        for hour in 0..<24 where from < to ? (hour >= from && hour < to) : (hour >= from || hour < to) { mask |= 1 << UInt32(hour) }
        return mask
    }

    /// Whether a weekday or hours part holds at `instant` on a clock at `offset` seconds east of UTC.
    static func holds(_ part: ExecutionCondition, at instant: Int64, offset: Int64) -> Bool {
        let (local, overflow) = instant.addingReportingOverflow(offset * 1_000_000_000)
        guard !overflow else { return false }
        let time = Timestamp(nanosecondsSinceEpoch: local)
        switch part {
        case .weekdays(let mask, _):
            return mask & (1 << UInt8(time.civilDate.weekday.rawValue)) != 0
        case .hours(let from, let to, _):
            return hourMask(from, to) & (1 << UInt32(time.secondOfDay / 3_600)) != 0
        default:
            return true
        }
    }

    /// The next instant after `instant` at which local time at `offsetSeconds` is a whole hour.
    static func nextHourBoundary(after instant: Int64, offsetSeconds: Int64) -> Int64 {
        let offset = offsetSeconds * 1_000_000_000
        let (local, overflow) = instant.addingReportingOverflow(offset)
        guard !overflow else { return .max }
        let hour = local / nanosecondsPerHour - (local % nanosecondsPerHour < 0 ? 1 : 0)
        let (boundary, overflow2) = (hour + 1).multipliedReportingOverflow(by: nanosecondsPerHour)
        guard !overflow2 else { return .max }
        let (result, overflow3) = boundary.subtractingReportingOverflow(offset)
        return overflow3 || result <= instant ? .max : result
    }
}
