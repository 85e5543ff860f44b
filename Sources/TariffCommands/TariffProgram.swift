import Foundation
import Synchronization
import Tariff

/// The `tariff` command line as a library: a program that prices with its own plugins is
///
/// ```swift
/// import Tariff
/// import TariffCommands
/// var plugins = ShippedPlugins.registry
/// plugins.register(ruleKind: MyRule())
/// TariffProgram.main(plugins: plugins)
/// ```
///
/// Every command (`check`, `test`, `quote`, `simulate`, `ledger`, `schema`, ...) then compiles
/// catalogs with that registry, exactly as the shipped `tariff` does with the shipped plugins.
public enum TariffProgram {
    /// The registry every command compiles with; set once by `main(plugins:)` before parsing.
    private static let registry = Mutex(ShippedPlugins.registry)

    /// The plugins the running program registered.
    public static var plugins: PluginRegistry { registry.withLock { $0 } }

    /// Parses the process's arguments, runs the command, and exits with cli.md's exit code.
    public static func main(plugins: PluginRegistry) -> Never {
        registry.withLock { $0 = plugins }
        TariffCommand.main()
        exit(0)
    }
}
