import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Tariff
import TariffSettlement

extension StripeClient {
    /// `GET path?query` (a read: no idempotency key, retried like a POST); the JSON of the 2xx answer.
    /// - throws: `rail_rejected`, `rail_authentication`, `rail_unavailable` (after every retry), `invalid_input` (a bad path).
    public func get(_ path: String, query: FormBody, what: String) async throws -> Data {
        let text = configuration.apiBase.trimmingSuffix("/") + path + (query.fields.isEmpty ? "" : "?" + query.encoded)
        guard let url = URL(string: text) else { throw SettlementError(.invalidInput, "cannot form a Stripe URL for \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        request.setValue("Bearer " + configuration.secretKey.value, forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        return try await exchange(request, what: what)
    }
}
