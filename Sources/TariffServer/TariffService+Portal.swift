import Tariff
import TariffSettlement

extension TariffService {
    // MARK: The portal (service.md, "The portal")

    /// `POST /v1/portal/links` `{"consumer"}` (admin, runtime) or `{"creator"}` (admin): a link to
    /// the subject's read-only page, valid for 24 hours from the service's clock.
    func createPortalLink(_ request: ServiceRequest, _ principal: Principal) async throws -> ServiceResponse {
        let body = try await body(request, allowed: ["consumer", "creator"])
        let consumer = try body.id("consumer"), creator = try body.id("creator")
        let subject: PortalLinkRecord.Subject
        switch (consumer, creator) {
        case (let consumer?, nil): subject = .consumer(try validatedID(consumer, "consumer id"))
        case (nil, let creator?):
            // A creator's earnings are the platform's to show: admin only.
            guard principal.role == .admin else { throw APIError.forbidden }
            subject = .creator(try validatedID(creator, "creator id"))
        default: throw APIError.invalid("name either a 'consumer' or a 'creator'")
        }
        let now = clock.now()
        guard let expires = now.adding(nanoseconds: PortalTokens.lifetimeSeconds * 1_000_000_000) else {
            throw APIError(400, "out_of_range", "the clock is too close to the end of time for a link")
        }
        let link = PortalLinkRecord(id: PortalTokens.newID(), subject: subject, createdAt: now, expiresAt: expires)
        try await portal.store.insertPortalLink(link)
        let path = "/portal/" + (try await portal.token(for: link))
        var fields = Self.portalLinkFields(link)
        fields.insert(("url", .string(Self.origin(of: request) + path)), at: 2)
        return .json(201, .object(fields))
    }

    /// `DELETE /v1/portal/links/{id}`: the link opens nothing from now on, on every server of the
    /// ledger (revoking twice answers the first revocation). A runtime key revokes consumers' links only.
    func revokePortalLink(_ id: String, _ principal: Principal) async throws -> ServiceResponse {
        let notFound = APIError.notFound("no portal link '\(BodyObject.printable(id))' is known")
        guard PortalTokens.isLinkID(Substring(id)) else { throw notFound }
        guard let link = try await portal.store.portalLink(id: id) else { throw notFound }
        if case .creator = link.subject, principal.role != .admin { throw APIError.forbidden }
        guard let revoked = try await portal.store.revokePortalLink(id: id, at: clock.now()) else { throw notFound }
        return .json(200, .object(Self.portalLinkFields(revoked)))
    }

    static func portalLinkFields(_ link: PortalLinkRecord) -> [(String, JSON)] {
        [("id", .string(link.id)), (link.subject.kind, .string(link.subject.id)), ("created_at", .string(link.createdAt.rfc3339)),
         ("expires_at", .string(link.expiresAt.rfc3339)), ("revoked_at", .optional(link.revokedAt?.rfc3339))]
    }

    /// `http(s)://HOST` as the caller reached this server: HTTPS when the connection is, or when a
    /// TLS-terminating proxy says so (`X-Forwarded-Proto: https`). A Host that is not a plain
    /// host[:port] is not echoed (the loopback address stands in).
    static func origin(of request: ServiceRequest) -> String {
        let https = request.isTLS || request.header("x-forwarded-proto")?.lowercased() == "https"
        var host = request.header("host") ?? ""
        let allowed = host.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
        }
        if host.isEmpty || host.utf8.count > 255 || !allowed { host = "127.0.0.1" }
        return (https ? "https://" : "http://") + host
    }

    /// The headers of every portal answer: the token in the URL never leaves in a `Referer`, the
    /// page is never cached or framed, and nothing outside it may load (no external asset exists
    /// to load; the policy makes sure).
    static let portalHeaders: [(String, String)] = [
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ]

    static func portalAnswer(_ status: Int, _ html: String) -> ServiceResponse {
        ServiceResponse(status: status, headers: portalHeaders, body: html, contentType: "text/html; charset=utf-8")
    }

    /// `GET /portal/{token}`: the page of the link's consumer or creator, or one and the same
    /// 404 page for a token that is malformed, altered, unknown, expired or revoked. Never a
    /// problem+json (a person reads it), never the token in a log (the route logs its template).
    func portalPage(token: String) async -> ServiceResponse {
        do {
            let now = clock.now()
            guard let link = try await portal.openLink(token: token, now: now) else { return Self.portalAnswer(404, PortalPages.notFound) }
            let settlement = settlement
            switch link.subject {
            case .consumer(let consumer):
                // The calls `GET /v1/balance`, `GET /v1/usage?period=30d&group_by=agent` and
                // `GET /v1/executions/{id}` answer from, so every figure is the API's.
                let page = PortalPages.Consumer(
                    balance: try await currentBalance(consumer, own: true),
                    usage: try await settlement.usage(period: .seconds(30 * 86_400), groupBy: .agent, consumer: consumer),
                    executions: try await settlement.recentExecutions(consumer: consumer),
                    purchases: try await settlement.recentPurchases(consumer: consumer),
                    now: now)
                return Self.portalAnswer(200, PortalPages.consumer(page))
            case .creator(let creator):
                // `payouts(week:)`, the call `GET /v1/payouts?week=` answers from.
                let page = PortalPages.Creator(creator: creator, currency: settlement.currency,
                                               weeks: try await settlement.creatorPayoutWeeks(creator: creator), now: now)
                return Self.portalAnswer(200, PortalPages.creator(page))
            }
        } catch {
            configuration.logger.error("portal page failed", metadata: ["error": .string(String(describing: type(of: error)))])
            var answer = Self.portalAnswer(503, PortalPages.unavailable)
            answer.headers.append(("Retry-After", "1"))
            return answer
        }
    }
}
