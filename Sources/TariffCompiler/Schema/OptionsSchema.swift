/// How a plugin describes its options for `tariff schema` (and so for editors): each option's
/// name, type, whether it is required, its default and what it means.
///
/// The types are the compiler's value types (`ValueType`), so a plugin describes an option with
/// the same word it reads it with: `.money` for `section.required("fee", .money)`.
///
/// ```swift
/// public var sectionSchema: OptionsSchema? {
///     OptionsSchema("A prepaid bundle of compute units per period.", [
///         .init("price", .money, required: true, "Charged at the start of every period.", example: "25.00"),
///         .init("units", .computeUnits, required: true, "Compute units the price buys, per period.", example: "5000"),
///     ])
/// }
/// ```
public struct OptionsSchema: Sendable {
    public var description: String
    /// The declarations, in the order the schema and the reference list them: `PluginOption`s (typed,
    /// what the reader reads with) and `OptionSchema`s (nested sections a plugin walks itself).
    public var declarations: [any OptionDeclaration]
    /// Extra `allOf` constraints on the mapping (written out as JSON Schema), e.g. two exclusive options.
    public var constraints: [SchemaValue]

    /// The options as the schema describes them (derived from the declarations, never stored twice).
    public var options: [OptionSchema] { declarations.map(\.declaredOption) }

    public init(_ description: String, _ options: [OptionSchema], constraints: [SchemaValue] = []) {
        self.init(description, declaring: options, constraints: constraints)
    }

    public init(_ description: String, declaring options: [any OptionDeclaration], constraints: [SchemaValue] = []) {
        self.description = description
        self.declarations = options
        self.constraints = constraints
    }

    /// What is wrong with the declarations themselves, nested mappings included: a default or an
    /// example that the option's own type refuses (the reader would apply a default it cannot
    /// read; the docs would show an example `check` rejects). Empty for a sound plugin.
    public func declarationProblems() -> [String] {
        var problems: [String] = []
        for declaration in declarations {
            problems += declaration.declarationProblems
            switch declaration.declaredOption.type {
            case .mapping(let nested), .list(.mapping(let nested), _):
                problems += nested.declarationProblems().map { "\(declaration.declaredOption.name) > \($0)" }
            default: break
            }
        }
        return problems
    }

    /// The option names, in order (what the plugin reads).
    public var names: [String] { options.map(\.name) }

    /// A closed JSON Schema object: these options and no others (unknown keys are errors, as in `check`).
    public func schema(extraProperties: [SchemaMember] = [], extraRequired: [String] = []) -> SchemaValue {
        var members: [SchemaMember] = [SchemaMember("type", "object"), SchemaMember("description", .string(description))]
        let properties = extraProperties + options.map { SchemaMember($0.name, $0.schema) }
        members.append(SchemaMember("properties", .object(properties)))
        let required = extraRequired + options.filter(\.required).map(\.name)
        if !required.isEmpty { members.append(SchemaMember("required", .array(required.map { .string($0) }))) }
        members.append(SchemaMember("additionalProperties", false))
        if !constraints.isEmpty { members.append(SchemaMember("allOf", .array(constraints))) }
        return .object(members)
    }
}

/// One option of a section or rule: `fee: 49.00`.
public struct OptionSchema: Sendable {
    public var name: String
    public var type: OptionType
    public var required: Bool
    public var description: String
    /// The value taken when the option is left out, as written in YAML (`"false"`, `"month"`).
    public var defaultValue: String?
    /// An example value, as written in YAML.
    public var example: String?
    /// What the plugin computes when the option is left out, in words (`price / units`): documented,
    /// never applied by the reader (unlike `defaultValue`).
    public var defaultNote: String?

    public init(_ name: String, _ type: OptionType, required: Bool = false, _ description: String, default defaultValue: String? = nil,
                defaultNote: String? = nil, example: String? = nil) {
        self.name = name
        self.type = type
        self.required = required
        self.description = description
        self.defaultValue = defaultValue
        self.defaultNote = defaultNote
        self.example = example
    }

    /// The default as the options reference shows it: the value, or what the plugin computes.
    public var defaultText: String? { defaultValue ?? defaultNote }

    /// The option's JSON Schema: its type's, with the description, default and example.
    public var schema: SchemaValue {
        var text = description
        if required { text += " Required." }
        if let defaultText { text += " Default: \(defaultText)." }
        var value = type.schema.setting("description", .string(text))
        if let defaultValue { value = value.setting("default", type.jsonValue(defaultValue)) }
        if let example { value = value.setting("examples", [type.jsonValue(example)]) }
        return value
    }
}

/// The type of an option, as the compiler reads it. Scalars are accepted as strings (how Tariff
/// reads every value, and what a YAML loader that keeps text gives) and as JSON numbers or booleans
/// (what an editor's YAML 1.2 parser makes of `49.00` or `true`).
public indirect enum OptionType: Sendable {
    /// A non-negative amount, at most 12 fractional digits (`49.00`, `"0.0000125"`).
    case money
    /// A ledger amount, 6 fractional digits, negative allowed (plan test expectations).
    case ledgerMoney
    /// Compute units, at most 3 fractional digits.
    case computeUnits
    /// A meter reading, at most 6 fractional digits.
    case meterValue
    /// A metering weight, at most 9 fractional digits.
    case weight
    /// `15%`, 0% to 100%, at most 4 fractional digits.
    case percent
    case id
    /// `2026-11-01` or an RFC 3339 timestamp.
    case dateOrTimestamp
    case boolean
    /// A whole number in the range.
    case integer(ClosedRange<Int>)
    /// One of these words.
    case oneOf([String])
    /// An IANA time zone name.
    case timeZone
    /// `+01:00`, `-05:30`, `Z` or `UTC`.
    case utcOffset
    /// `mon` ... `sun` or full names.
    case weekday
    case text
    /// The currency codes Tariff knows.
    case currency
    /// A nested mapping.
    case mapping(OptionsSchema)
    /// A mapping from names (ids) to values of one type (`weights: { cpu_ms: 0.001 }`).
    case map(OptionType, description: String)
    /// A list.
    case list(OptionType, minItems: Int)
    /// Any of these.
    case anyOf([OptionType])
    /// A schema written out.
    case schema(SchemaValue)

    /// A `$ref` to the catalog schema's shared definition of a value type.
    static func ref(_ name: String) -> SchemaValue { ["$ref": .string("#/$defs/\(name)")] }

    public var schema: SchemaValue {
        switch self {
        case .money: Self.ref("money")
        case .ledgerMoney: Self.ref("ledger_money")
        case .computeUnits: Self.ref("compute_units")
        case .meterValue: Self.ref("meter_value")
        case .weight: Self.ref("weight")
        case .percent: Self.ref("percent")
        case .id: Self.ref("id")
        case .dateOrTimestamp: Self.ref("date_or_timestamp")
        case .boolean: Self.ref("boolean")
        case .timeZone: Self.ref("time_zone")
        case .utcOffset: Self.ref("utc_offset")
        case .weekday: Self.ref("weekday")
        case .currency: Self.ref("currency")
        case .text: ["type": "string"]
        case .integer(let range):
            [
                "type": ["integer", "string"], "minimum": .integer(Int64(range.lowerBound)), "maximum": .integer(Int64(range.upperBound)),
                "pattern": .string(Self.integerPattern(range)),
            ]
        case .oneOf(let words): ["enum": .array(words.map { .string($0) })]
        case .mapping(let options): options.schema()
        case .map(let value, let description):
            ["type": "object", "description": .string(description), "propertyNames": Self.ref("id"), "additionalProperties": value.schema]
        case .list(let element, let minItems):
            minItems > 0 ? ["type": "array", "minItems": .integer(Int64(minItems)), "items": element.schema] : ["type": "array", "items": element.schema]
        case .anyOf(let types): ["anyOf": .array(types.map(\.schema))]
        case .schema(let value): value
        }
    }

    /// A whole number as `DecimalText` reads it (sign, leading zeros, `5.0`); a small non-negative
    /// range is spelled out, so text outside it is refused too (`hours: { from: 25 }`).
    static func integerPattern(_ range: ClosedRange<Int>) -> String {
        guard range.lowerBound >= 0, range.count <= 100 else { return "^[+-]?[0-9]+([.]0*)?$" }
        return "^[+]?0*(" + range.reversed().map { $0 == 0 ? "0" : String($0) }.joined(separator: "|") + ")([.]0*)?$"
    }

    /// A value written in YAML, as JSON: booleans as booleans, the rest as the text it is.
    func jsonValue(_ written: String) -> SchemaValue {
        if case .boolean = self, let value = Bool(written) { return .bool(value) }
        return .string(written)
    }
}
