import Foundation
import Synchronization
import Tariff
@testable import TariffStripe

/// An in-process stand-in for the parts of Stripe's API that localstripe lacks: Connect transfers,
/// destination charges, and idempotency keys, following Stripe's documented behaviour:
/// - a repeated `Idempotency-Key` with the same method, path and parameters replays the stored
///   answer (status and body) and applies nothing again;
/// - the same key with other parameters is refused, 400 `idempotency_error`;
/// - the same key while its first request is still running is refused, 409 `idempotency_key_in_use`;
/// - an answer is stored only once the request started executing (a 429 before it is not).
/// - a stored key is forgotten 24 hours after its first request (Stripe's idempotency window), on
///   the fake's own clock (`advance(hours:)`): the same request sent later is applied again;
/// - `GET /v1/transfers?transfer_group=...&limit=...&starting_after=...` lists transfers (newest
///   first, as Stripe does) with their `metadata`, page by page (`has_more`).
/// Failure injection: `inject(_:)` queues faults that the next POSTs meet, in order.
/// Time: the fake has its own clock (`advanceClock(seconds:)`); idempotency keys are forgotten
/// 24 hours after their first request, as Stripe prunes them, so a resend after that applies again.
/// Reads: `GET /v1/payment_intents` lists PaymentIntents newest first (`customer`, `created[gte]`,
/// `limit`, `starting_after`), with their `metadata`, as the rail's look-up before a resend reads them.
/// Refunds (`POST /v1/refunds`, at most what is left unrefunded; `GET /v1/refunds`), disputes
/// (opened and closed by the test, as a bank would: `openDispute`, `closeDispute`; `GET /v1/disputes`),
/// transfer reversals (`reverseTransfer`), and every list filtered by `created[gte]`/`created[lt]`,
/// for reconciliation. `remove`, `setAmount` and `addPaymentIntent` make differences on purpose.
final class FakeStripe: Sendable {
    static let secretKey = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc"

    struct Transfer: Sendable, Equatable {
        var id: String
        var amount: Int64
        var currency: String
        var destination: String
        var transferGroup: String
        var idempotencyKey: String
        /// Unix seconds on the fake's clock.
        var created: Int64 = 0
        /// Minor units reversed (Stripe's `amount_reversed`).
        var amountReversed: Int64 = 0
    }
    struct Refund: Sendable, Equatable {
        var id: String
        var amount: Int64
        var currency: String
        var paymentIntent: String
        var status: String
        var metadata: [String: String]
        var created: Int64
    }
    struct Dispute: Sendable, Equatable {
        var id: String
        var amount: Int64
        var currency: String
        var paymentIntent: String
        var status: String
        var created: Int64
    }
    struct Charge: Sendable, Equatable {
        var id: String
        var amount: Int64
        var currency: String
        var customer: String
        var applicationFee: Int64?
        var destination: String?
        var status: String
        var metadata: [String: String] = [:]
        /// Unix seconds on the fake's clock.
        var created: Int64 = 0
    }
    enum Fault: Sendable {
        /// Answer this status before executing (429, 500, 503): nothing applied, nothing stored;
        /// with `shouldRetry`, Stripe's `Stripe-Should-Retry` header.
        case status(Int, shouldRetry: Bool? = nil)
        /// Keep the key in flight until a concurrent request with the same key has met 409
        /// `idempotency_key_in_use` (or the time limit passed), then execute: the overlap is certain
        /// however the test's tasks are scheduled.
        case holdUntilConflict(limitMilliseconds: Int)
        /// Execute and store the answer, then hang past the client's timeout: it never hears back.
        case timeoutAfterApplying(milliseconds: Int)
    }
    struct Seen: Sendable {
        var method: String
        var path: String
        var idempotencyKey: String?
        var authorization: String?
        var body: String
    }

    private struct Stored {
        var fingerprint: String
        var status: Int
        var body: String
        /// When the key's first request was answered, on the fake's clock (seconds).
        var at: Int64
    }
    /// Stripe keeps an idempotency key for 24 hours.
    static let idempotencyWindowSeconds: Int64 = 24 * 3_600
    private struct State {
        var transfers: [Transfer] = []
        var charges: [Charge] = []
        var refunds: [Refund] = []
        var disputes: [Dispute] = []
        var stored: [String: Stored] = [:]
        var inFlight: Set<String> = []
        var faults: [Fault] = []
        var seen: [Seen] = []
        /// The status of every request that got past the key checks, and every 409 of one in flight.
        var statuses: [Int] = []
        var nextId = 1
        /// Each transfer's metadata, by transfer id.
        var metadata: [String: [String: String]] = [:]
        /// The fake's clock, Unix seconds (the idempotency window and PaymentIntents' `created`).
        var nowSeconds: Int64 = 1_796_040_000
        /// Connected accounts that cannot receive transfers (Stripe answers 400).
        var refusing: Set<String> = []
    }
    private let state = Mutex(State())
    private let server: Mutex<LoopbackHTTPServer?> = Mutex(nil)

    init() throws {
        let created = try LoopbackHTTPServer { [weak self] request in
            guard let self else { return .respond(status: 503, body: "{}") }
            return self.handle(request)
        }
        server.withLock { $0 = created }
    }

    var baseURL: String { server.withLock { $0!.baseURL } }
    func stop() { server.withLock { $0?.stop() } }

    func inject(_ faults: Fault...) { state.withLock { $0.faults += faults } }
    /// Moves the fake's clock: keys older than 24 hours are forgotten.
    func advance(hours: Int64) { state.withLock { $0.nowSeconds += hours * 3_600 } }
    /// Transfers to `account` are refused (true) or accepted again (false).
    func setRefusing(_ account: String, _ refusing: Bool) {
        state.withLock { if refusing { $0.refusing.insert(account) } else { $0.refusing.remove(account) } }
    }
    /// Moves the fake's clock: keys first used more than 24 h before are forgotten.
    func advanceClock(seconds: Int64) { state.withLock { $0.nowSeconds += seconds } }
    /// Sets the fake's clock (Unix seconds), to line it up with a test ledger's clock.
    func setClock(_ instant: Timestamp) { state.withLock { $0.nowSeconds = instant.nanosecondsSinceEpoch / 1_000_000_000 } }
    /// Idempotency keys still remembered.
    var rememberedKeys: Int { state.withLock { state in state.stored.values.filter { state.nowSeconds - $0.at < Self.idempotencyWindowSeconds }.count } }
    var transfers: [Transfer] { state.withLock { $0.transfers } }
    var refunds: [Refund] { state.withLock { $0.refunds } }
    var disputes: [Dispute] { state.withLock { $0.disputes } }
    /// The fake's clock, Unix seconds.
    var nowSeconds: Int64 { state.withLock { $0.nowSeconds } }

    // MARK: Changes made on Stripe's side (the dashboard, a bank), and differences made on purpose

    /// A dispute of a PaymentIntent opened now (`needs_response`); returns its id (`dp_...`).
    func openDispute(payment: String, amount: Int64) -> String {
        state.withLock { state in
            let currency = state.charges.first { $0.id == payment }?.currency ?? "usd"
            let dispute = Dispute(id: "dp_\(state.nextId)", amount: amount, currency: currency, paymentIntent: payment, status: "needs_response",
                                  created: state.nowSeconds)
            state.nextId += 1
            state.disputes.append(dispute)
            return dispute.id
        }
    }
    /// Closes a dispute: `lost` or `won`.
    func closeDispute(_ id: String, status: String) {
        state.withLock { state in
            if let index = state.disputes.firstIndex(where: { $0.id == id }) { state.disputes[index].status = status }
        }
    }
    /// Reverses part or all of a transfer (Stripe's `amount_reversed` grows).
    func reverseTransfer(_ id: String, amount: Int64) {
        state.withLock { state in
            if let index = state.transfers.firstIndex(where: { $0.id == id }) { state.transfers[index].amountReversed += amount }
        }
    }
    /// A PaymentIntent made outside the ledger (`metadata` as given), succeeded, created now; returns its id.
    func addPaymentIntent(amount: Int64, customer: String, metadata: [String: String]) -> String {
        state.withLock { state in
            let charge = Charge(id: "pi_\(state.nextId)", amount: amount, currency: "usd", customer: customer, applicationFee: nil, destination: nil,
                                status: "succeeded", metadata: metadata, created: state.nowSeconds)
            state.nextId += 1
            state.charges.append(charge)
            return charge.id
        }
    }
    /// Forgets an object of any kind (a difference: the ledger's record then has nothing on Stripe).
    func remove(_ id: String) {
        state.withLock { state in
            state.charges.removeAll { $0.id == id }
            state.refunds.removeAll { $0.id == id }
            state.disputes.removeAll { $0.id == id }
            state.transfers.removeAll { $0.id == id }
        }
    }
    /// Changes an object's amount (a difference of amounts).
    func setAmount(_ id: String, _ amount: Int64) {
        state.withLock { state in
            if let index = state.charges.firstIndex(where: { $0.id == id }) { state.charges[index].amount = amount }
            if let index = state.refunds.firstIndex(where: { $0.id == id }) { state.refunds[index].amount = amount }
            if let index = state.disputes.firstIndex(where: { $0.id == id }) { state.disputes[index].amount = amount }
            if let index = state.transfers.firstIndex(where: { $0.id == id }) { state.transfers[index].amount = amount }
        }
    }
    var charges: [Charge] { state.withLock { $0.charges } }
    var seen: [Seen] { state.withLock { $0.seen } }
    var statuses: [Int] { state.withLock { $0.statuses } }
    /// Keys whose first request is executing now.
    var keysInFlight: Int { state.withLock { $0.inFlight.count } }

    // MARK: Requests

    private func handle(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Reply {
        let key = request.headers["idempotency-key"]
        state.withLock { $0.seen.append(Seen(method: request.method, path: request.path, idempotencyKey: key,
                                              authorization: request.headers["authorization"], body: request.body)) }
        guard request.headers["authorization"] == "Bearer \(Self.secretKey)" else {
            // Stripe quotes a masked part of the key it was given.
            return Self.error(401, type: "invalid_request_error", code: nil, message: "Invalid API Key provided: sk_test_****\(request.headers["authorization"]?.suffix(4) ?? "")")
        }
        if request.method == "GET", request.path == "/v1/transfers" || request.path.hasPrefix("/v1/transfers?") { return listTransfers(request.path) }
        if request.method == "GET", request.path == "/v1/refunds" || request.path.hasPrefix("/v1/refunds?") { return listRefunds(request.path) }
        if request.method == "GET", request.path == "/v1/disputes" || request.path.hasPrefix("/v1/disputes?") { return listDisputes(request.path) }
        if request.method == "GET", request.path.hasPrefix("/v1/payment_intents?") || request.path == "/v1/payment_intents" {
            let (status, body) = listPaymentIntents(query: String(request.path.drop { $0 != "?" }.dropFirst()))
            return .respond(status: status, body: body)
        }
        guard request.method == "POST" else { return Self.error(404, type: "invalid_request_error", code: nil, message: "Unrecognized request URL") }
        let fault: Fault? = state.withLock { $0.faults.isEmpty ? nil : $0.faults.removeFirst() }
        if case .status(let status, let shouldRetry) = fault {
            let (status, body) = Self.errorBody(status, "api_error", status == 429 ? "rate_limit" : nil, "injected \(status)")
            return .respond(status: status, body: body, headers: shouldRetry.map { ["Stripe-Should-Retry": $0 ? "true" : "false"] } ?? [:])
        }
        let fingerprint = "\(request.method) \(request.path) \(request.body)"
        if let key {
            enum Decision { case replay(Stored), conflict, inUse, execute }
            let decision: Decision = state.withLock { state in
                if let stored = state.stored[key] {
                    if state.nowSeconds - stored.at < Self.idempotencyWindowSeconds { return stored.fingerprint == fingerprint ? .replay(stored) : .conflict }
                    state.stored[key] = nil // past the window: forgotten, the request is new again
                }
                if state.inFlight.contains(key) { return .inUse }
                state.inFlight.insert(key)
                return .execute
            }
            switch decision {
            case .replay(let stored):
                return .respond(status: stored.status, body: stored.body, headers: ["Idempotent-Replayed": "true"])
            case .conflict:
                return Self.error(400, type: "idempotency_error", code: nil,
                                  message: "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '\(key)' if you meant to execute a different request.")
            case .inUse:
                state.withLock { $0.statuses.append(409) }
                return Self.error(409, type: "invalid_request_error", code: "idempotency_key_in_use",
                                  message: "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): \(key). Please try again later.")
            case .execute:
                break
            }
        }
        if case .holdUntilConflict(let limit) = fault {
            // This is the server's own thread: waiting here blocks no test task.
            var waited = 0
            while waited < limit, !state.withLock({ $0.statuses.contains(409) }) {
                usleep(5_000)
                waited += 5
            }
        }
        let (status, body) = execute(request)
        state.withLock { $0.statuses.append(status) }
        state.withLock { state in
            if let key {
                state.inFlight.remove(key)
                state.stored[key] = Stored(fingerprint: fingerprint, status: status, body: body, at: state.nowSeconds)
            }
        }
        if case .timeoutAfterApplying(let milliseconds) = fault { return .hang(milliseconds: milliseconds) }
        return .respond(status: status, body: body)
    }

    private func execute(_ request: LoopbackHTTPServer.Request) -> (Int, String) {
        guard let pairs = FormBody.decode(request.body) else { return Self.errorBody(400, "invalid_request_error", nil, "malformed body") }
        var form: [String: String] = [:]
        for (name, value) in pairs { form[name] = value }
        func amount(_ name: String) -> Int64? { form[name].flatMap { Int64($0) } }
        switch request.path {
        case "/v1/transfers":
            guard let value = amount("amount"), value > 0 else { return Self.missing("amount") }
            guard let currency = form["currency"], currency.count == 3 else { return Self.missing("currency") }
            guard let destination = form["destination"], destination.hasPrefix("acct_") else {
                return Self.errorBody(400, "invalid_request_error", "resource_missing", "No such destination: '\(form["destination"] ?? "")'", param: "destination")
            }
            if state.withLock({ $0.refusing.contains(destination) }) {
                return Self.errorBody(400, "invalid_request_error", "insufficient_capabilities_for_transfer",
                                      "Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments",
                                      param: "destination")
            }
            return state.withLock { state in
                let transfer = Transfer(id: "tr_\(state.nextId)", amount: value, currency: currency, destination: destination,
                                        transferGroup: form["transfer_group"] ?? "", idempotencyKey: request.headers["idempotency-key"] ?? "",
                                        created: state.nowSeconds)
                state.nextId += 1
                state.transfers.append(transfer)
                var metadata: [String: String] = [:]
                for (name, value) in pairs where name.hasPrefix("metadata[") && name.hasSuffix("]") { metadata[String(name.dropFirst(9).dropLast())] = value }
                state.metadata[transfer.id] = metadata
                return (200, "{\"id\":\"\(transfer.id)\",\"object\":\"transfer\",\"amount\":\(value),\"currency\":\"\(currency)\","
                        + "\"destination\":\"\(destination)\",\"transfer_group\":\"\(transfer.transferGroup)\"}")
            }
        case "/v1/payment_intents":
            guard let value = amount("amount"), value > 0 else { return Self.missing("amount") }
            guard let currency = form["currency"] else { return Self.missing("currency") }
            guard let customer = form["customer"], let method = form["payment_method"] else { return Self.missing("payment_method") }
            if let fee = amount("application_fee_amount"), fee > value {
                return Self.errorBody(400, "invalid_request_error", "parameter_invalid_integer", "application_fee_amount cannot exceed the amount", param: "application_fee_amount")
            }
            // Stripe's test payment methods: a declined one, one needing 3-D Secure, else paid.
            if method == "pm_card_chargeDeclinedInsufficientFunds" {
                return Self.errorBody(402, "card_error", "card_declined", "Your card has insufficient funds.", declineCode: "insufficient_funds")
            }
            // A decline reported in a 200 body (as for asynchronous methods): status back to requires_payment_method.
            if method == "pm_card_declinedInBody" {
                return state.withLock { state in
                    state.nextId += 1
                    return (200, "{\"id\":\"pi_\(state.nextId - 1)\",\"object\":\"payment_intent\",\"status\":\"requires_payment_method\",\"amount\":\(value),"
                            + "\"currency\":\"\(currency)\",\"customer\":\"\(customer)\",\"last_payment_error\":{\"code\":\"card_declined\",\"decline_code\":\"lost_card\",\"message\":\"Your card was declined.\"}}")
                }
            }
            let status = method == "pm_card_threeDSecure2Required" ? "requires_action" : "succeeded"
            var metadata: [String: String] = [:]
            for (name, value) in pairs where name.hasPrefix("metadata[") && name.hasSuffix("]") { metadata[String(name.dropFirst(9).dropLast())] = value }
            return state.withLock { state in
                let charge = Charge(id: "pi_\(state.nextId)", amount: value, currency: currency, customer: customer, applicationFee: amount("application_fee_amount"),
                                    destination: form["transfer_data[destination]"], status: status, metadata: metadata, created: state.nowSeconds)
                state.nextId += 1
                state.charges.append(charge)
                return (200, Self.json(charge))
            }
        case "/v1/refunds":
            guard let payment = form["payment_intent"] else { return Self.missing("payment_intent") }
            var metadata: [String: String] = [:]
            for (name, value) in pairs where name.hasPrefix("metadata[") && name.hasSuffix("]") { metadata[String(name.dropFirst(9).dropLast())] = value }
            return state.withLock { state in
                guard let charge = state.charges.first(where: { $0.id == payment }), charge.status == "succeeded" else {
                    return Self.errorBody(400, "invalid_request_error", "resource_missing", "No such payment_intent: '\(payment)'", param: "payment_intent")
                }
                let refunded = state.refunds.filter { $0.paymentIntent == payment }.reduce(0) { $0 + $1.amount }
                let value = amount("amount") ?? (charge.amount - refunded)
                guard value > 0, value <= charge.amount - refunded else {
                    return Self.errorBody(400, "invalid_request_error", "charge_already_refunded",
                                          "Refund amount (\(value)) is greater than unrefunded amount on charge (\(charge.amount - refunded))", param: "amount")
                }
                let refund = Refund(id: "re_\(state.nextId)", amount: value, currency: charge.currency, paymentIntent: payment, status: "succeeded",
                                    metadata: metadata, created: state.nowSeconds)
                state.nextId += 1
                state.refunds.append(refund)
                return (200, Self.json(refund))
            }
        default:
            return Self.errorBody(404, "invalid_request_error", nil, "Unrecognized request URL (POST: \(request.path))")
        }
    }

    /// `GET /v1/transfers`: newest first, filtered by `transfer_group`, `limit` a page (at most 100), after `starting_after`.
    private func listTransfers(_ path: String) -> LoopbackHTTPServer.Reply {
        var query: [String: String] = [:]
        if let mark = path.firstIndex(of: "?") {
            for (name, value) in FormBody.decode(String(path[path.index(after: mark)...])) ?? [] { query[name] = value }
        }
        let limit = min(max(Int(query["limit"] ?? "10") ?? 10, 1), 100)
        return state.withLock { state in
            var listed = state.transfers.reversed().filter {
                (query["transfer_group"] == nil || $0.transferGroup == query["transfer_group"]) && Self.created($0.created, in: query)
            }
            if let after = query["starting_after"], let index = listed.firstIndex(where: { $0.id == after }) { listed = Array(listed[(index + 1)...]) }
            let page = listed.prefix(limit)
            let items = page.map { transfer in
                let metadata = (state.metadata[transfer.id] ?? [:]).sorted { $0.key < $1.key }.map { "\(Self.jsonString($0.key)):\(Self.jsonString($0.value))" }
                return "{\"id\":\"\(transfer.id)\",\"object\":\"transfer\",\"amount\":\(transfer.amount),\"currency\":\"\(transfer.currency)\","
                    + "\"destination\":\"\(transfer.destination)\",\"transfer_group\":\"\(transfer.transferGroup)\",\"created\":\(transfer.created),"
                    + "\"amount_reversed\":\(transfer.amountReversed),\"reversed\":\(transfer.amountReversed == transfer.amount),"
                    + "\"metadata\":{\(metadata.joined(separator: ","))}}"
            }
            return .respond(status: 200, body: "{\"object\":\"list\",\"url\":\"/v1/transfers\",\"has_more\":\(listed.count > limit),\"data\":[\(items.joined(separator: ","))]}")
        }
    }

    /// A PaymentIntent as Stripe answers it (`client_secret` included, as the platform's key sees it).
    static func json(_ charge: Charge) -> String {
        let metadata = charge.metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
        return "{\"id\":\"\(charge.id)\",\"object\":\"payment_intent\",\"status\":\"\(charge.status)\",\"amount\":\(charge.amount),"
            + "\"amount_received\":\(charge.status == "succeeded" ? charge.amount : 0),\"currency\":\"\(charge.currency)\",\"customer\":\"\(charge.customer)\","
            + "\"client_secret\":\"\(charge.id)_secret_fake\",\"created\":\(charge.created),\"metadata\":{\(metadata)}}"
    }

    /// `GET /v1/payment_intents`: newest first, filtered by customer and `created[gte]`, paged by
    /// `limit` (at most 100) and `starting_after`.
    private func listPaymentIntents(query: String) -> (Int, String) {
        guard let pairs = FormBody.decode(query) else { return Self.errorBody(400, "invalid_request_error", nil, "malformed query") }
        var fields: [String: String] = [:]
        for (name, value) in pairs { fields[name] = value }
        let limit = min(max(Int(fields["limit"] ?? "10") ?? 10, 1), 100)
        return state.withLock { state in
            var list = state.charges.reversed().filter { charge in
                (fields["customer"].map { charge.customer == $0 } ?? true) && Self.created(charge.created, in: fields)
            }
            if let after = fields["starting_after"], let index = list.firstIndex(where: { $0.id == after }) { list = Array(list[(index + 1)...]) }
            let page = list.prefix(limit)
            return (200, "{\"object\":\"list\",\"data\":[\(page.map(Self.json).joined(separator: ","))],\"has_more\":\(list.count > limit)}")
        }
    }

    /// Whether `created` is inside the query's `created[gte]` and `created[lt]` (when given).
    static func created(_ created: Int64, in query: [String: String]) -> Bool {
        (query["created[gte]"].flatMap { Int64($0) }.map { created >= $0 } ?? true) && (query["created[lt]"].flatMap { Int64($0) }.map { created < $0 } ?? true)
    }

    static func query(_ path: String) -> [String: String]? {
        var query: [String: String] = [:]
        guard let mark = path.firstIndex(of: "?") else { return query }
        guard let pairs = FormBody.decode(String(path[path.index(after: mark)...])) else { return nil }
        for (name, value) in pairs { query[name] = value }
        return query
    }

    /// A page of a list, newest first, after `starting_after`, `limit` items (at most 100).
    static func page<Item>(_ items: [Item], id: (Item) -> String, query: [String: String], url: String, json: (Item) -> String) -> LoopbackHTTPServer.Reply {
        var list = Array(items.reversed())
        if let after = query["starting_after"], let index = list.firstIndex(where: { id($0) == after }) { list = Array(list[(index + 1)...]) }
        let limit = min(max(Int(query["limit"] ?? "10") ?? 10, 1), 100)
        return .respond(status: 200, body: "{\"object\":\"list\",\"url\":\"\(url)\",\"has_more\":\(list.count > limit),"
                        + "\"data\":[\(list.prefix(limit).map(json).joined(separator: ","))]}")
    }

    static func json(_ refund: Refund) -> String {
        let metadata = refund.metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
        return "{\"id\":\"\(refund.id)\",\"object\":\"refund\",\"amount\":\(refund.amount),\"currency\":\"\(refund.currency)\","
            + "\"payment_intent\":\"\(refund.paymentIntent)\",\"status\":\"\(refund.status)\",\"created\":\(refund.created),\"metadata\":{\(metadata)}}"
    }

    static func json(_ dispute: Dispute) -> String {
        "{\"id\":\"\(dispute.id)\",\"object\":\"dispute\",\"amount\":\(dispute.amount),\"currency\":\"\(dispute.currency)\","
            + "\"payment_intent\":\"\(dispute.paymentIntent)\",\"status\":\"\(dispute.status)\",\"created\":\(dispute.created)}"
    }

    /// `GET /v1/refunds`: by `payment_intent` and `created[gte]`/`created[lt]`, newest first, paged.
    private func listRefunds(_ path: String) -> LoopbackHTTPServer.Reply {
        guard let query = Self.query(path) else { return Self.error(400, type: "invalid_request_error", code: nil, message: "malformed query") }
        let refunds = state.withLock { $0.refunds }.filter { refund in
            (query["payment_intent"].map { refund.paymentIntent == $0 } ?? true) && Self.created(refund.created, in: query)
        }
        return Self.page(refunds, id: \.id, query: query, url: "/v1/refunds", json: Self.json)
    }

    /// `GET /v1/disputes`: by `payment_intent` and `created[gte]`/`created[lt]`, newest first, paged.
    private func listDisputes(_ path: String) -> LoopbackHTTPServer.Reply {
        guard let query = Self.query(path) else { return Self.error(400, type: "invalid_request_error", code: nil, message: "malformed query") }
        let disputes = state.withLock { $0.disputes }.filter { dispute in
            (query["payment_intent"].map { dispute.paymentIntent == $0 } ?? true) && Self.created(dispute.created, in: query)
        }
        return Self.page(disputes, id: \.id, query: query, url: "/v1/disputes", json: Self.json)
    }

    /// Sets a PaymentIntent's status (the consumer finished 3-D Secure).
    func setStatus(_ id: String, _ status: String) {
        state.withLock { state in
            if let index = state.charges.firstIndex(where: { $0.id == id }) { state.charges[index].status = status }
        }
    }

    private static func missing(_ param: String) -> (Int, String) {
        errorBody(400, "invalid_request_error", "parameter_missing", "Missing required param: \(param).", param: param)
    }

    private static func error(_ status: Int, type: String, code: String?, message: String) -> LoopbackHTTPServer.Reply {
        let (status, body) = errorBody(status, type, code, message)
        return .respond(status: status, body: body)
    }

    static func errorBody(_ status: Int, _ type: String, _ code: String?, _ message: String, param: String? = nil, declineCode: String? = nil) -> (Int, String) {
        var fields = ["\"type\":\"\(type)\"", "\"message\":\(jsonString(message))"]
        if let code { fields.append("\"code\":\"\(code)\"") }
        if let param { fields.append("\"param\":\"\(param)\"") }
        if let declineCode { fields.append("\"decline_code\":\"\(declineCode)\"") }
        return (status, "{\"error\":{\(fields.joined(separator: ","))}}")
    }

    static func jsonString(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }
}
