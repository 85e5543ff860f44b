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

    // Accumulators: every sum is checked (`MoneySum`); the first that leaves the range of `Money`
    // is kept in `overflow` and `finished()` throws it: a report never shows a wrapped amount.
    var report = SimulationReport()
    public private(set) var overflow: AmountOverflow?
    // Rows live in arrays indexed by consumer, agent, plan: one execution costs no string hashing.
    private var consumerRows: [SimulationReport.ConsumerRow?] = []
    private var agentRows: [SimulationReport.AgentRow?]
    private var planRows: [SimulationReport.PlanRow?]
    private var dayList: [SimulationReport.DayRow] = []
    /// Per plan index: its agent's and creator's slots in `agentRows` / `creators`.
    private let planAgentSlots: [Int]
    private let planCreatorSlots: [Int32]
    private let creators: [String]
    private let schedule: PayoutSchedule?
    /// Creator shares summed per creator and week: lines come in time order, so weeks are
    /// numbered as they appear and each creator keeps an array by week number.
    private var weeks: [PayoutWeek] = []
    private var creatorWeeks: [[MoneySum]]
    private var reportedCreatorWeeks: [[Bool]]
    /// The row of the last line's day and that day's bounds (lines come in time order).
    private var currentDay: (index: Int, start: Timestamp, end: Timestamp)?

    /// The currency the run reports (payouts floor to its minor unit); nil: the catalog's only currency, else cents.
    private let payoutUnitMicros: Int64

    public init(catalog: CompiledCatalog, from: Timestamp?, to: Timestamp?, currency: Currency? = nil) {
        self.catalog = catalog
        let currencies = catalog.definition.currencies
        payoutUnitMicros = (currency ?? (currencies.count == 1 ? currencies.first : nil)).map(PayoutAccumulator.unitMicros(of:)) ?? 10_000
        self.from = from
        self.to = to
        schedule = PayoutSchedule(catalog.definition.payouts)
        let plans = catalog.definition.plans
        let agents = Array(Set(plans.map(\.agent))).sorted()
        let creators = Array(Set(plans.map(\.creator))).sorted()
        planAgentSlots = plans.map { plan in agents.firstIndex(of: plan.agent) ?? 0 }
        planCreatorSlots = plans.map { plan in Int32(creators.firstIndex(of: plan.creator) ?? 0) }
        self.creators = creators
        creatorWeeks = [[MoneySum]](repeating: [], count: creators.count)
        reportedCreatorWeeks = [[Bool]](repeating: [], count: creators.count)
        agentRows = agents.map { agent in
            SimulationReport.AgentRow(agent: agent, creator: plans.first { $0.agent == agent }?.creator ?? "")
        }.map { Optional($0) }
        planRows = plans.map { SimulationReport.PlanRow(plan: $0.id, version: $0.version) }
        // Rows are listed only for entities with a reported line or execution.
        agentTouched = [Bool](repeating: false, count: agents.count)
        planTouched = [Bool](repeating: false, count: plans.count)
    }

    private var agentTouched: [Bool]
    private var planTouched: [Bool]

    private func inWindow(_ instant: Timestamp) -> Bool {
        (from.map { instant >= $0 } ?? true) && (to.map { instant < $0 } ?? true)
    }

    private func endInWindow(_ instant: Timestamp) -> Bool {
        (from.map { instant > $0 } ?? true) && (to.map { instant <= $0 } ?? true)
    }

    // MARK: BillingSink

    public mutating func purchase(_ event: TraceEvent) {
        if inWindow(event.time) { MoneySum.add(event.amount, to: &report.totals.purchased, overflow: &overflow, "totals.purchased") }
    }

    public mutating func periodStarted(_ period: SubscriptionPeriod) {
        while periodStates.count <= period.slot { periodStates.append(nil) }
        var fees = Money.zero
        for line in catalog.periodStartLines(period.plan) {
            MoneySum.add(line.amount, to: &fees, overflow: &overflow, "the fees of a period of \(period.planID)")
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
        withUnsafePointer(to: event) { execution(at: $0, plan: plan, period: period) }
    }

    /// An execution read in place (the processor's pricing loop hands a pointer into its batch).
    public mutating func execution(at event: UnsafePointer<TraceEvent>, plan: PlanHandle, period: SubscriptionPeriod?) {
        let state = period.flatMap { $0.slot < periodStates.count ? periodStates[$0.slot]?.state : nil } ?? .empty
        // The engine's batch path (one item), which records no charge lines: `price` returned its
        // result with 24 inline lines that simulate never reads, copied at every execution (the
        // largest memmove of the run).
        var item = BatchItem(plan: plan, execution: ExecutionInput(meters: event.pointee.meters, failed: event.pointee.failed, endedAt: event.pointee.time), state: state)
        var result = BatchResult()
        withUnsafePointer(to: &item) { item in
            withUnsafeMutablePointer(to: &result) { result in
                catalog.price(batch: UnsafeBufferPointer(start: item, count: 1), into: UnsafeMutableBufferPointer(start: result, count: 1))
            }
        }
        let reported = inWindow(event.pointee.time)
        if let refusal = result.refusal {
            if reported { countRefusal(event.pointee) }
            _ = refusal
            return
        }
        if let period, period.slot < periodStates.count, periodStates[period.slot] != nil {
            periodStates[period.slot]?.state = result.state
        }
        if reported {
            report.priced += 1
            updateConsumer(event.pointee.consumer) { row in
                // Compute units are not money: an execution is at most 10^12 CU, and a row would
                // need 9.2 million of them to reach the bound, where it stays (documented).
                row.computeUnits = row.computeUnits.saturatingAdding(result.computeUnits)
                row.executions += 1
            }
            let slot = planAgentSlots[Int(plan.index)]
            agentTouched[slot] = true
            agentRows[slot].withOptional { row in
                row.computeUnits = row.computeUnits.saturatingAdding(result.computeUnits)
                row.executions += 1
            }
        }
        record(result.charge, result.split, at: event.pointee.time, reported: reported, consumer: event.pointee.consumer, plan: plan, kind: .usage)
    }

    public mutating func refused(_ event: TraceEvent, reason: Refusal) {
        if inWindow(event.time) { countRefusal(event) }
    }

    public mutating func duplicate(_ event: TraceEvent) {
        if inWindow(event.time) { report.duplicates += 1 }
    }

    public mutating func warning(_ warning: TraceWarning) {
        report.warningsTotal += 1
        if report.warnings.count < SimulationReport.maximumListed { report.warnings.append(warning) }
    }

    public mutating func rejected(_ rejection: Rejection) {
        report.rejectedTotal += 1
        if report.rejected.count < SimulationReport.maximumListed { report.rejected.append(rejection) }
    }

    /// Rejected lines the reader counted past its listing bound.
    public mutating func rejectedUnlisted(_ count: Int) { report.rejectedTotal += count }

    /// Warnings counted past a listing bound (the replay's own warnings).
    public mutating func warningsUnlisted(_ count: Int) { report.warningsTotal += count }

    // MARK: Accumulation

    private enum LineKind { case usage, fee, shortfall, slaCredit }

    private mutating func countRefusal(_ event: TraceEvent) {
        report.refused += 1
        updateConsumer(event.consumer) { $0.refused += 1 }
    }

    private mutating func updateConsumer(_ index: Int32, _ change: (inout SimulationReport.ConsumerRow) -> Void) {
        // Names are filled in by `finished()`: the entity table grows while the trace is read.
        while consumerRows.count <= Int(index) { consumerRows.append(nil) }
        if consumerRows[Int(index)] == nil { consumerRows[Int(index)] = SimulationReport.ConsumerRow(consumer: "") }
        // In place: no copy of the row out of the array and back.
        consumerRows[Int(index)].withOptional(change)
    }

    private mutating func record(_ amount: Money, _ split: SplitShares, at instant: Timestamp, reported: Bool, consumer: Int32,
                                 plan: PlanHandle, kind: LineKind) {
        let planIndex = Int(plan.index)
        // Payouts see every line up to the window's end: what carried in from before `from` counts.
        let beforeEnd = to.map { kind == .shortfall || kind == .slaCredit ? instant <= $0 : instant < $0 } ?? true
        // `schedule` is only read through optional chaining: binding it copied it for every line.
        if beforeEnd, schedule != nil {
            var week = weeks.count - 1
            if week < 0 || !weeks[week].contains(instant), let found = schedule?.week(containing: instant) {
                if let existing = weeks.lastIndex(where: { $0.start == found.start }) { week = existing } else {
                    weeks.append(found)
                    week = weeks.count - 1
                }
            }
            let creator = Int(planCreatorSlots[planIndex])
            if creatorWeeks[creator].count <= week {
                creatorWeeks[creator] += [MoneySum](repeating: MoneySum(), count: week + 1 - creatorWeeks[creator].count)
                reportedCreatorWeeks[creator] += [Bool](repeating: false, count: week + 1 - reportedCreatorWeeks[creator].count)
            }
            creatorWeeks[creator][week].add(split.creator)
            if reported { reportedCreatorWeeks[creator][week] = true }
        }
        guard reported else { return }
        MoneySum.add(amount, to: &report.totals.charged, overflow: &overflow, "totals.charged")
        MoneySum.add(split.creator, to: &report.totals.creator, overflow: &overflow, "totals.creator")
        MoneySum.add(split.platform, to: &report.totals.platform, overflow: &overflow, "totals.platform")
        MoneySum.add(split.processing, to: &report.totals.processing, overflow: &overflow, "totals.processing")
        var failure: AmountOverflow?
        updateConsumer(consumer) { MoneySum.add(amount, to: &$0.charged, overflow: &failure, "a consumer's charged") }
        let agentSlot = planAgentSlots[planIndex]
        agentTouched[agentSlot] = true
        agentRows[agentSlot].withOptional { MoneySum.add(amount, to: &$0.charged, overflow: &failure, "the charged of agent \($0.agent)") }
        planTouched[planIndex] = true
        planRows[planIndex].withOptional { planRow in
            // The row's name is made only for an overflow's message (the messages are autoclosures):
            // made for every line, it was a heap-allocated string per priced execution.
            let (plan, version) = (planRow.plan, planRow.version)
            MoneySum.add(amount, to: &planRow.charged, overflow: &failure, "the charged of plan \(plan) v\(version)")
            switch kind {
            case .usage: MoneySum.add(amount, to: &planRow.usage, overflow: &failure, "the usage of plan \(plan) v\(version)")
            case .fee: MoneySum.add(amount, to: &planRow.fees, overflow: &failure, "the fees of plan \(plan) v\(version)")
            case .shortfall: MoneySum.add(amount, to: &planRow.shortfall, overflow: &failure, "the shortfall of plan \(plan) v\(version)")
            case .slaCredit: MoneySum.add(amount, to: &planRow.slaCredits, overflow: &failure, "the SLA credits of plan \(plan) v\(version)")
            }
        }
        if overflow == nil { overflow = failure }
        // Lines come in time order: the day is almost always the last row's.
        let index: Int
        if let current = currentDay, current.index < dayList.count, instant >= current.start, instant < current.end {
            index = current.index
        } else {
            let date = instant.civilDate
            if let existing = dayList.lastIndex(where: { $0.day == date }) { index = existing } else {
                dayList.append(SimulationReport.DayRow(day: date))
                index = dayList.count - 1
            }
            let start = date.midnightUTC ?? instant
            currentDay = (index, start, date.addingDays(1).midnightUTC ?? instant)
        }
        let day = dayList[index].day
        MoneySum.add(amount, to: &dayList[index].charged, overflow: &overflow, "the charged of \(day)")
        MoneySum.add(split.creator, to: &dayList[index].creator, overflow: &overflow, "the creator shares of \(day)")
        MoneySum.add(split.platform, to: &dayList[index].platform, overflow: &overflow, "the platform shares of \(day)")
        MoneySum.add(split.processing, to: &dayList[index].processing, overflow: &overflow, "the processing shares of \(day)")
    }

    /// The report, rows sorted by id (cli.md, as UTF-8 bytes), payouts for creator-weeks with reported lines.
    /// - throws: `AmountOverflow` when a sum left the range of `Money` (the report would be wrong).
    public func finished() throws(AmountOverflow) -> SimulationReport {
        if let overflow { throw overflow }
        var result = report
        result.consumers = consumerRows.enumerated().compactMap { index, row in
            guard var named = row else { return nil }
            named.consumer = index < entities.consumers.count ? entities.consumers[Int32(index)] : "?"
            return named
        }.sorted { $0.consumer.bytesPrecede($1.consumer) }
        result.agents = agentRows.enumerated().compactMap { agentTouched[$0.offset] ? $0.element : nil }.sorted { $0.agent.bytesPrecede($1.agent) }
        result.plans = planRows.enumerated().compactMap { planTouched[$0.offset] ? $0.element : nil }.sorted {
            $0.plan.bytesEqual($1.plan) ? $0.version < $1.version : $0.plan.bytesPrecede($1.plan)
        }
        result.days = dayList.sorted { $0.day < $1.day }
        if let schedule {
            var accumulator = PayoutAccumulator(schedule: schedule, unitMicros: payoutUnitMicros)
            var reported: Set<ByteKey> = []
            for (creator, amounts) in creatorWeeks.enumerated() {
                for (week, sum) in amounts.enumerated() where sum.micros != 0 || reportedCreatorWeeks[creator][week] {
                    accumulator.add(creator: creators[creator], at: weeks[week].start, share: sum)
                    if reportedCreatorWeeks[creator][week] { reported.insert(ByteKey("\(creators[creator])|\(weeks[week].start.nanosecondsSinceEpoch)")) }
                }
            }
            result.payouts = try accumulator.rows().filter { reported.contains(ByteKey("\($0.creator)|\($0.week.start.nanosecondsSinceEpoch)")) }
        }
        result.rejected.sort { $0.line < $1.line }
        result.warnings.sort { $0.line < $1.line }
        return result
    }
}

extension Optional {
    /// Changes the wrapped value in place, if any (array elements are then changed without a copy
    /// out and back, which retained and released the rows' strings).
    mutating func withOptional(_ change: (inout Wrapped) -> Void) {
        guard self != nil else { return }
        change(&self!)
    }
}

