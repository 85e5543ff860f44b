import Tariff

extension TariffService {
    /// Answers one request in process, without HTTP: routing, keys and roles, body decoding, the
    /// handlers and their answers, exactly as `handle` does for the HTTP layer. For the request
    /// fuzzer (Fuzz/Sources/FuzzServiceRequest), which drives this with arbitrary bytes; not an
    /// API (the HTTP server is).
    @_spi(Fuzzing)
    public func answer(method: String, path: String, query: [(String, String)], headers: [String: String],
                       remoteIsLoopback: Bool, body: [UInt8]) async -> (status: Int, contentType: String, body: String) {
        var lowercased: [String: String] = [:]
        for (name, value) in headers where lowercased[name.lowercased()] == nil { lowercased[name.lowercased()] = value }
        let bounded = body.count > Self.maximumBodyBytes ? nil : body
        let request = ServiceRequest(method: method, path: path, query: query, headers: lowercased, remoteIsLoopback: remoteIsLoopback) {
            guard let bounded else { throw TariffHTTPServer.tooLarge }
            return bounded
        }
        let (response, _) = await handle(request)
        return (response.status, response.contentType, response.body)
    }
}
