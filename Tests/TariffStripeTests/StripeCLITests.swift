import TariffStripeTesting
import Foundation
import Tariff
import TariffSettlement
import TariffSQLite
@testable import TariffStripe
import Testing

/// `tariff ledger purchase --rail stripe` (against localstripe) and `tariff ledger payouts --execute
/// --rail stripe` (against the fake), run as a user would; the key never appears in their output.
@Suite("tariff ledger with the Stripe rail")
struct StripeCLITests {
    typealias S = StripeTestSupport

    struct Run {
        var status: Int32
        var output: String
        var error: String
        var all: String { output + error }
    }

    static var executable: URL? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tariff"),
                          root.appendingPathComponent(".build/debug/tariff")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func run(_ arguments: [String], environment: [String: String], in directory: URL) throws -> Run {
        let process = Process()
        guard let executable else { throw CocoaError(.fileNoSuchFile) }
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var inherited = ProcessInfo.processInfo.environment
        inherited["STRIPE_SECRET_KEY"] = nil
        inherited["STRIPE_API_BASE"] = nil
        process.environment = inherited.merging(environment) { $1 }
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self), error: String(decoding: errorData, as: UTF8.self))
    }

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tariff-stripe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("purchase --rail stripe: a paid card adds the credits; a declined one adds nothing and exits 2 with Stripe's reason")
    func purchase() async throws {
        let server = try LocalStripe.require()
        let directory = try Self.temporaryDirectory()
        let environment = ["STRIPE_SECRET_KEY": LocalStripe.secretKey, "STRIPE_API_BASE": server.baseURL]
        let (customer, method) = try await server.customer(card: "4242424242424242")
        let paid = try Self.run(["ledger", "purchase", "--ledger", "sqlite:ledger.sqlite", "--consumer", "cus_cli", "--amount", "25.00", "--rail", "stripe",
                                 "--customer", customer, "--payment-method", method, "--idempotency-key", "cli-order-1", "--format", "json"],
                                environment: environment, in: directory)
        #expect(paid.status == 0, "\(paid.error)")
        #expect(paid.output.contains(#""available":"25.000000""#))
        let declinedCard = try await server.customer(card: "4000000000000341")
        let declined = try Self.run(["ledger", "purchase", "--ledger", "sqlite:ledger.sqlite", "--consumer", "cus_cli", "--amount", "40.00", "--rail", "stripe",
                                     "--customer", declinedCard.customer, "--payment-method", declinedCard.paymentMethod],
                                    environment: environment, in: directory)
        #expect(declined.status == 2)
        #expect(declined.error.contains("payment_declined") && declined.error.contains("card_declined"), "\(declined.error)")
        let balance = try Self.run(["ledger", "balance", "--ledger", "sqlite:ledger.sqlite", "--consumer", "cus_cli", "--format", "json"],
                                   environment: [:], in: directory)
        #expect(balance.output.contains(#""available":"25.000000""#), "\(balance.all)")
        for run in [paid, declined] { #expect(!run.all.contains(LocalStripe.secretKey)) }
    }

    @Test("purchase --rail stripe needs a key, a customer and a payment method; the key may come from a file")
    func purchaseInvocation() throws {
        let directory = try Self.temporaryDirectory()
        let noKey = try Self.run(["ledger", "purchase", "--ledger", "memory:", "--consumer", "c", "--amount", "1.00", "--rail", "stripe",
                                  "--customer", "cus_1", "--payment-method", "pm_1"], environment: [:], in: directory)
        #expect(noKey.status == 2 && noKey.error.contains("STRIPE_SECRET_KEY"), "\(noKey.all)")
        let noMethod = try Self.run(["ledger", "purchase", "--ledger", "memory:", "--consumer", "c", "--amount", "1.00", "--rail", "stripe",
                                     "--customer", "cus_1"], environment: ["STRIPE_SECRET_KEY": "sk_test_x"], in: directory)
        #expect(noMethod.status == 2 && noMethod.error.contains("--payment-method"), "\(noMethod.all)")
        // A key file pointing at a Stripe that is not there: the rail is configured, the request fails, exit 2, no key printed.
        let keyFile = directory.appendingPathComponent("stripe.key")
        try "sk_test_fromfile_secret_987\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let unreachable = try Self.run(["ledger", "purchase", "--ledger", "memory:", "--consumer", "c", "--amount", "1.00", "--rail", "stripe",
                                        "--customer", "cus_1", "--payment-method", "pm_1", "--stripe-key-file", keyFile.path],
                                       environment: ["STRIPE_API_BASE": "http://127.0.0.1:1"], in: directory)
        #expect(unreachable.status == 2 && unreachable.error.contains("rail_unavailable"), "\(unreachable.all)")
        #expect(!unreachable.all.contains("sk_test_fromfile_secret_987"))
        // The log rail: a dry run that writes the PaymentIntent and adds the credits.
        let log = directory.appendingPathComponent("rail.log")
        let dryRun = try Self.run(["ledger", "purchase", "--ledger", "memory:", "--consumer", "c", "--amount", "3.50", "--rail", "log", "--customer", "cus_1",
                                   "--payment-method", "pm_1", "--idempotency-key", "k1", "--rail-log", log.path, "--format", "json"], environment: [:], in: directory)
        #expect(dryRun.status == 0 && dryRun.output.contains(#""available":"3.500000""#), "\(dryRun.all)")
        #expect(try String(contentsOf: log, encoding: .utf8).contains(#""path":"/v1/payment_intents","idempotency_key":"purchase:k1","body":{"amount":350,"#))
    }

    @Test("payouts --execute --rail stripe: one transfer per creator; run again, nothing more; a wrong key exits 2 and is not printed")
    func payouts() async throws {
        let fake = try FakeStripe()
        defer { fake.stop() }
        let directory = try Self.temporaryDirectory()
        for (folder, files) in [("rules", ["rules.yaml": StripePayoutRunTests.rulesText]),
                                ("plans", Dictionary(uniqueKeysWithValues: (1...6).map { ("p\($0).yaml", StripePayoutRunTests.planText($0)) }))] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
            for (name, text) in files { try text.write(to: directory.appendingPathComponent(folder).appendingPathComponent(name), atomically: true, encoding: .utf8) }
        }
        let ledger = directory.appendingPathComponent("ledger.sqlite").path
        do {
            let backend = try SQLiteBackend(path: ledger, currency: S.usd)
            let clock = ManualClock(Timestamp(rfc3339: "2026-11-03T09:00:00Z")!)
            try await StripePayoutRunTests.seed(Settlement(backend: backend, catalog: StripePayoutRunTests.catalog, clock: clock))
        }
        let arguments = ["ledger", "payouts", "--ledger", "sqlite:\(ledger)", "--week", "2026-11-02", "--execute", "--rail", "stripe", "--format", "json"]
        let wrongKey = try Self.run(arguments, environment: ["STRIPE_SECRET_KEY": "sk_test_wrong_cli_key_555", "STRIPE_API_BASE": fake.baseURL], in: directory)
        #expect(wrongKey.status == 2 && wrongKey.error.contains("rail_authentication"), "\(wrongKey.all)")
        #expect(!wrongKey.all.contains("sk_test_wrong_cli_key_555"))
        #expect(fake.transfers.isEmpty)
        let environment = ["STRIPE_SECRET_KEY": FakeStripe.secretKey, "STRIPE_API_BASE": fake.baseURL]
        let first = try Self.run(arguments, environment: environment, in: directory)
        #expect(first.status == 0, "\(first.all)")
        #expect(first.output.components(separatedBy: #""status":"paid""#).count - 1 == 6)
        let again = try Self.run(arguments, environment: environment, in: directory)
        #expect(again.status == 0)
        #expect(fake.transfers.map(\.amount).sorted() == [1000, 2000, 3000, 4000, 5000, 6000])
        #expect(!(first.all + again.all).contains(FakeStripe.secretKey))
    }
}
