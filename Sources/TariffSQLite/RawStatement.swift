import GRDB
import GRDBSQLite

/// A GRDB-prepared statement used through SQLite's C API on the write path: binding and reading
/// columns by index without GRDB's `StatementArguments` and `Row` (which build arrays and
/// column-name dictionaries per call). The statement comes from the connection's GRDB cache, so
/// GRDB owns its lifetime; every use resets it.
struct RawStatement {
    let handle: OpaquePointer
    let db: Database

    init(_ db: Database, _ statement: Statement) {
        self.db = db
        handle = statement.sqliteStatement
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// SQLite copies bound text (its lifetime is the call's).
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    func bind(_ index: Int32, _ value: Int) { sqlite3_bind_int64(handle, index, Int64(value)) }

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ value: String) {
        var text = value
        _ = text.withUTF8 { bytes in
            if bytes.isEmpty {
                // An empty buffer may have no address, which SQLite would bind as NULL: bind "" explicitly.
                sqlite3_bind_text(handle, index, "", 0, Self.transient)
            } else {
                bytes.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(handle, index, $0.baseAddress, Int32(bytes.count), Self.transient) }
            }
        }
    }

    func bind(_ index: Int32, _ value: String?) {
        if let value { bind(index, value) } else { sqlite3_bind_null(handle, index) }
    }

    /// Steps once: true when a row is ready, false when done.
    /// - throws: `DatabaseError` with SQLite's message (a CHECK failed, the disk is full, ...).
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
    }

    /// Runs a statement that returns no row.
    func run() throws {
        defer { sqlite3_reset(handle) }
        _ = try step()
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    func reset() { sqlite3_reset(handle) }
}

/// The writer connection's prepared statements by the address of their SQL literal. Used only on
/// the writer's queue; holds the GRDB statements so they live as long as the cache (dropped before
/// the connection closes).
final class StatementCache: @unchecked Sendable {
    private var statements: [UnsafeRawPointer: Statement] = [:]

    func statement(_ sql: StaticString, in db: Database) throws -> RawStatement {
        let key = UnsafeRawPointer(sql.utf8Start)
        if let known = statements[key] { return RawStatement(db, known) }
        let prepared = try db.makeStatement(sql: sql.description)
        statements[key] = prepared
        return RawStatement(db, prepared)
    }

    func removeAll() { statements.removeAll() }
}
