import Tariff

/// Why a settlement operation was refused.
///
/// A struct with an open set of codes (like GRDB's errors): a backend or a later release may add a
/// code without breaking callers that switch over the ones they know. Every refusal leaves the
/// ledger unchanged; `message` says what a person needs to fix it.
///
/// ```swift
/// do { _ = try await settlement.reserve(request) }
/// catch let error as SettlementError where error.code == .insufficientCredits { stopTheRun() }
/// ```
public struct SettlementError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable reason (`insufficient_credits`), as printed by `tariff ledger`.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// `available` cannot cover the amount to hold: never an overdraft.
        public static let insufficientCredits = Code(rawValue: "insufficient_credits")
        /// The hold outlived its TTL: its funds went back, and it can no longer be settled.
        public static let reservationExpired = Code(rawValue: "reservation_expired")
        /// The key was already used with other parameters (or for another operation).
        public static let idempotencyConflict = Code(rawValue: "idempotency_conflict")
        /// No purchase ever opened this consumer's accounts.
        public static let unknownConsumer = Code(rawValue: "unknown_consumer")
        /// No hold was placed under this execution id.
        public static let unknownReservation = Code(rawValue: "unknown_reservation")
        /// The amount or plan is in another currency than the ledger's.
        public static let wrongCurrency = Code(rawValue: "wrong_currency")
        /// Zero, negative, not whole cents, or beyond the ledger's limits.
        public static let invalidAmount = Code(rawValue: "invalid_amount")
        /// An idempotency key or id that is empty, longer than 255 characters or holds control characters.
        public static let invalidKey = Code(rawValue: "invalid_key")
        /// Any other malformed request (a TTL out of range, an unknown plan, a bad week).
        public static let invalidInput = Code(rawValue: "invalid_input")
        /// A running total would leave the 64-bit micro-unit range: refused rather than wrapped.
        public static let outOfRange = Code(rawValue: "out_of_range")
        /// A payout run before its week's pay date (settlement.md: "from W's pay date on"): nothing
        /// was recorded or sent.
        public static let notDue = Code(rawValue: "not_due")
        /// The backend's storage failed (disk full, database locked too long, corrupt file).
        public static let storage = Code(rawValue: "storage")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `insufficient_credits: cus_1 has 3.000000 available, 7.000000 needed`
    /// Control characters of ids quoted in the message are escaped: an error is printed to a terminal.
    public var description: String { "\(code.rawValue): \(SafeText.escaping(message))" }
}

extension SettlementError.Code {
    /// No purchase paid through a rail has this key (refunds and disputes name one).
    public static let unknownPurchase = SettlementError.Code(rawValue: "unknown_purchase")
}
