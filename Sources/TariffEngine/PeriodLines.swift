import TariffGraph
import TariffCore

/// A line billed at a period boundary: a fee at the start, a shortfall or SLA credit at the end.
public struct PeriodLine: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case fee
        case shortfall
        case slaCredit = "sla_credit"
    }
    public var kind: Kind
    public var amount: Money
    public var split: SplitShares
    /// Index into the plan's `periodNodes`.
    public var node: Int
    public init(kind: Kind, amount: Money, split: SplitShares, node: Int) {
        self.kind = kind
        self.amount = amount
        self.split = split
        self.node = node
    }
}

extension CompiledCatalog {
    /// The lines charged when a period of `plan` starts (the fee, rounded half-even; none when zero).
    public func periodStartLines(_ plan: PlanHandle) -> [PeriodLine] {
        guard contains(plan) else { return [] }
        let compiled = plans[Int(plan.index)]
        var lines: [PeriodLine] = []
        for (index, node) in compiled.definition.periodNodes.enumerated() {
            guard case .periodFee(let fee) = node.operation, let amount = fee.exact.roundedToMoney(.halfEven), amount.micros != 0 else { continue }
            lines.append(PeriodLine(kind: .fee, amount: amount, split: compiled.split.allocate(amount), node: index))
        }
        return lines
    }

    /// The lines at a period's end (plans.md): the commitment shortfall over `fee + usage`, then the
    /// SLA credit over `fee + usage + shortfall` for the band measured availability falls under.
    /// `fees` is what the period's start lines charged. Zero lines are not emitted.
    public func periodEndLines(_ plan: PlanHandle, state: PeriodState, fees: Money) -> [PeriodLine] {
        guard contains(plan) else { return [] }
        let compiled = plans[Int(plan.index)]
        var lines: [PeriodLine] = []
        let billed = Int128(fees.micros) + Int128(state.usageCharges.micros)
        var shortfall: Int128 = 0
        for (index, node) in compiled.definition.periodNodes.enumerated() {
            switch node.operation {
            case .commitmentShortfall(let commitment):
                let exact = commitment.picos - billed * 1_000_000
                guard exact > 0, let amount = ExactAmount(units: exact, scale: 12).roundedToMoney(.halfEven), amount.micros != 0 else { continue }
                shortfall = Int128(amount.micros)
                lines.append(PeriodLine(kind: .shortfall, amount: amount, split: compiled.split.allocate(amount), node: index))
            case .slaCredit(_, let bands):
                guard let band = Self.creditBand(bands, succeeded: state.succeeded, failed: state.failed) else { continue }
                let base = billed + shortfall
                guard let credit = ExactAmount(units: base * Int128(band.credit.partsPerMillion), scale: 12).roundedToMoney(.halfEven),
                      credit.micros != 0 else { continue }
                let amount = Money(micros: -credit.micros)
                lines.append(PeriodLine(kind: .slaCredit, amount: amount, split: compiled.split.allocate(amount), node: index))
            default:
                continue
            }
        }
        return lines
    }

    /// The plan's commitment rounded half-even to micro-units, as its shortfall line compares it
    /// (nil: the plan has no commitment).
    public func commitment(_ plan: PlanHandle) -> Money? {
        guard contains(plan) else { return nil }
        for node in plans[Int(plan.index)].definition.periodNodes {
            if case .commitmentShortfall(let commitment) = node.operation {
                return ExactAmount(units: commitment.picos, scale: 12).roundedToMoney(.halfEven)
            }
        }
        return nil
    }

    /// The band with the lowest `below` that measured availability is strictly under, if any.
    /// Availability is `succeeded / (succeeded + failed)`, 100% with no executions; compared exactly
    /// (cross-multiplied), never through a float.
    public static func creditBand(_ bands: [SLABand], succeeded: Int64, failed: Int64) -> SLABand? {
        let total = Int128(succeeded) + Int128(failed)
        var chosen: SLABand?
        for band in bands {
            // availability < below  <=>  succeeded * 10^6 < below_ppm * total
            let under = total > 0 && Int128(succeeded) * Int128(Percent.partsPerWhole) < Int128(band.below.partsPerMillion) * total
            guard under else { continue }
            if let current = chosen, current.below <= band.below { continue }
            chosen = band
        }
        return chosen
    }

    /// The amount to hold before a run (settlement.md): the exact fee of a per-call plan, else the
    /// model's `reserve:`, else `max_cost_per_execution`, else the catalog's default reservation;
    /// rounded half-even to micro-units.
    public func reservationEstimate(_ plan: PlanHandle) -> Money {
        guard contains(plan) else { return self.definition.defaultReservation.exact.roundedToMoney(.halfEven) ?? Money(micros: Int64.max) }
        let definition = plans[Int(plan.index)].definition
        let amount = definition.reserve ?? self.definition.defaultReservation
        return amount.exact.roundedToMoney(.halfEven) ?? Money(micros: Int64.max)
    }
}
