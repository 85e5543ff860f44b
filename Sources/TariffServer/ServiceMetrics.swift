import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The server's metrics, through swift-metrics into its own Prometheus registry (one per server,
/// so tests running several servers in one process keep them apart). Labels are routes
/// (templates), methods, statuses and codes: never an id of a consumer, an execution or a key.
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// The handlers of each label set, made once (making them looks the registry up under its lock).
    private let requestHandlers = Mutex<[RequestLabels: (counter: CoreMetrics.Counter, timer: CoreMetrics.Timer)]>([:])

    /// A request's labels as the cache's key (no string is built per request to look them up).
    private struct RequestLabels: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                                   .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                                   .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10)]
        self.factory = factory
    }

    func request(route: String, method: String, status: Int, nanoseconds: Int64) {
        let key = RequestLabels(route: route, method: method, status: status)
        let handlers = requestHandlers.withLock { cache in
            if let found = cache[key] { return found }
            let made = (CoreMetrics.Counter(label: "tariff_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
                        CoreMetrics.Timer(label: "tariff_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory))
            cache[key] = made
            return made
        }
        handlers.counter.increment()
        handlers.timer.recordNanoseconds(nanoseconds)
    }

    /// A ledger step's outcome: `ok` or the refusal's code (`insufficient_credits`). Its counter is
    /// made once per label pair, as the request handlers are (making one builds its labels and looks
    /// the registry up under its lock: on every reserve and settle before).
    func ledgerStep(route: String, outcome: String) {
        let key = StepLabels(route: route, outcome: outcome)
        let counter = stepCounters.withLock { cache in
            if let found = cache[key] { return found }
            let made = CoreMetrics.Counter(label: "tariff_ledger_steps_total", dimensions: [("route", route), ("outcome", outcome)], factory: factory)
            cache[key] = made
            return made
        }
        counter.increment()
    }

    private struct StepLabels: Hashable {
        var route: String
        var outcome: String
    }
    private let stepCounters = Mutex<[StepLabels: CoreMetrics.Counter]>([:])

    func catalogReload(succeeded: Bool) {
        CoreMetrics.Counter(label: "tariff_catalog_reloads_total", dimensions: [("result", succeeded ? "ok" : "errors")], factory: factory).increment()
    }

    func render() -> String { registry.emitToString() }
}
