import Foundation
import Protocol

/// Executes admin-socket operations (JSON) against the router's state. The coordinator drives rollouts through
/// these (see proto/PROTOCOL.md, "Admin socket").
enum ControlHandler {
    static func encode(_ object: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }

    /// The live traffic split: the one set, or (none set) every version's share by ready-worker count.
    static func traffic(_ core: RouterCore) -> [String: Double] {
        if !core.trafficSplit.isEmpty { return core.trafficSplit }
        let counts = Dictionary(grouping: core.workerViews.filter { $0.state == "ready" }, by: \.version).mapValues(\.count)
        let total = counts.values.reduce(0, +)
        return total > 0 ? counts.mapValues { Double($0) / Double(total) } : [:]
    }

    private static func figures(_ stats: [String: RouterCore.VersionStats]) -> [String: Any] {
        stats.mapValues { ["requests": $0.requests, "errors": $0.errors, "error_rate": $0.errorRate, "p99_ms": $0.p99Ms] as [String: Any] }
    }

    /// Answers one control request body; `actions` gets what the router must send as a result.
    static func handle(_ body: [UInt8], core: inout RouterCore, metrics: RouterMetrics?, actions: inout [RouterAction]) -> [UInt8] {
        guard let request = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let op = request["op"] as? String
        else {
            return encode(["error": "control body must be a JSON object with an \"op\""])
        }
        switch op {
        case "status":
            let workers: [[String: Any]] = core.workerViews.map {
                ["id": String(decoding: $0.identity, as: UTF8.self), "name": $0.name, "version": $0.version, "state": $0.state,
                 "in_flight": $0.inFlight]
            }
            var status: [String: Any] = [
                "workers": workers, "traffic": traffic(core), "split": core.trafficSplit, "versions": figures(core.stats),
                "window": figures(core.windowStats), "queue_depth": core.queueDepth, "in_flight": core.inFlight,
                "workers_lost": core.workersLost,
            ]
            if let s = core.shadow {
                status["shadow"] = [
                    "version": s.version, "requests": s.compared, "sent": s.sent, "errors": s.errors, "error_rate": s.errorRate,
                    "top10_overlap": s.top10Overlap, "rank_correlation": s.rankCorrelation,
                ] as [String: Any]
            }
            return encode(status)
        case "split":
            guard let weights = request["weights"] as? [String: Double] ?? (request["weights"] as? [String: Int])?.mapValues(Double.init) else {
                return encode(["error": "split needs \"weights\": {\"VERSION\": weight}"])
            }
            if let bad = weights.first(where: { !$0.value.isFinite || $0.value < 0 }) {
                return encode(["error": "weight for \(bad.key) must be a non-negative number"])
            }
            if !weights.isEmpty && !weights.keys.contains(where: { core.workerVersions.contains($0) }) {
                return encode(["error": "no live worker serves any of \(weights.keys.sorted())"])
            }
            core.setTrafficSplit(weights)
            return encode(["ok": true, "traffic": core.trafficSplit])
        case "window_reset":
            core.resetWindow()
            return encode(["ok": true])
        case "shadow":
            let version = request["version"] as? String
            core.setShadow(version?.isEmpty == false ? version : nil)
            return encode(["ok": true])
        case "metrics":
            return encode(["text": metrics?.text() ?? ""])
        case "drain":
            guard let worker = request["worker"] as? String else { return encode(["error": "drain needs \"worker\""]) }
            let identity = Array(worker.utf8)
            guard core.workerViews.contains(where: { $0.identity == identity }) else {
                return encode(["error": "no live worker \(worker)"])
            }
            core.setDraining(identity, request["on"] as? Bool ?? true)
            return encode(["ok": true, "in_flight": core.inFlight(on: identity)])
        case "load":
            guard let worker = request["worker"] as? String, let version = request["version"] as? String,
                let model = request["model"] as? String, let index = request["index"] as? String
            else {
                return encode(["error": "load needs \"worker\", \"version\", \"model\" and \"index\""])
            }
            let identity = Array(worker.utf8)
            guard core.workerViews.contains(where: { $0.identity == identity }) else {
                return encode(["error": "no live worker \(worker)"])
            }
            var load = ["version": version, "model": model, "index": index]
            if let heads = request["heads"] as? String { load["heads"] = heads }
            let body = encode(load)
            actions = core.requestLoad(identity, body: body)
            return encode(["ok": true, "state": core.workerViews.first { $0.identity == identity }?.state ?? "?"])
        default:
            return encode(["error": "unknown op \"\(op)\""])
        }
    }
}
