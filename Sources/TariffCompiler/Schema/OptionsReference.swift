/// The options reference of plugins in Markdown, rendered from their declarations (`PluginOption`,
/// `OptionSchema`): the tables of docs/plan-authoring.md are this output (a test keeps them
/// equal), and `tariff schema --format markdown` prints it for every plugin a program registers,
/// a third party's included.
public enum OptionsReference {
    /// The block of one model or rule kind: its table, then one table per nested mapping.
    public static func markdown(_ schema: OptionsSchema) -> String {
        var blocks = [table(schema)]
        appendNested(schema, path: [], into: &blocks)
        return blocks.joined(separator: "\n\n")
    }

    /// Every model and rule kind of the registry, each block between the markers
    /// `<!-- options: model per_call -->` and `<!-- end options -->` that docs/plan-authoring.md uses.
    public static func markdown(registry: PluginRegistry) -> String {
        var sections: [String] = []
        for model in registry.models {
            sections.append(section(marker: "model \(model.name)", title: "Model `\(model.name)`", schema: model.sectionSchema))
        }
        for rule in registry.ruleKinds {
            sections.append(section(marker: "rule \(rule.kind)", title: "Rule kind `\(rule.kind)`", schema: rule.optionsSchema))
        }
        return sections.joined(separator: "\n\n") + "\n"
    }

    static func section(marker: String, title: String, schema: OptionsSchema?) -> String {
        guard let schema else { return "### \(title)\n\nNo options declared: any keys are passed to the plugin." }
        return "### \(title)\n\n\(schema.description)\n\n\(begin(marker))\n\(markdown(schema))\n\(end)"
    }

    public static func begin(_ marker: String) -> String { "<!-- options: \(marker) -->" }
    public static let end = "<!-- end options -->"

    static func table(_ schema: OptionsSchema) -> String {
        var lines = ["| option | type | default | example | meaning |", "| --- | --- | --- | --- | --- |"]
        for option in schema.options {
            let nested = nestedSchema(option.type) != nil
            let defaultCell = option.required ? "required" : option.defaultValue.map { "`\($0)`" } ?? option.defaultNote ?? "none"
            let example = option.example.map { "`\($0)`" } ?? (nested ? "see below" : "")
            lines.append("| `\(option.name)` | \(typeName(option.type)) | \(cell(defaultCell)) | \(cell(example)) | \(cell(option.description)) |")
        }
        return lines.joined(separator: "\n")
    }

    static func appendNested(_ schema: OptionsSchema, path: [String], into blocks: inout [String]) {
        for option in schema.options {
            guard let (nested, isList) = nestedSchema(option.type) else { continue }
            let name = (path + [option.name]).map { "`\($0)`" }.joined(separator: " > ")
            blocks.append("\(isList ? "An entry of \(name)" : name): \(nested.description)\n\n\(table(nested))")
            appendNested(nested, path: path + [option.name], into: &blocks)
        }
    }

    /// The options of a nested mapping (or of each entry of a list of mappings).
    static func nestedSchema(_ type: OptionType) -> (OptionsSchema, isList: Bool)? {
        switch type {
        case .mapping(let schema): (schema, false)
        case .list(.mapping(let schema), _): (schema, true)
        default: nil
        }
    }

    /// The type as the reference names it.
    public static func typeName(_ type: OptionType) -> String {
        switch type {
        case .money: "money"
        case .ledgerMoney: "ledger amount"
        case .computeUnits: "compute units"
        case .meterValue: "meter reading"
        case .weight: "weight"
        case .percent: "percent"
        case .id: "id"
        case .dateOrTimestamp: "date or timestamp"
        case .boolean: "boolean"
        case .integer(let range): "whole number \(range.lowerBound) to \(range.upperBound)"
        case .oneOf(let words): words.map { "`\($0)`" }.joined(separator: ", ")
        case .timeZone: "time zone"
        case .utcOffset: "`+HH:MM`, `-HH:MM`, `Z`, `UTC`"
        case .weekday: "weekday"
        case .text: "text"
        case .currency: "ISO 4217 code"
        case .mapping: "mapping"
        case .map(let value, _): "names -> \(typeName(value))"
        case .list(.mapping, _): "list of mappings"
        case .list(.weekday, _): "list of weekdays"
        case .list(let element, _): "list of \(typeName(element))"
        case .anyOf(let types): types.map(typeName).joined(separator: " or ")
        case .schema: "any"
        }
    }

    /// A table cell: one line, pipes escaped.
    static func cell(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "|": result += "\\|"
            case "\n": result += " "
            default: result.append(character)
            }
        }
        return result
    }
}
