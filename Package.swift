// swift-tools-version: 6.1
// Tariff: a billing-model rules engine. The targets are layered by weight:
// values and diagnostics -> compiler -> engine -> (settlement, backends) -> CLI.
// The core and the engine import nothing heavy; Yams only enters at the compiler.
import PackageDescription

let package = Package(
    name: "Tariff",
    products: [
        .library(name: "Tariff", targets: ["Tariff"]),
        .library(name: "TariffCore", targets: ["TariffCore"]),
        .library(name: "TariffGraph", targets: ["TariffGraph"]),
        .library(name: "TariffCompiler", targets: ["TariffCompiler"]),
        .library(name: "TariffEngine", targets: ["TariffEngine"]),
        .library(name: "TariffModels", targets: ["TariffModels"]),
        .library(name: "TariffSettlement", targets: ["TariffSettlement"]),
        // Traces: reader, billing processor, simulation (a product so the fuzzers in Fuzz/ can link it).
        .library(name: "TariffSimulation", targets: ["TariffSimulation"]),
        .library(name: "TariffSQLite", targets: ["TariffSQLite"]),
        .library(name: "TariffSettlementTesting", targets: ["TariffSettlementTesting"]),
        .library(name: "TariffStripe", targets: ["TariffStripe"]),
        .library(name: "TariffPostgres", targets: ["TariffPostgres"]),
        .library(name: "TariffServer", targets: ["TariffServer"]),
        .library(name: "TariffCommands", targets: ["TariffCommands"]),
        .executable(name: "tariff", targets: ["TariffCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        // HMAC-SHA256 for Stripe webhook signatures (the Stripe rail only).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
        // `tariff serve`: the HTTP server, its lifecycle (signals, drain) and its metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        // Already in the graph through Hummingbird; named for the server's own channel handlers and TLS.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        // Webhook deliveries of `tariff serve` (docs/webhooks.md): a pooled client on the server's
        // SwiftNIO, already resolved in the graph (through postgres-nio's and Hummingbird's tests).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.21.0"),
        // WebAssembly rule kinds loaded at run time (rules/plugins.yaml): an interpreter with fuel
        // metering and memory limits, and its WAT assembler for `.wat` modules.
        .package(url: "https://github.com/swiftwasm/WasmKit.git", .upToNextMinor(from: "0.4.2")),
    ],
    targets: [
        // Exact values (money, compute units, percents, currencies, timestamps) and diagnostics.
        .target(name: "TariffCore"),
        // The rule graph: operations, nodes, plan and catalog definitions, and their verifier. No
        // YAML, no Foundation: the compiler produces it, the engine evaluates it.
        .target(name: "TariffGraph", dependencies: ["TariffCore"]),
        // YAML -> positioned syntax -> checks -> rule graph; the plugin protocols and registry.
        .target(name: "TariffCompiler", dependencies: ["TariffCore", "TariffGraph", .product(name: "Yams", package: "Yams")]),
        // The shipped plugins (per_call, subscription, enterprise, rule kinds): public API only.
        .target(name: "TariffModels", dependencies: ["TariffCore", "TariffCompiler"]),
        // The flat evaluator over compiled plans: no YAML, no strings on the hot path.
        .target(name: "TariffEngine", dependencies: ["TariffCore", "TariffGraph"]),
        // Rule kinds written in WebAssembly (rules/plugins.yaml), run by WasmKit under a fuel budget
        // and a memory limit. Only this module imports WasmKit.
        .target(name: "TariffWasm", dependencies: ["TariffCore", "TariffCompiler", .product(name: "WasmKit", package: "WasmKit"),
                                                   .product(name: "WAT", package: "WasmKit")]),
        // The library a settlement service imports: compile, price, quote, batch, explain, hot reload.
        .target(name: "Tariff", dependencies: ["TariffCore", "TariffGraph", "TariffCompiler", "TariffEngine", "TariffModels", "TariffWasm"]),
        // zlib, for gzip-compressed traces.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Usage traces, the billing processor (subscriptions, periods, plan selection), simulation, reports.
        .target(name: "TariffSimulation", dependencies: ["Tariff", "CZlib"]),
        // Settlement: the backend protocol, the credit lifecycle, the ledger and its invariants, the
        // in-memory backend, payouts and the payment rail protocol. Tariff only: no GRDB, no NIO.
        .target(name: "TariffSettlement", dependencies: ["Tariff"]),
        // The embedded SQLite backend (GRDB, WAL, versioned migrations, group commit).
        // sqlite3_config before SQLite's first use (multi-thread mode, no memory statistics).
        .target(name: "CSQLiteSetup", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(name: "TariffSQLite", dependencies: ["TariffSettlement", "CSQLiteSetup", .product(name: "GRDB", package: "GRDB.swift"),
                                                    .product(name: "GRDBSQLite", package: "GRDB.swift")]),
        // The Stripe Connect payment rail: PaymentIntents for credit purchases, transfers for payouts,
        // destination charges for direct invoices, webhook signatures. HTTP through FoundationNetworking's
        // URLSession (no NIO to build; see StripeClient.swift), HMAC through swift-crypto.
        .target(name: "TariffStripe", dependencies: ["TariffSettlement", .product(name: "Crypto", package: "swift-crypto")]),
        // The shared PostgreSQL backend (postgres-nio): one round trip per lifecycle step, many workers on one ledger.
        .target(name: "TariffPostgres", dependencies: ["TariffSettlement", .product(name: "PostgresNIO", package: "postgres-nio"),
                                                      .product(name: "Logging", package: "swift-log")]),
        // localstripe started on a loopback port, for the Stripe rail's and the service's tests.
        .target(name: "TariffStripeTesting", dependencies: ["TariffStripe"]),
        // The conformance suite every backend runs (shipped so third-party backends reuse it).
        .target(name: "TariffSettlementTesting", dependencies: ["TariffSettlement", .product(name: "PropertyBased", package: "swift-property-based")]),
        // `tariff serve`: the billing layer as an HTTP service (service.md) over Settlement and the
        // backends; API keys, problem+json, idempotent answers, the Stripe webhook, metrics.
        .target(name: "TariffServer", dependencies: ["Tariff", "TariffSettlement", "TariffSQLite", "TariffPostgres", "TariffStripe",
                                                    .product(name: "Hummingbird", package: "hummingbird"),
                                                    .product(name: "HummingbirdCore", package: "hummingbird"),
                                                    .product(name: "HummingbirdTLS", package: "hummingbird"),
                                                    .product(name: "HTTPTypes", package: "swift-http-types"),
                                                    .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                                                    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                    .product(name: "Metrics", package: "swift-metrics"),
                                                    .product(name: "Prometheus", package: "swift-prometheus"),
                                                    .product(name: "Logging", package: "swift-log"),
                                                    .product(name: "Crypto", package: "swift-crypto"),
                                                    .product(name: "NIOCore", package: "swift-nio"),
                                                    .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                                                    .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                    .product(name: "AsyncHTTPClient", package: "async-http-client")]),
        // `tariff ledger replay`: the billing processor's decisions applied to a settlement ledger.
        .target(name: "TariffReplay", dependencies: ["TariffSimulation", "TariffSettlement"]),
        // Counts heap allocations (malloc interposition) for `tariff bench`; linked into the CLI only.
        .target(name: "CAllocationCounter"),
        // The `tariff` commands as a library (parse flags, call the library, render), with one entry
        // point taking a plugin registry: a third party's `tariff` is a five-line executable.
        .target(
            name: "TariffCommands",
            dependencies: ["Tariff", "TariffSimulation", "TariffSettlement", "TariffSQLite", "TariffReplay", "TariffStripe", "TariffPostgres", "CAllocationCounter", "TariffServer",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")]
        ),
        // The shipped `tariff` executable: the commands with the shipped plugins.
        .executableTarget(name: "TariffCLI", dependencies: ["Tariff", "TariffCommands"]),
        .testTarget(name: "TariffCoreTests", dependencies: ["TariffCore", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "TariffCompilerTests", dependencies: ["Tariff"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TariffEngineTests", dependencies: ["Tariff", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "TariffSettlementTests", dependencies: ["TariffSettlementTesting", "TariffSQLite", "TariffReplay", .product(name: "GRDB", package: "GRDB.swift"),
                                                                 .product(name: "PropertyBased", package: "swift-property-based")]),
        // Against localstripe (started by the tests; skipped when it cannot be) and an in-process fake for Connect.
        .testTarget(name: "TariffStripeTests", dependencies: ["TariffStripe", "TariffStripeTesting", "TariffSettlementTesting", "TariffSQLite", "TariffCLI"]),
        .testTarget(name: "TariffPostgresTests", dependencies: ["TariffSettlementTesting", "TariffPostgres", "TariffSQLite", .product(name: "PostgresNIO", package: "postgres-nio"),
                                                               .product(name: "PropertyBased", package: "swift-property-based")]),
        // Depends on the executable so `swift test` always builds the binary it runs.
        .testTarget(name: "TariffSimulationTests", dependencies: ["TariffSimulation", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "TariffCLITests", dependencies: ["Tariff", "TariffCLI"]),
        // Over loopback with a real HTTP client (URLSession); the PostgreSQL ones need TARIFF_TEST_POSTGRES_URL.
        // A webhook receiver on loopback (Hummingbird) checks the deliveries' signatures (Crypto).
        .testTarget(name: "TariffServerTests", dependencies: ["TariffServer", "TariffSimulation", "TariffReplay", "TariffStripeTesting", "TariffCLI", "TariffCommands", "TariffSettlementTesting", "TariffStripe",
                                                             .product(name: "Hummingbird", package: "hummingbird"),
                                                             .product(name: "HTTPTypes", package: "swift-http-types"),
                                                             .product(name: "Crypto", package: "swift-crypto")]),
    ],
    swiftLanguageModes: [.v6]
)
