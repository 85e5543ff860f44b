import Foundation
import Tariff

/// One billing period of one subscription, as the processor hands it to a sink.
public struct SubscriptionPeriod: Sendable, Hashable {
    /// A stable small integer per subscription (sinks keep per-period state in arrays by it).
    public var slot: Int
    public var consumer: Int32
    public var planID: String
    /// The plan version pricing this period (picked at its start).
    public var plan: PlanHandle
    public var index: Int
    public var start: Timestamp
    /// The scheduled end; a replaced subscription's period ends earlier (see `periodEnded`).
    public var end: Timestamp
}

/// What the processor decides, delivered in processing order to a sink that prices and records
/// (the simulation keeps totals; the ledger settles through a backend).
public protocol BillingSink {
    mutating func purchase(_ event: TraceEvent)
    /// A period starts (its fee is due at `period.start`).
    mutating func periodStarted(_ period: SubscriptionPeriod)
    /// A period ends at `at` (its scheduled end, or earlier when the subscription was replaced).
    mutating func periodEnded(_ period: SubscriptionPeriod, at: Timestamp)
    /// An execution to price with `plan`, inside `period` for a subscription (nil: a default plan).
    mutating func execution(_ event: TraceEvent, plan: PlanHandle, period: SubscriptionPeriod?)
    /// The same, the event read in place (the simulation's sink: no copy of the event per execution).
    mutating func execution(at event: UnsafePointer<TraceEvent>, plan: PlanHandle, period: SubscriptionPeriod?)
    mutating func refused(_ event: TraceEvent, reason: Refusal)
    mutating func duplicate(_ event: TraceEvent)
    mutating func warning(_ warning: TraceWarning)
    mutating func rejected(_ rejection: Rejection)
}

extension BillingSink {
    public mutating func execution(at event: UnsafePointer<TraceEvent>, plan: PlanHandle, period: SubscriptionPeriod?) {
        execution(event.pointee, plan: plan, period: period)
    }
}

/// Turns a time-ordered stream of trace events into billing decisions (usage.md, plans.md):
/// which plan prices each execution, subscription periods anchored at the subscribe time with
/// month-end clamping, fees at period starts, period ends, cancels and replacements, duplicates.
///
/// Feed events with `process` in `(time, line)` order, then call `finish(through:)`.
public struct BillingProcessor<Sink: BillingSink> {
    public let catalog: CompiledCatalog
    public var sink: Sink
    /// The trace's interned ids (the reader's tables; set by the caller when reading is done).
    public var entities: TraceEntities
    /// The catalog's agents, interned before the trace is read so their indexes are known here
    /// without reading the tables the reader is filling (name -> index, index -> name).
    private let catalogAgentIndexes: [String: Int32]
    private let catalogAgentNames: [Int32: String]
    /// With several currencies, only this one's plans take part (cli.md `--currency`).
    public let currency: Currency?

    private struct Subscription {
        var period: SubscriptionPeriod
        var anchor: Timestamp
        var unit: PeriodUnit
        var agent: Int32
        var cancelAtEnd: Bool
        var generation: Int
    }

    private struct SubscriptionKey: Hashable {
        var consumer: Int32
        /// The agent's index in `entities.agents`.
        var agent: Int32
    }

    /// A pending period end in the boundary heap; stale entries (an older generation) are skipped.
    private struct Boundary {
        var time: Timestamp
        var slot: Int
        var generation: Int
    }

    /// By slot (slots are reused after a subscription ends).
    private var subscriptions: [Subscription?] = []
    private var slotsByKey: [SubscriptionKey: Int] = [:]
    /// Per consumer index: its first subscription's slot (-1: none); `slotNext` links a consumer's
    /// other slots and `slotAgent` holds each slot's agent, so an execution finds its plan by a
    /// short walk through flat arrays (an array of arrays retained and released the inner array
    /// on every execution).
    private var consumerFirstSlot: [Int32] = []
    private var slotNext: [Int32] = []
    private var slotAgent: [Int32] = []
    private var freeSlots: [Int] = []
    private var nextSlot = 0
    private var generation = 0
    private var boundaries = MinHeap<Boundary>(by: { ($0.time, $0.slot) < ($1.time, $1.slot) })
    /// Execution ids already priced: (two independent 64-bit hashes of the id) -> fingerprint of its fields.
    private var seenExecutions = ExecutionSet()
    /// Purchase keys already applied (usage.md), by the same hashes: a small table that spills to
    /// disk, so a trace of many purchases costs no more memory than one of a few.
    private var seenPurchases = ExecutionSet(memoryCapacity: 1 << 14)
    /// Per agent index: whether the run's currency prices it, and where its default-plan versions
    /// (effective ns, handle; sorted) lie in `defaultVersions`; computed once per agent, so
    /// executions look nothing up by name. Flat arrays: a struct holding an array of versions,
    /// copied out per execution, cost a retain and a release each time.
    private var agentFacts: [AgentFacts] = []
    private var defaultVersions: [(effective: Int64, plan: PlanHandle)] = []
    private struct AgentFacts {
        var known = false
        var inCurrency = false
        var firstVersion: Int32 = 0
        var versionCount: Int32 = 0
    }
    /// Per plan index: the meters its metering weighs (bit i = meter i).
    private let weighedMasks: [UInt16]
    public private(set) var lastEventTime: Timestamp?
    public private(set) var firstEventTime: Timestamp?


    /// `entities` must already hold the catalog's agents (see `TraceEntities.prepared(for:)`).
    public init(catalog: CompiledCatalog, sink: Sink, entities: TraceEntities, currency: Currency? = nil) {
        self.catalog = catalog
        self.sink = sink
        var entities = entities
        var indexes: [String: Int32] = [:]
        var names: [Int32: String] = [:]
        for agent in Set(catalog.definition.plans.map(\.agent)) {
            let index = entities.agents.intern(agent)
            indexes[agent] = index
            names[index] = agent
        }
        self.entities = entities
        catalogAgentIndexes = indexes
        catalogAgentNames = names
        self.currency = currency
        weighedMasks = catalog.definition.plans.map { plan in
            plan.metering.weights.reduce(UInt16(0)) { $0 | (1 << UInt16($1.meter.rawValue)) }
        }
    }

    /// Processes one accepted event. Period boundaries up to and including its time come first.
    public mutating func process(_ event: TraceEvent) {
        var event = event
        event.resolve(in: &entities)
        withUnsafePointer(to: &event) { process(resolved: $0) }
    }

    /// Resolves a run of events in place (names interned, hashes computed), and loads into cache
    /// what interning their consumers and checking their execution ids will read: the simulator's
    /// pricing thread prepares a few hundred events of a batch at a time, then processes them with
    /// `process(resolved:)`. Done in tight loops, the look-ups' cache misses overlap instead of
    /// coming one at a time. The events are read in place through a pointer, never copied (some
    /// 270 bytes each: `for event in events` copied every one).
    mutating func prepare(_ events: UnsafeMutableBufferPointer<TraceEvent>) {
        guard let base = events.baseAddress else { return }
        var touched: UInt64 = 0
        for index in 0..<events.count where base[index].consumer < 0 && base[index].consumerKey.isSet {
            touched &+= base[index].consumerKey.withBytes { entities.consumers.touch(bytes: $0) }
        }
        for index in 0..<events.count { base[index].resolve(in: &entities) }
        for index in 0..<events.count where base[index].kind == .execution {
            touched &+= seenExecutions.touch(high: base[index].idHashHigh, low: base[index].idHashLow)
        }
        prefetched &+= touched
    }

    /// What `prepare` read, kept so that its loads are not optimised away.
    private var prefetched: UInt64 = 0

    /// Processes an event already resolved in `entities` (see `prepare`). The event is read through
    /// a pointer: handed on by value from the batch, it was copied (some 270 bytes) to keep it
    /// apart from `self` during each mutating call (a sixth of the run's `memmove`).
    mutating func process(resolved event: UnsafePointer<TraceEvent>) {
        let time = event.pointee.time
        advance(through: time)
        if firstEventTime == nil { firstEventTime = time }
        lastEventTime = time
        switch event.pointee.kind {
        case .purchase: purchase(event.pointee)
        case .subscribe: subscribe(event.pointee)
        case .cancel: cancel(event.pointee)
        case .execution: execute(event)
        }
    }

    /// Processes the period boundaries up to `instant` (the end of the window, or the last event).
    public mutating func finish(through instant: Timestamp) { advance(through: instant) }

    // MARK: Boundaries

    private mutating func advance(through instant: Timestamp) {
        while let next = boundaries.peek, next.time <= instant {
            boundaries.pop()
            guard next.slot < subscriptions.count, var subscription = subscriptions[next.slot], subscription.generation == next.generation else { continue }
            let ending = subscription.period
            sink.periodEnded(ending, at: ending.end)
            if subscription.cancelAtEnd {
                remove(slot: next.slot, key: SubscriptionKey(consumer: ending.consumer, agent: subscription.agent))
                continue
            }
            let index = ending.index + 1
            guard let end = Timestamp.periodStart(anchor: subscription.anchor, unit: subscription.unit, index: index + 1),
                  let plan = catalog.plan(id: ending.planID, at: ending.end) else {
                remove(slot: next.slot, key: SubscriptionKey(consumer: ending.consumer, agent: subscription.agent))
                continue
            }
            subscription.period = SubscriptionPeriod(slot: next.slot, consumer: ending.consumer, planID: ending.planID, plan: plan,
                                                     index: index, start: ending.end, end: end)
            subscriptions[next.slot] = subscription
            sink.periodStarted(subscription.period)
            boundaries.push(Boundary(time: end, slot: next.slot, generation: subscription.generation))
        }
    }

    private mutating func remove(slot: Int, key: SubscriptionKey) {
        subscriptions[slot] = nil
        slotsByKey[key] = nil
        let consumer = Int(key.consumer)
        if consumer >= 0 && consumer < consumerFirstSlot.count {
            // Unlinked from its consumer's list.
            if consumerFirstSlot[consumer] == Int32(slot) {
                consumerFirstSlot[consumer] = slotNext[slot]
            } else {
                var previous = Int(consumerFirstSlot[consumer])
                while previous >= 0 {
                    let next = Int(slotNext[previous])
                    if next == slot {
                        slotNext[previous] = slotNext[slot]
                        break
                    }
                    previous = next
                }
            }
        }
        slotNext[slot] = -1
        freeSlots.append(slot)
    }

    private mutating func add(slot: Int, key: SubscriptionKey) {
        slotsByKey[key] = slot
        let consumer = Int(key.consumer)
        guard consumer >= 0 else { return }
        if consumerFirstSlot.count <= consumer { consumerFirstSlot += [Int32](repeating: -1, count: consumer + 1 - consumerFirstSlot.count) }
        if slotNext.count <= slot {
            slotNext += [Int32](repeating: -1, count: slot + 1 - slotNext.count)
            slotAgent += [Int32](repeating: -1, count: slot + 1 - slotAgent.count)
        }
        slotAgent[slot] = key.agent
        slotNext[slot] = consumerFirstSlot[consumer]
        consumerFirstSlot[consumer] = Int32(slot)
    }

    /// The slot of the consumer's subscription to the agent's plans, if any.
    private func slot(consumer: Int32, agent: Int32) -> Int? {
        guard consumer >= 0, Int(consumer) < consumerFirstSlot.count else { return nil }
        var slot = Int(consumerFirstSlot[Int(consumer)])
        while slot >= 0 {
            if slotAgent[slot] == agent { return slot }
            slot = Int(slotNext[slot])
        }
        return nil
    }

    // MARK: Events

    private mutating func subscribe(_ event: TraceEvent) {
        let planID = event.subjectName
        let versions = catalog.versions(of: planID)
        guard let first = versions.first else {
            var reason = "unknown plan '\(planID)'"
            if let suggestion = Suggestion.closest(to: planID, among: catalog.planIDs) { reason += "; did you mean '\(suggestion)'?" }
            sink.rejected(Rejection(line: event.line, reason: reason))
            return
        }
        let definition = catalog.plan(first)
        if let currency, definition.currency != currency { return }
        guard let unit = definition.period else {
            sink.rejected(Rejection(line: event.line, reason: "plan '\(planID)' is per_call: it is priced per execution and cannot be subscribed to"))
            return
        }
        guard let plan = catalog.plan(id: planID, at: event.time) else {
            sink.rejected(Rejection(line: event.line, reason: "no version of plan '\(planID)' is effective at \(event.time)"))
            return
        }
        guard let end = Timestamp.periodStart(anchor: event.time, unit: unit, index: 1) else {
            sink.rejected(Rejection(line: event.line, reason: "the subscription's first period ends beyond the supported time range"))
            return
        }
        let agentIndex = catalogAgentIndexes[definition.agent] ?? -1
        let key = SubscriptionKey(consumer: event.consumer, agent: agentIndex)
        if let slot = slotsByKey[key], let existing = subscriptions[slot] {
            if existing.period.planID == planID {
                sink.warning(TraceWarning(line: event.line, message: "consumer '\(event.consumerName)' is already subscribed to '\(planID)'; ignored"))
                return
            }
            // Replaced: the old subscription ends now, its current period closed here.
            sink.periodEnded(existing.period, at: event.time)
            remove(slot: slot, key: key)
        }
        let slot = freeSlots.popLast() ?? { defer { nextSlot += 1 }; return nextSlot }()
        while subscriptions.count <= slot { subscriptions.append(nil) }
        generation += 1
        let period = SubscriptionPeriod(slot: slot, consumer: event.consumer, planID: planID, plan: plan, index: 0, start: event.time, end: end)
        subscriptions[slot] = Subscription(period: period, anchor: event.time, unit: unit, agent: agentIndex, cancelAtEnd: false, generation: generation)
        add(slot: slot, key: key)
        sink.periodStarted(period)
        boundaries.push(Boundary(time: end, slot: slot, generation: generation))
    }

    /// A purchase is applied once per key (`trace:` + id, else `trace:CONSUMER:AT_NS:AMOUNT_MICROS`):
    /// a repeat with the same values changes nothing (a warning), one with other values is rejected,
    /// in `simulate` and in the ledger alike (the ledger never sees it).
    private mutating func purchase(_ event: TraceEvent) {
        switch seenPurchases.insert(high: event.idHashHigh, low: event.idHashLow, fingerprint: event.fingerprint) {
        case .new:
            sink.purchase(event)
        case .repeated(sameFields: true):
            sink.warning(TraceWarning(line: event.line, message: "purchase '\(SafeText.escaping(event.executionID))' repeats an earlier one; credited once"))
        case .repeated(sameFields: false):
            sink.rejected(Rejection(line: event.line, reason: "purchase key '\(SafeText.escaping(event.executionID))' repeats an earlier purchase with other values"))
        }
    }

    private mutating func cancel(_ event: TraceEvent) {
        let planID = event.subjectName
        let versions = catalog.versions(of: planID)
        guard let first = versions.first else {
            sink.rejected(Rejection(line: event.line, reason: "unknown plan '\(planID)'"))
            return
        }
        let definition = catalog.plan(first)
        if let currency, definition.currency != currency { return }
        let agent = catalogAgentIndexes[definition.agent] ?? -1
        guard let slot = slotsByKey[SubscriptionKey(consumer: event.consumer, agent: agent)], var subscription = subscriptions[slot],
              subscription.period.planID == planID else {
            sink.rejected(Rejection(line: event.line, reason: "consumer '\(event.consumerName)' has no active subscription to '\(planID)'"))
            return
        }
        // A second cancel changes nothing: the subscription already ends at this period's end.
        subscription.cancelAtEnd = true
        subscriptions[slot] = subscription
    }

    private mutating func facts(ofAgent index: Int32) -> AgentFacts {
        let position = Int(index)
        guard position >= 0 else { return AgentFacts(known: true) }
        if position < agentFacts.count && agentFacts[position].known { return agentFacts[position] }
        if agentFacts.count <= position { agentFacts += [AgentFacts](repeating: AgentFacts(), count: position + 1 - agentFacts.count) }
        // An agent no plan names has no facts to find (every execution of it is no_plan).
        let agent = catalogAgentNames[index] ?? ""
        var versions: [(effective: Int64, plan: PlanHandle)] = []
        var inCurrency = currency == nil
        for (position, plan) in catalog.definition.plans.enumerated() where plan.agent == agent {
            if let currency, plan.currency == currency { inCurrency = true }
            if plan.isDefault { versions.append((plan.effective?.nanosecondsSinceEpoch ?? .min, catalog.allPlans[position])) }
        }
        let facts = AgentFacts(known: true, inCurrency: inCurrency, firstVersion: Int32(defaultVersions.count), versionCount: Int32(versions.count))
        defaultVersions += versions.sorted { $0.effective < $1.effective }
        agentFacts[position] = facts
        return facts
    }

    private mutating func execute(_ pointer: UnsafePointer<TraceEvent>) {
        let facts = facts(ofAgent: pointer.pointee.subject)
        // Executions of agents with no plan in the run's currency are not this run's business.
        guard facts.inCurrency else { return }
        if case .repeated(let sameFields) = seenExecutions.insert(high: pointer.pointee.idHashHigh, low: pointer.pointee.idHashLow,
                                                                  fingerprint: pointer.pointee.fingerprint) {
            if !sameFields {
                sink.warning(TraceWarning(line: pointer.pointee.line, message: "execution '\(pointer.pointee.executionID)' repeats with different fields; priced once, at its first occurrence"))
            }
            sink.duplicate(pointer.pointee)
            return
        }
        var plan: PlanHandle?
        var period: SubscriptionPeriod?
        if let slot = slot(consumer: pointer.pointee.consumer, agent: pointer.pointee.subject), let subscription = subscriptions[slot] {
            plan = subscription.period.plan
            period = subscription.period
        } else {
            // The last default version effective at the event's time.
            let time = pointer.pointee.time.nanosecondsSinceEpoch
            var index = Int(facts.firstVersion + facts.versionCount) - 1
            while index >= Int(facts.firstVersion) {
                if defaultVersions[index].effective <= time {
                    plan = defaultVersions[index].plan
                    break
                }
                index -= 1
            }
        }
        guard let plan else {
            sink.refused(pointer.pointee, reason: .noPlan)
            return
        }
        let unweighed = pointer.pointee.meterMask & ~weighedMasks[Int(plan.index)]
        if pointer.pointee.hasUnknownMeters || unweighed != 0 {
            let definition = catalog.plan(plan)
            var names = pointer.pointee.unknownMeters
            for index in 0..<catalog.meterNames.count where unweighed & (1 << UInt16(index)) != 0 { names.append(catalog.meterNames[index]) }
            for name in names {
                sink.warning(TraceWarning(line: pointer.pointee.line, message: "meter '\(name)' is not weighed by metering '\(definition.metering.name)' of plan '\(definition.id)'; it adds nothing"))
            }
        }
        sink.execution(at: pointer, plan: plan, period: period)
    }
}

/// A binary min-heap ordered by a caller's predicate.
struct MinHeap<Element> {
    private var elements: [Element] = []
    private let less: (Element, Element) -> Bool

    init(by less: @escaping (Element, Element) -> Bool) { self.less = less }

    var peek: Element? { elements.first }
    var isEmpty: Bool { elements.isEmpty }

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(elements[child], elements[parent]) else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let top = elements.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < elements.count && less(elements[left], elements[smallest]) { smallest = left }
            if right < elements.count && less(elements[right], elements[smallest]) { smallest = right }
            guard smallest != parent else { break }
            elements.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

/// The execution ids seen so far, as 128-bit hashes with a 32-bit fingerprint of their fields.
///
/// Exact duplicate detection must remember every id, but a streamed run must hold neither all of
/// them in memory nor anything that grows with their number (issue 3: peak memory flat in the
/// trace's size):
/// - the most recent ids live in an open-addressing table (`memoryCapacity` of them, ~20 MiB);
/// - when it fills, its ids are written in order to a temporary run file, straight from the table
///   (see `IdTable`: no sorted copy of them is made), and the table is cleared and reused;
///   a run on disk holds no memory;
/// - one blocked Bloom filter of a fixed size (`filterBytes`, 8 MiB by default), allocated at the
///   first spill, covers every spilled id. A look-up asks the table, then the filter; a "maybe"
///   is settled exactly by searching the runs on disk, newest first.
///
/// Why one fixed filter rather than one per run (as before): a filter per run cost 2 bytes an id,
/// so memory grew with the trace (and a later spill's sorted copy came on top of more filters:
/// 101 MiB peak at 1M events, 118 MiB at 4M), and a look-up read one filter per run. The fixed
/// filter is sized for 8 table-fulls: 4M spilled ids at 16 bits each, 0.07% false positives.
/// Past that its false-positive rate rises slowly (2.4% at 8M ids, 27% at 16M: measured), and a
/// false positive costs a search of every run, 2 or 3 `pread`s each (see `IdRun.find`). So
/// answers stay exact whatever the trace's size; only speed degrades, and only for traces several
/// times larger than the filter's design.
struct ExecutionSet {
    enum Outcome { case new, repeated(sameFields: Bool) }

    /// Ids kept in memory before a spill (tests use small values to exercise the runs).
    let memoryCapacity: Int
    /// The spilled ids' filter's size (tests use small values to force false positives).
    let filterBytes: Int
    private var table: IdTable
    private var runs: [IdRun] = []
    private var filter: SpilledIdFilter
    /// False once a spill failed (no temporary space): the table then simply keeps growing.
    private var canSpill = true
    var spilledRuns: Int { runs.count }
    /// Memory held by the spilled ids' filter: 0 before the first spill, then `filterBytes` at most.
    var filterMemory: Int { filter.memory }
    /// Memory held by the set, table and filter: the same after any number of spills.
    var memory: Int { table.memory + filter.memory }
    /// Look-ups the filter sent to the runs on disk (false positives and repeats of spilled ids).
    private(set) var diskSearches = 0

    /// `filterBytes` defaults to 16 bytes per id the table holds: 16 bits an id for 8 table-fulls.
    init(memoryCapacity: Int = 1 << 19, filterBytes: Int? = nil) {
        self.memoryCapacity = memoryCapacity
        self.filterBytes = filterBytes ?? memoryCapacity * 16
        table = IdTable(capacity: Self.tableCapacity(for: memoryCapacity))
        filter = SpilledIdFilter(bytes: self.filterBytes)
    }

    /// A power of two with room for `memoryCapacity` ids at 80% load at most.
    private static func tableCapacity(for ids: Int) -> Int {
        var capacity = 64
        while capacity * 4 < ids * 5 + 5 { capacity *= 2 }
        return capacity
    }

    /// Reads the table slot and the filter block a look-up of the id would read first, and returns
    /// a value made of them (so the loads stay). Touching the ids of a few hundred events before
    /// checking them lets their cache misses overlap instead of coming one at a time.
    func touch(high: UInt64, low: UInt64) -> UInt64 {
        table.touch(low: low | 1) &+ filter.touch(low: low | 1)
    }

    mutating func insert(high: UInt64, low: UInt64, fingerprint: UInt64) -> Outcome {
        let low = low | 1   // never all zero: zero marks an empty slot
        let print = UInt32(truncatingIfNeeded: fingerprint ^ (fingerprint >> 32))
        if let earlier = table.find(high: high, low: low) { return .repeated(sameFields: earlier == print) }
        if filter.mayContain(high: high, low: low) {
            diskSearches += 1
            // Newest first: a repeat (at-least-once delivery) usually follows its original closely.
            for run in runs.reversed() {
                if let earlier = run.find(high: high, low: low) { return .repeated(sameFields: earlier == print) }
            }
        }
        table.insert(high: high, low: low, print: print)
        if table.count >= memoryCapacity && canSpill { spill() }
        if table.count * 5 > table.capacity * 4 { table.grow() }
        return .new
    }

    /// Writes the table's ids to a new run on disk, adds them to the filter and empties the table.
    private mutating func spill() {
        guard let run = IdRun(writing: table) else {
            canSpill = false
            return
        }
        filter.insert(contentsOf: table)
        runs.append(run)
        table.removeAll()
    }
}

/// An id as a run file stores it (24 bytes, no padding), ordered by `low` then `high`. `low` is the
/// id hash's well-mixed half (it ends with an avalanche step), so ids are spread evenly over its
/// values: the table places them by its top bits, and a search of a run interpolates where a key lies.
struct IdRecord: Comparable {
    var low: UInt64
    var high: UInt64
    var print: UInt64

    static func < (left: IdRecord, right: IdRecord) -> Bool { (left.low, left.high) < (right.low, right.high) }
    static func == (left: IdRecord, right: IdRecord) -> Bool { left.low == right.low && left.high == right.high }
}

/// Open addressing with linear probing: keys in pairs of words, fingerprints apart.
///
/// An id's home slot is the top bits of its `low` half, and probing never wraps around: an id
/// that finds no free slot up to the last one goes to a small overflow list (normally empty or a
/// few ids; it only grows if ids crowd the last slots, as crafted ids could, which then costs time
/// but never more memory than the table's ids). So slot order is key order, except among the ids
/// of one cluster (a run of occupied slots, a few ids long; the last one with the overflow): a
/// spill writes the ids sorted by sorting each cluster alone, where sorting a copy of all of them
/// cost 19 MiB for a moment (the copy and the sort's buffer). There are no deletions (a spill
/// empties the whole table), so an id lies in the cluster of its home slot.
struct IdTable {
    private var keys: [UInt64]
    private var prints: [UInt32]
    private var overflow: [IdRecord] = []
    /// log2 of the slots.
    private let slotBits: Int
    private(set) var count = 0
    var capacity: Int { prints.count }

    /// `capacity` is a power of two.
    init(capacity: Int) {
        slotBits = capacity.trailingZeroBitCount
        keys = [UInt64](repeating: 0, count: 2 * capacity)
        prints = [UInt32](repeating: 0, count: capacity)
    }

    /// Bytes of storage (what `removeAll` keeps).
    var memory: Int { keys.count * 8 + prints.count * 4 + overflow.capacity * MemoryLayout<IdRecord>.stride }

    private func home(_ low: UInt64) -> Int {
        Int(truncatingIfNeeded: low >> UInt64(64 - slotBits))
    }

    func find(high: UInt64, low: UInt64) -> UInt32? {
        var position = home(low)
        while position < prints.count && keys[2 * position + 1] != 0 {
            if keys[2 * position] == high && keys[2 * position + 1] == low { return prints[position] }
            position += 1
        }
        guard position == prints.count else { return nil }
        return overflow.first { $0.low == low && $0.high == high }.map { UInt32(truncatingIfNeeded: $0.print) }
    }

    /// The first slot a look-up of `low` reads.
    func touch(low: UInt64) -> UInt64 {
        keys[2 * home(low) + 1]
    }

    mutating func insert(high: UInt64, low: UInt64, print: UInt32) {
        var position = home(low)
        while position < prints.count && keys[2 * position + 1] != 0 { position += 1 }
        if position < prints.count {
            keys[2 * position] = high
            keys[2 * position + 1] = low
            prints[position] = print
        } else {
            overflow.append(IdRecord(low: low, high: high, print: UInt64(print)))
        }
        count += 1
    }

    mutating func grow() {
        var old = IdTable(capacity: capacity * 2)
        swap(&old, &self)
        old.forEachSorted { insert(high: $0.high, low: $0.low, print: UInt32(truncatingIfNeeded: $0.print)) }
    }

    /// Empties the table, keeping its storage (a spill reuses it rather than allocating another).
    mutating func removeAll() {
        keys.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        overflow.removeAll()
        count = 0
    }

    /// Calls `body` with every id, in (low, high) order.
    func forEachSorted(_ body: (IdRecord) -> Void) {
        var cluster: [IdRecord] = []
        for slot in 0..<prints.count {
            if keys[2 * slot + 1] != 0 {
                cluster.append(IdRecord(low: keys[2 * slot + 1], high: keys[2 * slot], print: UInt64(prints[slot])))
            } else if !cluster.isEmpty {
                cluster.sort()
                cluster.forEach(body)
                cluster.removeAll(keepingCapacity: true)
            }
        }
        // The overflow's ids belong to the last cluster (their probing ran past its end).
        cluster += overflow
        cluster.sort()
        cluster.forEach(body)
    }
}

/// A blocked Bloom filter of a fixed size over the spilled ids. Each id sets 7 bits in one 512-bit
/// block (a cache line, so a look-up reads one line): the block is chosen by the top bits of `low`
/// (so a spill fills the blocks in order), the bits by 9-bit slices of a mix of `high` (independent
/// of the block). 7 probes rather than the 11 that suit 16 bits an id: in theory a little worse at
/// the design load (0.10% false positives against 0.09%), much better beyond it (2.5% against 4.6%
/// at 8 bits an id, 26% against 48% at 4).
struct SpilledIdFilter {
    /// 512-bit blocks, a power of two of them, allocated at the first insert.
    private let blocks: Int
    private var words: [UInt64] = []

    init(bytes: Int) {
        var blocks = 1
        while blocks * 2 * 64 <= bytes { blocks *= 2 }
        self.blocks = blocks
    }

    var memory: Int { words.count * 8 }

    /// The index of the first word of the id's block: the top log2(blocks) bits of `low`.
    private static func block(low: UInt64, blocks: Int) -> Int {
        Int(truncatingIfNeeded: low >> UInt64(64 - blocks.trailingZeroBitCount)) * 8   // `>>` by 64 gives 0
    }

    private static func probeBits(high: UInt64) -> UInt64 {
        (high ^ (high >> 32)) &* 0x9E37_79B9_7F4A_7C15
    }

    mutating func insert(contentsOf table: IdTable) {
        if words.isEmpty { words = [UInt64](repeating: 0, count: blocks * 8) }
        let blocks = blocks
        words.withUnsafeMutableBufferPointer { words in
            table.forEachSorted { id in
                let base = Self.block(low: id.low, blocks: blocks)
                var bits = Self.probeBits(high: id.high)
                for _ in 0..<7 {
                    let bit = Int(truncatingIfNeeded: bits >> 55)
                    words[base + bit >> 6] |= 1 << UInt64(bit & 63)
                    bits <<= 9
                }
            }
        }
    }

    func mayContain(high: UInt64, low: UInt64) -> Bool {
        guard !words.isEmpty else { return false }
        let base = Self.block(low: low, blocks: blocks)
        var bits = Self.probeBits(high: high)
        for _ in 0..<7 {
            let bit = Int(truncatingIfNeeded: bits >> 55)
            if words[base + bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
            bits <<= 9
        }
        return true
    }

    /// The first word of the block a look-up of the id reads.
    func touch(low: UInt64) -> UInt64 {
        words.isEmpty ? 0 : words[Self.block(low: low, blocks: blocks)]
    }
}

/// A sorted run of ids in a temporary file (deleted as soon as it is open). It holds no memory:
/// look-ups read the file with `pread` (the kernel's page cache keeps it, outside the process).
final class IdRun {
    private let descriptor: Int32
    private let count: Int
    private static let recordBytes = MemoryLayout<IdRecord>.stride
    /// Records read at once by a search: one 4 KiB page's worth.
    private static let window = 4_096 / recordBytes

    /// Writes the table's ids, sorted, through a 64 KiB buffer; nil if no temporary file could be
    /// made or written.
    init?(writing table: IdTable) {
        var template = Array((FileManager.default.temporaryDirectory.path + "/tariff-ids-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var buffer: [IdRecord] = []
        buffer.reserveCapacity(65_536 / Self.recordBytes)
        var complete = true
        func flush() {
            complete = complete && buffer.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    guard written > 0 else { return false }
                    offset += written
                }
                return true
            }
            buffer.removeAll(keepingCapacity: true)
        }
        table.forEachSorted { id in
            buffer.append(id)
            if buffer.count == buffer.capacity { flush() }
        }
        flush()
        guard complete else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        count = table.count
    }

    deinit { close(descriptor) }

    /// The fingerprint stored with the id, if the run holds it. An interpolation search: the keys'
    /// `low`s are evenly spread, so the key's position is estimated from the `low`s bounding the
    /// range still searched, and the page-sized window read there usually holds it; if not, the
    /// range shrinks past the window and the estimate (now from a near bound) is much closer.
    /// Two or three `pread`s a search, where a binary search needed about 20.
    func find(high: UInt64, low: UInt64) -> UInt32? {
        let key = IdRecord(low: low, high: high, print: 0)
        var lower = 0, upper = count                          // the key, if here, is at an index in lower..<upper,
        var lowerBound: UInt64 = 0, upperBound = UInt64.max   // and lowerBound <= key.low <= upperBound
        return withUnsafeTemporaryAllocation(of: IdRecord.self, capacity: Self.window) { buffer -> UInt32? in
            while lower < upper {
                // (key.low - lowerBound) / span of the way into lower..<upper, in integers: the
                // product is full width, and with `into` at most `span` the quotient is at most
                // upper - lower, so it fits (clamped, so that even a damaged run file cannot trap).
                let span = upperBound &- lowerBound
                let count = UInt64(upper - lower)
                let into = min(key.low &- lowerBound, span)
                let offset = span == 0 ? count / 2 : span.dividingFullWidth(into.multipliedFullWidth(by: count)).quotient
                let guess = lower + Int(offset)
                let length = min(Self.window, upper - lower)
                let start = min(max(guess - length / 2, lower), upper - length)
                let bytes = length * Self.recordBytes
                guard pread(descriptor, buffer.baseAddress, bytes, off_t(start * Self.recordBytes)) == bytes else { return nil }
                if key < buffer[0] {
                    upper = start
                    upperBound = buffer[0].low
                } else if buffer[length - 1] < key {
                    lower = start + length
                    lowerBound = buffer[length - 1].low
                } else {
                    // Within the window: a binary search of it.
                    var first = 0, last = length
                    while first < last {
                        let middle = (first + last) / 2
                        if buffer[middle] < key { first = middle + 1 } else { last = middle }
                    }
                    return buffer[first] == key ? UInt32(truncatingIfNeeded: buffer[first].print) : nil
                }
            }
            return nil
        }
    }
}
