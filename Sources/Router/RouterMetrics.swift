import Prometheus
import Protocol

/// The router's Prometheus metrics: request outcomes by version and code, queue and compute time, queue depth,
/// requests in flight, workers by state and the traffic split. Exposed through the admin `metrics` op (the
/// coordinator serves them over HTTP at `/metrics`).
final class RouterMetrics {
    let registry = PrometheusCollectorRegistry()
    private struct OutcomeKey: Hashable {
        var version: String
        var outcome: String
    }

    private var outcomes: [OutcomeKey: Counter] = [:]
    private var compute: [String: ValueHistogram] = [:]
    private let queueTime: ValueHistogram
    private let queueDepth: Gauge
    private let inFlight: Gauge
    private var workerStates: [String: Gauge] = [:]
    private var shares: [String: Gauge] = [:]
    private var workersDead: Counter
    private let answersDropped: Counter
    private let cacheHits: Counter
    private let cacheMisses: Counter
    private let cacheEntries: Gauge
    /// Each worker's last reported cache counters (deltas go to the counters; a reload restarts them).
    private var lastCache: [[UInt8]: (loads: Int, figures: QueryCacheFigures)] = [:]

    /// Seconds: 100 µs to 10 s.
    static let buckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    init() {
        queueTime = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "zrank", metricName: "queue_time", unitName: "seconds",
                helpText: "Time a request waited in the router for a free worker."),
            labels: [], buckets: Self.buckets)
        queueDepth = Self.gauge(registry, "queue_depth", "requests", "Requests waiting for a worker.")
        inFlight = Self.gauge(registry, "in_flight", "requests", "Requests sent to workers, not answered yet.")
        workersDead = Self.counter(registry, "workers_lost", "total", "Workers the router declared dead (missed heartbeats or gone).")
        answersDropped = Self.counter(registry, "answers_dropped", "total", "Answers the router could not hand to their client (gone, or not reading: its queue at the high-water mark).")
        cacheHits = Self.counter(registry, "query_cache_hits", "total", "Queries whose embedding a worker found in its query cache (as the workers' heartbeats report).")
        cacheMisses = Self.counter(registry, "query_cache_misses", "total", "Queries a worker had to encode (its query cache did not hold them).")
        cacheEntries = Self.gauge(registry, "query_cache_entries", "count", "Query embeddings held in the live workers' caches.")
        for state in [WorkerState.ready, .draining, .loading, .warming] { _ = workerGauge(state.rawValue) }
    }

    /// An unlabelled `zrank_NAME_UNIT` counter.
    private static func counter(_ registry: PrometheusCollectorRegistry, _ name: String, _ unit: String, _ help: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "zrank", metricName: name, unitName: unit, helpText: help), labels: [])
    }

    /// An unlabelled `zrank_NAME_UNIT` gauge.
    private static func gauge(_ registry: PrometheusCollectorRegistry, _ name: String, _ unit: String, _ help: String) -> Gauge {
        registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "zrank", metricName: name, unitName: unit, helpText: help), labels: [])
    }

    private func workerGauge(_ state: String) -> Gauge {
        if let g = workerStates[state] { return g }
        let g = registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "zrank", metricName: "workers", unitName: "count", helpText: "Live workers by state."),
            labels: [("state", state)])
        workerStates[state] = g
        return g
    }

    private var handshakeRefusals: [CurveDomain: (counter: Counter, reported: Int)] = [:]

    /// CURVE handshakes refused so far per domain (the ZAP handler's totals; the deltas go to the counters).
    func handshakesRefused(_ totals: [CurveDomain: Int]) {
        for (domain, total) in totals {
            var entry = handshakeRefusals[domain] ?? (registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "zrank", metricName: "curve_handshakes_refused", unitName: "total",
                    helpText: "CURVE handshakes refused (key not listed for the socket's domain, or not CURVE)."),
                labels: [("domain", domain.rawValue)]), 0)
            if total > entry.reported { entry.counter.increment(by: Int64(total - entry.reported)) }
            entry.reported = total
            handshakeRefusals[domain] = entry
        }
    }

    /// Counts answered requests.
    func record(_ completions: [RouterCore.Completion]) {
        for c in completions {
            let key = OutcomeKey(version: c.version, outcome: c.outcome)
            let counter = outcomes[key] ?? {
                let counter = registry.makeCounter(
                    descriptor: MetricNameDescriptor(
                        namespace: "zrank", metricName: "requests", unitName: "total",
                        helpText: "Answered requests by model version (empty: answered by the router) and outcome (OK or error code)."),
                    labels: [("version", c.version), ("outcome", c.outcome)])
                outcomes[key] = counter
                return counter
            }()
            counter.increment()
            guard !c.version.isEmpty else { continue }
            queueTime.record(Double(c.queueMicros) / 1e6)
            let histogram = compute[c.version] ?? {
                let h = registry.makeValueHistogram(
                    descriptor: MetricNameDescriptor(
                        namespace: "zrank", metricName: "compute_time", unitName: "seconds",
                        helpText: "Time from dispatch to a worker until its answer, by model version."),
                    labels: [("version", c.version)], buckets: Self.buckets)
                compute[c.version] = h
                return h
            }()
            histogram.record(Double(c.computeMicros) / 1e6)
        }
    }

    func answerDropped() { answersDropped.increment() }

    func workerLost(_ count: Int) {
        if count > 0 { workersDead.increment(by: Int64(count)) }
    }

    /// Refreshes the gauges from the router's state.
    func update(_ core: RouterCore, traffic: [String: Double]) {
        queueDepth.set(to: Double(core.queueDepth))
        inFlight.set(to: Double(core.inFlight))
        var counts: [String: Int] = [:]
        var entries = 0
        var seen: [[UInt8]: (loads: Int, figures: QueryCacheFigures)] = [:]
        for w in core.workerViews {
            counts[w.state.rawValue, default: 0] += 1
            guard let c = w.queryCache else { continue }
            // Figures count from the worker's last load: against the previous reading of the same load, add the
            // difference; a new load (or a first reading) counts all of them.
            let last = lastCache[w.identity].flatMap { $0.loads == w.loads ? $0.figures : nil }
            let hits = last.map { max(0, c.hits - $0.hits) } ?? c.hits
            let misses = last.map { max(0, c.misses - $0.misses) } ?? c.misses
            if hits > 0 { cacheHits.increment(by: Int64(hits)) }
            if misses > 0 { cacheMisses.increment(by: Int64(misses)) }
            seen[w.identity] = (w.loads, c)
            entries += c.entries
        }
        lastCache = seen
        cacheEntries.set(to: Double(entries))
        for state in Set(workerStates.keys).union(counts.keys) { workerGauge(state).set(to: Double(counts[state] ?? 0)) }
        for version in Set(shares.keys).union(traffic.keys) {
            let gauge = shares[version] ?? {
                let g = registry.makeGauge(
                    descriptor: MetricNameDescriptor(
                        namespace: "zrank", metricName: "traffic_share", unitName: "ratio",
                        helpText: "Share of unpinned traffic each model version gets (0-1)."),
                    labels: [("version", version)])
                shares[version] = g
                return g
            }()
            gauge.set(to: traffic[version] ?? 0)
        }
    }

    /// The Prometheus text exposition.
    func text() -> String { registry.emitToString() }
}
