// swift-tools-version: 6.1
// libFuzzer harnesses for Tariff's input parsers (issue 12). A package of its own so that the
// main `swift build` never builds them (they have no `main`: libFuzzer supplies it). Built and run
// by `.ci/fuzz`:
//   swift build --package-path Fuzz --scratch-path .build-fuzz --sanitize fuzzer --sanitize address \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// (SwiftPM's --sanitize links libFuzzer's main; -Xswiftc -sanitize=fuzzer instruments every Swift
// module for coverage, which --sanitize alone did not.)
// Each harness is one `LLVMFuzzerTestOneInput`; its seed corpus is in `Fuzz/corpus/<name>/`.
import PackageDescription

let package = Package(
    name: "TariffFuzz",
    dependencies: [.package(name: "Tariff", path: "..")],
    targets: [
        // Plan compilation: any bytes as a plan file of a catalog with the sample rules.
        .executableTarget(name: "FuzzPlans", dependencies: [.product(name: "Tariff", package: "Tariff")]),
        // The trace line parser (usage.md): any bytes as one line.
        .executableTarget(name: "FuzzTraceLine", dependencies: [.product(name: "TariffSimulation", package: "Tariff")]),
        // The Stripe webhook parser: signature header and payload, and a correctly signed payload.
        .executableTarget(name: "FuzzWebhook", dependencies: [.product(name: "TariffStripe", package: "Tariff"),
                                                              .product(name: "TariffSettlement", package: "Tariff")]),
        // The service's requests answered in process (routing, keys, bodies, handlers) over an
        // in-memory ledger of the sample catalog, through TariffServer's `@_spi(Fuzzing)` entry.
        .executableTarget(name: "FuzzServiceRequest", dependencies: [.product(name: "TariffServer", package: "Tariff"),
                                                                     .product(name: "TariffSettlement", package: "Tariff")]),
    ],
    swiftLanguageModes: [.v6]
)
