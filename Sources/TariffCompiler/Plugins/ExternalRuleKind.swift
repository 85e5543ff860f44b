import Foundation
import TariffCore

/// A rule kind declared in `rules/plugins.yaml` and implemented by a loaded module (WebAssembly):
/// a plan's `rules:` entry of this kind passes its options, read with the declared types.
///
/// ```yaml
/// plugins:
///   - kind: loyalty_discount          # the name plans use in `rules:`
///     wasm: plugins/loyalty.wasm      # relative to rules/ (a .wat text module is accepted too)
///     period: true                    # reads the period state: refused on plans without a period
///     meters: [inference_calls]       # the readings it receives, in this order
///     options:                        # what a plan passes, in this order, each with its type
///       percent: percent
///       after_executions: integer
/// ```
public struct ExternalRuleKind: RuleKindPlugin {
    /// The types an option of a loaded rule may have, and how each travels through the call ABI.
    public enum OptionType: String, Sendable, CaseIterable {
        /// Micro-units (at most 6 decimals).
        case money
        /// Millionths (15% is 150000).
        case percent
        /// Itself, 0 to 10^18.
        case integer
        /// Thousandths of a compute unit.
        case computeUnits = "compute_units"
    }

    public let kind: String
    public let function: any ExternalRuleFunction
    public let meters: [MeterIndex]
    public let options: [(name: String, type: OptionType)]
    public let readsPeriod: Bool

    public init(kind: String, function: any ExternalRuleFunction, meters: [MeterIndex], options: [(name: String, type: OptionType)], readsPeriod: Bool) {
        self.kind = kind
        self.function = function
        self.meters = meters
        self.options = options
        self.readsPeriod = readsPeriod
    }

    public var optionsSchema: OptionsSchema? {
        OptionsSchema("\(kind): a WebAssembly rule kind of rules/plugins.yaml.", options.map { option in
            let type: TariffCompiler.OptionType = switch option.type {
            case .money: .money
            case .percent: .percent
            case .integer: .integer(0...Int(Int64(1_000_000_000_000_000_000)))
            case .computeUnits: .computeUnits
            }
            return OptionSchema(option.name, type, required: true, "Passed to the module as its \(option.type.rawValue) option.")
        })
    }

    public func lower(_ reader: MappingReader, context: PlanLoweringContext) -> [RuleNode]? {
        var values: [Int64] = []
        var valid = true
        for option in options {
            switch option.type {
            case .money:
                guard let amount = reader.required(option.name, .money) else { valid = false; continue }
                guard amount.value.picos % 1_000_000 == 0, let micros = Int64(exactly: amount.value.picos / 1_000_000) else {
                    reader.diagnostics.error("too-many-digits", at: amount.valueLocation,
                                             "'\(option.name)' is passed to the module in micro-units: at most 6 decimals",
                                             fix: "round it to 6 decimals")
                    valid = false
                    continue
                }
                values.append(micros)
            case .percent:
                guard let percent = reader.required(option.name, .percent) else { valid = false; continue }
                values.append(percent.value.partsPerMillion)
            case .integer:
                guard let integer = reader.required(option.name, .integer(in: 0...1_000_000_000_000_000_000)) else { valid = false; continue }
                values.append(Int64(integer.value))
            case .computeUnits:
                guard let units = reader.required(option.name, .computeUnits) else { valid = false; continue }
                values.append(units.value.millis)
            }
        }
        guard valid else { return nil }
        let location = reader.entry("kind")?.keyLocation ?? reader.location
        return [RuleNode(rule: kind, operation: .external(ExternalRule(function: function, meters: meters, options: values, readsPeriod: readsPeriod)),
                         location: location, plugin: kind)]
    }
}

/// Reads the `plugins:` entries of the rules files and registers a rule kind for each module that
/// loads (part of stage 2, after the meterings, whose meters the declarations name).
enum PluginDeclarations {
    static func read(_ entries: [(source: CatalogSource, node: YAMLNode)], state: inout CompilationState) {
        let diagnostics = state.diagnostics
        var declared: [String: SourceLocation] = [:]
        for (source, node) in entries {
            guard let reader = MappingReader(node, context: "a plugin", diagnostics: diagnostics) else { continue }
            let kind = reader.required("kind", .id)
            let wasm = reader.required("wasm", .text)
            let period = reader.optional("period", .boolean)
            let meterNames = reader.sequence("meters")
            var meters: [MeterIndex] = []
            var valid = true
            if let meterNames {
                if meterNames.value.count > CatalogLimits.maximumMeters {
                    diagnostics.error("limit-exceeded", at: meterNames.keyLocation, "a plugin receives at most \(CatalogLimits.maximumMeters) meters")
                    valid = false
                }
                let context = PlanLoweringContext(planID: "?", currency: nil, meterNames: state.meterNames)
                for item in meterNames.value {
                    guard let name = ValueType<String>.id.read(item, diagnostics) else { valid = false; continue }
                    guard let index = context.meter(named: name, at: item.location, diagnostics: diagnostics) else { valid = false; continue }
                    meters.append(index)
                }
            }
            var options: [(name: String, type: ExternalRuleKind.OptionType)] = []
            if let optionsReader = reader.mapping("options") {
                let names = optionsReader.writtenKeys
                if names.count > ExternalRule.maximumOptions {
                    diagnostics.error("limit-exceeded", at: optionsReader.location, "a plugin takes at most \(ExternalRule.maximumOptions) options")
                    valid = false
                }
                for name in names {
                    guard let type = optionsReader.optional(name, .oneOf(ExternalRuleKind.OptionType.allCases.map(\.rawValue))) else { valid = false; continue }
                    if name == "kind" {
                        diagnostics.error("invalid-value", at: type.keyLocation, "'kind' names the rule; an option cannot be called so")
                        valid = false
                    }
                    options.append((name, ExternalRuleKind.OptionType(rawValue: type.value) ?? .integer))
                }
                optionsReader.finish()
            }
            reader.finish()
            guard let kind, let wasm, valid else {
                // Reported above: a plan using the kind reports nothing more.
                if let kind { state.brokenRuleKinds.insert(kind.value) }
                continue
            }
            if let previous = declared[kind.value] {
                diagnostics.error("duplicate-name", at: kind.valueLocation, "the plugin '\(kind.value)' is already declared at \(previous)")
                continue
            }
            if state.registry.ruleKind(named: kind.value) != nil {
                diagnostics.error("duplicate-name", at: kind.valueLocation, "'\(kind.value)' is already a rule kind of this program",
                                  fix: "give the WebAssembly rule another kind name")
                continue
            }
            declared[kind.value] = kind.valueLocation
            guard let loader = state.registry.externalRuleLoader else {
                state.brokenRuleKinds.insert(kind.value)
                diagnostics.error("invalid-plugin", at: wasm.valueLocation, "this program cannot load WebAssembly rule kinds (no loader registered)",
                                  fix: "compile with CatalogLoader, which registers TariffWasm's loader")
                continue
            }
            let path = resolve(wasm.value, against: source.path)
            switch loader.load(kind: kind.value, path: path) {
            case .failure(let error):
                state.brokenRuleKinds.insert(kind.value)
                diagnostics.error("invalid-plugin", at: wasm.valueLocation, "the plugin '\(kind.value)' (\(path)) cannot be used: \(error.description)",
                                  fix: "see docs/plan-authoring.md, 'WebAssembly rule kinds', for what a module must import and export")
            case .success(let function):
                state.registry.register(ruleKind: ExternalRuleKind(kind: kind.value, function: function, meters: meters, options: options,
                                                                   readsPeriod: period?.value ?? false))
            }
        }
    }

    /// A module path is relative to the folder of the rules file that declares it.
    static func resolve(_ path: String, against rulesFile: String) -> String {
        if path.hasPrefix("/") { return path }
        let folder = (rulesFile as NSString).deletingLastPathComponent
        return folder.isEmpty ? path : folder + "/" + path
    }
}
