/// Every route of the API: method, path template, who may call it. The router matches requests
/// against this table (so the logs and metrics name the template, never an id), and a test
/// checks it against the checked-in OpenAPI document, both ways.
struct Route: Sendable, Hashable {
    enum Access: Sendable, Hashable {
        /// No key (health, metrics, the document, Stripe's signed webhook).
        case open
        /// A key of one of these roles.
        case roles(Set<RoleName>)
    }
    enum RoleName: String, Sendable, Hashable { case admin, runtime, consumer }

    var method: String
    var template: String
    var access: Access
    /// The template's segments, split once (matching runs on every request).
    let segments: [Substring]

    init(method: String, template: String, access: Access) {
        self.method = method
        self.template = template
        self.access = access
        segments = template.split(separator: "/")
    }

    static let all: Set<RoleName> = [.admin, .runtime, .consumer]

    static let table: [Route] = [
        Route(method: "GET", template: "/v1/balance", access: .roles(all)),
        Route(method: "POST", template: "/v1/purchases", access: .roles([.consumer, .admin])),
        Route(method: "PUT", template: "/v1/consumers/{id}", access: .roles([.admin])),
        Route(method: "PUT", template: "/v1/consumers/{id}/auto-top-up", access: .roles([.consumer, .admin])),
        Route(method: "GET", template: "/v1/usage", access: .roles(all)),
        Route(method: "POST", template: "/v1/quotes", access: .roles(all)),
        Route(method: "GET", template: "/v1/plans", access: .roles(all)),
        Route(method: "POST", template: "/v1/executions", access: .roles([.runtime, .admin])),
        Route(method: "POST", template: "/v1/executions/{id}/meter", access: .roles([.runtime, .admin])),
        Route(method: "POST", template: "/v1/executions/{id}/settle", access: .roles([.runtime, .admin])),
        Route(method: "POST", template: "/v1/executions/{id}/release", access: .roles([.runtime, .admin])),
        Route(method: "GET", template: "/v1/executions/{id}", access: .roles(all)),
        Route(method: "GET", template: "/v1/payouts", access: .roles([.admin])),
        Route(method: "POST", template: "/v1/payouts/{week}/execute", access: .roles([.admin])),
        Route(method: "POST", template: "/v1/refunds", access: .roles([.admin])),
        Route(method: "GET", template: "/v1/ledger/verify", access: .roles([.admin])),
        Route(method: "POST", template: "/v1/catalog/reload", access: .roles([.admin])),
        Route(method: "POST", template: "/v1/subscriptions", access: .roles(all)),
        Route(method: "GET", template: "/v1/subscriptions", access: .roles(all)),
        Route(method: "DELETE", template: "/v1/subscriptions/{id}", access: .roles(all)),
        Route(method: "POST", template: "/v1/webhooks", access: .roles([.admin])),
        Route(method: "POST", template: "/v1/portal/links", access: .roles([.admin, .runtime])),
        Route(method: "DELETE", template: "/v1/portal/links/{id}", access: .roles([.admin, .runtime])),
        // The page itself: the signed token in the path is its own authorization (no key).
        Route(method: "GET", template: "/portal/{token}", access: .open),
        Route(method: "POST", template: "/v1/webhooks/stripe", access: .open),
        Route(method: "GET", template: "/healthz", access: .open),
        Route(method: "GET", template: "/readyz", access: .open),
        Route(method: "GET", template: "/metrics", access: .open),
        Route(method: "GET", template: "/openapi.json", access: .open),
    ]

    /// Only with `--test-clock`.
    static let clock = Route(method: "POST", template: "/v1/clock", access: .roles([.admin]))

    /// The routes a server with or without the test clock answers.
    static func routes(testClock: Bool) -> [Route] { testClock ? table + [clock] : table }

    /// The route a path matches (whatever the method) and its `{parameters}`.
    static func match(path: String, in routes: [Route]) -> [(route: Route, parameters: [String: String])] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var found: [(Route, [String: String])] = []
        for route in routes {
            let segments = route.segments
            guard segments.count == parts.count else { continue }
            var parameters: [String: String] = [:]
            var matches = true
            for (segment, part) in zip(segments, parts) {
                if segment.hasPrefix("{") {
                    guard !part.isEmpty, let decoded = String(part).removingPercentEncodingStrict else { matches = false; break }
                    parameters[String(segment.dropFirst().dropLast())] = decoded
                } else if segment != part {
                    matches = false
                    break
                }
            }
            if matches { found.append((route, parameters)) }
        }
        return found
    }
}

extension String {
    /// Percent-decoding that refuses malformed escapes and non-UTF-8 results (nil), with no Foundation.
    var removingPercentEncodingStrict: String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
