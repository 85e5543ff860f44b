import Foundation
@_spi(Fuzzing) import WasmKit
import TariffCompiler
import TariffCore
import WAT

/// Loads the WebAssembly rule kinds of `rules/plugins.yaml` (a `.wasm` binary, or a `.wat` text
/// module assembled by WasmKit's WAT parser) and checks the call ABI (docs/plan-authoring.md,
/// "WebAssembly rule kinds"): the module imports nothing, exports `memory` (at least one page, the
/// inputs go in its first 4,096 bytes) and `tariff_rule_v1(i32, i32) -> i64`.
public struct WasmRuleLoader: ExternalRuleLoader {
    /// The limits of one call (documented): exceeding one is a failure of that call only.
    public struct Limits: Sendable {
        /// Fuel per call: about one unit per WebAssembly operator executed.
        public var fuelPerCall: UInt64
        /// The most linear memory a module may have, in bytes (`memory.grow` past it returns -1).
        public var memoryBytes: Int
        /// The interpreter's stack, in bytes (deep recursion traps rather than overflowing ours).
        public var stackBytes: Int
        public init(fuelPerCall: UInt64 = 100_000, memoryBytes: Int = 16 * 65_536, stackBytes: Int = 64 * 1_024) {
            self.fuelPerCall = fuelPerCall
            self.memoryBytes = memoryBytes
            self.stackBytes = stackBytes
        }
    }

    /// Modules larger than this are not read (a rule is a small function).
    public static let maximumModuleBytes = 4 * 1_024 * 1_024
    public static let entryPoint = "tariff_rule_v1"

    public var limits: Limits
    public init(limits: Limits = Limits()) { self.limits = limits }

    public func load(kind: String, path: String) -> Result<any ExternalRuleFunction, ExternalRuleLoadError> {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let data = FileManager.default.contents(atPath: path) else {
            return .failure(ExternalRuleLoadError("the file cannot be read"))
        }
        if let size = attributes[.size] as? Int, size > Self.maximumModuleBytes {
            return .failure(ExternalRuleLoadError("the module is larger than \(Self.maximumModuleBytes) bytes"))
        }
        return load(kind: kind, bytes: Array(data), isText: path.hasSuffix(".wat"))
    }

    /// Loads a module from memory (`isText`: WebAssembly text, assembled first).
    public func load(kind: String, bytes: [UInt8], isText: Bool) -> Result<any ExternalRuleFunction, ExternalRuleLoadError> {
        let binary: [UInt8]
        if isText {
            do {
                binary = try wat2wasm(String(decoding: bytes, as: UTF8.self))
            } catch {
                return .failure(ExternalRuleLoadError("the WebAssembly text does not assemble: \(error)"))
            }
        } else {
            binary = bytes
        }
        let module: Module
        do {
            module = try parseWasm(bytes: binary)
        } catch {
            return .failure(ExternalRuleLoadError("not a valid WebAssembly module: \(error)"))
        }
        // A rule is a pure function: no clock, no I/O, no randomness, so a price is reproducible.
        if let first = module.imports.first {
            return .failure(ExternalRuleLoadError("it imports \(first.module).\(first.name) (and \(module.imports.count) import(s) in all): a rule module imports nothing"))
        }
        do {
            let function = try WasmRuleFunction(kind: kind, module: module, limits: limits)
            return .success(function)
        } catch let error as ExternalRuleLoadError {
            return .failure(error)
        } catch {
            return .failure(ExternalRuleLoadError("it cannot be instantiated: \(error)"))
        }
    }
}

/// Denies linear memory past the limit: `memory.grow` then returns -1, as for a declared maximum.
final class MemoryLimiter: ResourceLimiter, @unchecked Sendable {
    let maximumBytes: Int
    init(maximumBytes: Int) { self.maximumBytes = maximumBytes }
    func limitMemoryGrowth(to desired: Int) throws -> Bool { desired <= maximumBytes }
    func limitTableGrowth(to desired: Int) throws -> Bool { desired <= 10_000 }
}

/// One loaded rule module: calls are serialized on its instance (a module's state is its memory);
/// after a failed call the instance is replaced by a fresh one, so a trap leaves nothing behind.
final class WasmRuleFunction: ExternalRuleFunction, @unchecked Sendable {
    let kind: String
    private let module: Module
    private let limits: WasmRuleLoader.Limits
    private let engine: Engine
    /// Guards everything below (WasmKit's store and instance are not thread-safe).
    private let lock = NSLock()
    private var store: Store
    private var entry: Function
    private var memory: Memory
    private var stack: ExecutionStack
    private var failureCount = 0
    private var lastFailure: String?

    init(kind: String, module: Module, limits: WasmRuleLoader.Limits) throws {
        self.kind = kind
        self.module = module
        self.limits = limits
        engine = Engine(configuration: EngineConfiguration(stackSize: limits.stackBytes, fuelMetering: true))
        let (store, entry, memory) = try Self.instantiate(module, engine: engine, limits: limits)
        self.store = store
        self.entry = entry
        self.memory = memory
        stack = ExecutionStack(engine: engine)
    }

    /// A fresh instance, with the exports and signature the ABI requires.
    private static func instantiate(_ module: Module, engine: Engine, limits: WasmRuleLoader.Limits) throws -> (Store, Function, Memory) {
        let store = Store(engine: engine)
        store.resourceLimiter = MemoryLimiter(maximumBytes: limits.memoryBytes)
        let instance: Instance
        do {
            instance = try module.instantiate(store: store)
        } catch {
            throw ExternalRuleLoadError("it cannot be instantiated within the limits (\(limits.memoryBytes / 65_536) pages of memory): \(error)")
        }
        guard let memory = instance.exports[memory: "memory"] else {
            throw ExternalRuleLoadError("it does not export 'memory' (the inputs are written in its first 4096 bytes)")
        }
        guard memory.byteCount >= 4_096 else {
            throw ExternalRuleLoadError("its memory has no page: the inputs need its first 4096 bytes")
        }
        guard let entry = instance.exports[function: WasmRuleLoader.entryPoint] else {
            throw ExternalRuleLoadError("it does not export the function '\(WasmRuleLoader.entryPoint)'")
        }
        let type = entry.type
        guard type.parameters == [.i32, .i32], type.results == [.i64] else {
            throw ExternalRuleLoadError("'\(WasmRuleLoader.entryPoint)' has the signature \(type.parameters) -> \(type.results); it must be (i32, i32) -> i64")
        }
        return (store, entry, memory)
    }

    var failures: (count: Int, lastReason: String?) {
        lock.lock()
        defer { lock.unlock() }
        return (failureCount, lastFailure)
    }

    func evaluate(_ inputs: UnsafeBufferPointer<Int64>) -> ExternalRuleOutcome {
        lock.lock()
        defer { lock.unlock() }
        let outcome = call(inputs)
        if case .failed(let reason) = outcome {
            failureCount += 1
            lastFailure = reason
            // A trap may leave the instance half-way (memory written, globals changed): start over.
            if let fresh = try? Self.instantiate(module, engine: engine, limits: limits) {
                (store, entry, memory) = fresh
            }
        }
        return outcome
    }

    private func call(_ inputs: UnsafeBufferPointer<Int64>) -> ExternalRuleOutcome {
        let byteCount = inputs.count * 8
        guard byteCount <= 4_096, memory.byteCount >= byteCount else { return .failed("the inputs do not fit the module's first 4096 bytes") }
        memory.withUnsafeMutableBufferPointer(offset: 0, count: byteCount) { bytes in
            for (index, value) in inputs.enumerated() {
                bytes.storeBytes(of: value.littleEndian, toByteOffset: index * 8, as: Int64.self)
            }
        }
        store.fuel = Fuel(remaining: limits.fuelPerCall)
        let results: [Value]
        do {
            results = try entry.invoke([.i32(0), .i32(UInt32(inputs.count))], on: &stack)
        } catch {
            let remaining = store.fuel?.remaining ?? 1
            return .failed(remaining == 0 ? "it ran out of fuel (\(limits.fuelPerCall) per call)" : "it trapped: \(error)")
        }
        guard results.count == 1, case .i64(let bits) = results[0] else { return .failed("it returned \(results) instead of one i64") }
        let answer = Int64(bitPattern: bits)
        if answer == -1 { return .refuse }
        guard answer >= 0, answer <= 1_000_000_000_000_000_000 else {
            return .failed("it returned \(answer): a charge is 0 to 10^18 micro-units, or -1 to refuse")
        }
        return .charge(answer)
    }
}
