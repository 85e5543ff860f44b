// swift-tools-version: 6.1
// A third party's Tariff: its own plugins (Sources/TariffExamplePlugins) and its own `tariff`
// (Sources/tariff-examples, five lines over the command line library), in a package of its own
// that depends on Tariff by path, exactly as an outside package would by URL.
import PackageDescription

// A dependency by path is known by its folder's name (the repository's checkout folder, whatever
// it is called), so the product references use that name.
let tariffFolder = "../"
let tariffPackage = Context.packageDirectory.split(separator: "/").dropLast().last.map { $0.lowercased() } ?? "tariff"

let package = Package(
    name: "TariffExamples",
    products: [
        .library(name: "TariffExamplePlugins", targets: ["TariffExamplePlugins"]),
        .executable(name: "tariff-examples", targets: ["tariff-examples"]),
    ],
    dependencies: [
        .package(path: tariffFolder),
    ],
    targets: [
        // The model `prepaid_bundle` and the rule kind `cap_per_execution`: Tariff's public plugin API only.
        .target(name: "TariffExamplePlugins", dependencies: [.product(name: "TariffCompiler", package: tariffPackage),
                                                             .product(name: "TariffCore", package: tariffPackage)]),
        // `tariff-examples`: every `tariff` command, with the example plugins registered.
        .executableTarget(name: "tariff-examples", dependencies: ["TariffExamplePlugins", .product(name: "Tariff", package: tariffPackage),
                                                                  .product(name: "TariffCommands", package: tariffPackage)]),
        .testTarget(name: "TariffExamplePluginsTests", dependencies: ["TariffExamplePlugins", .product(name: "Tariff", package: tariffPackage)]),
        // Runs the built `tariff-examples` as a user would.
        .testTarget(name: "TariffExamplesCLITests", dependencies: ["tariff-examples"]),
    ],
    swiftLanguageModes: [.v6]
)
