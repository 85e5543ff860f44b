import ArgumentParser
import Tariff

/// The plugins every command that compiles a catalog uses: the program's registry, given once to
/// `TariffProgram.main(plugins:)`. The shipped `tariff` registers the shipped plugins; a program
/// with plugins of its own is its own five-line `tariff` (examples/Sources/tariff-examples), so
/// there is no list of plugin sets to choose from on the command line.
struct PluginOptions: ParsableArguments {
    /// The program's plugins (`TariffProgram.main(plugins:)`).
    var registry: PluginRegistry { TariffProgram.plugins }
}
