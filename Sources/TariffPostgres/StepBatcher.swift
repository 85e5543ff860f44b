import Synchronization

/// Group commit: while a step is in flight in its lane, the steps that arrive in that lane
/// meanwhile queue, and when it returns they go to the server together as one batch (one call,
/// one transaction, one commit), led by the first of them.
///
/// Lanes: a step's lane is a hash of its consumer's id (FNV-1a of the UTF-8 bytes, so the same on
/// every run and machine), and each lane has at most one batch in flight. With a single lane, one
/// consumer whose step waits (its row locked by a long transaction elsewhere, a slow commit) held
/// up every reserve of the process behind it; now it holds up only its own lane's. The price:
/// batches are smaller (when batching was first measured on the 2-core machine, four lanes did
/// 1,749 lifecycles/s on 1,024 consumers against 2,612 with one), paid so that a step's latency no
/// longer depends on the slowest consumer in the process.
///
/// Why batch: every step that moves a consumer's money holds that consumer's row lock until its
/// commit, so one consumer's steps run one commit at a time (a hot consumer is bound by the disk's
/// flush latency), and on many consumers every step pays a transaction, a round trip and a commit
/// of its own. A batch pays them once for all its steps. A step that finds nothing in flight in its
/// lane runs at once, alone, as before.
///
/// Locks: a batch applies its steps in the order of their consumers' ids (steps of one consumer
/// keep their order of arrival), so two batches, here or in another process, take consumers' row
/// locks in the same order and cannot deadlock; a single step locks one consumer.
///
/// The batch function runs each step in its own subtransaction, so a refused step rolls back
/// alone and answers its refusal while the others apply. If the batch fails as a whole (a
/// serialization failure, a lost connection), every step in it is run alone with its usual
/// retries: each carries its idempotency key, so one that did apply returns its first result.
final class StepBatcher<Command: Sendable, Output: Sendable>: Sendable {
    typealias Outcome = Result<Output, any Error>

    /// At most this many steps in one batch: each is a subtransaction, and PostgreSQL keeps up to
    /// 64 of a transaction's subtransactions in shared memory before it spills to disk.
    static var maximumBatch: Int { 32 }

    /// Lanes of a backend's batchers: enough that one stalled consumer leaves most steps alone,
    /// few enough that batches still fill under load.
    static var defaultLanes: Int { 4 }

    private struct Pending: Sendable {
        let command: Command
        let continuation: CheckedContinuation<Turn, Never>
    }

    private enum Turn: Sendable {
        /// The batch this step was in applied it (or refused it).
        case done(Outcome)
        /// This step leads the next batch of its lane: itself and these.
        case lead([Pending])
        /// The batch failed as a whole: run alone.
        case alone
    }

    /// Steps applied as part of a batch of two or more (tests, and a figure worth logging).
    let batchedSteps = Atomic<Int>(0)

    let lanes: Int
    /// Per lane, nil: nothing in flight; else the steps queued behind the lane's batch in flight.
    private let queues: Mutex<[[Pending]?]>
    private let runBatch: @Sendable ([Command]) async throws -> [Outcome]
    private let runAlone: @Sendable (Command) async throws -> Output
    private let consumerOf: @Sendable (Command) -> String

    /// - parameter lanes: how many batches may be in flight at once (1...256), one per lane.
    /// - parameter runBatch: one call for several steps, an outcome for each, in order; throws when the batch failed as a whole.
    /// - parameter runAlone: one step with its retries.
    init(lanes: Int = StepBatcher.defaultLanes, consumerOf: @escaping @Sendable (Command) -> String,
         runBatch: @escaping @Sendable ([Command]) async throws -> [Outcome], runAlone: @escaping @Sendable (Command) async throws -> Output) {
        self.lanes = min(max(lanes, 1), 256)
        queues = Mutex(Array(repeating: nil, count: self.lanes))
        self.consumerOf = consumerOf
        self.runBatch = runBatch
        self.runAlone = runAlone
    }

    /// The lane of a consumer: FNV-1a (64-bit) of its id's UTF-8 bytes, modulo the lanes.
    static func lane(of consumer: String, lanes: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in consumer.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(max(lanes, 1)))
    }

    func lane(of consumer: String) -> Int { Self.lane(of: consumer, lanes: lanes) }

    func submit(_ command: Command) async throws -> Output {
        let lane = lane(of: consumerOf(command))
        let turn: Turn = await withCheckedContinuation { continuation in
            // One decision under the lock: lead (nothing in flight in the lane) or queue.
            let leads = queues.withLock { queues -> Bool in
                guard queues[lane] != nil else {
                    queues[lane] = []
                    return true
                }
                queues[lane]?.append(Pending(command: command, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .lead([])) }
        }
        switch turn {
        case .done(let outcome): return try outcome.get()
        case .alone: return try await runAlone(command)
        case .lead(let others):
            let mine = await lead(command, with: others)
            handOver(lane)
            return try mine.get()
        }
    }

    private func lead(_ command: Command, with others: [Pending]) async -> Outcome {
        guard !others.isEmpty else { return await Self.outcome { try await self.runAlone(command) } }
        do {
            let commands = [command] + others.map(\.command)
            // By consumer, then arrival: the lock order every batch follows.
            let consumers = commands.map(consumerOf)
            let order = commands.indices.sorted { (consumers[$0], $0) < (consumers[$1], $1) }
            let sortedOutcomes = try await runBatch(order.map { commands[$0] })
            guard sortedOutcomes.count == commands.count else { throw BatchSizeMismatch() }
            var outcomes = sortedOutcomes
            for (position, index) in order.enumerated() { outcomes[index] = sortedOutcomes[position] }
            batchedSteps.add(outcomes.count, ordering: .relaxed)
            for (pending, outcome) in zip(others, outcomes.dropFirst()) { pending.continuation.resume(returning: .done(outcome)) }
            return outcomes[0]
        } catch {
            for pending in others { pending.continuation.resume(returning: .alone) }
            return await Self.outcome { try await self.runAlone(command) }
        }
    }

    /// The lane's queued steps become its next batch, led by the first of them; with none queued
    /// nothing is in flight in the lane again.
    private func handOver(_ lane: Int) {
        let next = queues.withLock { queues -> [Pending] in
            let queued = queues[lane] ?? []
            guard !queued.isEmpty else {
                queues[lane] = nil
                return []
            }
            let batch = Array(queued.prefix(Self.maximumBatch))
            queues[lane] = Array(queued.dropFirst(batch.count))
            return batch
        }
        if let first = next.first { first.continuation.resume(returning: .lead(Array(next.dropFirst()))) }
    }

    private static func outcome(_ body: () async throws -> Output) async -> Outcome {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    private struct BatchSizeMismatch: Error {}
}
