import Protocol

/// Executes control-socket operations (typed `AdminRequest`s, JSON on the wire) against the router's state. The
/// coordinator drives rollouts through these (see proto/PROTOCOL.md, "Admin socket").
public enum ControlHandler {
    /// The live traffic split: the one set, or (none set) every version's share by ready-worker count.
    public static func traffic(_ core: RouterCore) -> [String: Double] {
        if !core.trafficSplit.isEmpty { return core.trafficSplit }
        let counts = Dictionary(grouping: core.workerViews.filter { $0.state == .ready }, by: \.version).mapValues(\.count)
        let total = counts.values.reduce(0, +)
        return total > 0 ? counts.mapValues { Double($0) / Double(total) } : [:]
    }

    private static func figures(_ stats: [String: RouterCore.VersionStats]) -> [String: VersionFigures] {
        stats.mapValues { VersionFigures(requests: $0.requests, errors: $0.errors, errorRate: $0.errorRate, p99Ms: $0.p99Ms, lost: $0.lost) }
    }

    /// The router's status answer.
    public static func status(_ core: RouterCore, shadow agreement: ShadowAgreement) -> PoolStatus {
        let workers = core.workerViews.map {
            WorkerStatus(
                id: String(decoding: $0.identity, as: UTF8.self), name: $0.name, version: $0.version, state: $0.state,
                inFlight: $0.inFlight, queryCache: $0.queryCache)
        }
        var shadow: ShadowFigures?
        if let s = core.shadow {
            let answered = agreement.compared + s.errors
            shadow = ShadowFigures(
                version: s.version, requests: agreement.compared, sent: s.sent, errors: s.errors,
                errorRate: answered > 0 ? Double(s.errors) / Double(answered) : 0, top10Overlap: agreement.top10Overlap,
                rankCorrelation: agreement.rankCorrelation)
        }
        return PoolStatus(
            workers: workers, traffic: traffic(core), split: core.trafficSplit, versions: figures(core.stats),
            window: figures(core.windowStats), windowEpoch: core.windowEpoch, shadow: shadow, queueDepth: core.queueDepth,
            inFlight: core.inFlight, workersLost: core.workersLost)
    }

    /// What a control request comes to: the answer, and what the router must send or reset as a result.
    public struct Outcome {
        /// The answer's JSON.
        public var answer: [UInt8]
        /// Frames to send (a LOAD to a worker).
        public var actions: [RouterAction] = []
        /// A new shadow run started (its generation) or stopped (0): the comparator starts from zero.
        public var shadowGeneration: UInt64?
    }

    /// Answers one control request body.
    /// - Parameters:
    ///   - agreement: the shadow comparator's current figures (for `status`).
    ///   - metricsText: the Prometheus text (for `metrics`), made only when asked for.
    public static func handle(
        _ body: [UInt8], core: inout RouterCore, agreement: ShadowAgreement, metricsText: () -> String
    ) -> Outcome {
        let request: AdminRequest
        do {
            request = try AdminJSON.request(body)
        } catch {
            return Outcome(answer: AdminJSON.encode(AdminReply.refusal(error.code, error.description)))
        }
        var outcome = Outcome(answer: [])
        let reply: AdminReply
        switch request {
        case .status:
            outcome.answer = AdminJSON.encode(status(core, shadow: agreement))
            return outcome
        case .split(let weights):
            if !weights.isEmpty && !weights.keys.contains(where: { core.workerVersions.contains($0) }) {
                reply = .refusal(.notFound, "no live worker serves any of \(weights.keys.sorted())")
                break
            }
            core.setTrafficSplit(weights)
            var r = AdminReply.ok
            r.traffic = core.trafficSplit
            reply = r
        case .windowReset:
            var r = AdminReply.ok
            r.epoch = core.resetWindow()
            reply = r
        case .shadow(let version):
            let before = core.shadow?.generation ?? 0
            let generation = core.setShadow(version)
            if generation != before { outcome.shadowGeneration = generation }
            reply = .ok
        case .metrics:
            var r = AdminReply()
            r.text = metricsText()
            reply = r
        case .drain(let worker, let on):
            guard let w = core.worker(named: worker) else {
                reply = .refusal(.notFound, "no live worker \(worker)")
                break
            }
            core.setDraining(w.identity, on)
            var r = AdminReply.ok
            r.inFlight = core.inFlight(on: w.identity)
            reply = r
        case .load(let worker, let order):
            guard let w = core.worker(named: worker) else {
                reply = .refusal(.notFound, "no live worker \(worker)")
                break
            }
            outcome.actions = core.requestLoad(w.identity, body: AdminJSON.encode(order))
            var r = AdminReply.ok
            r.state = core.worker(named: worker)?.state
            reply = r
        case .rollout, .pause, .resume, .rollback, .pin, .unpin:
            reply = .refusal(.unknownOp, "\(request.op.rawValue) is a coordinator operation: send it to the admin socket (zrank serve --admin)")
        }
        outcome.answer = AdminJSON.encode(reply)
        return outcome
    }
}
