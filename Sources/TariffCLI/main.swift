// The shipped `tariff`: the command line library with the shipped plugins. A third party's
// `tariff` is the same five lines with its own registry (examples/ builds one).
import Tariff
import TariffCommands

TariffProgram.main(plugins: ShippedPlugins.registry)
