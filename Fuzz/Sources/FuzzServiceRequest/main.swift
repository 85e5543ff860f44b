import Dispatch
import Foundation
import Tariff
import TariffSettlement
@_spi(Fuzzing) import TariffServer

/// The service's requests (service.md) answered in process, without HTTP: routing, the keys and
/// roles, body decoding and every handler, over an in-memory ledger of the sample catalog.
///
/// The input: byte 0 picks the key (none, admin, runtime, consumer cus_1, consumer cus_2, a
/// well-formed unknown key), byte 1 the flags (bit 0: `Content-Type: application/json`, bit 1: a
/// loopback client); then `METHOD /path?query`, a line with the `Idempotency-Key` (empty: none),
/// and the rest is the body. A finding is a trap (the fuzzer's crash) and also:
/// - a 500, or a 503 `storage` (the in-memory ledger never fails: it would be a handler bug),
/// - an answer that is not JSON (`application/json` and `application/problem+json` both),
/// - a key's secret anywhere in an answer.
struct Fixture: @unchecked Sendable {
    let service: TariffService
    let keys: [String?]
    let secrets: [String]
}

/// What an async call gave back to the synchronous caller (written once, before the signal).
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
    init() {}
}

/// Runs `body` to completion on the cooperative pool and waits for it (libFuzzer calls in synchronously).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> T? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = try? await body()
        done.signal()
    }
    done.wait()
    return box.value
}

func makeFixture() -> Fixture? {
    // The repository's sample catalog, found from this file (the fuzzer may run from anywhere).
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    guard let currency = Currency(code: "USD"), let rail = try? LogRail(path: "/dev/null") else { return nil }
    let backend = InMemoryBackend(currency: currency)
    let store = InMemoryServiceStore()
    let adminSecret = "tariff_fuzz_admin_secret_0123456789abcdef"
    let start = Timestamp(nanosecondsSinceEpoch: 1_793_000_000_000_000_000)
    let configuration = ServiceConfiguration(backend: backend, store: store, plansDirectory: root + "/plans", rulesDirectory: root + "/rules",
                                             rail: .log(rail), adminKey: adminSecret, testClockStart: start,
                                             webhookSecret: "whsec_fuzz", stripeAccount: "acct_fuzz", keyCacheMilliseconds: 0)
    guard let service = try? TariffService(configuration: configuration) else { return nil }
    let created = blocking { () async throws -> [String] in
        var secrets: [String] = []
        for (role, consumer) in [(APIKeyRecord.Role.runtime, nil), (.consumer, "cus_1"), (.consumer, "cus_2")] as [(APIKeyRecord.Role, String?)] {
            secrets.append(try await APIKeys.create(role: role, consumer: consumer, name: "fuzz", in: store, now: start).secret)
        }
        return secrets
    }
    guard let created, created.count == 3 else { return nil }
    // A well-formed key that no store knows (its prefix and length as a real one).
    let unknown = String(created[0].prefix(created[0].count - 4)) + "zzzz"
    return Fixture(service: service, keys: [nil, adminSecret, created[0], created[1], created[2], unknown],
                   secrets: [adminSecret] + created + ["whsec_fuzz"])
}

let fixture = makeFixture()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServiceRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let fixture else { fatalError("the fuzz fixture did not start (sample catalog, keys)") }
    guard size >= 2 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let key = fixture.keys[Int(bytes[0]) % fixture.keys.count]
    let flags = bytes[1]
    var rest = bytes[2...]
    func line() -> String {
        let end = rest.firstIndex(of: 0x0A) ?? rest.endIndex
        let text = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
        rest = end < rest.endIndex ? rest[(end + 1)...] : rest[rest.endIndex...]
        return text
    }
    let requestLine = line()
    let idempotencyKey = line()
    let body = Array(rest)
    let parts = requestLine.split(separator: " ", maxSplits: 1)
    guard parts.count == 2 else { return 0 }
    let method = String(parts[0])
    // Empty pieces are kept: `split` drops them by default, so a target of just "?" or a query
    // pair of just "=" gave no pieces and the harness itself trapped on `[0]` (found by this fuzzer
    // at seed 20261205: "POST ?").
    let target = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    let path = String(target[0])
    var query: [(String, String)] = []
    if target.count == 2 {
        for pair in target[1].split(separator: "&") {
            let field = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            query.append((String(field[0]).removingPercentEncoding ?? String(field[0]),
                          field.count == 2 ? (String(field[1]).removingPercentEncoding ?? String(field[1])) : ""))
        }
    }
    var headers: [String: String] = [:]
    if let key { headers["Authorization"] = "Bearer " + key }
    if flags & 1 != 0 { headers["Content-Type"] = "application/json" }
    if !idempotencyKey.isEmpty { headers["Idempotency-Key"] = idempotencyKey }
    let service = fixture.service
    let loopback = flags & 2 != 0
    let (sentQuery, sentHeaders) = (query, headers)
    guard let answer = blocking({ await service.answer(method: method, path: path, query: sentQuery, headers: sentHeaders,
                                                         remoteIsLoopback: loopback, body: body) }) else {
        fatalError("no answer")
    }
    if answer.status >= 500 && answer.status != 503 { fatalError("\(answer.status) for \(method) \(path): \(answer.body.prefix(300))") }
    if answer.status == 503, answer.body.contains("\"storage\"") {
        fatalError("503 storage on an in-memory ledger for \(method) \(path): \(answer.body.prefix(300))")
    }
    if answer.contentType.hasSuffix("json") {
        guard (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8), options: [.fragmentsAllowed])) != nil else {
            fatalError("not JSON (\(answer.contentType)) for \(method) \(path): \(answer.body.prefix(300))")
        }
    }
    for secret in fixture.secrets where answer.body.contains(secret) { fatalError("a secret in the answer to \(method) \(path)") }
    return 0
}
