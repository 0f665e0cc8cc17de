import Foundation
import Logging
import Prometheus
import Protocol

/// How the coordinator is wired.
public struct CoordinatorConfiguration: Sendable {
    /// Where operators (`zrankctl --admin`) connect.
    public var adminEndpoint: String
    /// The router's control socket.
    public var routerControl: String
    /// The registry rollouts load versions from (nil: status and pins only).
    public var registry: Registry?
    /// The version workers run when no rollout record says otherwise.
    public var stableVersion: String
    /// Worker ids the supervisor starts (`w1`...), so status can say `starting` or `dead` for missing ones.
    public var expectedWorkers: [String] = []
    /// `HOST:PORT` for Prometheus `/metrics` over HTTP (nil: off).
    public var metrics: String?
    /// How often the pool is observed.
    public var tickMs = 200

    public init(adminEndpoint: String, routerControl: String, registry: Registry?, stableVersion: String) {
        self.adminEndpoint = adminEndpoint
        self.routerControl = routerControl
        self.registry = registry
        self.stableVersion = stableVersion
    }
}

/// The coordinator process: knows every worker's version and state, takes operator commands on the admin socket,
/// runs rollouts (a `RolloutMachine`) by driving the router's control socket, persists the rollout next to the
/// registry, and serves Prometheus metrics.
public final class CoordinatorService {
    private let configuration: CoordinatorConfiguration
    private let logger: Logger
    private let context = ZMQContext()
    private var machine: RolloutMachine
    private let store: RolloutStore?
    private var routerLink: ZMQSocket?
    private var nextCall: UInt64 = 1
    /// Worker names seen live at least once (a missing one is then `dead`, not `starting`).
    private var seenNames: Set<String> = []
    private var lastShadow: [String: Any]?
    private let metrics = PrometheusCollectorRegistry()
    private var httpBuffers: [[UInt8]: [UInt8]] = [:]
    /// Set by `run`: whether to stop (checked while waiting for the router too).
    private var shouldStop: () -> Bool = { false }

    /// - Throws: when the persisted rollout record cannot be read.
    public init(configuration: CoordinatorConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        store = configuration.registry.map(RolloutStore.init(registry:))
        let saved = try store?.load()
        machine = RolloutMachine(record: saved ?? RolloutRecord(stable: configuration.stableVersion))
        if let saved {
            logger.info(
                "resuming rollout state",
                metadata: ["state": "\(saved.state.rawValue)", "stable": "\(saved.stable)", "target": "\(saved.plan?.target ?? "-")",
                           "share": "\(saved.share)"])
        }
    }

    /// Runs until SIGTERM/SIGINT (`stop` returns true).
    public func run(stop: @escaping () -> Bool) throws {
        shouldStop = stop
        let admin = try ZMQSocket(context, type: .router)
        try admin.bind(configuration.adminEndpoint)
        let link = try ZMQSocket(context, type: .dealer)
        try link.connect(configuration.routerControl)
        routerLink = link
        var sockets = [admin]
        if let metrics = configuration.metrics {
            let http = try ZMQSocket(context, type: .stream)
            try http.bind("tcp://" + metrics)
            sockets.append(http)
            logger.info("metrics at http://\(metrics)/metrics")
        }
        logger.info(
            "coordinator ready",
            metadata: ["admin": "\(admin.lastEndpoint)", "stable": "\(machine.record.stable)",
                       "registry": "\(configuration.registry?.root.path ?? "-")"])
        var nextTick: UInt64 = 0
        while !stop() {
            let ready = try ZMQPoller.poll(sockets, timeoutMs: configuration.tickMs / 2)
            if ready[0] {
                while let frames = try admin.receive(dontWait: true) {
                    guard frames.count >= 3, let header = try? FrameHeader(decoding: frames[1]), header.type == .control else { continue }
                    let answer = handleAdmin(frames[2])
                    try? admin.send([frames[0], FrameHeader(type: .control, requestID: header.requestID).bytes, answer], dontWait: true)
                }
            }
            if sockets.count > 1 && ready[1] {
                while let frames = try sockets[1].receive(dontWait: true) { serveHTTP(frames, on: sockets[1]) }
            }
            let now = monotonicNanos()
            if now >= nextTick {
                nextTick = now + UInt64(configuration.tickMs) * 1_000_000
                tick()
            }
        }
        logger.info("coordinator stopped")
    }

    // MARK: - Router link

    /// One control call to the router; nil when it does not answer within `timeoutMs`.
    private func callRouter(_ request: [String: Any], timeoutMs: Int = 1000) -> [String: Any]? {
        guard let link = routerLink, let body = try? JSONSerialization.data(withJSONObject: request) else { return nil }
        let id = nextCall
        nextCall += 1
        do {
            try link.send([FrameHeader(type: .control, requestID: id).bytes, Array(body)], dontWait: true)
            let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
            while !shouldStop() {
                let now = monotonicNanos()
                guard now < deadline else { break }
                let left = min(50, Int((deadline - now) / 1_000_000) + 1)
                guard try ZMQPoller.poll([link], timeoutMs: left)[0] else { continue }
                while let frames = try link.receive(dontWait: true) {
                    guard frames.count >= 2, let h = try? FrameHeader(decoding: frames[0]), h.requestID == id else { continue }
                    return (try? JSONSerialization.jsonObject(with: Data(frames[1]))) as? [String: Any]
                }
            }
        } catch {
            logger.warning("router control call failed", metadata: ["error": "\(error)"])
        }
        return nil
    }

    // MARK: - Observing and acting

    private static func double(_ v: Any?) -> Double { (v as? Double) ?? Double(v as? Int ?? 0) }

    private func observation(_ status: [String: Any]) -> PoolObservation {
        let workers = (status["workers"] as? [[String: Any]] ?? []).map {
            WorkerSnapshot(
                id: $0["id"] as? String ?? "", name: $0["name"] as? String ?? "", version: $0["version"] as? String ?? "",
                state: $0["state"] as? String ?? "")
        }
        var window: [String: WindowFigures] = [:]
        for (v, f) in status["window"] as? [String: [String: Any]] ?? [:] {
            window[v] = WindowFigures(requests: f["requests"] as? Int ?? 0, errors: f["errors"] as? Int ?? 0, p99Ms: Self.double(f["p99_ms"]))
        }
        var o = PoolObservation(workers: workers, window: window, now: Date().timeIntervalSince1970)
        if let shadow = status["shadow"] as? [String: Any] {
            o.shadowCompared = shadow["requests"] as? Int ?? 0
            o.shadowErrors = shadow["errors"] as? Int ?? 0
        }
        return o
    }

    private func tick() {
        guard let status = callRouter(["op": "status"]) else { return }
        for w in status["workers"] as? [[String: Any]] ?? [] {
            if let name = w["name"] as? String { seenNames.insert(name) }
        }
        if let shadow = status["shadow"] as? [String: Any] { lastShadow = shadow }
        // Without a registry there is nothing to load versions from: status and pins only.
        guard configuration.registry != nil else { return }
        perform(machine.observe(observation(status)))
        // The router may have restarted (it then has no split and no shadow): put back what the rollout says.
        if let split = machine.desiredSplit {
            let current = status["split"] as? [String: Double] ?? [:]
            let same = current.count == split.count && split.allSatisfy { abs((current[$0.key] ?? -1) - $0.value) < 1e-9 }
            if !same {
                logger.info("restoring the traffic split", metadata: ["split": "\(split)"])
                perform([.split(split)])
            }
        }
        let shadowNow = (status["shadow"] as? [String: Any])?["version"] as? String
        if shadowNow != machine.desiredShadow {
            perform([.shadow(machine.desiredShadow)])
        }
    }

    private func perform(_ actions: [RolloutAction]) {
        for action in actions {
            switch action {
            case .split(let weights):
                if let answer = callRouter(["op": "split", "weights": weights]), let error = answer["error"] {
                    logger.warning("split refused by the router", metadata: ["error": "\(error)"])
                }
            case .shadow(let version):
                _ = callRouter(["op": "shadow", "version": version ?? ""])
            case .resetWindow:
                _ = callRouter(["op": "window_reset"])
            case .load(let worker, let version):
                guard let registry = configuration.registry else { continue }
                let answer = callRouter([
                    "op": "load", "worker": worker, "version": version, "model": registry.modelPath(version),
                    "index": registry.indexPath(version), "heads": registry.headsPath(version) ?? "",
                ])
                if let error = answer?["error"] { logger.warning("load refused by the router", metadata: ["error": "\(error)"]) }
            case .persist:
                do {
                    try store?.save(machine.record)
                } catch {
                    logger.error("cannot persist the rollout state", metadata: ["error": "\(error)"])
                }
            case .log(let line):
                if line.hasPrefix("rolled back") {
                    logger.error("\(line)")
                } else {
                    logger.info("\(line)")
                }
            }
        }
    }

    // MARK: - Admin operations

    private func encode(_ object: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }

    private func handleAdmin(_ body: [UInt8]) -> [UInt8] {
        guard let request = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let op = request["op"] as? String
        else {
            return encode(["error": "control body must be a JSON object with an \"op\""])
        }
        let now = Date().timeIntervalSince1970
        do {
            switch op {
            case "status":
                return encode(try status())
            case "rollout":
                guard let registry = configuration.registry else {
                    throw RolloutError("rollouts need a registry (zrank serve --registry DIR --version NAME)")
                }
                let plan = try Self.plan(request)
                do {
                    try registry.verify(plan.target)
                } catch {
                    throw RolloutError("cannot roll out \(plan.target): \(error)")
                }
                guard let status = callRouter(["op": "status"]) else { throw RolloutError("the router does not answer") }
                let workers = (status["workers"] as? [[String: Any]] ?? []).count
                perform(try machine.start(plan, workerCount: workers, now: now))
                return encode(["ok": true, "rollout": rolloutJSON()])
            case "pause":
                perform(try machine.pause(now: now))
                return encode(["ok": true, "rollout": rolloutJSON()])
            case "resume":
                perform(try machine.resume(now: now))
                return encode(["ok": true, "rollout": rolloutJSON()])
            case "rollback":
                perform(try machine.rollback(reason: "operator rollback", now: now))
                return encode(["ok": true, "rollout": rolloutJSON()])
            case "pin", "unpin":
                if machine.isActive {
                    throw RolloutError("a rollout is \(machine.record.state.rawValue); roll it back or let it finish before pinning")
                }
                var weights: [String: Double] = [:]
                if op == "pin" {
                    guard let version = request["version"] as? String else { throw RolloutError("pin needs \"version\"") }
                    weights = [version: 1]
                }
                guard let answer = callRouter(["op": "split", "weights": weights]) else { throw RolloutError("the router does not answer") }
                return encode(answer)
            case "metrics":
                return encode(["text": metricsText()])
            case "split", "shadow", "window_reset" where machine.isActive:
                throw RolloutError("a rollout is \(machine.record.state.rawValue) and owns the traffic split; roll it back or let it finish first")
            default:
                // Router operations (split, drain, load, shadow, window_reset) pass through.
                guard let answer = callRouter(request) else { throw RolloutError("the router does not answer") }
                return encode(answer)
            }
        } catch let error as RolloutError {
            return encode(["error": error.description])
        } catch {
            return encode(["error": "\(error)"])
        }
    }

    /// Parses the rollout request's fields (see proto/PROTOCOL.md).
    static func plan(_ r: [String: Any]) throws(RolloutError) -> RolloutPlan {
        guard let version = r["version"] as? String, !version.isEmpty else { throw RolloutError("rollout needs \"version\"") }
        var plan = RolloutPlan(target: version)
        func number(_ key: String) -> Double? { (r[key] as? Double) ?? (r[key] as? Int).map(Double.init) }
        if let v = number("canary") { plan.canary = v }
        if let v = number("step") { plan.step = v }
        if let v = number("interval_s") { plan.intervalSeconds = v }
        if let v = number("max_error_rate") { plan.maxErrorRate = v }
        if let v = number("max_p99_ms") { plan.maxP99Ms = v }
        if let v = number("min_requests") {
            guard v >= 1, v <= 1e9, let n = Int(exactly: v.rounded()) else { throw RolloutError("min_requests must be between 1 and 10^9") }
            plan.minRequests = n
        }
        if let v = number("shadow_s") { plan.shadowSeconds = v }
        if let problem = plan.problem { throw RolloutError(problem) }
        return plan
    }

    private func rolloutJSON() -> [String: Any] {
        let r = machine.record
        var out: [String: Any] = [
            "state": r.state.rawValue, "target": r.plan?.target ?? "", "reason": r.reason, "stable": r.stable,
            "stage": r.stage.rawValue, "share": r.share, "history": r.history,
        ]
        if let plan = r.plan, let data = try? JSONEncoder().encode(plan), let json = try? JSONSerialization.jsonObject(with: data) {
            out["plan"] = json
        }
        return out
    }

    /// The router's view, with workers the router does not see (starting, dead) and the rollout added.
    private func status() throws(RolloutError) -> [String: Any] {
        guard var status = callRouter(["op": "status"]) else { throw RolloutError("the router does not answer") }
        var workers = (status["workers"] as? [[String: Any]] ?? []).map { w -> [String: Any] in
            var w = w
            if let name = w["name"] as? String { seenNames.insert(name) }
            w["name"] = w["name"] ?? ""
            return w
        }
        let live = Set(workers.compactMap { $0["name"] as? String })
        for name in configuration.expectedWorkers where !live.contains(name) {
            workers.append(["id": name, "name": name, "version": "", "state": seenNames.contains(name) ? "dead" : "starting", "in_flight": 0])
        }
        status["workers"] = workers
        status["rollout"] = rolloutJSON()
        if status["shadow"] == nil, machine.record.plan?.shadowSeconds ?? 0 > 0, let lastShadow, lastShadow["version"] as? String == machine.record.plan?.target {
            status["shadow"] = lastShadow
        }
        status["coordinator"] = ["registry": configuration.registry?.root.path ?? "", "expected_workers": configuration.expectedWorkers]
        return status
    }

    // MARK: - Metrics

    private func metricsText() -> String {
        let router = callRouter(["op": "metrics"])?["text"] as? String ?? ""
        let r = machine.record
        for state in ["idle", "running", "paused", "done", "rolled_back"] {
            metrics.makeGauge(
                descriptor: MetricNameDescriptor(
                    namespace: "zrank", metricName: "rollout_state", unitName: "info",
                    helpText: "1 for the rollout's current state, 0 for the others."),
                labels: [("state", state)]
            ).set(to: r.state.rawValue == state ? 1 : 0)
        }
        metrics.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "zrank", metricName: "rollout_target_share", unitName: "ratio",
                helpText: "Share of unpinned traffic the rollout gives its target version (0-1)."),
            labels: []
        ).set(to: r.share)
        if let s = try? status() {
            var counts: [String: Int] = ["starting": 0, "dead": 0]
            for w in s["workers"] as? [[String: Any]] ?? [] { counts[w["state"] as? String ?? "?", default: 0] += 1 }
            for (state, n) in counts where state == "starting" || state == "dead" {
                metrics.makeGauge(
                    descriptor: MetricNameDescriptor(
                        namespace: "zrank", metricName: "expected_workers", unitName: "count",
                        helpText: "Workers the supervisor runs that the router does not see, by state (starting, dead)."),
                    labels: [("state", state)]
                ).set(to: Double(n))
            }
        }
        return router + metrics.emitToString()
    }

    /// Plain HTTP on a ZMQ_STREAM socket: `GET /metrics` answers the Prometheus text; anything else 404.
    private func serveHTTP(_ frames: [[UInt8]], on socket: ZMQSocket) {
        guard frames.count == 2 else { return }
        let peer = frames[0]
        if frames[1].isEmpty {  // connect or disconnect notice
            httpBuffers[peer] = nil
            return
        }
        httpBuffers[peer, default: []] += frames[1]
        let buffer = httpBuffers[peer]!
        let text = String(decoding: buffer, as: UTF8.self)
        guard text.contains("\r\n\r\n") || buffer.count > 8192 else { return }
        httpBuffers[peer] = nil
        let line = text.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = line.split(separator: " ")
        let response: String
        if parts.count >= 2 && parts[0] == "GET" && (parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?")) {
            let body = metricsText()
            response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        } else {
            let body = "not found: GET /metrics\n"
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        }
        try? socket.send([peer, Array(response.utf8)], dontWait: true)
        try? socket.send([peer, []], dontWait: true)  // close the connection
    }
}
