import TariffCore

/// Something that declares one option of a plugin's section: a `PluginOption` (a scalar the
/// reader reads with its declared type) or an `OptionSchema` (a nested mapping or list the plugin
/// walks itself, read by name through `MappingReader.mapping(_:)` / `sequence(_:)`).
public protocol OptionDeclaration: Sendable {
    var declaredOption: OptionSchema { get }
    /// A default or example the option's type refuses (see `OptionsSchema.declarationProblems()`).
    var declarationProblems: [String] { get }
}

extension OptionDeclaration {
    public var declarationProblems: [String] { [] }
}

extension OptionSchema: OptionDeclaration {
    public var declaredOption: OptionSchema { self }
}

/// One option of a plugin, declared once: `MappingReader.read(_:)` reads it with this value (its
/// name, its type, whether it is required, its default), and `tariff schema` and
/// `tariff schema --format markdown` (docs/plugin-options.md) describe it from the same value, so
/// what a plugin reads, what editors check and what the reference says cannot drift apart.
///
/// ```swift
/// enum Options {
///     static let price = PluginOption("price", .money, required: true, "Charged every period.", example: "25.00")
///     static let period = PluginOption("period", .oneOf(["week", "month"]), "How often.", default: "month")
///     static let schema = OptionsSchema("prepaid_bundle: ...", declaring: [price, period])
/// }
/// let price = section.read(Options.price)      // Located<PlanMoney>?, `missing-key` when absent
/// let period = section.read(Options.period)    // "month" when left out
/// ```
public struct PluginOption<Value: Sendable>: OptionDeclaration {
    public let declaredOption: OptionSchema
    public let type: ValueType<Value>

    public var name: String { declaredOption.name }
    public var isRequired: Bool { declaredOption.required }

    /// - Parameters:
    ///   - default: the value taken when the option is left out, as written in YAML; the reader
    ///     applies exactly this text, read with `type` (a default `type` refuses is a plugin bug:
    ///     the option then reads as absent, and the shipped plugins' defaults are tested).
    ///   - defaultNote: what the plugin computes itself when the option is left out, in words.
    public init(_ name: String, _ type: ValueType<Value>, required: Bool = false, _ description: String,
                default defaultValue: String? = nil, defaultNote: String? = nil, example: String? = nil) {
        self.type = type
        self.declaredOption = OptionSchema(name, type.optionType, required: required, description, default: defaultValue,
                                           defaultNote: defaultNote, example: example)
    }

    /// The declared default read with the option's type, or nil when there is none (or the type
    /// refuses it).
    public var defaultValue: Value? {
        guard let text = declaredOption.defaultValue else { return nil }
        return readText(text, what: "default")
    }

    public var declarationProblems: [String] {
        var problems: [String] = []
        if let text = declaredOption.defaultValue, readText(text, what: "default") == nil {
            problems.append("\(name): the default '\(text)' is not \(type.expectation)")
        }
        if let text = declaredOption.example, readText(text, what: "example") == nil {
            problems.append("\(name): the example '\(text)' is not \(type.expectation)")
        }
        return problems
    }

    private func readText(_ text: String, what: String) -> Value? {
        let node = YAMLNode(kind: .scalar(text, plain: true), location: SourceLocation(file: "<\(what) of '\(name)'>", line: 0, column: 0))
        return type.read(node, DiagnosticSink())
    }
}

extension MappingReader {
    /// Reads a declared option: `missing-key` when a required one is absent; the declared default,
    /// located at this mapping, when an optional one is left out; nil when it is written wrong (the
    /// mistake is reported at the value).
    public func read<Value>(_ option: PluginOption<Value>) -> Located<Value>? {
        if option.isRequired { return required(option.name, option.type) }
        guard entry(option.name) != nil else {
            return option.defaultValue.map { Located($0, keyLocation: location, valueLocation: location) }
        }
        return optional(option.name, option.type)
    }

    /// The value of a declared option that has a default (nil only when it is written wrong).
    public func value<Value>(_ option: PluginOption<Value>) -> Value? { read(option)?.value }

    /// A nested mapping declared as an option (`guardrails:`), required when the declaration says so.
    public func mapping(_ option: OptionSchema) -> MappingReader? { mapping(option.name, required: option.required) }

    /// A nested list declared as an option (`usage:`), required when the declaration says so.
    public func sequence(_ option: OptionSchema) -> Located<[YAMLNode]>? { sequence(option.name, required: option.required) }

}
