import Foundation
import TariffWasm

/// The outcome of compiling a catalog: the compiled catalog, or none when there are errors, and
/// every diagnostic as values (never only printed text).
public struct CatalogCompilation: Sendable {
    public let catalog: CompiledCatalog?
    /// Sorted by file, line, column.
    public let diagnostics: [Diagnostic]
    /// How many plan files were read.
    public let planFiles: Int

    public init(catalog: CompiledCatalog?, diagnostics: [Diagnostic], planFiles: Int) {
        self.catalog = catalog
        self.diagnostics = diagnostics
        self.planFiles = planFiles
    }

    public var errorCount: Int { diagnostics.count { $0.severity == .error } }
    public var warningCount: Int { diagnostics.count { $0.severity == .warning } }
}

/// Loads and compiles catalogs from folders or from in-memory YAML.
///
/// ```swift
/// let compilation = CatalogLoader.compile(plansDirectory: "plans", rulesDirectory: "rules")
/// guard let catalog = compilation.catalog else { compilation.diagnostics.forEach { print($0) }; return }
/// ```
public enum CatalogLoader {
    /// Compiles in-memory sources (a catalog kept in a database) with the given plugins.
    public static func compile(sources: [CatalogSource], plugins: PluginRegistry = ShippedPlugins.registry) -> CatalogCompilation {
        var plugins = plugins
        // WebAssembly rule kinds of rules/plugins.yaml load through WasmKit unless the caller chose.
        if plugins.externalRuleLoader == nil { plugins.externalRuleLoader = WasmRuleLoader() }
        let (definition, diagnostics) = Compiler(registry: plugins).compile(sources)
        let planFiles = sources.count { $0.kind == .plan }
        guard let definition else { return CatalogCompilation(catalog: nil, diagnostics: diagnostics, planFiles: planFiles) }
        do {
            return CatalogCompilation(catalog: try CompiledCatalog(definition), diagnostics: diagnostics, planFiles: planFiles)
        } catch {
            // The compiler's verify-graph stage ran the same checks: this is the engine's own guard.
            return CatalogCompilation(catalog: nil, diagnostics: Diagnostic.sorted(diagnostics + error.diagnostics), planFiles: planFiles)
        }
    }

    /// Compiles the `*.yaml` / `*.yml` files of a plans folder and a rules folder. `planFiles`
    /// restricts the plans to those files (for `tariff check FILE`). A missing folder is an
    /// `io-error` diagnostic.
    public static func compile(plansDirectory: String, rulesDirectory: String, planFiles: [String]? = nil,
                               plugins: PluginRegistry = ShippedPlugins.registry) -> CatalogCompilation {
        var sources: [CatalogSource] = []
        var diagnostics: [Diagnostic] = []
        if let planFiles {
            for file in planFiles { read(file, kind: .plan, into: &sources, diagnostics: &diagnostics) }
        } else {
            readFolder(plansDirectory, kind: .plan, required: true, into: &sources, diagnostics: &diagnostics)
        }
        // An empty catalog is an error, not a clean check: a mistyped --plans folder (or one whose
        // files are all .yml.bak) must not pass CI.
        if planFiles?.isEmpty ?? true, !diagnostics.contains(where: { $0.code == "io-error" }), !sources.contains(where: { $0.kind == .plan }) {
            diagnostics.append(Diagnostic(.error, "empty-catalog", at: SourceLocation(file: plansDirectory, line: 1, column: 1),
                                          "the folder '\(SafeText.escaping(plansDirectory))' holds no plan (*.yaml, *.yml)",
                                          fix: "add a plan, or pass --plans DIR"))
        }
        readFolder(rulesDirectory, kind: .rules, required: false, into: &sources, diagnostics: &diagnostics)
        let compilation = compile(sources: sources, plugins: plugins)
        guard !diagnostics.isEmpty else { return compilation }
        let all = Diagnostic.sorted(diagnostics + compilation.diagnostics)
        return CatalogCompilation(catalog: all.contains { $0.severity == .error } ? nil : compilation.catalog,
                                  diagnostics: all, planFiles: compilation.planFiles)
    }

    /// The YAML files of a folder, sorted by name, with paths as the user named the folder.
    public static func yamlFiles(in directory: String) -> [String]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { base.isEmpty ? $0 : "\(base)/\($0)" }
    }

    private static func readFolder(_ directory: String, kind: CatalogSource.Kind, required: Bool, into sources: inout [CatalogSource], diagnostics: inout [Diagnostic]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
              let files = yamlFiles(in: directory) else {
            if required {
                diagnostics.append(Diagnostic(.error, "io-error", at: SourceLocation(file: directory, line: 1, column: 1),
                                              "the folder '\(directory)' does not exist or cannot be read", fix: "pass --plans DIR / --rules DIR"))
            }
            return
        }
        for file in files { read(file, kind: kind, into: &sources, diagnostics: &diagnostics) }
    }

    private static func read(_ path: String, kind: CatalogSource.Kind, into sources: inout [CatalogSource], diagnostics: inout [Diagnostic]) {
        // Size-checked before reading, and read with a bound: a 2 GB plan file (or a link to
        // /dev/zero) costs nothing, where it was read whole before the 1 MiB check (4.2 GB).
        let bytes: [UInt8]
        do throws(BoundedRead.Failure) {
            bytes = try BoundedRead.bytes(atPath: path, maximumBytes: YAMLLoader.maximumFileBytes)
        } catch {
            let start = SourceLocation(file: path, line: 1, column: 1)
            switch error {
            case .tooLarge(let maximum):
                diagnostics.append(Diagnostic(.error, "file-too-large", at: start, "the file is larger than \(maximum) bytes", fix: "split it into one plan per file"))
            case .unreadable(let reason):
                diagnostics.append(Diagnostic(.error, "io-error", at: start, "the file cannot be read: \(reason)"))
            }
            return
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            diagnostics.append(Diagnostic(.error, "yaml-syntax", at: SourceLocation(file: path, line: 1, column: 1), "the file is not UTF-8 text"))
            return
        }
        sources.append(CatalogSource(path: path, text: text, kind: kind))
    }
}
