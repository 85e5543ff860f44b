import Tariff
import TariffSettlement
import TariffSimulation

/// What `tariff ledger replay` reports: simulate's summary of the executions the ledger accepted,
/// the executions it refused for credits, and every consumer's final balance.
public struct ReplayReport: Sendable {
    /// The summary `tariff simulate` prints, over the executions the ledger settled (an execution
    /// refused for credits is counted in `refused` and its consumer's `refused`, not priced).
    public var simulation: SimulationReport
    /// Executions refused with `insufficient_credits` (inside the window).
    public var refusedForCredits: Int
    /// Every consumer the ledger knows, by id.
    public var balances: [Balance]
    /// What the replay billed beyond the consumers' credits (fees and charges that found too little).
    public var uncollected: Money
    /// Ledger steps applied (purchases, period charges, executions), and the most in one batch
    /// (`SettlementBackend.apply`; at most `LedgerReplay.maximumBatch`).
    public var steps = 0
    public var largestBatch = 0
}

/// One of `count` replays of the same trace run at once (each in its own process, on any machine)
/// against one shared ledger: it applies the steps of the consumers whose id hashes to `index`.
/// Every ledger step of a consumer (purchases, periods, executions) lands in one shard, in trace
/// order, and no step touches two consumers, so the shards together write the ledger one
/// replay writes (rows in another order, the same rows).
public struct ReplayShard: Sendable, Hashable, CustomStringConvertible {
    /// 1...count.
    public let index: Int
    public let count: Int

    /// - returns: nil unless 1 <= index <= count <= 1024.
    public init?(index: Int, count: Int) {
        guard count >= 1, count <= 1_024, index >= 1, index <= count else { return nil }
        self.index = index
        self.count = count
    }

    /// Reads `K/N`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else { return nil }
        self.init(index: index, count: count)
    }

    /// FNV-1a over the id's UTF-8 bytes: the same shard on every machine and every run.
    public func contains(consumer: String) -> Bool {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in consumer.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return Int(hash % UInt64(count)) == index - 1
    }

    public var description: String { "\(index)/\(count)" }
}

/// Runs every event of a usage trace through the full credit lifecycle (cli.md `ledger replay`):
/// purchases; reserve -> meter -> settle for each execution, refusing those the balance cannot
/// hold (`insufficient_credits`); fees at period starts; period-end lines.
///
/// The billing processor decides (plan, period, duplicates); a sink queues its decisions and
/// they are applied in order, each one a ledger step dated by the trace (the clock is the
/// trace's time). Every step has a key derived from the trace, and refusals are recorded, so a
/// replay stopped at any point (even by SIGKILL) and run again ends in the same ledger.
public enum LedgerReplay {
    /// The most ledger steps applied in one batch (one transaction on SQLite).
    public static var maximumBatch: Int { Driver.maximumBatch }

    public static func run(trace path: String, catalog: CompiledCatalog, backend: any SettlementBackend, options: SimulationOptions,
                           shard: ReplayShard? = nil, progress: (@Sendable (Int) -> Void)? = nil) async throws -> ReplayReport {
        let currency: Currency?
        let trace: OrderedTrace
        let failuresBefore = catalog.externalRuleFailures()
        do throws(SimulationError) {
            currency = try Simulator.currency(of: catalog, requested: options.currency ?? backend.currency)
            // Read once to learn the order (late lines go to runs on disk), then streamed in batches.
            trace = try OrderedTrace(path: path, catalog: catalog, strict: options.strict, maxSpanNanoseconds: options.maxSpanNanoseconds,
                                     limits: options.reorder)
        } catch {
            throw SettlementError(.invalidInput, error.description)
        }
        guard currency == nil || currency == backend.currency else {
            throw SettlementError(.wrongCurrency, "the trace is replayed in \(currency?.code ?? "?"); the ledger keeps \(backend.currency.code)")
        }
        let clock = ManualClock(Timestamp(nanosecondsSinceEpoch: 0))
        var driver = Driver(settlement: Settlement(backend: backend, catalog: catalog, clock: clock), clock: clock, shard: shard,
                            simulation: SimulationSink(catalog: catalog, from: options.from, to: options.to, currency: currency))
        var processor = BillingProcessor(catalog: catalog, sink: QueueSink(), entities: TraceEntities(), currency: currency)
        var processed = 0
        do {
            while let batch = await trace.next() {
                if processed == 0, let first = batch.first { clock.set(first.time) }
                for event in batch {
                    processor.process(event)
                    try await driver.apply(&processor)
                    processed += 1
                    if processed % 4_096 == 0 { progress?(event.line) }
                }
            }
            do throws(SimulationError) { try trace.finish() } catch { throw SettlementError(.invalidInput, error.description) }
            processor.finish(through: options.to ?? processor.lastEventTime ?? Timestamp(nanosecondsSinceEpoch: .min))
            try await driver.apply(&processor)
            try await driver.flush()
            try await driver.answerInFlight()
        } catch {
            // No write of this replay goes on after it returned.
            await driver.waitForInFlight()
            throw error
        }

        var simulation = driver.simulation
        simulation.entities = processor.entities
        for rejection in trace.rejections { simulation.rejected(rejection) }
        simulation.rejectedUnlisted(trace.rejectionsUnlisted)
        for warning in driver.warnings { simulation.warning(warning) }
        simulation.warningsUnlisted(driver.warningsUnlisted)
        var report: SimulationReport
        do throws(AmountOverflow) { report = try simulation.finished() } catch { throw SettlementError(.outOfRange, error.description) }
        report.currency = currency
        report.linesRead = trace.lines
        report.from = options.from ?? processor.firstEventTime
        report.to = options.to ?? processor.lastEventTime.flatMap { $0.adding(nanoseconds: 1) }
        report.refused += driver.refusedForCredits.values.reduce(0, +)
        var rowIndex: [ByteKey: Int] = [:]
        for (index, row) in report.consumers.enumerated() { rowIndex[ByteKey(row.consumer)] = index }
        for (consumer, count) in driver.refusedForCredits {
            if let row = rowIndex[consumer] {
                report.consumers[row].refused += count
            } else {
                report.consumers.append(SimulationReport.ConsumerRow(consumer: consumer.string, refused: count))
            }
        }
        report.consumers.sort { $0.consumer.bytesPrecede($1.consumer) }
        report.warnings.append(contentsOf: driver.warnings)
        report.warnings += catalog.externalRuleWarnings(since: failuresBefore).map { TraceWarning(line: 0, message: $0) }
        report.warnings.sort { $0.line < $1.line }

        // Two reads, not a snapshot of every row (which held some 4 KB per replayed event).
        let balances = try await backend.balances(at: clock.now()).filter { shard?.contains(consumer: $0.consumer) ?? true }
        let uncollected = try await backend.uncollectedTotal().money("the ledger's uncollected total").micros
        var replay = ReplayReport(simulation: report, refusedForCredits: driver.refusedForCredits.values.reduce(0, +), balances: balances,
                                  uncollected: Money(micros: uncollected))
        replay.steps = driver.appliedSteps
        replay.largestBatch = driver.largestBatch
        return replay
    }
}

/// The processor's decisions, queued in order until the driver applies them.
struct QueueSink: BillingSink {
    enum Decision {
        case purchase(TraceEvent)
        case periodStarted(SubscriptionPeriod)
        case periodEnded(SubscriptionPeriod, Timestamp)
        case execution(TraceEvent, PlanHandle, SubscriptionPeriod?)
        case refused(TraceEvent, Refusal)
        case duplicate(TraceEvent)
        case warning(TraceWarning)
        case rejected(Rejection)
    }

    var queue: [Decision] = []

    mutating func purchase(_ event: TraceEvent) { queue.append(.purchase(event)) }
    mutating func periodStarted(_ period: SubscriptionPeriod) { queue.append(.periodStarted(period)) }
    mutating func periodEnded(_ period: SubscriptionPeriod, at: Timestamp) { queue.append(.periodEnded(period, at)) }
    mutating func execution(_ event: TraceEvent, plan: PlanHandle, period: SubscriptionPeriod?) { queue.append(.execution(event, plan, period)) }
    mutating func refused(_ event: TraceEvent, reason: Refusal) { queue.append(.refused(event, reason)) }
    mutating func duplicate(_ event: TraceEvent) { queue.append(.duplicate(event)) }
    mutating func warning(_ warning: TraceWarning) { queue.append(.warning(warning)) }
    mutating func rejected(_ rejection: Rejection) { queue.append(.rejected(rejection)) }
}

/// Applies queued decisions to the ledger in ordered batches (group commit), then to the
/// simulation sink that builds the summary.
///
/// The ledger steps of up to `maximumBatch` decisions (or of those queued within `maximumBatchAge`
/// of the first) go to `SettlementBackend.apply` together: on SQLite one transaction and one
/// fsync for all of them, where a step alone paid a commit each (about 2,400 events/s). Each step's
/// outcome is the one it would have had alone, in order, so the batch bounds change nothing but the
/// speed; a batch is committed whole or not at all, and every step is keyed by the trace, so a
/// replay stopped anywhere (even mid-batch, by SIGKILL) and run again repeats every decision.
/// The decisions wait with their steps and reach the summary in order once their batch is applied.
/// Memory: the pending decisions of one batch, nothing per replayed event.
struct Driver {
    /// Steps in one batch: large enough that a commit's fsync is shared by hundreds of events, small
    /// enough that a transaction stays a few MB of pages.
    static let maximumBatch = 1_024
    /// A batch waits no longer than this for more steps (a slow trace is still committed as it goes).
    static let maximumBatchAge: Duration = .milliseconds(100)

    let settlement: Settlement
    let clock: ManualClock
    let shard: ReplayShard?
    var simulation: SimulationSink
    var refusedForCredits: [ByteKey: Int] = [:]
    /// The replay's own warnings (steps the ledger refused), listed up to the report's bound.
    private(set) var warnings: [TraceWarning] = []
    private(set) var warningsUnlisted = 0

    /// A decision waiting for its batch: with the index of its step in `steps`, or the refusal of a
    /// step that could not even be built (an id too long), or nothing for the ledger to do.
    private enum Pending {
        case step(Int, QueueSink.Decision, consumer: String?)
        case refused(SettlementError, QueueSink.Decision, consumer: String?)
        case local(QueueSink.Decision)
        /// The step registering a started period (its fee is the decision's own step, next).
        case registration(Int, QueueSink.Decision)
    }

    private var pending: [Pending] = []
    private var steps: [LedgerStep] = []
    private var batchStarted: ContinuousClock.Instant?

    /// Steps applied so far (tests: batches were used, the bound was kept).
    private(set) var appliedSteps = 0
    private(set) var largestBatch = 0

    init(settlement: Settlement, clock: ManualClock, shard: ReplayShard?, simulation: SimulationSink) {
        self.settlement = settlement
        self.clock = clock
        self.shard = shard
        self.simulation = simulation
    }

    mutating func warn(_ warning: TraceWarning) {
        if warnings.count < SimulationReport.maximumListed { warnings.append(warning) } else { warningsUnlisted += 1 }
    }

    private func inWindow(_ instant: Timestamp) -> Bool {
        (simulation.from.map { instant >= $0 } ?? true) && (simulation.to.map { instant < $0 } ?? true)
    }

    /// Queues the processor's decisions (their ledger steps built now, dated by the trace) and
    /// applies a batch when it is full or old enough.
    mutating func apply(_ processor: inout BillingProcessor<QueueSink>) async throws {
        let decisions = processor.sink.queue
        processor.sink.queue.removeAll(keepingCapacity: true)
        for decision in decisions {
            let consumer = Self.consumer(of: decision, processor.entities)
            if let shard, let consumer, !shard.contains(consumer: consumer) { continue }
            do {
                switch decision {
                case .periodStarted(let period):
                    // The period registered open, then its fee: two steps of the batch, in order.
                    clock.set(period.start)
                    let built = try settlement.periodStartSteps(consumer: consumer ?? "", plan: period.plan, periodStart: period.start, periodEnd: period.end)
                    if let open = built.open {
                        pending.append(.registration(steps.count, decision))
                        steps.append(.openPeriod(open))
                    }
                    pending.append(.step(steps.count, decision, consumer: consumer))
                    steps.append(.chargePeriod(built.charge, lines: built.lines))
                case .periodEnded(let period, let end):
                    clock.set(end)
                    let built = try settlement.periodEndStep(consumer: consumer ?? "", plan: period.plan, periodStart: period.start, periodEnd: end)
                    pending.append(.step(steps.count, decision, consumer: consumer))
                    steps.append(.closePeriod(built.command, lines: built.lines))
                case .purchase, .execution, .refused, .duplicate, .warning, .rejected:
                    if let step = try step(for: decision, processor.entities) {
                        pending.append(.step(steps.count, decision, consumer: consumer))
                        steps.append(step)
                    } else {
                        pending.append(.local(decision))
                    }
                }
                if batchStarted == nil, !steps.isEmpty { batchStarted = .now }
            } catch let error as SettlementError where error.code != .storage {
                pending.append(.refused(error, decision, consumer: consumer))
            }
            if steps.count >= Self.maximumBatch || batchStarted.map({ ContinuousClock.now - $0 >= Self.maximumBatchAge }) == true {
                try await flush()
            }
        }
    }

    /// The ledger step of a decision, dated by the trace (nil: nothing for the ledger).
    private func step(for decision: QueueSink.Decision, _ entities: TraceEntities) throws -> LedgerStep? {
        switch decision {
        case .purchase(let event):
            clock.set(event.time)
            // usage.md: `trace:` + id, else `trace:CONSUMER:AT_NS:AMOUNT_MICROS` (the parser's
            // key), never the line: replaying the trace again, reordered or with lines added,
            // credits nothing twice.
            return try settlement.purchaseStep(consumer: event.consumerName, amount: event.amount, idempotencyKey: event.executionID)
        case .periodStarted, .periodEnded:
            // Built by `apply` (a start is two steps).
            return nil
        case .execution(let event, let plan, let period):
            clock.set(event.time)
            // reserve -> one sample with the final meters (the hold grows to the price if the
            // credits allow) -> settle; a refusal for credits is recorded as the id's first result.
            let reservation = ReservationRequest(execution: event.executionID, consumer: event.consumerName, plan: plan,
                                                 period: period.map { .starting($0.start) } ?? .unbounded, recordsRefusal: true)
            return try settlement.executionStep(reservation, meters: event.meters, failed: event.failed, endedAt: event.time)
        case .refused, .duplicate, .warning, .rejected:
            return nil
        }
    }

    /// The batch handed to the ledger and not yet answered: its decisions wait for its outcomes.
    private var inFlight: (outcomes: Task<[Result<LedgerStepOutcome, SettlementError>], any Error>, pending: [Pending], steps: Int)?

    /// Hands the queued steps to the ledger as one batch and goes on: the next batch is built
    /// while this one is applied (the ledger's writer and the trace's pricing run on both cores).
    /// The batch before this one is answered first and its decisions go to the summary, in order.
    /// Batches apply one after the other: each waits for the one before it to be applied (and is
    /// not applied when that failed), so the ledger sees the steps in the trace's order.
    mutating func flush() async throws {
        let settlement = settlement
        let batch = steps, previous = inFlight?.outcomes
        let outcomes = Task { () async throws -> [Result<LedgerStepOutcome, SettlementError>] in
            if let previous { _ = try await previous.value }
            return batch.isEmpty ? [] : try await settlement.apply(batch)
        }
        let queued = (outcomes: outcomes, pending: pending, steps: steps.count)
        pending.removeAll(keepingCapacity: true)
        steps.removeAll(keepingCapacity: true)
        batchStarted = nil
        try await answerInFlight()
        inFlight = queued
    }

    /// Waits for the batch in flight, whatever its outcome (the replay is failing).
    func waitForInFlight() async { _ = try? await inFlight?.outcomes.value }

    /// Waits for the batch in flight and hands its decisions to the summary in order.
    mutating func answerInFlight() async throws {
        guard let (task, pending, count) = inFlight else { return }
        inFlight = nil
        let outcomes = try await task.value
        guard outcomes.count == count else {
            throw SettlementError(.storage, "the ledger answered \(outcomes.count) of a batch of \(count) steps")
        }
        appliedSteps += count
        largestBatch = max(largestBatch, count)
        for item in pending {
            switch item {
            case .local(let decision): settleLocally(decision)
            case .registration(let index, let decision):
                // Only a storage failure can refuse it (and that ends the replay): said, the fee's step decides the rest.
                if case .failure(let error) = outcomes[index] {
                    if error.code == .storage { throw error }
                    if case .periodStarted(let period) = decision {
                        warn(TraceWarning(line: 0, message: "the period starting \(period.start) was not registered for its close: \(error)"))
                    }
                }
            case .refused(let error, let decision, let consumer): refused(decision, consumer ?? "", error)
            case .step(let index, let decision, let consumer):
                switch outcomes[index] {
                case .failure(let error) where error.code == .storage: throw error
                case .failure(let error): refused(decision, consumer ?? "", error)
                case .success(let outcome): applied(decision, outcome)
                }
            }
        }
    }

    /// A step the ledger refused (a key too long, a sum beyond the ledger's range): a warning with
    /// the line, and the replay goes on; it never stops half applied.
    private mutating func refused(_ decision: QueueSink.Decision, _ consumer: String, _ error: SettlementError) {
        switch decision {
        case .purchase(let event):
            warn(TraceWarning(line: event.line, message: "purchase not applied: \(error)"))
        case .periodStarted(let period):
            warn(TraceWarning(line: 0, message: "the fee of \(consumer)'s period starting \(period.start) was not charged: \(error)"))
            simulation.periodStarted(period)
        case .periodEnded(let period, let end):
            warn(TraceWarning(line: 0, message: "the end of \(consumer)'s period starting \(period.start) was not charged: \(error)"))
            simulation.periodEnded(period, at: end)
        case .execution(let event, _, _):
            warn(TraceWarning(line: event.line, message: "execution not settled: \(error)"))
        case .refused, .duplicate, .warning, .rejected:
            settleLocally(decision)
        }
    }

    private mutating func applied(_ decision: QueueSink.Decision, _ outcome: LedgerStepOutcome) {
        switch decision {
        case .purchase(let event): simulation.purchase(event)
        case .periodStarted(let period): simulation.periodStarted(period)
        case .periodEnded(let period, let end): simulation.periodEnded(period, at: end)
        case .execution(let event, let plan, let period):
            if case .refusedForCredits = outcome {
                if inWindow(event.time) { refusedForCredits[ByteKey(event.consumerName), default: 0] += 1 }
            } else {
                simulation.execution(event, plan: plan, period: period)
            }
        case .refused, .duplicate, .warning, .rejected:
            settleLocally(decision)
        }
    }

    /// Decisions with no ledger step: straight to the summary.
    private mutating func settleLocally(_ decision: QueueSink.Decision) {
        switch decision {
        case .refused(let event, let reason): simulation.refused(event, reason: reason)
        case .duplicate(let event): simulation.duplicate(event)
        case .warning(let warning): simulation.warning(warning)
        case .rejected(let rejection): simulation.rejected(rejection)
        case .purchase, .periodStarted, .periodEnded, .execution: break
        }
    }

    /// The consumer a decision is about (nil for a rejected line, which every shard reports).
    private static func consumer(of decision: QueueSink.Decision, _ entities: TraceEntities) -> String? {
        switch decision {
        case .purchase(let event), .execution(let event, _, _), .refused(let event, _), .duplicate(let event): event.consumerName
        case .periodStarted(let period), .periodEnded(let period, _): entities.consumers[period.consumer]
        case .warning, .rejected: nil
        }
    }
}
