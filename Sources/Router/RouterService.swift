import CSystem
import Logging
import Protocol

/// The router process's loop: a ROUTER socket for clients (frontend) and one for workers (backend), driving a
/// `RouterCore` and carrying out its actions.
public final class RouterService {
    public let configuration: RouterConfiguration
    private let frontendEndpoint: String
    private let backendEndpoint: String
    private let logger: Logger
    private let context = ZMQContext()
    private var core: RouterCore
    /// How long a drain may take after SIGTERM before what is left is answered UNAVAILABLE.
    public var drainTimeoutMs: UInt64 = 4000

    private let controlEndpoint: String?
    private let metrics = RouterMetrics()
    /// Compares shadow answers on its own queue, off the routing path.
    private let comparator = ShadowComparator()
    private var workersLostReported = 0
    /// CURVE on the tcp endpoints (nil: plain). Set before `run`/`bind`.
    public var curve: CurveServerKeys?
    /// Judges CURVE handshakes (running while the sockets are bound).
    private var zap: ZAPHandler?

    /// - Parameter control: the admin endpoint (operator tools), or nil for none.
    public init(frontend: String, backend: String, control: String? = nil, configuration: RouterConfiguration, logger: Logger) {
        self.frontendEndpoint = frontend
        self.backendEndpoint = backend
        self.controlEndpoint = control
        self.configuration = configuration
        self.logger = logger
        self.core = RouterCore(configuration: configuration)
    }

    /// Makes `socket` a CURVE server of `domain` when CURVE is on and `endpoint` is tcp (ipc endpoints live in a
    /// private 0700 folder); warns about plain tcp that others can reach.
    private func secure(_ socket: ZMQSocket, endpoint: String, domain: CurveDomain, role: String) throws {
        guard endpoint.hasPrefix("tcp://") else { return }
        guard let curve else {
            if let warning = plainTCPWarning(endpoint, role: role) { logger.warning("\(warning)") }
            return
        }
        if zap == nil {
            let logger = self.logger
            zap = try ZAPHandler(context: context, allow: curve.allow) { logger.notice("\($0)") }
        }
        try socket.makeCurveServer(curve.own, domain: domain)
    }

    /// Binds both sockets; returns the endpoints actually bound (tcp port 0 resolved).
    public func bind() throws -> (frontend: ZMQSocket, backend: ZMQSocket) {
        let frontend = try ZMQSocket(context, type: .router)
        let backend = try ZMQSocket(context, type: .router)
        try secure(frontend, endpoint: frontendEndpoint, domain: .clients, role: "client")
        try secure(backend, endpoint: backendEndpoint, domain: .workers, role: "worker")
        try frontend.setInt(ZMQOption.routerMandatory, 1)
        try backend.setInt(ZMQOption.routerMandatory, 1)
        // Finite per-peer queues: a client that never reads its answers holds at most `highWaterMark` of them here
        // (beyond it answers to it are dropped and counted, zrank_answers_dropped_total: the client sees a timeout
        // it can retry), and a peer that floods waits on TCP backpressure instead of growing libzmq's buffers.
        let hwm = configuration.highWaterMark
        try frontend.setInt(ZMQOption.sendHighWaterMark, hwm)
        try frontend.setInt(ZMQOption.receiveHighWaterMark, configuration.clientReadAhead)
        try backend.setInt(ZMQOption.sendHighWaterMark, hwm)
        try backend.setInt(ZMQOption.receiveHighWaterMark, hwm)
        // A frame over the body limit closes its sender's connection before it is allocated (no answer: a
        // client-side timeout); frames under it get INVALID_REQUEST from RouterCore.
        try frontend.setInt64(ZMQOption.maxMessageSize, Int64(configuration.maxBodyBytes) + 64 * 1024)
        try backend.setInt64(ZMQOption.maxMessageSize, Int64(configuration.maxBodyBytes) + 64 * 1024)
        try frontend.bind(frontendEndpoint)
        try backend.bind(backendEndpoint)
        return (frontend, backend)
    }

    /// Runs until SIGTERM/SIGINT, then drains (new requests get UNAVAILABLE, held ones finish) and returns.
    public func run() throws {
        let (frontend, backend) = try bind()
        defer { zap?.stop() }
        var control: ZMQSocket?
        if let controlEndpoint {
            let socket = try ZMQSocket(context, type: .router)
            try secure(socket, endpoint: controlEndpoint, domain: .admins, role: "control")
            try socket.bind(controlEndpoint)
            control = socket
            logger.info("admin socket listening", metadata: ["admin": "\(socket.lastEndpoint)"])
        }
        logger.info(
            "router listening",
            metadata: ["frontend": "\(frontend.lastEndpoint)", "backend": "\(backend.lastEndpoint)",
                       "queue.bound": "\(configuration.queueBound)", "queue.bytes": "\(configuration.queueBytes)",
                       "curve": "\(curve == nil ? "off" : "on, server key \(curve!.own.publicKey.z85)")"])
        var drainStarted: UInt64?
        while true {
            let now = monotonicNanos()
            if CSystem_stop_requested() != 0 && drainStarted == nil {
                drainStarted = now
                core.beginDrain()
                logger.info("router draining", metadata: ["in.flight": "\(core.inFlight)", "queued": "\(core.queueDepth)"])
            }
            if let started = drainStarted {
                if core.isIdle || now - started > drainTimeoutMs * 1_000_000 {
                    perform(core.abandonAll(), frontend: frontend, backend: backend)
                    // Let the last answers leave before the sockets close.
                    try? frontend.setInt(ZMQOption.linger, 1000)
                    try? backend.setInt(ZMQOption.linger, 200)
                    logger.info("router stopped")
                    return
                }
            }
            let ready = try ZMQPoller.poll([frontend, backend] + (control.map { [$0] } ?? []), timeoutMs: 20)
            if let control, ready.count > 2, ready[2] {
                while let frames = try control.receive(dontWait: true) {
                    guard frames.count >= 3, let header = try? FrameHeader(decoding: frames[1]), header.type == .control else {
                        continue
                    }
                    refreshMetrics()
                    let outcome = ControlHandler.handle(
                        frames[2], core: &core, agreement: comparator.figures, metricsText: { metrics.text() })
                    if let generation = outcome.shadowGeneration { comparator.reset(generation: generation) }
                    perform(outcome.actions, frontend: frontend, backend: backend)
                    try? control.send(
                        [frames[0], FrameHeader(type: .control, requestID: header.requestID).bytes, outcome.answer], dontWait: true)
                }
            }
            // At most `batch` messages per socket per pass, so a client flood cannot starve workers and ticks.
            let batch = 256
            if ready[1] {
                for _ in 0..<batch {
                    guard let frames = try backend.receive(dontWait: true) else { break }
                    perform(core.workerMessage(frames, now: monotonicNanos()), frontend: frontend, backend: backend)
                }
            }
            if ready[0] {
                for _ in 0..<batch {
                    guard let frames = try frontend.receive(dontWait: true) else { break }
                    perform(core.clientMessage(frames, now: monotonicNanos()), frontend: frontend, backend: backend)
                }
            }
            perform(core.tick(now: monotonicNanos()), frontend: frontend, backend: backend)
            metrics.record(core.takeCompletions())
        }
    }

    private func refreshMetrics() {
        metrics.record(core.takeCompletions())
        metrics.workerLost(core.workersLost - workersLostReported)
        workersLostReported = core.workersLost
        metrics.update(core, traffic: ControlHandler.traffic(core))
        if let zap { metrics.handshakesRefused(zap.figures.refused) }
    }

    private func perform(_ actions: [RouterAction], frontend: ZMQSocket, backend: ZMQSocket) {
        for action in actions {
            switch action {
            case .toClient(let frames):
                do {
                    try frontend.send(frames, dontWait: true)
                } catch {
                    // Gone, or not reading (its queue is at the high-water mark): the answer is dropped, counted.
                    metrics.answerDropped()
                    logger.debug("client unreachable or not reading; answer dropped", metadata: ["error": "\(error)"])
                }
            case .compare(let pair):
                comparator.submit(pair)
            case .toWorker(let frames):
                do {
                    try backend.send(frames, dontWait: true)
                } catch {
                    // The worker is gone: its requests are retried elsewhere or answered WORKER_FAILED.
                    let failure = [frames[0], FrameHeader(type: .disconnect, requestID: 0).bytes]
                    perform(core.workerMessage(failure, now: monotonicNanos()), frontend: frontend, backend: backend)
                }
            }
        }
    }
}
