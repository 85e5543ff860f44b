// The compiler produces the rule graph: a plugin (which imports TariffCompiler) sees its types.
@_exported import TariffGraph
