import Synchronization

/// Hot reload: the catalog every pricing thread reads, swapped atomically when a new one compiles.
///
/// Readers take the current catalog (a reference to an immutable object) and keep pricing with it;
/// a reload compiles on the caller's thread while the old catalog keeps serving, and replaces it
/// only if the new one has no errors.
///
/// Reloads may overlap (two file changes in a row, each compiled on its own thread): the catalog
/// in force is always the one of the most recently *started* reload that succeeded, never an older
/// compile that happened to finish later.
public final class CatalogStore: Sendable {
    private struct State {
        var catalog: CompiledCatalog
        /// The ticket of the reload that installed `catalog` (0: the initial one).
        var installedTicket: UInt64 = 0
        /// The last ticket handed out: reloads are numbered in the order they start.
        var lastTicket: UInt64 = 0
    }
    private let state: Mutex<State>

    public init(_ catalog: CompiledCatalog) { state = Mutex(State(catalog: catalog)) }

    /// The catalog in force now.
    public var catalog: CompiledCatalog { state.withLock { $0.catalog } }

    /// Compiles with `compile` and swaps the result in if it has no errors and no reload started
    /// after this one has already installed its catalog. Returns the compilation (so the caller
    /// can report its diagnostics either way).
    @discardableResult
    public func reload(_ compile: () -> CatalogCompilation) -> CatalogCompilation {
        let ticket = state.withLock { state in
            state.lastTicket += 1
            return state.lastTicket
        }
        let compilation = compile()
        if let catalog = compilation.catalog {
            state.withLock { state in
                guard ticket > state.installedTicket else { return }
                state.catalog = catalog
                state.installedTicket = ticket
            }
        }
        return compilation
    }
}
