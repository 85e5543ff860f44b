import Tariff
import TariffSettlement
import Testing

/// How the conformance suite gets a fresh, empty backend of one kind.
///
/// A backend module's tests pass one of these to every scenario of `SettlementConformance`:
/// ```swift
/// let postgres = BackendFactory(name: "postgres") { currency in try await PostgresBackend.fresh(url: url, currency: currency) }
/// @Test(arguments: SettlementConformance.scenarios) func conformance(_ scenario: SettlementConformance.Scenario) async throws {
///     try await scenario.run(postgres)
/// }
/// ```
public struct BackendFactory: Sendable, CustomTestStringConvertible {
    public let name: String
    let make: @Sendable (Currency) async throws -> any SettlementBackend
    let rawDump: (@Sendable (any SettlementBackend) async throws -> String)?

    /// - parameter rawDump: every stored row as text, read from the storage itself rather than
    ///   through the ledger's types (SQL `SELECT *` of every table): compared before and after each
    ///   refused operation, on top of the snapshot.
    public init(name: String, rawDump: (@Sendable (any SettlementBackend) async throws -> String)? = nil,
                make: @escaping @Sendable (Currency) async throws -> any SettlementBackend) {
        self.name = name
        self.make = make
        self.rawDump = rawDump
    }

    public var testDescription: String { name }

    /// A fresh backend (for tests outside the conformance scenarios).
    public func makeBackend(_ currency: Currency) async throws -> any SettlementBackend { try await make(currency) }

    /// The in-memory backend.
    public static let memory = BackendFactory(name: "memory") { currency in InMemoryBackend(currency: currency) }
}
