import TariffCore

/// Reads one YAML mapping field by field, the way every stage and plugin reads its section.
///
/// The keys a reader is asked for are the keys it knows: `finish()` reports every other key as
/// `unknown-key`, with a did-you-mean among the known ones. A plugin therefore declares its
/// options simply by reading them, and misspelt options are caught without a separate schema.
public final class MappingReader {
    public let location: SourceLocation
    public let diagnostics: DiagnosticSink
    /// What the mapping is, for messages ("the subscription section").
    public let context: String
    private let pairs: [YAMLPair]
    /// The keys asked for so far: the options a plugin reads (what `tariff schema` must list).
    public private(set) var knownKeys: [String] = []
    /// Required keys reported missing: `finish()` withdraws the report when an unknown key of this
    /// mapping is a misspelling of one, so one typo makes one diagnostic.
    private var missingKeys: [(key: String, diagnostic: Diagnostic)] = []

    public init(pairs: [YAMLPair], location: SourceLocation, context: String, diagnostics: DiagnosticSink) {
        self.pairs = pairs
        self.location = location
        self.context = context
        self.diagnostics = diagnostics
    }

    /// A reader for `node`, or nil (with a `wrong-type` diagnostic) if it is not a mapping.
    public convenience init?(_ node: YAMLNode, context: String, diagnostics: DiagnosticSink) {
        guard let pairs = node.pairs else {
            diagnostics.error("wrong-type", at: node.location, "\(context) must be a mapping of keys to values, found \(node.kindName)")
            return nil
        }
        self.init(pairs: pairs, location: node.location, context: context, diagnostics: diagnostics)
    }

    /// A reader for the mapping written under `pair`, or nil (with a `wrong-type` diagnostic at the
    /// value) if it is not a mapping. Its `location` is the key's, so a missing key is reported at
    /// the section that lacks it.
    public convenience init?(_ pair: YAMLPair, context: String, diagnostics: DiagnosticSink) {
        guard let pairs = pair.value.pairs else {
            diagnostics.error("wrong-type", at: pair.value.location, "\(context) must be a mapping of keys to values, found \(pair.value.kindName)")
            return nil
        }
        self.init(pairs: pairs, location: pair.keyLocation, context: context, diagnostics: diagnostics)
    }

    /// Every key written, in order.
    public var writtenKeys: [String] { pairs.map(\.key) }

    /// Marks `key` as known and returns its entry, if written. An empty value counts as not written.
    public func entry(_ key: String) -> YAMLPair? {
        if !knownKeys.contains(key) { knownKeys.append(key) }
        guard let pair = pairs.first(where: { $0.key == key }) else { return nil }
        if case .null = pair.value.kind { return nil }
        return pair
    }

    /// Declares keys that are read elsewhere (so they are not reported as unknown).
    public func allow(_ keys: String...) {
        for key in keys where !knownKeys.contains(key) { knownKeys.append(key) }
    }

    /// An optional field; a wrong value is reported and read as absent.
    public func optional<Value>(_ key: String, _ type: ValueType<Value>) -> Located<Value>? {
        guard let pair = entry(key) else { return nil }
        guard let value = type.read(pair.value, diagnostics) else { return nil }
        return Located(value, keyLocation: pair.keyLocation, valueLocation: pair.value.location)
    }

    /// A required field: `missing-key` when absent (at the mapping) or written with no value (at the key).
    public func required<Value>(_ key: String, _ type: ValueType<Value>) -> Located<Value>? {
        guard entry(key) != nil else {
            reportMissing(key, "\(context) is missing the required key '\(key)'", fix: "add '\(key): \(type.expectation)'")
            return nil
        }
        return optional(key, type)
    }

    /// Reports the required `key` as missing: at the key when it is written with no value, else at
    /// `location` (default: the mapping's). Withdrawn by `finish()` if an unknown key of this
    /// mapping is a misspelling of it.
    public func reportMissing(_ key: String, _ message: String, at location: SourceLocation? = nil, fix: String? = nil) {
        if !knownKeys.contains(key) { knownKeys.append(key) }
        if let empty = pairs.first(where: { $0.key == key }) {
            diagnostics.error("missing-key", at: empty.keyLocation, "'\(key)' has no value", fix: fix)
            return
        }
        let diagnostic = Diagnostic(.error, "missing-key", at: location ?? self.location, message, fix: fix)
        diagnostics.report(diagnostic)
        missingKeys.append((key, diagnostic))
    }

    /// A nested mapping's reader.
    public func mapping(_ key: String, required: Bool = false) -> MappingReader? {
        guard let pair = entry(key) else {
            if required { reportMissing(key, "\(context) is missing the required section '\(key)'") }
            return nil
        }
        return MappingReader(pair, context: "'\(key)'", diagnostics: diagnostics)
    }

    /// A nested list, with its key's position.
    public func sequence(_ key: String, required: Bool = false) -> Located<[YAMLNode]>? {
        guard let pair = entry(key) else {
            if required { reportMissing(key, "\(context) is missing the required list '\(key)'") }
            return nil
        }
        guard let elements = pair.value.elements else {
            diagnostics.error("wrong-type", at: pair.value.location, "'\(key)' must be a list (lines starting with '- '), found \(pair.value.kindName)")
            return nil
        }
        return Located(elements, keyLocation: pair.keyLocation, valueLocation: pair.value.location)
    }

    /// Reports every key that no one asked for, with a did-you-mean among those that were.
    public func finish() {
        for pair in pairs where !knownKeys.contains(pair.key) {
            var message = "unknown key '\(pair.key)' in \(context)"
            if let suggestion = Suggestion.closest(to: pair.key, among: knownKeys) {
                message = "unknown key '\(pair.key)'; did you mean '\(suggestion)'?"
                if let missing = missingKeys.firstIndex(where: { $0.key == suggestion }) {
                    diagnostics.withdraw(missingKeys[missing].diagnostic)
                    missingKeys.remove(at: missing)
                }
            }
            diagnostics.error("unknown-key", at: pair.keyLocation, message, fix: "known keys here: \(knownKeys.joined(separator: ", "))")
        }
    }
}
