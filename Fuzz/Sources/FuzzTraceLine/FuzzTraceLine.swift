import TariffSimulation

/// One trace line, any bytes: parsed to an event or a rejection, never a trap (usage.md: "A trace
/// must never crash the program, whatever bytes it holds").
let meterNames = ["cpu_ms", "memory_mb_s", "network_kb", "inference_calls"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTraceLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    switch Simulator.parseLine(UnsafeBufferPointer(start: data, count: size), meterNames: meterNames) {
    case .success(let event):
        // An accepted event's fields are what the rest of the engine reads.
        _ = event.time.description
        _ = event.amount.description
    case .failure(let rejection):
        _ = rejection.reason.utf8.count
    case nil:
        break
    }
    return 0
}
