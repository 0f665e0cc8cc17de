import Coordinator
import Foundation
import FuzzSupport
import Protocol
import Registry
import Router
import SwiftProtobuf

// The control plane's JSON, every reader of it on the same input bytes:
// - requests: `AdminJSON.request` (admin and control sockets); one that decodes must encode and decode back to
//   itself;
// - the router's control socket: `ControlHandler.handle` on a router with two live workers (v1, v2);
// - the coordinator's admin socket: `CoordinatorCore.admin` over a registry holding v1 and v2 (the tiny fixture model),
//   its router calls answered by that router's `ControlHandler`, then (for a request that decodes) three ticks
//   (rollout judging);
//   every answer must be readable by a client (`AdminJSON.answer` as `AdminReply` or `PoolStatus`), never the
//   "unencodable answer" fallback;
// - answers and bodies peers decode: `AdminJSON.answer` for AdminReply, PoolStatus and RolloutStatus, the LOAD body
//   (`LoadOrder`, as the worker decodes it), `WorkerHeartbeat.decode`, and the registry's `rollout.json`
//   (`RolloutRecord`) and `manifest.json` (`RegistryManifest`); each one that decodes must encode and decode back
//   to itself.

private let registry: Registry = Fixtures.require("a registry of the tiny model") {
    let registry = try Registry(path: ScratchFile.folder("registry"))
    for version in ["v1", "v2"] {
        try registry.add(
            version: version, model: Fixtures.path("tiny.zrm"), catalog: Fixtures.path("catalog.jsonl"),
            heads: version == "v2" ? Fixtures.path("heads.json") : nil)
    }
    return registry
}

private let readyFrames: [[[UInt8]]] = ["v1", "v2"].enumerated().map { i, version in
    var ready = Zrank_V1_WorkerReady()
    ready.workerID = "w\(i)"
    ready.modelVersion = version
    ready.capacity = 2
    return [Array("w\(i)".utf8), FrameHeader(type: .workerReady, requestID: 0).bytes, try! ready.serializedBytes()]
}

private let unencodable = Array(#"{"code":"invalid_request","error":"unencodable answer"}"#.utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = inputBytes(data, size)

    let request = try? AdminJSON.request(body)
    if let request {
        let encoded = AdminJSON.encode(request)
        precondition(encoded != unencodable, "a decoded request does not encode")
        precondition((try? AdminJSON.request(encoded)) == request, "a request does not survive encode + decode")
    }

    var core = RouterCore()
    for frames in readyFrames { _ = core.workerMessage(frames, now: 1) }
    let control = ControlHandler.handle(body, core: &core, agreement: ShadowAgreement(), metricsText: { "metrics" })
    checkAnswer(control.answer)

    var coordinator = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: registry, expectedWorkers: ["w0", "w1", "w2"])
    func router(_ request: AdminRequest) -> [UInt8]? {
        let answer = ControlHandler.handle(
            AdminJSON.encode(request), core: &core, agreement: ShadowAgreement(), metricsText: { "" }
        ).answer
        checkAnswer(answer)
        return answer
    }
    let (answer, _) = coordinator.admin(body, now: 1_000_000, router: router)
    if let answer { checkAnswer(answer) }
    // Ticks judge what a request started (a refused body starts nothing; skipping them keeps the target fast).
    if request != nil {
        for now in [1_000_100.0, 1_001_000, 1_010_000] { _ = coordinator.tick(now: now, router: router) }
    }

    if let reply = try? AdminJSON.answer(AdminReply.self, body) { roundTrip(reply) }
    if let status = try? AdminJSON.answer(PoolStatus.self, body) { roundTrip(status) }
    if let rollout = try? AdminJSON.answer(RolloutStatus.self, body) { roundTrip(rollout) }
    if let order = try? JSONDecoder().decode(LoadOrder.self, from: Data(body)) { roundTrip(order) }
    if let beat = WorkerHeartbeat.decode(body), beat != WorkerHeartbeat(), beat != WorkerHeartbeat(warming: true) {
        roundTrip(beat)
    }
    if let record = try? JSONDecoder().decode(RolloutRecord.self, from: Data(body)) { roundTrip(record) }
    if let manifest = try? JSONDecoder().decode(RegistryManifest.self, from: Data(body)) { roundTrip(manifest) }
    return 0
}

/// An answer a client can read: an `AdminReply` (possibly a refusal) or a `PoolStatus`, never the encoder's fallback.
private func checkAnswer(_ answer: [UInt8]) {
    precondition(answer != unencodable, "an answer did not encode")
    do {
        _ = try AdminJSON.answer(AdminReply.self, answer)
    } catch .refused {
        return
    } catch {
        precondition((try? AdminJSON.answer(PoolStatus.self, answer)) != nil, "an answer no client can read")
    }
}

/// A decoded message must encode and decode back to itself.
private func roundTrip<T: Codable & Equatable>(_ value: T) {
    let encoded = AdminJSON.encode(value)
    precondition(encoded != unencodable, "a decoded \(T.self) does not encode")
    precondition(
        (try? JSONDecoder().decode(T.self, from: Data(encoded))) == value, "\(T.self) does not survive encode + decode")
}
