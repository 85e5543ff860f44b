import Synchronization

/// Group commit for steps on one consumer: while a step on a consumer is in flight, the steps on
/// that consumer that arrive meanwhile queue, and when it returns they go to the server together
/// as one batch (one call, one transaction, one commit), led by the first of them.
///
/// Why: every step that moves a consumer's money holds that consumer's row lock until its commit,
/// so one consumer's steps run one commit at a time (a hot consumer is bound by the disk's flush
/// latency). A batch pays that commit once for all its steps. Nothing waits that would not have
/// waited anyway: a step on a consumer with nothing in flight runs at once, alone, as before.
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

    /// Consumers with a batch in flight, and the steps queued behind it.
    private let queues = Mutex<[String: [Pending]]>([:])
    private let runBatch: @Sendable ([Command]) async throws -> [Outcome]
    private let runAlone: @Sendable (Command) async throws -> Output

    /// - parameter runBatch: one call for several steps, an outcome for each, in order; throws when the batch failed as a whole.
    /// - parameter runAlone: one step with its retries.
    init(runBatch: @escaping @Sendable ([Command]) async throws -> [Outcome], runAlone: @escaping @Sendable (Command) async throws -> Output) {
        self.runBatch = runBatch
        self.runAlone = runAlone
    }

    func submit(_ command: Command, consumer: String) async throws -> Output {
        let turn: Turn = await withCheckedContinuation { continuation in
            // One decision under the lock: lead (nothing in flight on this consumer) or queue.
            let leads = queues.withLock { queues -> Bool in
                guard queues[consumer] != nil else {
                    queues[consumer] = []
                    return true
                }
                queues[consumer]?.append(Pending(command: command, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .lead([])) }
        }
        switch turn {
        case .done(let outcome): return try outcome.get()
        case .alone: return try await runAlone(command)
        case .lead(let others):
            let mine = await lead(command, with: others)
            handOver(consumer)
            return try mine.get()
        }
    }

    private func lead(_ command: Command, with others: [Pending]) async -> Outcome {
        guard !others.isEmpty else { return await Self.outcome { try await self.runAlone(command) } }
        do {
            let outcomes = try await runBatch([command] + others.map(\.command))
            guard outcomes.count == others.count + 1 else { throw BatchSizeMismatch() }
            batchedSteps.add(outcomes.count, ordering: .relaxed)
            for (pending, outcome) in zip(others, outcomes.dropFirst()) { pending.continuation.resume(returning: .done(outcome)) }
            return outcomes[0]
        } catch {
            for pending in others { pending.continuation.resume(returning: .alone) }
            return await Self.outcome { try await self.runAlone(command) }
        }
    }

    /// The queued steps become the next batch, led by the first of them; with none queued the consumer is idle again.
    private func handOver(_ consumer: String) {
        let next = queues.withLock { queues -> [Pending] in
            let queued = queues[consumer] ?? []
            guard !queued.isEmpty else {
                queues[consumer] = nil
                return []
            }
            let batch = Array(queued.prefix(Self.maximumBatch))
            queues[consumer] = Array(queued.dropFirst(batch.count))
            return batch
        }
        if let first = next.first { first.continuation.resume(returning: .lead(Array(next.dropFirst()))) }
    }

    private static func outcome(_ body: () async throws -> Output) async -> Outcome {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    private struct BatchSizeMismatch: Error {}
}
