import Crypto
import Foundation
import Tariff
import TariffSettlement

/// The Stripe Connect payment rail (settlement.md, "Stripe Connect").
///
/// - Credit purchases (`PurchaseRail`): a PaymentIntent on the platform account for the consumer's
///   customer and payment method, confirmed at once. Credits are added by `Settlement` only when
///   it reports `succeeded`; a pending one is credited by the `payment_intent.succeeded` webhook
///   (`StripeWebhook`) under the same ledger key, so exactly once whichever comes first.
/// - Weekly payouts (`PaymentRail`): one transfer per creator and week to the creator's connected
///   account, `transfer_group` = the week, `Idempotency-Key: payout:CREATOR:WEEK`.
/// - Direct invoices (`chargeInvoice`): destination charges, `transfer_data[destination]` = the
///   creator and `application_fee_amount` = the platform and processing shares.
///
/// ```swift
/// let rail = try StripeRail(configuration: .load(keyFile: nil))
/// let lines = try await settlement.executePayouts(week: week, rail: rail)
/// ```
public struct StripeRail: Sendable {
    public let client: StripeClient

    public init(configuration: StripeConfiguration) throws {
        client = try StripeClient(configuration: configuration)
    }

    /// Stripe keys are at most 255 characters: a longer derived key is shortened to a digest of
    /// it, which is as unique and as stable across retries.
    static func stripeKey(_ prefix: String, _ key: String) -> String {
        let full = prefix + key
        guard full.utf8.count > 255 else { return full }
        let digest = SHA256.hash(data: Data(full.utf8))
        return prefix + "sha256:" + digest.map { String($0, radix: 16).leftPadded(2) }.joined()
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
