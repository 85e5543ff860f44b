import ArgumentParser
import Tariff

/// `tariff schema`: the JSON Schema (draft 2020-12) of plan and rules files, for editors.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of plan and rules files (for editors: yaml-language-server).",
        discussion: """
            Save it and point a file at it: '# yaml-language-server: $schema=../tariff.schema.json' as the first line of a \
            plan, or map plans/*.yaml and rules/*.yaml to it in the editor's yaml.schemas setting. It has the options \
            of every model and rule kind this program registers. 'tariff check' still reports what a schema cannot \
            express (tiers increasing, splits adding up, names that must exist).
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json
        case markdown
    }

    @Option(help: "json: the JSON Schema; markdown: the options reference of every model and rule kind, rendered from the same declarations (the tables of docs/plan-authoring.md).")
    var format: Format = .json

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        switch format {
        case .json: print(CatalogSchema.make(registry: plugins.registry).rendered())
        case .markdown: print(OptionsReference.markdown(registry: plugins.registry), terminator: "")
        }
    }
}
