import Synchronization
import Tariff

/// The holds this process placed and has not closed yet: consumer, plan and period by execution
/// id, so `settle` can build its command without reading the hold first (one backend round trip
/// per step). Only a hint: the backend checks the command against the stored hold.
final class HoldDirectory: Sendable {
    struct Info: Sendable {
        var consumer: String
        var plan: String
        var version: Int
        var periodStart: Timestamp?
    }

    /// Bounded: a process that reserves without ever settling cannot grow it without limit
    /// (past the bound it starts over, and settles read their hold instead).
    static let capacity = 100_000
    private let known = Mutex<[ByteKey: Info]>([:])

    func remember(_ info: Info, for execution: String) {
        known.withLock { known in
            if known.count >= Self.capacity { known.removeAll(keepingCapacity: true) }
            known[ByteKey(execution)] = info
        }
    }

    func info(for execution: String) -> Info? { known.withLock { $0[ByteKey(execution)] } }

    func forget(_ execution: String) { _ = known.withLock { $0.removeValue(forKey: ByteKey(execution)) } }
}
