// The library a settlement service imports: `import Tariff` brings the values, the compiler,
// the engine and the shipped plugins.
@_exported import TariffCompiler
@_exported import TariffGraph
@_exported import TariffCore
@_exported import TariffEngine
@_exported import TariffModels
@_exported import TariffWasm
