import Tariff
import TariffSettlement

extension TariffService {
    // MARK: Events out (service.md, "Events out (webhooks)")

    /// The ledger's outbox (every shipped backend keeps one).
    var outbox: any WebhookOutbox {
        get throws {
            guard let outbox = configuration.backend as? any WebhookOutbox else {
                throw APIError(503, "storage", "this ledger's backend keeps no webhook outbox")
            }
            return outbox
        }
    }

    /// `POST /v1/webhooks` `{"url","events":[...]}` (admin): 201 with the endpoint and its signing
    /// secret, shown this once (never logged).
    func addWebhook(_ request: ServiceRequest) async throws -> ServiceResponse {
        let body = try await body(request, allowed: ["url", "events"])
        let url = try body.requiredString("url")
        guard let events = try body.strings("events", maximumCount: WebhookEventType.allCases.count) else {
            throw APIError.invalid("'events' is required: a list of event types")
        }
        let endpoint = try await WebhookRegistry.add(url: url, events: events, to: try outbox, now: clock.now())
        return .json(201, .object([("id", .string(endpoint.id)), ("url", .string(endpoint.url)), ("events", .array(endpoint.events.map { .string($0) })),
                                   ("secret", .string(endpoint.secret)), ("created", .string(endpoint.createdAt.rfc3339))]))
    }

    /// Copies the catalog's `low_balance` (rules/) into the ledger, where every writer's steps read it.
    public func applyLowBalanceDefault() async throws {
        guard let outbox = configuration.backend as? any WebhookOutbox, let catalog = settlement.catalog,
              let threshold = catalog.definition.lowBalance.exact.roundedToMoney(.halfEven) else { return }
        try await outbox.setDefaultLowBalance(threshold)
    }

    /// The delivery worker of this server, on its clock (a test clock moves its retries).
    public func webhookWorker() -> WebhookDeliveryWorker? {
        guard let outbox = configuration.backend as? any WebhookOutbox else { return nil }
        return WebhookDeliveryWorker(outbox: outbox, clock: clock, logger: configuration.logger)
    }

    /// Sends deliveries until the task is cancelled (`tariff serve`).
    public func deliverWebhooks() async {
        do { try await applyLowBalanceDefault() } catch {
            configuration.logger.warning("the low_balance of rules/ could not be written to the ledger",
                                         metadata: ["error": .string((error as? SettlementError)?.code.rawValue ?? "storage")])
        }
        guard let worker = webhookWorker() else { return }
        await worker.run()
        await worker.shutdown()
    }
}
