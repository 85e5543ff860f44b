/// A value read from a catalog file, with where it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    /// The position of the key that declared it (what lines and graph nodes point at).
    public var keyLocation: SourceLocation
    /// The position of the value itself (what a type error points at).
    public var valueLocation: SourceLocation

    public init(_ value: Value, keyLocation: SourceLocation, valueLocation: SourceLocation) {
        self.value = value
        self.keyLocation = keyLocation
        self.valueLocation = valueLocation
    }
}
