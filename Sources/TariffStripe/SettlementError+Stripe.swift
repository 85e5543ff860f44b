import TariffSettlement

// The codes a payment rail adds to `SettlementError` (its code set is open by design): the
// ledger-level meaning of what Stripe answered, so callers handle any rail the same way.
extension SettlementError.Code {
    /// The payment was refused (a declined card): the message carries Stripe's decline reason.
    public static let paymentDeclined = SettlementError.Code(rawValue: "payment_declined")
    /// The rail could not be reached or kept failing (timeouts, 429, 5xx) after every retry: the
    /// same request may be sent again later, under the same key, safely.
    public static let railUnavailable = SettlementError.Code(rawValue: "rail_unavailable")
    /// The rail refused the request as invalid (an unknown customer or account, a balance too low
    /// for a transfer): retrying the same request will not help.
    public static let railRejected = SettlementError.Code(rawValue: "rail_rejected")
    /// The rail refused the credentials (a wrong or revoked secret key).
    public static let railAuthentication = SettlementError.Code(rawValue: "rail_authentication")
}
