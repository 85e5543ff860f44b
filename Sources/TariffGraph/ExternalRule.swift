import TariffCore

/// A rule kind implemented outside the engine, loaded at run time: a WebAssembly module of
/// `rules/plugins.yaml` (TariffWasm implements it). The engine calls it once per execution with
/// the integers of the call ABI (docs/plan-authoring.md, "WebAssembly rule kinds") and never
/// trusts what comes back: an out-of-range answer or a failure leaves the charge as it was.
public protocol ExternalRuleFunction: AnyObject, Sendable {
    /// The rule kind (`loyalty_discount`).
    var kind: String { get }
    /// Calls the rule with `inputs` (the ABI's little-endian signed 64-bit integers).
    func evaluate(_ inputs: UnsafeBufferPointer<Int64>) -> ExternalRuleOutcome
    /// How many calls failed (a trap, fuel or memory exhausted, an answer out of range), and the
    /// reason of the last one: what `simulate` and `ledger replay` report at the end of a run.
    var failures: (count: Int, lastReason: String?) { get }
}

/// What one call of an external rule gave.
public enum ExternalRuleOutcome: Sendable, Equatable {
    /// The new charge, in micro-units (0 to 10^18).
    case charge(Int64)
    /// The rule refused the execution (`-1`): reason `plugin:KIND`.
    case refuse
    /// The call failed; the charge stays what it was before this rule, and the failure is counted.
    case failed(String)
}

/// One use of an external rule kind in a plan: the function, the meters it receives and the
/// plan's option values, already encoded as the ABI's integers.
public struct ExternalRule: Sendable, Hashable, CustomStringConvertible {
    public var function: any ExternalRuleFunction
    /// The readings it receives, in this order (`meters:` of its declaration).
    public var meters: [MeterIndex]
    /// The plan's options, in the order of the declaration's `options:` (money in micro-units,
    /// percents in millionths, integers as written, compute units in thousandths).
    public var options: [Int64]
    /// `period: true`: it reads the period state, so it needs a plan with a period.
    public var readsPeriod: Bool

    public init(function: any ExternalRuleFunction, meters: [MeterIndex], options: [Int64], readsPeriod: Bool) {
        self.function = function
        self.meters = meters
        self.options = options
        self.readsPeriod = readsPeriod
    }

    /// The most inputs a call takes: 7 fixed, 16 meters, 16 options (the engine's inline buffer).
    public static let maximumInputs = 7 + 16 + 16
    public static let maximumOptions = 16

    public var kind: String { function.kind }

    public static func == (lhs: ExternalRule, rhs: ExternalRule) -> Bool {
        lhs.function === rhs.function && lhs.meters == rhs.meters && lhs.options == rhs.options && lhs.readsPeriod == rhs.readsPeriod
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(function))
        hasher.combine(meters.map(\.rawValue))
        hasher.combine(options)
        hasher.combine(readsPeriod)
    }

    public var description: String { "\(kind)(\(options.map(String.init).joined(separator: ", ")))" }
}

/// Loads the modules of `rules/plugins.yaml` (TariffWasm's `WasmRuleLoader`). The compiler calls
/// it for every declaration, so `tariff check` loads and validates every module.
public protocol ExternalRuleLoader: Sendable {
    /// Loads and validates the module at `path` (resolved against the rules folder) for rule kind
    /// `kind`; on failure, a sentence saying what is wrong (`it imports env.print: a rule imports nothing`).
    func load(kind: String, path: String) -> Result<any ExternalRuleFunction, ExternalRuleLoadError>
}

/// Why a module could not be loaded.
public struct ExternalRuleLoadError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
