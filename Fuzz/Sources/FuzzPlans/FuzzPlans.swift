import Tariff

/// One plan file, any bytes, compiled with the sample catalog's rules: the compiler must answer
/// with a catalog or diagnostics, never trap, whatever the YAML holds.
let rules: [CatalogSource] = [
    CatalogSource(path: "rules/metering.yaml", text: "metering:\n  standard:\n    weights: { cpu_ms: 0.001, memory_mb_s: 0.0001, network_kb: 0.0005, inference_calls: 0.5 }\n    precision: 0.001\n", kind: .rules),
    CatalogSource(path: "rules/splits.yaml", text: "splits:\n  standard: { creator: 80%, platform: 15%, processing: 5% }\n", kind: .rules),
    CatalogSource(path: "rules/payouts.yaml", text: "payouts:\n  week_starts: monday\n  timezone: UTC\n  pay_on: wednesday\n  minimum: 10.00\n", kind: .rules),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlans(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let compilation = CatalogLoader.compile(sources: rules + [CatalogSource(path: "plans/fuzz.yaml", text: text, kind: .plan)])
    // A compiled plan is priced once, so the evaluator sees what the compiler accepted.
    if let catalog = compilation.catalog {
        for id in catalog.planIDs {
            for handle in catalog.versions(of: id) {
                _ = catalog.price(handle, ExecutionInput(meters: MeterReadings(), failed: false,
                                                          endedAt: Timestamp(nanosecondsSinceEpoch: 1_793_000_000_000_000_000)), state: .empty)
            }
        }
    }
    return 0
}
