import Tariff
import Testing

/// The README's library example, compiled and run as a test so it can never rot.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("pricing through the library, as a settlement service does")
    func readmeExample() throws {
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let plansDirectory = "/\(root)/plans", rulesDirectory = "/\(root)/rules"
        // The example returns early when the catalog does not compile: that must fail the test.
        var reachedTheEnd = false
        defer { #expect(reachedTheEnd, "the README example stopped early: the sample catalog did not compile") }
        // --- README example begins ---
        // Compile once; diagnostics come back as values.
        let compilation = CatalogLoader.compile(plansDirectory: plansDirectory, rulesDirectory: rulesDirectory)
        guard let catalog = compilation.catalog else {
            for diagnostic in compilation.diagnostics { print(diagnostic) }
            return
        }
        // Resolve the plan version once (by id and time, or the agent's default plan)...
        let at = Timestamp(rfc3339: "2026-11-30T12:00:00Z")!
        let plan = catalog.plan(id: "research-pro", at: at)!
        // ...then price executions: readings by meter index, the period state, no heap allocation.
        var meters = MeterReadings()
        meters[catalog.meter(named: "cpu_ms")!] = MeterValue(micros: 1_200_000_000)      // 1200 ms
        meters[catalog.meter(named: "inference_calls")!] = MeterValue(micros: 3_000_000) // 3 calls
        let state = PeriodState(usedComputeUnits: ComputeUnits(millis: 9_998_000))       // 9998 CU used
        let result = catalog.price(plan, ExecutionInput(meters: meters, endedAt: at), state: state)
        print(result.computeUnits, result.charge, result.split.creator)                   // 2.700 0.003500 0.002800
        // result.state is the period state to store for the next execution.

        // Hot reload: keep pricing with the current catalog while a new one compiles.
        let store = CatalogStore(catalog)
        store.reload { CatalogLoader.compile(plansDirectory: plansDirectory, rulesDirectory: rulesDirectory) }
        // --- README example ends ---
        reachedTheEnd = true
        #expect(result.computeUnits == ComputeUnits(millis: 2_700))
        #expect(result.charge == Money(micros: 3_500))
        #expect(result.split.creator == Money(micros: 2_800))
        // The reload compiled a new catalog and swapped it in: another object than the one it
        // started with (the same plans, as the folders did not change).
        #expect(store.catalog !== catalog, "the reload did not swap the catalog in")
        #expect(store.catalog.planIDs == catalog.planIDs)
        // A reload whose compilation fails keeps the catalog in force.
        let current = store.catalog
        let failed = store.reload { CatalogLoader.compile(plansDirectory: "/nonexistent/plans", rulesDirectory: rulesDirectory) }
        #expect(failed.catalog == nil && !failed.diagnostics.isEmpty)
        #expect(store.catalog === current)
    }
}
