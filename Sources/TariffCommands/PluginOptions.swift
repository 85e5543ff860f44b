import ArgumentParser
import Tariff
import TariffExamplePlugins

/// Plugin sets the `tariff` executable can register on top of the shipped plugins (`--plugins`).
///
/// A program embedding Tariff registers its own plugins in code (`PluginRegistry.register`); the
/// executable knows the repository's example, so it can be shown compiled and priced from the
/// command line: `tariff test --plugins examples examples`.
enum PluginSet: String, ExpressibleByArgument, CaseIterable {
    /// Sources/TariffExamplePlugins: the `prepaid_bundle` model and the `cap_per_execution` rule kind.
    case examples
}

/// `--plugins SET` (repeatable), shared by every command that compiles a catalog.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugins"),
            help: "Register extra plugins: examples (the prepaid_bundle model and cap_per_execution rule kind of Sources/TariffExamplePlugins).")
    var sets: [PluginSet] = []

    /// The program's plugins (`TariffProgram.main(plugins:)`), then the sets asked for.
    var registry: PluginRegistry {
        var registry = TariffProgram.plugins
        for set in sets {
            switch set {
            case .examples: ExamplePlugins.register(into: &registry)
            }
        }
        return registry
    }
}
