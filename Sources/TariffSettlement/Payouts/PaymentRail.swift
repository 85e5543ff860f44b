import Foundation
import Synchronization
import Tariff

/// One payout as the payment rail sends it: a transfer to the creator's connected account.
public struct PayoutTransfer: Sendable, Hashable {
    /// `payout:CREATOR:WEEK`: the rail sends it as its idempotency key, so a resend pays once.
    public var idempotencyKey: String
    /// The creator's connected account.
    public var destination: String
    public var amount: Money
    public var currency: Currency
    /// The week (`2026-11-02`), Stripe's `transfer_group`.
    public var transferGroup: String

    public init(idempotencyKey: String, destination: String, amount: Money, currency: Currency, transferGroup: String) {
        self.idempotencyKey = idempotencyKey
        self.destination = destination
        self.amount = amount
        self.currency = currency
        self.transferGroup = transferGroup
    }

    /// The amount in the currency's smallest unit (cents for USD), as rails take it.
    /// - throws: `invalid_amount` when the amount is finer than that unit (a payout is whole cents;
    ///   a zero-decimal currency needs whole units).
    public func minorUnits() throws -> Int64 {
        let divisor = Int64(PowerOfTen.int128(Money.fractionalDigits - min(currency.minorUnitDigits, Money.fractionalDigits)))
        guard amount.micros % divisor == 0 else {
            throw SettlementError(.invalidAmount, "\(amount) \(currency.code) is finer than the currency's smallest unit")
        }
        return amount.micros / divisor
    }
}

/// The rail that moves real money (Stripe Connect transfers) or pretends to (`LogRail`):
/// separate from the ledger, called after the payout is recorded.
///
/// A rail must be idempotent by `transfer.idempotencyKey`: the same key sent twice moves money
/// once (Stripe does this with the `Idempotency-Key` header), because a run stopped after sending
/// and before recording the confirmation sends again.
public protocol PaymentRail: Sendable {
    /// Sends a transfer and returns the rail's reference for it.
    func send(_ transfer: PayoutTransfer) async throws -> String

    /// The reference of a transfer the rail already made for `transfer` (matched by its
    /// idempotency key, amount and destination), or nil. Called before a payout that was recorded
    /// but never confirmed is sent again: a rail whose idempotency keys expire (Stripe's, after
    /// 24 h) would otherwise move the money twice. Default: nil (a rail that never forgets a key).
    func findSent(_ transfer: PayoutTransfer) async throws -> String?

    /// The reason when `error`, thrown by `send`, is a definitive refusal of that one transfer (the
    /// creator's account cannot take it): the payout is then `failed` and its amount owed again.
    /// nil when the outcome is unknown (the rail is unreachable, the request timed out): the
    /// payout stays recorded, and the run stops. Default: `rail_rejected`, `payment_declined` and
    /// `invalid_amount` are refusals.
    func refusalReason(_ error: any Error) -> String?
}

extension PaymentRail {
    public func findSent(_ transfer: PayoutTransfer) async throws -> String? { nil }

    public func refusalReason(_ error: any Error) -> String? {
        guard let error = error as? SettlementError else { return nil }
        switch error.code.rawValue {
        case "rail_rejected", "payment_declined", SettlementError.Code.invalidAmount.rawValue: return error.message
        default: return nil
        }
    }
}

/// Writes the request each payout would send, one JSON object per line, for dry runs:
/// `{"method":"POST","path":"/v1/transfers","idempotency_key":"payout:acct_1:2026-11-02","body":{"amount":1262,"currency":"usd","destination":"acct_1","transfer_group":"2026-11-02"}}`
public final class LogRail: PaymentRail {
    /// Every line goes out in one checked write: a rail log on a full disk (`--rail-log /dev/full`)
    /// fails the step with `storage` (it trapped); a payout stays `recorded`, sent again by a rerun.
    let output: Mutex<OutputWriter>

    /// Appends to `writer` (standard error by default).
    public init(writer: OutputWriter = .standardError()) {
        output = Mutex(writer)
    }

    /// Appends to the file at `path`, creating it (a device or FIFO is written in place).
    /// - throws: `invalid_input` when it cannot be opened.
    public convenience init(path: String) throws {
        do {
            self.init(writer: try OutputWriter(path: path, name: "the rail log '\(SafeText.escaping(path))'", append: true))
        } catch {
            throw SettlementError(.invalidInput, error.description)
        }
    }

    /// Writes one request line.
    /// - throws: `storage` when the line could not be written (nothing was "sent").
    func append(_ line: String) throws {
        try output.withLock { writer in
            do throws(OutputError) { try writer.write(line) } catch {
                throw SettlementError(.storage, error.description)
            }
        }
    }

    public func send(_ transfer: PayoutTransfer) async throws -> String {
        let line = "{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"idempotency_key\":\(Self.quoted(transfer.idempotencyKey)),"
            + "\"body\":{\"amount\":\(try transfer.minorUnits()),\"currency\":\(Self.quoted(transfer.currency.code.lowercased())),"
            + "\"destination\":\(Self.quoted(transfer.destination)),\"transfer_group\":\(Self.quoted(transfer.transferGroup))}}\n"
        try append(line)
        return "log:" + transfer.idempotencyKey
    }

    /// A JSON string literal (Tariff's one JSON writer).
    static func quoted(_ text: String) -> String { JSON.quoted(text) }

}
