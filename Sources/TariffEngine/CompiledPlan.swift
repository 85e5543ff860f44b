import TariffGraph
import TariffCore

/// One step of a compiled execution pipeline. Payloads are plain integers: evaluation is a
/// `switch` over trivial values, with no reference counting, no existentials, no look-ups.
@usableFromInline
enum Instruction: Sendable {
    case fee(picos: Int128)
    case allowanceOverage(allowanceMillis: Int64, pricePicos: Int128)
    case tiers(start: Int32, count: Int32)
    case percentOff(remainingPartsPerMillion: Int64)
    case round
    case cap(picos: Int128)
    case spendCap(picos: Int128)
    case conditionalPercentOff(remainingPartsPerMillion: Int64, condition: Int32)
    case minimumCharge(picos: Int128)
    case surcharge(meter: Int32, pricePicos: Int128)
    case freeExecutions(count: Int64)
    /// A loaded rule (WebAssembly): index into the plan's `externals`.
    case external(index: Int32)
}

/// A graduated tier flattened for evaluation: `[lowerMillis, upperMillis)` at `pricePicos` per CU.
@usableFromInline
struct FlatTier: Sendable {
    @usableFromInline var lowerMillis: Int64
    @usableFromInline var upperMillis: Int64
    @usableFromInline var pricePicos: Int128
}

/// A condition flattened into one struct of optional parts (unused parts accept everything).
@usableFromInline
struct FlatCondition: Sendable {
    @usableFromInline var weekdayMask: UInt8 = 0xFF
    @usableFromInline var fromHour: Int64 = 0
    @usableFromInline var toHour: Int64 = 24
    /// The clock of the weekday and hours parts: a fixed offset when `zoneCount` is 0, else the
    /// entries `zoneStart ..< zoneStart + zoneCount` of the plan's time zone table.
    @usableFromInline var utcOffsetSeconds: Int64 = 0
    @usableFromInline var zoneStart: Int32 = 0
    @usableFromInline var zoneCount: Int32 = 0
    @usableFromInline var fromNanoseconds: Int64 = .min
    @usableFromInline var toNanoseconds: Int64 = .max
    @usableFromInline var meter: Int32 = -1
    @usableFromInline var meterThresholdMicros: Int64 = 0
    /// An `all` of conditions with several clock parts in different clocks cannot be flattened:
    /// those are compiled as separate conditions chained through `next`.
    @usableFromInline var next: Int32 = -1

    @usableFromInline var usesClock: Bool { weekdayMask != 0xFF || fromHour != 0 || toHour != 24 }

    /// Whether the condition holds; `offsetSeconds` is the clock's offset at `endedAt` (the caller
    /// looks it up, in the plan's zone table when the clock is a time zone).
    @inlinable
    func holds(endedAt: Timestamp, meters: MeterReadings, offsetSeconds: Int64) -> Bool {
        if endedAt.nanosecondsSinceEpoch < fromNanoseconds || endedAt.nanosecondsSinceEpoch >= toNanoseconds { return false }
        if meter >= 0 && meters.values[Int(meter)] < meterThresholdMicros { return false }
        if usesClock {
            // Local time on the rule's clock, through TariffCore's calendar (no second copy of it).
            let local = endedAt.adding(nanoseconds: offsetSeconds &* 1_000_000_000) ?? endedAt
            if weekdayMask & (1 << UInt8(local.civilDate.weekday.rawValue)) == 0 { return false }
            let hour = local.secondOfDay / 3_600
            if fromHour < toHour {
                if hour < fromHour || hour >= toHour { return false }
            } else if hour < fromHour && hour >= toHour {
                return false
            }
        }
        return true
    }
}

/// A plan version compiled for evaluation: flat instructions, flat tiers, flat conditions,
/// metering weights by meter index, the split.
///
/// A final class: pricing borrows it through one reference instead of copying a struct of arrays.
@usableFromInline
final class CompiledPlan: Sendable {
    @usableFromInline let definition: PlanDefinition
    @usableFromInline let instructions: [Instruction]
    @usableFromInline let tiers: [FlatTier]
    @usableFromInline let conditions: [FlatCondition]
    /// The UTC offset tables of the time zones the plan's conditions read, one after the other
    /// (each condition points at its slice): transition instants and the offsets from them.
    @usableFromInline let zoneStartNanoseconds: [Int64]
    @usableFromInline let zoneOffsetSeconds: [Int32]
    /// (meter index, weight in 10^-9 CU per meter unit).
    @usableFromInline let weights: [(meter: Int32, nanos: Int64)]
    /// The metering precision in 10^-15 CU (the scale of weight x reading).
    @usableFromInline let precisionFemtos: Int128
    @usableFromInline let precisionMillis: Int64
    @usableFromInline let split: SplitRule
    @usableFromInline let billFailed: Bool
    /// The loaded rules the pipeline calls (`.external(index:)`).
    @usableFromInline let externals: [ExternalRule]

    init(_ definition: PlanDefinition) {
        self.definition = definition
        var instructions: [Instruction] = []
        var tiers: [FlatTier] = []
        var conditions: [FlatCondition] = []
        var zones = ZoneTables()
        var externals: [ExternalRule] = []
        for node in definition.executionNodes {
            switch node.operation {
            case .perExecutionFee(let fee): instructions.append(.fee(picos: fee.picos))
            case .allowanceOverage(let allowance, let price):
                instructions.append(.allowanceOverage(allowanceMillis: allowance.millis, pricePicos: price.picos))
            case .graduatedTiers(let list):
                let start = Int32(tiers.count)
                var lower: Int64 = 0
                for tier in list {
                    let upper = tier.upTo?.millis ?? Int64.max
                    tiers.append(FlatTier(lowerMillis: lower, upperMillis: upper, pricePicos: tier.price.picos))
                    lower = upper
                }
                instructions.append(.tiers(start: start, count: Int32(list.count)))
            case .percentOff(let percent):
                instructions.append(.percentOff(remainingPartsPerMillion: Percent.partsPerWhole - percent.partsPerMillion))
            case .roundHalfEven: instructions.append(.round)
            // A cap finer than the ledger's micro-units is applied as the largest micro-unit amount
            // at or below it: capping at 0.0000135 and then rounding half-even would bill 0.000014,
            // more than the cap (caps are non-negative: the verifier checked).
            case .capPerExecution(let cap): instructions.append(.cap(picos: cap.picos - cap.picos % 1_000_000))
            case .spendCap(let cap): instructions.append(.spendCap(picos: cap.picos - cap.picos % 1_000_000))
            case .conditionalPercentOff(let percent, let condition):
                let index = Self.flatten(condition, into: &conditions, zones: &zones)
                instructions.append(.conditionalPercentOff(remainingPartsPerMillion: Percent.partsPerWhole - percent.partsPerMillion, condition: index))
            case .minimumCharge(let amount): instructions.append(.minimumCharge(picos: amount.picos))
            case .meterSurcharge(let meter, let price): instructions.append(.surcharge(meter: Int32(meter.rawValue), pricePicos: price.picos))
            case .freeExecutions(let count): instructions.append(.freeExecutions(count: count))
            case .external(let rule):
                instructions.append(.external(index: Int32(externals.count)))
                externals.append(rule)
            case .periodFee, .commitmentShortfall, .slaCredit:
                // Period operations never reach the execution pipeline (the compiler keeps them apart);
                // a third-party plugin that puts one there gets a no-op rather than a trap.
                instructions.append(.round)
            }
        }
        self.instructions = instructions
        self.externals = externals
        self.tiers = tiers
        self.conditions = conditions
        zoneStartNanoseconds = zones.starts
        zoneOffsetSeconds = zones.offsets
        weights = definition.metering.weights.map { (Int32($0.meter.rawValue), $0.weight.nanos) }
        precisionMillis = definition.metering.precision.millis
        precisionFemtos = Int128(definition.metering.precision.millis) * 1_000_000_000_000
        split = definition.split.rule
        billFailed = definition.billFailed
    }

    /// The time zone tables of one plan, appended once per zone.
    private struct ZoneTables {
        var starts: [Int64] = []
        var offsets: [Int32] = []
        var slices: [String: (start: Int32, count: Int32)] = [:]

        /// The fixed offset, zone start and zone count a flat condition stores for `clock`.
        mutating func encode(_ clock: LocalClock) -> (offset: Int64, zoneStart: Int32, zoneCount: Int32) {
            switch clock {
            case .utcOffset(let seconds): return (seconds, 0, 0)
            case .timeZone(let table):
                if let slice = slices[table.identifier] { return (0, slice.start, slice.count) }
                let slice = (start: Int32(starts.count), count: Int32(table.startNanoseconds.count))
                starts += table.startNanoseconds
                offsets += table.offsetSeconds
                slices[table.identifier] = slice
                return (0, slice.start, slice.count)
            }
        }
    }

    /// Flattens a condition; returns its index. Parts in `all` merge into one struct when they do not clash.
    private static func flatten(_ condition: ExecutionCondition, into table: inout [FlatCondition], zones: inout ZoneTables) -> Int32 {
        var chain: [FlatCondition] = [FlatCondition()]
        for part in condition.parts {
            var placed = false
            for i in chain.indices where merge(part, into: &chain[i], zones: &zones) { placed = true; break }
            if !placed {
                var fresh = FlatCondition()
                _ = merge(part, into: &fresh, zones: &zones)
                chain.append(fresh)
            }
        }
        let first = Int32(table.count)
        for (i, var flat) in chain.enumerated() {
            flat.next = i + 1 < chain.count ? first + Int32(i) + 1 : -1
            table.append(flat)
        }
        return first
    }

    private static func merge(_ part: ExecutionCondition, into flat: inout FlatCondition, zones: inout ZoneTables) -> Bool {
        func sameClock(_ encoded: (offset: Int64, zoneStart: Int32, zoneCount: Int32)) -> Bool {
            !flat.usesClock || (flat.utcOffsetSeconds, flat.zoneStart, flat.zoneCount) == encoded
        }
        func setClock(_ encoded: (offset: Int64, zoneStart: Int32, zoneCount: Int32)) {
            (flat.utcOffsetSeconds, flat.zoneStart, flat.zoneCount) = encoded
        }
        switch part {
        case .weekdays(let mask, let clock):
            let encoded = zones.encode(clock)
            guard flat.weekdayMask == 0xFF, sameClock(encoded) else { return false }
            flat.weekdayMask = mask
            setClock(encoded)
        case .hours(let from, let to, let clock):
            let encoded = zones.encode(clock)
            guard flat.fromHour == 0, flat.toHour == 24, sameClock(encoded) else { return false }
            flat.fromHour = Int64(from)
            flat.toHour = Int64(to)
            setClock(encoded)
        case .dateRange(let from, let to):
            guard flat.fromNanoseconds == .min, flat.toNanoseconds == .max else { return false }
            flat.fromNanoseconds = from?.nanosecondsSinceEpoch ?? .min
            flat.toNanoseconds = to?.nanosecondsSinceEpoch ?? .max
        case .meterAtLeast(let meter, let threshold):
            guard flat.meter < 0 else { return false }
            flat.meter = Int32(meter.rawValue)
            flat.meterThresholdMicros = threshold.micros
        case .all:
            return false
        }
        return true
    }
}
