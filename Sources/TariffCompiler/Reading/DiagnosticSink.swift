import TariffCore

/// Collects the diagnostics of one compilation. Every stage and plugin reports here, so all
/// mistakes of a catalog come out at once, sorted by position.
public final class DiagnosticSink {
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    public func report(_ diagnostic: Diagnostic) { diagnostics.append(diagnostic) }

    public func error(_ code: DiagnosticCode, at location: SourceLocation, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(.error, code, at: location, message, fix: fix))
    }

    public func warning(_ code: DiagnosticCode, at location: SourceLocation, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(.warning, code, at: location, message, fix: fix))
    }

    /// Takes back a diagnostic reported earlier (a `missing-key` that turns out to be a misspelt key).
    func withdraw(_ diagnostic: Diagnostic) {
        if let index = diagnostics.lastIndex(of: diagnostic) { diagnostics.remove(at: index) }
    }

    public var errorCount: Int { diagnostics.count(where: { $0.severity == .error }) }
    public var hasErrors: Bool { diagnostics.contains(where: { $0.severity == .error }) }
}

