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
    mutating func refused(_ event: TraceEvent, reason: Refusal)
    mutating func duplicate(_ event: TraceEvent)
    mutating func warning(_ warning: TraceWarning)
    mutating func rejected(_ rejection: Rejection)
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
    /// Per consumer index: its subscriptions' (agent, slot), so an execution finds its plan by a
    /// short scan rather than a hash look-up.
    private var consumerSlots: [[(agent: Int32, slot: Int)]] = []
    private var freeSlots: [Int] = []
    private var nextSlot = 0
    private var generation = 0
    private var boundaries = MinHeap<Boundary>(by: { ($0.time, $0.slot) < ($1.time, $1.slot) })
    /// Execution ids already priced: (two independent 64-bit hashes of the id) -> fingerprint of its fields.
    private var seenExecutions = ExecutionSet()
    /// Per agent index: the agent's default-plan versions (effective ns, handle), and whether the
    /// run's currency prices it; computed once per agent, so executions look nothing up by name.
    private var agentFacts: [AgentFacts?] = []
    private struct AgentFacts {
        var defaultVersions: [(effective: Int64, plan: PlanHandle)]
        var inCurrency: Bool
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
        process(resolved: event)
    }

    /// Resolves a run of events in place (names interned, hashes computed), and loads into cache
    /// what checking their execution ids will read: the simulator's pricing thread prepares a
    /// few hundred events of a batch at a time, then processes them with `process(resolved:)`.
    /// Done in a tight loop, the look-ups' cache misses overlap instead of coming one at a time,
    /// and the events are not copied (some 280 bytes with reference-counted fields each).
    mutating func prepare(_ events: UnsafeMutableBufferPointer<TraceEvent>) {
        for index in events.indices { events[index].resolve(in: &entities) }
        var touched: UInt64 = 0
        for event in events where event.kind == .execution {
            touched &+= seenExecutions.touch(high: event.idHashHigh, low: event.idHashLow)
        }
        prefetched &+= touched
    }

    /// What `prepare` read, kept so that its loads are not optimised away.
    private var prefetched: UInt64 = 0

    /// Processes an event already resolved in `entities` (see `prepare`).
    mutating func process(resolved event: borrowing TraceEvent) {
        advance(through: event.time)
        if firstEventTime == nil { firstEventTime = event.time }
        lastEventTime = event.time
        switch event.kind {
        case .purchase: sink.purchase(event)
        case .subscribe: subscribe(event)
        case .cancel: cancel(event)
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
        if Int(key.consumer) < consumerSlots.count { consumerSlots[Int(key.consumer)].removeAll { $0.slot == slot } }
        freeSlots.append(slot)
    }

    private mutating func add(slot: Int, key: SubscriptionKey) {
        slotsByKey[key] = slot
        while consumerSlots.count <= Int(key.consumer) { consumerSlots.append([]) }
        consumerSlots[Int(key.consumer)].append((key.agent, slot))
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
        while agentFacts.count <= Int(index) { agentFacts.append(nil) }
        if let known = agentFacts[Int(index)] { return known }
        // An agent no plan names has no facts to find (every execution of it is no_plan).
        let agent = catalogAgentNames[index] ?? ""
        var versions: [(effective: Int64, plan: PlanHandle)] = []
        var inCurrency = currency == nil
        for (position, plan) in catalog.definition.plans.enumerated() where plan.agent == agent {
            if let currency, plan.currency == currency { inCurrency = true }
            if plan.isDefault { versions.append((plan.effective?.nanosecondsSinceEpoch ?? .min, catalog.allPlans[position])) }
        }
        let facts = AgentFacts(defaultVersions: versions.sorted { $0.effective < $1.effective }, inCurrency: inCurrency)
        agentFacts[Int(index)] = facts
        return facts
    }

    private mutating func execute(_ event: TraceEvent) {
        let facts = facts(ofAgent: event.subject)
        // Executions of agents with no plan in the run's currency are not this run's business.
        guard facts.inCurrency else { return }
        if case .repeated(let sameFields) = seenExecutions.insert(high: event.idHashHigh, low: event.idHashLow, fingerprint: event.fingerprint) {
            if !sameFields {
                sink.warning(TraceWarning(line: event.line, message: "execution '\(event.executionID)' repeats with different fields; priced once, at its first occurrence"))
            }
            sink.duplicate(event)
            return
        }
        let plan: PlanHandle
        var period: SubscriptionPeriod?
        let consumer = Int(event.consumer)
        if consumer < consumerSlots.count, let slot = consumerSlots[consumer].first(where: { $0.agent == event.subject })?.slot,
           let subscription = subscriptions[slot] {
            plan = subscription.period.plan
            period = subscription.period
        } else if let version = facts.defaultVersions.last(where: { $0.effective <= event.time.nanosecondsSinceEpoch }) {
            plan = version.plan
        } else {
            sink.refused(event, reason: .noPlan)
            return
        }
        let unweighed = event.meterMask & ~weighedMasks[Int(plan.index)]
        if !event.unknownMeters.isEmpty || unweighed != 0 {
            let definition = catalog.plan(plan)
            var names = event.unknownMeters
            for index in 0..<catalog.meterNames.count where unweighed & (1 << UInt16(index)) != 0 { names.append(catalog.meterNames[index]) }
            for name in names {
                sink.warning(TraceWarning(line: event.line, message: "meter '\(name)' is not weighed by metering '\(definition.metering.name)' of plan '\(definition.id)'; it adds nothing"))
            }
        }
        sink.execution(event, plan: plan, period: period)
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
/// Exact duplicate detection must remember every id, but a streamed run must not hold them all in
/// memory: the most recent ids live in an open-addressing table (`memoryCapacity` of them, ~20 MiB);
/// when it fills, its entries are sorted and written to a temporary run file, summarised in memory by
/// a blocked Bloom filter (16 bits an id, 11 probes in one cache line: about 1 false positive in
/// 1,000 look-ups a run). A
/// look-up asks the table, then each run whose filter says "maybe", by binary search with `pread`.
/// Memory then grows by 2 bytes an execution instead of 20+.
struct ExecutionSet {
    enum Outcome { case new, repeated(sameFields: Bool) }

    /// Ids kept in memory before a spill (tests use small values to exercise the runs).
    let memoryCapacity: Int
    private var table: IdTable
    private var runs: [IdRun] = []
    var spilledRuns: Int { runs.count }

    init(memoryCapacity: Int = 1 << 19) {
        self.memoryCapacity = memoryCapacity
        table = IdTable(capacity: Self.tableCapacity(for: memoryCapacity))
    }

    /// A power of two with room for `memoryCapacity` ids at 80% load at most.
    private static func tableCapacity(for ids: Int) -> Int {
        var capacity = 64
        while capacity * 4 < ids * 5 + 5 { capacity *= 2 }
        return capacity
    }

    /// Reads the table slot and the Bloom filter blocks a look-up of the id would read first, and
    /// returns a value made of them (so the loads stay). Touching the ids of a few hundred events
    /// before checking them lets their cache misses overlap instead of coming one at a time.
    func touch(high: UInt64, low: UInt64) -> UInt64 {
        var value = table.touch(low: low | 1)
        for run in runs { value &+= run.touch(high: high) }
        return value
    }

    mutating func insert(high: UInt64, low: UInt64, fingerprint: UInt64) -> Outcome {
        let low = low | 1   // never all zero: zero marks an empty slot
        let print = UInt32(truncatingIfNeeded: fingerprint ^ (fingerprint >> 32))
        if let earlier = table.find(high: high, low: low) { return .repeated(sameFields: earlier == print) }
        for run in runs where run.mayContain(high: high, low: low) {
            if let earlier = run.find(high: high, low: low) { return .repeated(sameFields: earlier == print) }
        }
        table.insert(high: high, low: low, print: print)
        if table.count >= memoryCapacity, let run = IdRun(spilling: table.entries()) {
            runs.append(run)
            table = IdTable(capacity: Self.tableCapacity(for: memoryCapacity))
        }
        // If the spill could not be written (no temporary space), the table simply keeps growing.
        if table.count * 5 > table.capacity * 4 { table.grow() }
        return .new
    }
}

/// Open addressing over the hash's own bits: keys in pairs of words, fingerprints apart.
struct IdTable {
    private var keys: [UInt64]
    private var prints: [UInt32]
    private(set) var count = 0
    var capacity: Int { prints.count }

    init(capacity: Int) {
        keys = [UInt64](repeating: 0, count: 2 * capacity)
        prints = [UInt32](repeating: 0, count: capacity)
    }

    func find(high: UInt64, low: UInt64) -> UInt32? {
        let mask = prints.count - 1
        var position = Int(truncatingIfNeeded: low >> 1) & mask
        while keys[2 * position + 1] != 0 {
            if keys[2 * position] == high && keys[2 * position + 1] == low { return prints[position] }
            position = (position + 1) & mask
        }
        return nil
    }

    /// The first slot a look-up of `low` reads.
    func touch(low: UInt64) -> UInt64 {
        keys[2 * (Int(truncatingIfNeeded: low >> 1) & (prints.count - 1)) + 1]
    }

    mutating func insert(high: UInt64, low: UInt64, print: UInt32) {
        let mask = prints.count - 1
        var position = Int(truncatingIfNeeded: low >> 1) & mask
        while keys[2 * position + 1] != 0 { position = (position + 1) & mask }
        keys[2 * position] = high
        keys[2 * position + 1] = low
        prints[position] = print
        count += 1
    }

    mutating func grow() {
        let old = entries()
        self = IdTable(capacity: capacity * 2)
        for entry in old { insert(high: entry.high, low: entry.low, print: entry.print) }
    }

    func entries() -> [(high: UInt64, low: UInt64, print: UInt32)] {
        var result: [(high: UInt64, low: UInt64, print: UInt32)] = []
        result.reserveCapacity(count)
        for slot in 0..<prints.count where keys[2 * slot + 1] != 0 { result.append((keys[2 * slot], keys[2 * slot + 1], prints[slot])) }
        return result
    }
}

/// A sorted run of ids in a temporary file (deleted as soon as it is open), with its Bloom filter.
final class IdRun {
    private let descriptor: Int32
    private let count: Int
    private var bloom: [UInt64]
    private static let recordBytes = 24
    private static let probes = 11

    /// Writes the entries sorted; nil if no temporary file could be made.
    init?(spilling entries: [(high: UInt64, low: UInt64, print: UInt32)]) {
        let sorted = entries.sorted { ($0.high, $0.low) < ($1.high, $1.low) }
        var template = Array((FileManager.default.temporaryDirectory.path + "/tariff-ids-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var bytes = [UInt64]()
        bytes.reserveCapacity(sorted.count * 3)
        for entry in sorted { bytes += [entry.high, entry.low, UInt64(entry.print)] }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == sorted.count * Self.recordBytes else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        count = sorted.count
        // A blocked Bloom filter: each id's probes fall in one 512-bit block (one cache line).
        blocks = max(1, sorted.count * 16 / 512)
        bloom = [UInt64](repeating: 0, count: blocks * 8)
        for entry in sorted {
            let base = Int(truncatingIfNeeded: entry.high % UInt64(blocks)) * 8
            var bits = entry.low
            for _ in 0..<Self.probes {
                let bit = Int(bits & 511)
                bloom[base + bit >> 6] |= 1 << UInt64(bit & 63)
                bits = (bits >> 9) | (bits << 55)
            }
        }
    }

    private let blocks: Int

    deinit { close(descriptor) }

    /// The first word of the filter block a look-up of the id reads.
    func touch(high: UInt64) -> UInt64 {
        bloom[Int(truncatingIfNeeded: high % UInt64(blocks)) * 8]
    }

    /// The block is chosen by the high half of the id hash, the probes by 9-bit slices of the low half.
    func mayContain(high: UInt64, low: UInt64) -> Bool {
        let base = Int(truncatingIfNeeded: high % UInt64(blocks)) * 8
        var bits = low
        for _ in 0..<Self.probes {
            let bit = Int(bits & 511)
            if bloom[base + bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
            bits = (bits >> 9) | (bits << 55)
        }
        return true
    }

    func find(high: UInt64, low: UInt64) -> UInt32? {
        var lower = 0, upper = count
        var record = [UInt64](repeating: 0, count: 3)
        while lower < upper {
            let middle = (lower + upper) / 2
            let read = record.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, Self.recordBytes, off_t(middle * Self.recordBytes)) }
            guard read == Self.recordBytes else { return nil }
            if (record[0], record[1]) == (high, low) { return UInt32(truncatingIfNeeded: record[2]) }
            if (record[0], record[1]) < (high, low) { lower = middle + 1 } else { upper = middle }
        }
        return nil
    }
}
