import ArgumentParser
import Foundation
import Tariff

/// The root command: declares the subcommands and maps every failure to cli.md's exit codes
/// (0 success, 1 catalog or plan-test errors, 2 bad invocation or input), never a trap.
/// Programs start it through `TariffProgram.main(plugins:)`.
struct TariffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tariff",
        abstract: "Compile pricing plans and price agent executions exactly.",
        version: "0.1.0",
        subcommands: [CheckCommand.self, QuoteCommand.self, GraphCommand.self, TestCommand.self, SimulateCommand.self, GenerateCommand.self, BenchCommand.self,
                      LedgerCommand.self, SchemaCommand.self]
    )

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// Output format of every command that prints a result.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Where the catalog is read from (`--plans`, `--rules`).
struct CatalogOptions: ParsableArguments {
    @Option(help: "The plans folder.")
    var plans: String = "plans"

    @Option(help: "The rules folder.")
    var rules: String = "rules"

    @OptionGroup var plugins: PluginOptions

    /// Compiles the catalog or stops with exit 2, the diagnostics on standard error.
    func load() throws -> CompiledCatalog { try Self.load(plans: plans, rules: rules, plugins: plugins.registry) }

    static func load(plans: String, rules: String, plugins: PluginRegistry = TariffProgram.plugins) throws -> CompiledCatalog {
        let compilation = CatalogLoader.compile(plansDirectory: plans, rulesDirectory: rules, plugins: plugins)
        guard let catalog = compilation.catalog else {
            for diagnostic in compilation.diagnostics where diagnostic.severity == .error { printError(diagnostic.description) }
            printError("the catalog has \(compilation.errorCount) error(s); run 'tariff check' for details")
            throw ExitCode(2)
        }
        return catalog
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A bad input that stops a command: printed on standard error, exit 2.
struct InputError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ParsableCommand {
    /// Runs `body`, turning an `InputError` into a message on standard error and exit 2.
    func stopping(_ body: () throws -> Void) throws {
        do { try body() } catch let error as InputError {
            printError("error: \(error.description)")
            throw ExitCode(2)
        }
    }
}
