import Synchronization

/// Group commit: while a step is in flight, the steps that arrive meanwhile queue, and when it
/// returns they go to the server together as one batch (one call, one transaction, one commit),
/// led by the first of them. One batch in flight at a time: tried with four (by a hash of the
/// consumer), the 2-core benchmark machine did 1,749 lifecycles/s on 1,024 consumers against
/// 2,612 with one, fuller batches saving more commits and round trips than the parallelism gave;
/// the server's parallelism comes from the other processes and the steps that do not batch.
///
/// Why: every step that moves a consumer's money holds that consumer's row lock until its commit,
/// so one consumer's steps run one commit at a time (a hot consumer is bound by the disk's flush
/// latency), and on many consumers every step pays a transaction, a round trip and a commit of its
/// own. A batch pays them once for all its steps. A step that finds nothing in flight runs at
/// once, alone, as before.
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

    private struct Pending: Sendable {
        let command: Command
        let continuation: CheckedContinuation<Turn, Never>
    }

    private enum Turn: Sendable {
        /// The batch this step was in applied it (or refused it).
        case done(Outcome)
        /// This step leads the next batch: itself and these.
        case lead([Pending])
        /// The batch failed as a whole: run alone.
        case alone
    }

    /// Steps applied as part of a batch of two or more (tests, and a figure worth logging).
    let batchedSteps = Atomic<Int>(0)

    /// nil: nothing in flight; else the steps queued behind the batch in flight.
    private let queue = Mutex<[Pending]?>(nil)
    private let runBatch: @Sendable ([Command]) async throws -> [Outcome]
    private let runAlone: @Sendable (Command) async throws -> Output
    private let consumerOf: @Sendable (Command) -> String

    /// - parameter runBatch: one call for several steps, an outcome for each, in order; throws when the batch failed as a whole.
    /// - parameter runAlone: one step with its retries.
    init(consumerOf: @escaping @Sendable (Command) -> String, runBatch: @escaping @Sendable ([Command]) async throws -> [Outcome],
         runAlone: @escaping @Sendable (Command) async throws -> Output) {
        self.consumerOf = consumerOf
        self.runBatch = runBatch
        self.runAlone = runAlone
    }

    func submit(_ command: Command) async throws -> Output {
        let turn: Turn = await withCheckedContinuation { continuation in
            // One decision under the lock: lead (nothing in flight) or queue.
            let leads = queue.withLock { queue -> Bool in
                guard queue != nil else {
                    queue = []
                    return true
                }
                queue?.append(Pending(command: command, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .lead([])) }
        }
        switch turn {
        case .done(let outcome): return try outcome.get()
        case .alone: return try await runAlone(command)
        case .lead(let others):
            let mine = await lead(command, with: others)
            handOver()
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

    /// The queued steps become the next batch, led by the first of them; with none queued nothing is in flight again.
    private func handOver() {
        let next = queue.withLock { queue -> [Pending] in
            let queued = queue ?? []
            guard !queued.isEmpty else {
                queue = nil
                return []
            }
            let batch = Array(queued.prefix(Self.maximumBatch))
            queue = Array(queued.dropFirst(batch.count))
            return batch
        }
        if let first = next.first { first.continuation.resume(returning: .lead(Array(next.dropFirst()))) }
    }

    private static func outcome(_ body: () async throws -> Output) async -> Outcome {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    private struct BatchSizeMismatch: Error {}
}
