import ArgumentParser
import Foundation
import Tariff

/// `tariff check [PATH ...]`: compiles the catalog and reports every diagnostic.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Compile the catalog and report every diagnostic (exit 1 on errors).",
        discussion: "PATH may be plan files, a plans folder, or a catalog folder holding plans/ and rules/. Default: plans/ and rules/."
    )

    @OptionGroup var catalog: CatalogOptions

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Argument(help: "Plan files, a plans folder, or a catalog folder.")
    var paths: [String] = []

    func run() throws {
        let compilation = compileCatalog(paths: paths, options: catalog)
        switch format {
        case .json:
            let diagnostics = compilation.diagnostics.map { diagnostic -> JSON in
                var fields: [(String, JSON)] = [
                    ("file", .string(diagnostic.location.file)), ("line", .integer(Int64(diagnostic.location.line))),
                    ("column", .integer(Int64(diagnostic.location.column))), ("severity", .string(diagnostic.severity.rawValue)),
                    ("code", .string(diagnostic.code.rawValue)), ("message", .string(diagnostic.message)),
                ]
                fields.append(("fix", .optional(diagnostic.fix)))
                return .object(fields)
            }
            print(JSON.object([
                ("diagnostics", .array(diagnostics)), ("plans", .integer(Int64(compilation.planFiles))),
                ("errors", .integer(Int64(compilation.errorCount))), ("warnings", .integer(Int64(compilation.warningCount))),
            ]).rendered)
        case .text:
            for diagnostic in compilation.diagnostics {
                print(diagnostic.description)
                if let fix = diagnostic.fix { print("  fix: \(fix)") }
            }
            print("\(compilation.planFiles) plan file(s): \(compilation.errorCount) error(s), \(compilation.warningCount) warning(s)")
        }
        if compilation.errorCount > 0 { throw ExitCode(1) }
    }
}

/// Compiles what `check` and `test` are pointed at: plan files, a plans folder, or a catalog folder.
func compileCatalog(paths: [String], options: CatalogOptions) -> CatalogCompilation {
    guard !paths.isEmpty else {
        return CatalogLoader.compile(plansDirectory: options.plans, rulesDirectory: options.rules, plugins: options.plugins.registry)
    }
    var planFiles: [String] = []
    var rules = options.rules
    // The plans folder named on the command line (where an empty catalog is reported).
    var plansFolder = options.plans
    for path in paths {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue {
            let base = path.hasSuffix("/") ? String(path.dropLast()) : path
            if FileManager.default.fileExists(atPath: base + "/plans") {
                planFiles += CatalogLoader.yamlFiles(in: base + "/plans") ?? []
                plansFolder = base + "/plans"
                if FileManager.default.fileExists(atPath: base + "/rules") { rules = base + "/rules" }
            } else {
                planFiles += CatalogLoader.yamlFiles(in: path) ?? []
                plansFolder = path
            }
        } else {
            planFiles.append(path)
        }
    }
    return CatalogLoader.compile(plansDirectory: plansFolder, rulesDirectory: rules, planFiles: planFiles, plugins: options.plugins.registry)
}
