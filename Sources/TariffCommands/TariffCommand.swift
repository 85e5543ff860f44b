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
                      LedgerCommand.self, SchemaCommand.self, ServeCommand.self, KeysCommand.self, WebhooksCommand.self]
    )

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
            // Every result goes through one checked writer: a failed write is exit 2, never a
            // trap and never exit 0 with the output lost (`tariff schema > /dev/full`).
            try StandardOutput.writer.commit()
        } catch let error as OutputError {
            printError("error: \(error)")
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                do { try StandardOutput.writer.commit() } catch {
                    printError("error: \(error)")
                    Foundation.exit(2)
                }
                Foundation.exit(0)
            }
            // What was printed before the failure still goes out (a failure to write it is not
            // reported over the failure that stopped the command).
            try? StandardOutput.writer.commit()
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            printError(fullMessage(for: error))
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

/// Writes a line to standard error. Control characters of ids and paths are escaped by the
/// callers' messages; a failure to write standard error cannot be reported anywhere, so it is
/// ignored (never a trap: `FileHandle.write` traps on a failed write).
func printError(_ text: String) {
    try? StandardOutput.errors.write(SafeText.escaping(text, keepingLines: true) + "\n")
}

/// The process's standard output and error, written through `OutputWriter` (checked writes).
enum StandardOutput {
    static let writer = OutputWriter.standardOutput()
    static let errors = OutputWriter.standardError()
}

/// Every result of the CLI is printed through this: the same call as Swift's `print`, but into the
/// checked writer of standard output. A failed write is kept and reported when the command ends
/// (`TariffCommand.main`), and stops long outputs at the next write.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    // Ids and reasons from input may hold terminal controls (ESC[2J): escaped, lines kept.
    let text = SafeText.escaping(items.map { "\($0)" }.joined(separator: separator), keepingLines: true) + terminator
    try? StandardOutput.writer.write(text)
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
