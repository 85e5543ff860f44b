import Foundation
import Testing
@testable import TariffServer

/// The checked-in document and the router agree: the same routes and methods both ways; every
/// status a test sees is one the document lists for its operation (checked by the test client on
/// every answer), and the document lists only statuses of service.md's table.
@Suite("The OpenAPI document")
struct OpenAPIDocumentTests {
    @Test("every route of the router is in the document, and every operation of the document is a route")
    func routesMatch() {
        let documented = Set(OpenAPIDocumentIndex.shared.operations.keys)
        let routed = Set(Route.routes(testClock: true).map { "\($0.method) \($0.template)" })
        #expect(documented == routed)
    }

    @Test("the statuses are service.md's, each error answered as problem+json")
    func statuses() throws {
        let allowed: Set<Int> = [200, 201, 202, 400, 401, 402, 403, 404, 405, 409, 413, 415, 422, 502, 503]
        for (operation, statuses) in OpenAPIDocumentIndex.shared.operations {
            #expect(statuses.isSubset(of: allowed), "\(operation): \(statuses.subtracting(allowed))")
            #expect(statuses.contains { $0 < 300 }, "\(operation) lists no success")
        }
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        // Every operation with a key lists 401; the open ones do not.
        for route in Route.routes(testClock: true) {
            let statuses = OpenAPIDocumentIndex.shared.operations["\(route.method) \(route.template)"] ?? []
            if case .roles = route.access { #expect(statuses.contains(401), "\(route.template) needs a key: 401 is missing") }
            else { #expect(!statuses.contains(401), "\(route.template) is open: no 401") }
        }
    }

    @Test("docs/openapi.json is the document the server serves")
    func checkedInCopy() throws {
        let file = try String(contentsOfFile: repositoryRoot + "/docs/openapi.json", encoding: .utf8)
        #expect(file == OpenAPIDocument.text + "\n")
    }
}
