import Tariff
import TariffSettlement
import TariffStripe

/// A refusal answered as RFC 9457 `application/problem+json` with service.md's status and code.
struct APIError: Error, Sendable {
    var status: Int
    var code: String
    var detail: String
    /// Extra headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    var headers: [(String, String)] = []
    /// Extension members of the problem (RFC 9457 section 3.2): a reload's diagnostics.
    var extra: [(String, JSON)] = []

    init(_ status: Int, _ code: String, _ detail: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
    }

    static func invalid(_ detail: String) -> APIError { APIError(400, "invalid_input", detail) }
    static func notFound(_ detail: String) -> APIError { APIError(404, "not_found", detail) }
    static let unauthorized = APIError(401, "unauthorized", "a valid API key is needed: Authorization: Bearer KEY",
                                       headers: [("WWW-Authenticate", "Bearer realm=\"tariff\"")])
    static let forbidden = APIError(403, "forbidden", "this key's role may not use this endpoint")

    /// The problem's `title`: the code in words.
    var title: String {
        let words = code.split(separator: "_").joined(separator: " ")
        return words.prefix(1).uppercased() + words.dropFirst()
    }

    var body: String {
        JSON.object([("type", .string("urn:tariff:error:\(code)")), ("title", .string(title)), ("status", .integer(Int64(status))),
                     ("code", .string(code)), ("detail", .string(detail))] + extra).rendered
    }

    /// The library's refusal as the service answers it (service.md's table of statuses).
    init(_ error: SettlementError) {
        let code = error.code.rawValue
        switch error.code {
        case .invalidInput, .invalidAmount, .invalidKey, .outOfRange, .wrongCurrency, .invalidSignature: self.init(400, code, error.message)
        case .insufficientCredits, .paymentDeclined: self.init(402, code, error.message)
        case .unknownConsumer, .unknownReservation: self.init(404, code, error.message)
        case .unknownPurchase, .notFound: self.init(404, "not_found", error.message)
        case .unknownPlan: self.init(404, code, error.message)
        case .idempotencyConflict, .reservationExpired, .notDue: self.init(409, code, error.message)
        case .railRejected, .railAuthentication: self.init(502, code, error.message)
        case .railUnavailable: self.init(503, code, error.message, headers: [("Retry-After", "5")])
        case .storage: self.init(503, code, "the ledger cannot be reached or failed; try again", headers: [("Retry-After", "1")])
        default: self.init(400, "invalid_input", error.message)
        }
    }
}

/// An id or key checked as the ledger checks them (1 to 255 characters, no control characters).
func validatedID(_ text: String, _ what: String) throws(APIError) -> String {
    do { try Settlement.validate(text, what) } catch {
        throw APIError(400, "invalid_key", (error as? SettlementError)?.message ?? "the \(what) is not valid")
    }
    return text
}
