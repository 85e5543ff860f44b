import Tariff

/// Reads a stored enum value (a hold's state, an account kind, a charge kind, a refusal) back as
/// the ledger's type, or fails loudly.
///
/// Why: read as a default (`active`, `available`, `execution`), a value this build does not know
/// (written by a newer Tariff, or by hand) would be acted on as something it is not: an expired
/// hold settled, an entry counted in the wrong account. A `storage` error naming the column and
/// the value stops the step instead, and the ledger is left as it was.
public enum StoredValue {
    /// - throws: `storage`: "the ledger holds an unknown value 7 in holds.state ...".
    public static func decode<Value: RawRepresentable>(_ type: Value.Type, _ raw: Value.RawValue, column: String) throws -> Value {
        guard let value = Value(rawValue: raw) else { throw unknown(raw, column: column) }
        return value
    }

    /// The same for a nullable column (NULL stays nil; an unknown value throws).
    public static func decode<Value: RawRepresentable>(_ type: Value.Type, _ raw: Value.RawValue?, column: String) throws -> Value? {
        guard let raw else { return nil }
        guard let value = Value(rawValue: raw) else { throw unknown(raw, column: column) }
        return value
    }

    public static func unknown(_ raw: some Any, column: String) -> SettlementError {
        SettlementError(.storage, "the ledger holds an unknown value \(SafeText.escaping("\(raw)")) in \(column) "
                        + "(written by a newer version of Tariff, or changed by hand): nothing was done")
    }
}
