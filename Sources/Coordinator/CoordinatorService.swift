import Foundation
import Logging
import Prometheus
import Protocol
import Registry

/// How the coordinator is wired.
public struct CoordinatorConfiguration: Sendable {
    /// Where operators (`zrankctl --admin`) connect.
    public var adminEndpoint: String
    /// The routers' control sockets, comma-separated (one coordinator drives every router of the pool).
    public var routerControl: String
    /// CURVE for the admin socket when it is tcp (its key pair, the operators' keys); nil: plain.
    public var curve: CurveServerKeys?
    /// CURVE keys to reach tcp router control sockets (the routers' public key, this coordinator's pair).
    public var routerCurve: CurveClientKeys?
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

/// The coordinator process: a socket loop around a `CoordinatorCore` (which holds the `RolloutMachine` and makes
/// every decision). It takes operator commands on the admin socket, observes the pool through the router's control
/// socket every tick, persists the rollout next to the registry, logs, and serves Prometheus metrics.
public final class CoordinatorService {
    private let configuration: CoordinatorConfiguration
    private let logger: Logger
    private let context = ZMQContext()
    private var core: CoordinatorCore
    private let store: RolloutStore?
    /// One control channel per router; `primary` is the one status, loads and metrics are read from.
    private var routerLinks: [AdminChannel] = []
    private var primary = 0
    private var zap: ZAPHandler?
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
        core = CoordinatorCore(
            record: saved ?? RolloutRecord(stable: configuration.stableVersion), registry: configuration.registry,
            expectedWorkers: configuration.expectedWorkers)
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
        if configuration.adminEndpoint.hasPrefix("tcp://") {
            if let curve = configuration.curve {
                let logger = self.logger
                zap = try ZAPHandler(context: context, allow: curve.allow) { logger.notice("\($0)") }
                try admin.makeCurveServer(curve.own, domain: .admins)
            } else if let warning = plainTCPWarning(configuration.adminEndpoint, role: "admin") {
                logger.warning("\(warning)")
            }
        }
        defer { zap?.stop() }
        try admin.bind(configuration.adminEndpoint)
        routerLinks = try configuration.routerControl.split(separator: ",").map { endpoint throws(ZMQError) in
            try AdminChannel(context: context, endpoint: String(endpoint), curve: configuration.routerCurve)
        }
        var sockets = [admin]
        if let metrics = configuration.metrics {
            let http = try ZMQSocket(context, type: .stream)
            try http.bind("tcp://" + metrics)
            sockets.append(http)
            logger.info("metrics at http://\(metrics)/metrics")
        }
        logger.info(
            "coordinator ready",
            metadata: ["admin": "\(admin.lastEndpoint)", "stable": "\(core.machine.record.stable)",
                       "registry": "\(configuration.registry?.root.path ?? "-")"])
        var nextTick: UInt64 = 0
        while !stop() {
            let ready = try ZMQPoller.poll(sockets, timeoutMs: configuration.tickMs / 2)
            if ready[0] {
                while let frames = try admin.receive(dontWait: true) {
                    guard frames.count >= 3, let header = try? FrameHeader(decoding: frames[1]), header.type == .control else { continue }
                    let (decided, effects) = core.admin(frames[2], now: Date().timeIntervalSince1970, router: callRouter)
                    apply(effects)
                    var answer = decided ?? []
                    if decided == nil {
                        var reply = AdminReply()
                        reply.text = metricsText()
                        answer = AdminJSON.encode(reply)
                    }
                    try? admin.send([frames[0], FrameHeader(type: .control, requestID: header.requestID).bytes, answer], dontWait: true)
                }
            }
            if sockets.count > 1 && ready[1] {
                while let frames = try sockets[1].receive(dontWait: true) { serveHTTP(frames, on: sockets[1]) }
            }
            let now = monotonicNanos()
            if now >= nextTick {
                nextTick = now + UInt64(configuration.tickMs) * 1_000_000
                apply(core.tick(now: Date().timeIntervalSince1970, router: callRouter))
            }
        }
        logger.info("coordinator stopped")
    }

    /// One control call to the routers; nil when none answers within a second.
    ///
    /// With several routers, what shapes traffic (split, shadow, window reset, pin, unpin, drain) goes to every one,
    /// and the answer is the primary's; status, loads and metrics go to the primary only (a worker serves every
    /// router, so one load order reaches it). When the primary does not answer, the next router that does becomes
    /// primary: the coordinator then judges windows on its traffic (a window it did not open there is reset first).
    private func callRouter(_ request: AdminRequest) -> [UInt8]? {
        guard !routerLinks.isEmpty else { return nil }
        let everywhere: Set<AdminOp> = [.split, .shadow, .windowReset, .pin, .unpin, .drain]
        let order = (0..<routerLinks.count).map { (primary + $0) % routerLinks.count }
        var answer: [UInt8]?
        for i in order {
            if answer != nil && !everywhere.contains(request.op) { break }
            do {
                let bytes = try routerLinks[i].call(request, timeoutMs: 1000, stop: shouldStop)
                if answer == nil {
                    answer = bytes
                    if i != primary {
                        logger.warning("reading the pool from another router", metadata: ["router": "\(routerLinks[i].endpoint)"])
                        primary = i
                    }
                }
            } catch {
                logger.warning(
                    "router control call failed",
                    metadata: ["op": "\(request.op.rawValue)", "router": "\(routerLinks[i].endpoint)", "error": "\(error)"])
            }
        }
        return answer
    }

    private func apply(_ effects: [CoordinatorEffect]) {
        for effect in effects {
            switch effect {
            case .persist(let record):
                do {
                    try store?.save(record)
                } catch {
                    logger.error("cannot persist the rollout state", metadata: ["error": "\(error)"])
                }
            case .log(.info, let line): logger.info("\(line)")
            case .log(.warning, let line): logger.warning("\(line)")
            case .log(.error, let line): logger.error("\(line)")
            }
        }
    }

    // MARK: - Metrics

    private func metricsText() -> String {
        let router = callRouter(.metrics).flatMap { try? AdminJSON.answer(AdminReply.self, $0).text } ?? ""
        let r = core.machine.record
        for state in RolloutState.allCases {
            metrics.makeGauge(
                descriptor: MetricNameDescriptor(
                    namespace: "zrank", metricName: "rollout_state", unitName: "info",
                    helpText: "1 for the rollout's current state, 0 for the others."),
                labels: [("state", state.rawValue)]
            ).set(to: r.state == state ? 1 : 0)
        }
        metrics.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "zrank", metricName: "rollout_target_share", unitName: "ratio",
                helpText: "Share of unpinned traffic the rollout gives its target version (0-1)."),
            labels: []
        ).set(to: r.share)
        if let s = core.status(router: callRouter) {
            for state in [WorkerState.starting, .dead] {
                metrics.makeGauge(
                    descriptor: MetricNameDescriptor(
                        namespace: "zrank", metricName: "expected_workers", unitName: "count",
                        helpText: "Workers the supervisor runs that the router does not see, by state (starting, dead)."),
                    labels: [("state", state.rawValue)]
                ).set(to: Double(s.workers.filter { $0.state == state }.count))
            }
        }
        return router + metrics.emitToString()
    }

    /// Connections with a request still being read, at most.
    static let maxHTTPPeers = 64

    /// Plain HTTP on a ZMQ_STREAM socket: `GET /metrics` answers the Prometheus text; anything else 404.
    private func serveHTTP(_ frames: [[UInt8]], on socket: ZMQSocket) {
        guard frames.count == 2 else { return }
        let peer = frames[0]
        if frames[1].isEmpty {  // connect or disconnect notice
            httpBuffers[peer] = nil
            return
        }
        // Minimal on purpose (one GET, Prometheus text), with limits: at most `maxHTTPPeers` half-read requests held,
        // 8 KiB each; beyond that a new connection is closed at once.
        if httpBuffers[peer] == nil && httpBuffers.count >= Self.maxHTTPPeers {
            try? socket.send([peer, []], dontWait: true)
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
