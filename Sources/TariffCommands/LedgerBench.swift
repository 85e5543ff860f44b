import Foundation
import Tariff
import TariffSettlement
import TariffSQLite

/// `tariff bench ledger-sqlite` (performance.md): durable reserve -> settle lifecycles per second
/// against the embedded SQLite ledger, many consumers, many lifecycles in flight (group commit).
enum LedgerBench {
    /// Lifecycles in flight at once: a settlement service settles many executions concurrently,
    /// and group commit turns that concurrency into fewer fsyncs.
    static let workers = 1_024
    static let consumers = 1_000

    static func sqlite(_ catalog: CompiledCatalog, lifecycles: Int, repetitions: Int, seed: UInt64) throws -> BenchmarkResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-bench-ledger-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        guard let plan = catalog.planIDs.lazy.compactMap({ id -> PlanHandle? in
            guard let handle = catalog.versions(of: id).last else { return nil }
            let definition = catalog.plan(handle)
            return definition.model == "per_call" && definition.currency.code == "USD" ? handle : nil
        }).first else {
            throw InputError("the ledger benchmark needs a per-call plan in USD in the catalog")
        }
        let path = directory.appendingPathComponent("bench.sqlite").path
        let rates = try runBlocking { () -> [Double] in
            let backend = try SQLiteBackend(path: path, currency: Currency(code: "USD")!, durability: .full)
            let settlement = Settlement(backend: backend, catalog: catalog)
            for consumer in 0..<consumers {
                try await settlement.purchase(consumer: "cus_\(consumer)", amount: Money(micros: 100_000 * 1_000_000), idempotencyKey: "bench-\(consumer)")
            }
            var readings = MeterReadings()
            if let cpu = catalog.meter(named: "cpu_ms") { readings[cpu] = MeterValue(micros: 1_200_000_000) }
            let meters = readings
            var rates: [Double] = []
            // One warm-up (a fifth of the size), then the measured repetitions.
            for repetition in 0...repetitions {
                let count = repetition == 0 ? max(lifecycles / 5, workers) : lifecycles
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<workers {
                        group.addTask {
                            var index = worker
                            while index < count {
                                let execution = "exe_\(seed)_\(repetition)_\(index)"
                                let consumer = "cus_\(index % consumers)"
                                try await settlement.reserve(ReservationRequest(execution: execution, consumer: consumer, plan: plan))
                                try await settlement.settle(SettlementRequest(execution: execution, meters: meters, endedAt: settlement.clock.now()))
                                index += workers
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let elapsed = BenchCommand.seconds(ContinuousClock.now - start)
                if repetition > 0 { rates.append(Double(count) / elapsed) }
            }
            return rates
        }
        return BenchmarkResult(name: "ledger-sqlite", unit: "lifecycles/s", value: Int(BenchCommand.median(rates)), target: 20_000, higherIsBetter: true,
                               allocationsPerExecution: nil,
                               workload: "\(lifecycles) reserve -> settle lifecycles of a per-call plan over \(consumers) consumers, \(workers) in flight, SQLite WAL synchronous=FULL with group commit; 1 warm-up, \(repetitions) repetitions",
                               extraRequirementMet: true)
    }
}
