import ArgumentParser
import Foundation
import TariffSettlement
import TariffStripe

/// The Stripe rail's flags (cli.md): the key comes from `--stripe-key-file` or `STRIPE_SECRET_KEY`,
/// the API base from `STRIPE_API_BASE`; the key is never printed, not even in errors.
struct StripeRailOptions: ParsableArguments {
    @Option(help: "A file holding the Stripe secret key (default: the STRIPE_SECRET_KEY variable).")
    var stripeKeyFile: String?

    /// The rail, configured from the flags and the environment.
    /// - throws: `SettlementError` (`invalid_input`) for a missing key or a bad `STRIPE_API_BASE`.
    func rail() throws -> StripeRail {
        try StripeRail(configuration: StripeConfiguration.load(keyFile: stripeKeyFile))
    }
}
