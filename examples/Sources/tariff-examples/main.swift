// The whole of a third party's `tariff`: the shipped plugins, the example's, every command.
import Tariff
import TariffCommands
import TariffExamplePlugins

var plugins = ShippedPlugins.registry
ExamplePlugins.register(into: &plugins)
TariffProgram.main(plugins: plugins)
