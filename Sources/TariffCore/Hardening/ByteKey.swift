/// The one rule for ids and keys (usage.md): compared, hashed, sorted and measured as their UTF-8
/// bytes, with no Unicode normalization.
///
/// Swift's `String` `==`, `<` and hashing follow canonical equivalence: `"caf\u{E9}"` (precomposed)
/// equals `"cafe\u{301}"` (decomposed). SQLite and PostgreSQL compare bytes, so a ledger that keys
/// a dictionary by `String` merges two consumers the database keeps apart (and `verify` then
/// disagrees with the database). Every in-memory map or sort of ids goes through this type or
/// `String.bytesPrecede(_:)`.
public struct ByteKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let string: String

    @inlinable public init(_ string: String) { self.string = string }

    @inlinable public static func == (lhs: ByteKey, rhs: ByteKey) -> Bool { lhs.string.utf8.elementsEqual(rhs.string.utf8) }

    @inlinable public static func < (lhs: ByteKey, rhs: ByteKey) -> Bool { lhs.string.bytesPrecede(rhs.string) }

    @inlinable public func hash(into hasher: inout Hasher) {
        var text = string
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(string.utf8.count)
    }

    public var description: String { string }
}

extension String {
    /// Byte order of the UTF-8 encodings: the order SQLite's `BINARY` collation and PostgreSQL's
    /// `C` collation give, and the order every id list of Tariff is sorted in.
    @inlinable public func bytesPrecede(_ other: String) -> Bool { utf8.lexicographicallyPrecedes(other.utf8) }

    /// Equality of the UTF-8 bytes (no Unicode normalization).
    @inlinable public func bytesEqual(_ other: String) -> Bool { utf8.elementsEqual(other.utf8) }
}
