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

/// The execution ids seen so far, as 128-bit hashes with the first occurrence's fingerprint, in
/// an open-addressing table: the hash is already uniform, so it indexes the table directly
/// (no second hashing), and growth rehashes by moving entries.
struct ExecutionSet {
    /// Two words a slot (the id's 128-bit hash; all zero = empty) and a 32-bit fingerprint of its
    /// fields: 20 bytes an execution id, the one part of a streamed run that grows with the trace.
    private var keys = [UInt64](repeating: 0, count: 2 << 16)
    private var fingerprints = [UInt32](repeating: 0, count: 1 << 16)
    private(set) var count = 0

    enum Outcome { case new, repeated(sameFields: Bool) }

    /// Inserts the id, or says it was seen (and whether with the same fields).
    mutating func insert(high: UInt64, low: UInt64, fingerprint: UInt64) -> Outcome {
        let low = low | 1   // never all zero: zero marks an empty slot
        let print = UInt32(truncatingIfNeeded: fingerprint ^ (fingerprint >> 32))
        let mask = fingerprints.count - 1
        var position = Int(truncatingIfNeeded: low >> 1) & mask
        while keys[2 * position + 1] != 0 {
            if keys[2 * position] == high && keys[2 * position + 1] == low { return .repeated(sameFields: fingerprints[position] == print) }
            position = (position + 1) & mask
        }
        keys[2 * position] = high
        keys[2 * position + 1] = low
        fingerprints[position] = print
        count += 1
        if count * 5 > fingerprints.count * 4 { grow() }
        return .new
    }

    private mutating func grow() {
        let oldKeys = keys, oldFingerprints = fingerprints
        keys = []   // let the old storage go as soon as it is copied
        fingerprints = []
        let capacity = oldFingerprints.count * 2
        keys = [UInt64](repeating: 0, count: 2 * capacity)
        fingerprints = [UInt32](repeating: 0, count: capacity)
        let mask = capacity - 1
        for slot in oldFingerprints.indices where oldKeys[2 * slot + 1] != 0 {
            var position = Int(truncatingIfNeeded: oldKeys[2 * slot + 1] >> 1) & mask
            while keys[2 * position + 1] != 0 { position = (position + 1) & mask }
            keys[2 * position] = oldKeys[2 * slot]
            keys[2 * position + 1] = oldKeys[2 * slot + 1]
            fingerprints[position] = oldFingerprints[slot]
        }
    }
}
