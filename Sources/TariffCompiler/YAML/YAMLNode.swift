import TariffCore

/// A YAML value with the position it was written at. Scalars stay text: their meaning comes from
/// the field that reads them (plans.md: `no`, `on` or `0.10` never change meaning behind the
/// author's back).
public struct YAMLNode: Sendable {
    public enum Kind: Sendable {
        /// A scalar's text; `plain` is false when it was quoted or a block scalar.
        case scalar(String, plain: Bool)
        case mapping([YAMLPair])
        case sequence([YAMLNode])
        /// An empty value (`key:`), `~` or `null` written plain.
        case null
    }

    public var kind: Kind
    public var location: SourceLocation

    public init(kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
    }

    /// What the node is, for "expected a mapping, found a sequence" messages.
    public var kindName: String {
        switch kind {
        case .scalar: "a value"
        case .mapping: "a mapping (key: value lines)"
        case .sequence: "a list"
        case .null: "nothing"
        }
    }

    public var scalarText: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    public var pairs: [YAMLPair]? {
        if case .mapping(let pairs) = kind { return pairs }
        return nil
    }

    public var elements: [YAMLNode]? {
        if case .sequence(let elements) = kind { return elements }
        return nil
    }
}

/// One `key: value` entry of a mapping; the key's position is what lines and nodes point at.
public struct YAMLPair: Sendable {
    public var key: String
    public var keyLocation: SourceLocation
    public var value: YAMLNode

    public init(key: String, keyLocation: SourceLocation, value: YAMLNode) {
        self.key = key
        self.keyLocation = keyLocation
        self.value = value
    }
}
