import Tariff

/// The sink of `tariff simulate`: prices executions with in-memory period state and keeps the
/// report's totals. The window decides what is reported; everything is priced.
public struct SimulationSink: BillingSink {
    public let catalog: CompiledCatalog
    /// Explicit window bounds (nil: open; cli.md's defaults then report every processed event).
    public let from: Timestamp?
    public let to: Timestamp?
    public var entities = TraceEntities()

    private var periodStates: [PeriodSlot?] = []
    private struct PeriodSlot {
        var state: PeriodState
        var fees: Money
    }

    // Accumulators (amounts as Int64 micros with saturation: totals of real traces are far below).
    var report = SimulationReport()
    private var consumerRows: [Int32: SimulationReport.ConsumerRow] = [:]
    private var agentRows: [String: SimulationReport.AgentRow] = [:]
    private var planRows: [Int32: SimulationReport.PlanRow] = [:]
    private var dayRows: [Int64: SimulationReport.DayRow] = [:]
    private var payouts: PayoutAccumulator?
    private var reportedPayoutWeeks: Set<PayoutKey> = []
    private struct PayoutKey: Hashable {
        var creator: String
        var weekStart: Timestamp
    }

    public init(catalog: CompiledCatalog, from: Timestamp?, to: Timestamp?) {
        self.catalog = catalog
        self.from = from
        self.to = to
        payouts = PayoutSchedule(catalog.definition.payouts).map { PayoutAccumulator(schedule: $0) }
    }

    private func inWindow(_ instant: Timestamp) -> Bool {
        (from.map { instant >= $0 } ?? true) && (to.map { instant < $0 } ?? true)
    }

    private func endInWindow(_ instant: Timestamp) -> Bool {
        (from.map { instant > $0 } ?? true) && (to.map { instant <= $0 } ?? true)
    }

    // MARK: BillingSink

    public mutating func purchase(_ event: TraceEvent) {
        if inWindow(event.time) { report.totals.purchased = report.totals.purchased.saturatingAdding(event.amount) }
    }

    public mutating func periodStarted(_ period: SubscriptionPeriod) {
        while periodStates.count <= period.slot { periodStates.append(nil) }
        var fees = Money.zero
        for line in catalog.periodStartLines(period.plan) {
            fees = fees.saturatingAdding(line.amount)
            record(line.amount, line.split, at: period.start, reported: inWindow(period.start), consumer: period.consumer,
                   plan: period.plan, kind: .fee)
        }
        periodStates[period.slot] = PeriodSlot(state: .empty, fees: fees)
    }

    public mutating func periodEnded(_ period: SubscriptionPeriod, at instant: Timestamp) {
        guard period.slot < periodStates.count, let slot = periodStates[period.slot] else { return }
        for line in catalog.periodEndLines(period.plan, state: slot.state, fees: slot.fees) {
            record(line.amount, line.split, at: instant, reported: endInWindow(instant), consumer: period.consumer,
                   plan: period.plan, kind: line.kind == .shortfall ? .shortfall : .slaCredit)
        }
        periodStates[period.slot] = nil
    }

    public mutating func execution(_ event: TraceEvent, plan: PlanHandle, period: SubscriptionPeriod?) {
        let state = period.flatMap { $0.slot < periodStates.count ? periodStates[$0.slot]?.state : nil } ?? .empty
        let result = catalog.price(plan, ExecutionInput(meters: event.meters, failed: event.failed, endedAt: event.time), state: state)
        let reported = inWindow(event.time)
        if let refusal = result.refusal {
            if reported { countRefusal(event) }
            _ = refusal
            return
        }
        if let period, period.slot < periodStates.count, periodStates[period.slot] != nil {
            periodStates[period.slot]?.state = result.state
        }
        if reported {
            report.priced += 1
            updateConsumer(event.consumer) { row in
                row.computeUnits = row.computeUnits.saturatingAdding(result.computeUnits)
                row.executions += 1
            }
            let definition = catalog.plan(plan)
            var agent = agentRows[definition.agent] ?? SimulationReport.AgentRow(agent: definition.agent, creator: definition.creator)
            agent.computeUnits = agent.computeUnits.saturatingAdding(result.computeUnits)
            agent.executions += 1
            agentRows[definition.agent] = agent
        }
        record(result.charge, result.split, at: event.time, reported: reported, consumer: event.consumer, plan: plan, kind: .usage)
    }

    public mutating func refused(_ event: TraceEvent, reason: Refusal) {
        if inWindow(event.time) { countRefusal(event) }
    }

    public mutating func duplicate(_ event: TraceEvent) {
        if inWindow(event.time) { report.duplicates += 1 }
    }

    public mutating func warning(_ warning: TraceWarning) { report.warnings.append(warning) }

    public mutating func rejected(_ rejection: Rejection) { report.rejected.append(rejection) }

    // MARK: Accumulation

    private enum LineKind { case usage, fee, shortfall, slaCredit }

    private mutating func countRefusal(_ event: TraceEvent) {
        report.refused += 1
        updateConsumer(event.consumer) { $0.refused += 1 }
    }

    private mutating func updateConsumer(_ index: Int32, _ change: (inout SimulationReport.ConsumerRow) -> Void) {
        // Names are filled in by `finished()`: the entity table grows while the trace is read.
        var row = consumerRows[index] ?? SimulationReport.ConsumerRow(consumer: "")
        change(&row)
        consumerRows[index] = row
    }

    private mutating func record(_ amount: Money, _ split: SplitShares, at instant: Timestamp, reported: Bool, consumer: Int32,
                                 plan: PlanHandle, kind: LineKind) {
        let definition = catalog.plan(plan)
        // Payouts see every line up to the window's end: what carried in from before `from` counts.
        let beforeEnd = to.map { kind == .shortfall || kind == .slaCredit ? instant <= $0 : instant < $0 } ?? true
        if beforeEnd, var accumulator = payouts {
            payouts = nil
            accumulator.add(creator: definition.creator, at: instant, share: split.creator)
            if reported { reportedPayoutWeeks.insert(PayoutKey(creator: definition.creator, weekStart: accumulator.schedule.week(containing: instant).start)) }
            payouts = accumulator
        }
        guard reported else { return }
        report.totals.charged = report.totals.charged.saturatingAdding(amount)
        report.totals.creator = report.totals.creator.saturatingAdding(split.creator)
        report.totals.platform = report.totals.platform.saturatingAdding(split.platform)
        report.totals.processing = report.totals.processing.saturatingAdding(split.processing)
        updateConsumer(consumer) { $0.charged = $0.charged.saturatingAdding(amount) }
        var agentRow = agentRows[definition.agent] ?? SimulationReport.AgentRow(agent: definition.agent, creator: definition.creator)
        agentRow.charged = agentRow.charged.saturatingAdding(amount)
        agentRows[definition.agent] = agentRow
        var planRow = planRows[plan.index] ?? SimulationReport.PlanRow(plan: definition.id, version: definition.version)
        planRow.charged = planRow.charged.saturatingAdding(amount)
        switch kind {
        case .usage: planRow.usage = planRow.usage.saturatingAdding(amount)
        case .fee: planRow.fees = planRow.fees.saturatingAdding(amount)
        case .shortfall: planRow.shortfall = planRow.shortfall.saturatingAdding(amount)
        case .slaCredit: planRow.slaCredits = planRow.slaCredits.saturatingAdding(amount)
        }
        planRows[plan.index] = planRow
        let day = instant.civilDate.daysSinceEpoch
        var dayRow = dayRows[day] ?? SimulationReport.DayRow(day: instant.civilDate)
        dayRow.charged = dayRow.charged.saturatingAdding(amount)
        dayRow.creator = dayRow.creator.saturatingAdding(split.creator)
        dayRow.platform = dayRow.platform.saturatingAdding(split.platform)
        dayRow.processing = dayRow.processing.saturatingAdding(split.processing)
        dayRows[day] = dayRow
    }

    /// The report, rows sorted by id (cli.md), payouts for creator-weeks with reported lines.
    public func finished() -> SimulationReport {
        var result = report
        result.consumers = consumerRows.map { index, row in
            var named = row
            named.consumer = index >= 0 && Int(index) < entities.consumers.count ? entities.consumers[index] : "?"
            return named
        }.sorted { $0.consumer < $1.consumer }
        result.agents = agentRows.values.sorted { $0.agent < $1.agent }
        result.plans = planRows.values.sorted { ($0.plan, $0.version) < ($1.plan, $1.version) }
        result.days = dayRows.values.sorted { $0.day < $1.day }
        result.payouts = (payouts?.rows() ?? []).filter { reportedPayoutWeeks.contains(PayoutKey(creator: $0.creator, weekStart: $0.week.start)) }
        result.rejected.sort { $0.line < $1.line }
        result.warnings.sort { $0.line < $1.line }
        return result
    }
}

extension Money {
    /// Totals saturate instead of trapping (no real trace comes near 9.2 trillion).
    func saturatingAdding(_ other: Money) -> Money {
        adding(other) ?? Money(micros: other.micros < 0 ? Int64.min : Int64.max)
    }
}
