import Synchronization

/// Hot reload: the catalog every pricing thread reads, swapped atomically when a new one compiles.
///
/// Readers take the current catalog (a reference to an immutable object) and keep pricing with it;
/// a reload compiles on the caller's thread while the old catalog keeps serving, and replaces it
/// only if the new one has no errors.
public final class CatalogStore: Sendable {
    private let current: Mutex<CompiledCatalog>

    public init(_ catalog: CompiledCatalog) { current = Mutex(catalog) }

    /// The catalog in force now.
    public var catalog: CompiledCatalog { current.withLock { $0 } }

    /// Compiles with `compile` and swaps the result in if it has no errors. Returns the compilation
    /// (so the caller can report its diagnostics either way).
    @discardableResult
    public func reload(_ compile: () -> CatalogCompilation) -> CatalogCompilation {
        let compilation = compile()
        if let catalog = compilation.catalog { current.withLock { $0 = catalog } }
        return compilation
    }
}
