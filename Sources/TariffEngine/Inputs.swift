import TariffGraph
import TariffCore

/// The catalog's meter readings of one execution, by `MeterIndex`, in micro-units of each meter.
///
/// Fixed-size inline storage: building and passing readings never touches the heap.
public struct MeterReadings: Sendable {
    public static let capacity = 16
    @usableFromInline var values: InlineArray<16, Int64>

    @inlinable public init() { values = InlineArray(repeating: 0) }

    /// A meter outside the table reads 0 and ignores writes (indexes come from the catalog; this
    /// keeps a caller's stray index from trapping).
    @inlinable public subscript(meter: MeterIndex) -> MeterValue {
        get { meter.rawValue >= 0 && meter.rawValue < Self.capacity ? MeterValue(micros: values[meter.rawValue]) : .zero }
        set { if meter.rawValue >= 0 && meter.rawValue < Self.capacity { values[meter.rawValue] = newValue.micros } }
    }

    /// Readings by position (index `i` is the catalog's i-th meter); missing ones read 0.
    public init(_ readings: [(MeterIndex, MeterValue)]) {
        self.init()
        for (meter, value) in readings where meter.rawValue >= 0 && meter.rawValue < Self.capacity { self[meter] = value }
    }
}

/// One execution as the engine sees it: readings, status and when it ended.
public struct ExecutionInput: Sendable {
    public var meters: MeterReadings
    /// `failed` executions are free and consume nothing unless the model bills them.
    public var failed: Bool
    /// When the execution ended (conditions such as weekday discounts read it).
    public var endedAt: Timestamp

    @inlinable public init(meters: MeterReadings, failed: Bool = false, endedAt: Timestamp = Timestamp(nanosecondsSinceEpoch: 0)) {
        self.meters = meters
        self.failed = failed
        self.endedAt = endedAt
    }
}

/// What a consumer has used of the current billing period of one plan: the state pricing reads
/// and returns updated. In the ledger it lives next to the balance, updated in the same transaction.
public struct PeriodState: Sendable, Hashable {
    /// Compute units consumed by priced executions this period.
    public var usedComputeUnits: ComputeUnits
    /// Usage charges billed this period (execution charges; fees and period-end lines excluded).
    public var usageCharges: Money
    /// Billable executions priced this period (what `free_executions` counts).
    public var executions: Int64
    /// Executions that were not refused, by status (SLA availability).
    public var succeeded: Int64
    public var failed: Int64

    @inlinable public init(usedComputeUnits: ComputeUnits = .zero, usageCharges: Money = .zero, executions: Int64 = 0, succeeded: Int64 = 0, failed: Int64 = 0) {
        self.usedComputeUnits = usedComputeUnits
        self.usageCharges = usageCharges
        self.executions = executions
        self.succeeded = succeeded
        self.failed = failed
    }

    public static let empty = PeriodState()
}

/// Why an execution was not priced.
public enum Refusal: String, Sendable, Hashable {
    /// No active subscription and no default plan for the agent.
    case noPlan = "no_plan"
    /// The period's usage charges already reached the plan's spend cap.
    case spendCap = "spend_cap"
    /// A reading or product beyond the documented limits (an execution above 10^12 CU).
    case outOfRange = "out_of_range"
    /// A loaded (WebAssembly) rule answered -1: shown as `plugin:KIND` (`PricingResult.refusingNode`).
    case plugin = "plugin"
}

/// One line of an execution's charge: the node that produced it and its amount. The lines add up
/// to the charge.
public struct ChargeLine: Sendable, Hashable {
    /// Index into the plan's `executionNodes` (rule name and source position live there).
    public var node: Int32
    public var amount: Money
    @inlinable public init(node: Int32, amount: Money) {
        self.node = node
        self.amount = amount
    }
}

/// Fixed-capacity lines of one execution (inline: no heap allocation).
public struct ChargeLines: Sendable, RandomAccessCollection {
    /// `CatalogLimits.maximumExecutionNodes`: the compiler guarantees no plan produces more lines.
    public static let capacity = 24
    @usableFromInline var storage: InlineArray<24, ChargeLine>
    @usableFromInline var storedCount: Int
    public var count: Int { storedCount }

    @inlinable public init() {
        storage = InlineArray(repeating: ChargeLine(node: 0, amount: .zero))
        storedCount = 0
    }

    @inlinable mutating func append(_ line: ChargeLine) {
        guard storedCount < Self.capacity else { return }
        storage[storedCount] = line
        storedCount += 1
    }

    /// No lines (refusals, free executions, and results of the batch path, which skips lines).
    public static var empty: ChargeLines { ChargeLines() }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storedCount }
    public subscript(position: Int) -> ChargeLine { storage[position] }
}

/// The priced execution: compute units, charge, its lines and split, the refusal if any, and the
/// period state after it. Pure: the same inputs always give the same result.
public struct PricingResult: Sendable {
    public var computeUnits: ComputeUnits
    public var charge: Money
    public var split: SplitShares
    public var refusal: Refusal?
    public var state: PeriodState
    public var lines: ChargeLines
    /// The node that refused the execution (`plugin`: the loaded rule), -1 otherwise.
    public var refusingNode: Int32 = -1

    @inlinable init(computeUnits: ComputeUnits, charge: Money, split: SplitShares, refusal: Refusal?, state: PeriodState, lines: ChargeLines) {
        self.computeUnits = computeUnits
        self.charge = charge
        self.split = split
        self.refusal = refusal
        self.state = state
        self.lines = lines
    }
}

/// An opaque reference to one compiled plan version of a catalog: resolved once, priced many times.
public struct PlanHandle: Sendable, Hashable {
    public let index: Int32
    /// The identity of the catalog that resolved it: another catalog refuses it.
    public let catalog: UInt32
    @inlinable init(index: Int32, catalog: UInt32) {
        self.index = index
        self.catalog = catalog
    }
}
