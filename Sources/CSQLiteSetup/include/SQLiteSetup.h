#ifndef TARIFF_SQLITE_SETUP_H
#define TARIFF_SQLITE_SETUP_H

/// Configures the process's SQLite library before its first use (sqlite3_config is variadic C,
/// which Swift cannot call): multi-thread mode, so connections take no mutex of their own on every
/// call (GRDB already hands each connection to one thread at a time, and supports only this mode),
/// and no memory statistics, whose counters take the global allocator mutex on every allocation.
/// Returns 0 when applied; SQLITE_MISUSE (21) when SQLite was already initialized, in which case
/// nothing changed and the library's defaults stay (slower, equally correct).
int tariff_sqlite_configure(void);

#endif
