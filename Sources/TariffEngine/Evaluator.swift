import TariffGraph
import TariffCore

/// Receives each step of an evaluation. The fast path uses `NoTrace`, whose empty methods the
/// compiler removes entirely (the evaluator is generic, so it is specialised, not dynamic).
public protocol PricingTracer {
    mutating func meteredComputeUnits(_ computeUnits: ComputeUnits, exactFemtos: Int128)
    mutating func step(_ node: Int, input: ExactAmount, output: ExactAmount)
    /// A charge line (the lines of an execution add up to its charge).
    mutating func line(_ line: ChargeLine)
    /// A loaded rule failed at `node` and was skipped (the charge stays what it was).
    mutating func ruleSkipped(_ node: Int, reason: String)
}

extension PricingTracer {
    @inlinable public mutating func ruleSkipped(_ node: Int, reason: String) {}
}

/// The tracer of the batch hot path: records nothing, not even lines.
public struct NoTrace: PricingTracer {
    @inlinable public init() {}
    @inlinable public mutating func meteredComputeUnits(_ computeUnits: ComputeUnits, exactFemtos: Int128) {}
    @inlinable public mutating func step(_ node: Int, input: ExactAmount, output: ExactAmount) {}
    @inlinable public mutating func line(_ line: ChargeLine) {}
}

/// Collects the charge lines into inline storage (still no heap allocation).
public struct LineCollector: PricingTracer {
    public var lines = ChargeLines()
    @inlinable public init() {}
    @inlinable public mutating func meteredComputeUnits(_ computeUnits: ComputeUnits, exactFemtos: Int128) {}
    @inlinable public mutating func step(_ node: Int, input: ExactAmount, output: ExactAmount) {}
    @inlinable public mutating func line(_ line: ChargeLine) { lines.append(line) }
}

@usableFromInline let powersOfTen: [Int128] = (0...38).map { PowerOfTen.int128($0) }

extension CompiledPlan {
    /// The compute units of a reading set: `ceil_to(precision, sum(weight[m] * meter[m]))`, in milli-CU.
    /// nil when beyond `ComputeUnits.maximum` (a documented limit, never a trap).
    @inlinable
    func computeUnits(_ meters: MeterReadings) -> (millis: Int64, femtos: Int128)? {
        var femtos: Int128 = 0
        for weight in weights {
            // weight <= 10^15 nanos and reading <= 10^18 micros: each product < 10^33, 16 of them < 1.7e38.
            let reading = max(0, meters.values[Int(weight.meter)])
            femtos &+= Int128(weight.nanos) &* Int128(reading)
        }
        let steps: Int128
        if let small = Int64(exactly: femtos), let divisor = Int64(exactly: precisionFemtos) {
            // The common case fits 64 bits, where division is several times cheaper.
            steps = Int128(small.divided(by: divisor, rounding: .up))
        } else {
            steps = femtos.divided(by: precisionFemtos, rounding: .up)
        }
        let (millis, overflow) = steps.multipliedReportingOverflow(by: Int128(precisionMillis))
        guard !overflow, millis <= Int128(ComputeUnits.maximum.millis) else { return nil }
        return (Int64(millis), femtos)
    }

    /// Prices one execution against `state`. Allocation-free; traps on nothing.
    @inlinable
    func evaluate<Tracer: PricingTracer>(_ execution: ExecutionInput, state: PeriodState, tracer: inout Tracer) -> PricingResult {
        let lines = ChargeLines.empty
        guard let metered = computeUnits(execution.meters) else {
            return PricingResult(computeUnits: .zero, charge: .zero, split: .zero, refusal: .outOfRange, state: state, lines: lines)
        }
        let cuMillis = metered.millis
        tracer.meteredComputeUnits(ComputeUnits(millis: cuMillis), exactFemtos: metered.femtos)
        var newState = state
        if execution.failed && !billFailed {
            // Free, consumes nothing; still counts in SLA availability.
            newState.failed &+= 1
            return PricingResult(computeUnits: ComputeUnits(millis: cuMillis), charge: .zero, split: .zero, refusal: nil, state: newState, lines: lines)
        }
        var units: Int128 = 0
        var scale = 0
        var lastRounded: Int64 = 0
        var outOfRange = false
        // A negative period state (a caller's bug) reads as zero rather than wrapping into a trap.
        let usedMillis = max(0, state.usedComputeUnits.millis)
        for index in instructions.indices {
            let inputUnits = units, inputScale = scale
            switch instructions[index] {
            case .fee(let picos):
                units = picos
                scale = 12
            case .allowanceOverage(let allowanceMillis, let pricePicos):
                let remaining = max(0, allowanceMillis &- min(usedMillis, allowanceMillis))
                let covered = min(cuMillis, remaining)
                let (product, overflow) = Int128(cuMillis - covered).multipliedReportingOverflow(by: pricePicos)
                outOfRange = outOfRange || overflow
                units = product
                scale = 15
            case .tiers(let start, let count):
                let low = usedMillis
                let high = usedMillis > Int64.max - cuMillis ? Int64.max : usedMillis + cuMillis
                var total: Int128 = 0
                for tierIndex in Int(start)..<Int(start + count) {
                    let tier = tiers[tierIndex]
                    let overlap = min(high, tier.upperMillis) - max(low, tier.lowerMillis)
                    if overlap > 0 {
                        let (product, overflow) = Int128(overlap).multipliedReportingOverflow(by: tier.pricePicos)
                        let (sum, sumOverflow) = total.addingReportingOverflow(product)
                        outOfRange = outOfRange || overflow || sumOverflow
                        total = sum
                    }
                }
                units = total
                scale = 15
            case .percentOff(let remainingPPM):
                let (product, overflow) = units.multipliedReportingOverflow(by: Int128(remainingPPM))
                outOfRange = outOfRange || overflow
                units = product
                scale += 6
            case .round:
                units = Int128(lastRounded)
                scale = 6
                tracer.step(index, input: ExactAmount(units: inputUnits, scale: inputScale), output: ExactAmount(units: units, scale: scale))
                continue
            case .cap(let picos):
                if Self.compare(units, scale, picos, 12) > 0 {
                    units = picos
                    scale = 12
                }
            case .spendCap(let picos):
                let spentPicos = Int128(state.usageCharges.micros) * 1_000_000
                if spentPicos >= picos {
                    return PricingResult(computeUnits: ComputeUnits(millis: cuMillis), charge: .zero, split: .zero, refusal: .spendCap, state: state, lines: lines)
                }
                let remaining = picos - spentPicos
                if Self.compare(units, scale, remaining, 12) > 0 {
                    units = remaining
                    scale = 12
                }
            case .conditionalPercentOff(let remainingPPM, let condition):
                if holds(condition, execution) {
                    units = Int128(lastRounded) * Int128(remainingPPM)
                    scale = 12
                }
            case .minimumCharge(let picos):
                if lastRounded > 0 && Self.compare(units, scale, picos, 12) < 0 {
                    units = picos
                    scale = 12
                }
            case .surcharge(let meter, let pricePicos):
                let reading = max(0, execution.meters.values[Int(meter)])
                let (product, overflow) = Int128(reading).multipliedReportingOverflow(by: pricePicos)
                outOfRange = outOfRange || overflow
                // lastRounded (10^-6) + reading (10^-6) x price (10^-12) at 10^-18.
                units = Int128(lastRounded) &* 1_000_000_000_000 &+ product
                scale = 18
            case .freeExecutions(let count):
                if state.executions < count {
                    units = 0
                    scale = 6
                }
            case .external(let externalIndex):
                switch callExternal(externals[Int(externalIndex)], charge: lastRounded, cuMillis: cuMillis, usedMillis: usedMillis,
                                    execution: execution, state: state) {
                case .charge(let micros):
                    units = Int128(micros)
                    scale = 6
                case .refuse:
                    var refused = PricingResult(computeUnits: ComputeUnits(millis: cuMillis), charge: .zero, split: .zero, refusal: .plugin, state: state, lines: lines)
                    refused.refusingNode = Int32(index)
                    return refused
                case .failed(let reason):
                    // Skipped: the charge stays what it was before this rule, never free.
                    tracer.ruleSkipped(index, reason: reason)
                }
            }
            guard let rounded = Self.roundedMicros(units, scale) else {
                outOfRange = true
                break
            }
            if index == 0 || rounded != lastRounded {
                tracer.line(ChargeLine(node: Int32(index), amount: Money(micros: rounded &- lastRounded)))
            }
            lastRounded = rounded
            tracer.step(index, input: ExactAmount(units: inputUnits, scale: inputScale), output: ExactAmount(units: units, scale: scale))
        }
        if outOfRange {
            return PricingResult(computeUnits: ComputeUnits(millis: cuMillis), charge: .zero, split: .zero, refusal: .outOfRange, state: state, lines: lines)
        }
        let charge = Money(micros: lastRounded)
        newState.usedComputeUnits = state.usedComputeUnits.saturatingAdding(ComputeUnits(millis: cuMillis))
        let (spend, spendOverflow) = state.usageCharges.micros.addingReportingOverflow(lastRounded)
        newState.usageCharges = Money(micros: spendOverflow ? Int64.max : spend)
        newState.executions &+= 1
        if execution.failed { newState.failed &+= 1 } else { newState.succeeded &+= 1 }
        return PricingResult(computeUnits: ComputeUnits(millis: cuMillis), charge: charge, split: split.allocate(charge),
                             refusal: nil, state: newState, lines: lines)
    }

    /// Calls a loaded rule with the ABI's inputs (docs/plan-authoring.md), in a buffer on the stack.
    @inlinable
    func callExternal(_ rule: ExternalRule, charge: Int64, cuMillis: Int64, usedMillis: Int64, execution: ExecutionInput, state: PeriodState) -> ExternalRuleOutcome {
        let count = 7 + rule.meters.count + rule.options.count
        return withUnsafeTemporaryAllocation(of: Int64.self, capacity: count) { buffer in
            buffer[0] = charge
            buffer[1] = cuMillis
            buffer[2] = execution.failed ? 1 : 0
            buffer[3] = rule.readsPeriod ? usedMillis : 0
            buffer[4] = rule.readsPeriod ? max(0, state.usageCharges.micros) : 0
            buffer[5] = rule.readsPeriod ? max(0, state.executions) : 0
            buffer[6] = execution.endedAt.nanosecondsSinceEpoch
            var position = 7
            for meter in rule.meters {
                buffer[position] = execution.meters[meter].micros
                position += 1
            }
            for option in rule.options {
                buffer[position] = option
                position += 1
            }
            return rule.function.evaluate(UnsafeBufferPointer(buffer))
        }
    }

    @inlinable
    func holds(_ condition: Int32, _ execution: ExecutionInput) -> Bool {
        var index = Int(condition)
        while index >= 0 && index < conditions.count {
            let part = conditions[index]
            var offset = part.utcOffsetSeconds
            if part.zoneCount > 0 {
                // A time zone: the offset in force at ended_at, by binary search in the plan's flat table.
                let entry = UTCOffsetTable.entryIndex(at: execution.endedAt.nanosecondsSinceEpoch, starts: zoneStartNanoseconds,
                                                      from: Int(part.zoneStart), count: Int(part.zoneCount))
                offset = Int64(zoneOffsetSeconds[entry])
            }
            if !part.holds(endedAt: execution.endedAt, meters: execution.meters, offsetSeconds: offset) { return false }
            index = Int(part.next)
        }
        return true
    }

    /// Half-even rounding to micro-units; nil if the result does not fit `Int64`.
    @inlinable
    static func roundedMicros(_ units: Int128, _ scale: Int) -> Int64? {
        if scale == 6 { return Int64(exactly: units) }
        if scale < 6 { return Int64(exactly: units * powersOfTen[6 - scale]) }
        let divisor = powersOfTen[scale - 6]
        // Most amounts fit 64 bits: a 64-bit division is several times cheaper than a 128-bit one.
        if let small = Int64(exactly: units), let smallDivisor = Int64(exactly: divisor) {
            return small.divided(by: smallDivisor, rounding: .halfEven)
        }
        return Int64(exactly: units.divided(by: divisor, rounding: .halfEven))
    }

    /// Compares two exact values at different scales (scales are at most 24 apart, values bounded).
    @inlinable
    static func compare(_ a: Int128, _ aScale: Int, _ b: Int128, _ bScale: Int) -> Int {
        var left = a, right = b
        if aScale < bScale {
            let (value, overflow) = a.multipliedReportingOverflow(by: powersOfTen[bScale - aScale])
            if overflow { return a < 0 ? -1 : 1 }
            left = value
        } else if bScale < aScale {
            let (value, overflow) = b.multipliedReportingOverflow(by: powersOfTen[aScale - bScale])
            if overflow { return b < 0 ? 1 : -1 }
            right = value
        }
        return left < right ? -1 : (left > right ? 1 : 0)
    }
}
