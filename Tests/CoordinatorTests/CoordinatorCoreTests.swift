import Coordinator
import Foundation
import Protocol
import Registry
import Router
import SwiftProtobuf
import XCTest

/// A router in memory: the real `RouterCore` behind the real control handler, called without sockets.
private final class InMemoryRouter {
    var core = RouterCore()
    var calls: [AdminOp] = []

    func call(_ request: AdminRequest) -> [UInt8]? {
        calls.append(request.op)
        return ControlHandler.handle(AdminJSON.encode(request), core: &core, agreement: ShadowAgreement(), metricsText: { "" }).answer
    }

    /// A worker announces itself (socket identity `name-suffix`).
    func join(_ name: String, _ version: String, suffix: String = "a") {
        var r = Zrank_V1_WorkerReady()
        r.workerID = name
        r.modelVersion = version
        r.capacity = 1
        _ = core.workerMessage([Array("\(name)-\(suffix)".utf8), FrameHeader(type: .workerReady, requestID: 0).bytes, try! r.serializedBytes()], now: 1)
    }
}

/// The coordinator's decisions without sockets or sleeps: which admin operations pass when, what a tick does after
/// a router restart, the window epochs, the status it assembles.
final class CoordinatorCoreTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("coordinator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A registry whose versions have files of the sizes their manifests record (what `quickCheck` looks at).
    private func registry(_ versions: [String]) throws -> Registry {
        let r = try Registry(path: directory.path)
        for v in versions {
            let folder = r.folder(v)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(repeating: 1, count: 10).write(to: folder.appendingPathComponent(Registry.modelFile))
            try Data(repeating: 2, count: 20).write(to: folder.appendingPathComponent(Registry.indexFile))
            let manifest = """
                {"version": "\(v)", "model_content_hash": "00", "catalog_source_hash": "00", "created_at": "", "notes": "",
                 "catalog_size": 1, "model_file_version": "\(v)", "file_sizes": {"model.zrm": 10, "catalog.zri": 20}}
                """
            try Data(manifest.utf8).write(to: folder.appendingPathComponent(Registry.manifestFile))
        }
        return r
    }

    private func admin(_ core: inout CoordinatorCore, _ router: InMemoryRouter, _ request: AdminRequest, at now: Double = 1) -> AdminReply {
        let (answer, _) = core.admin(AdminJSON.encode(request), now: now, router: router.call)
        return (try? JSONDecoder().decode(AdminReply.self, from: Data(answer ?? []))) ?? AdminReply.refusal(.invalidRequest, "unreadable")
    }

    private func rollout(_ version: String) -> AdminRequest {
        var r = RolloutRequest(version: version)
        r.intervalSeconds = 10
        r.minRequests = 5
        return .rollout(r)
    }

    func testRouterOperations_passWhenIdle_refusedDuringARollout() throws {
        let router = InMemoryRouter()
        router.join("w1", "v1")
        router.join("w2", "v1")
        var core = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: try registry(["v1", "v2"]))
        // Idle: each goes through to the router and takes effect there.
        var r = admin(&core, router, .split(weights: ["v1": 1]))
        XCTAssertEqual(r.ok, true, "\(r)")
        XCTAssertEqual(router.core.trafficSplit, ["v1": 1])
        r = admin(&core, router, .shadow(version: "v1"))
        XCTAssertEqual(r.ok, true, "\(r)")
        XCTAssertEqual(router.core.shadow?.version, "v1")
        _ = admin(&core, router, .shadow(version: nil))
        let before = router.core.windowEpoch
        r = admin(&core, router, .windowReset)
        XCTAssertEqual(r.epoch, before + 1)
        r = admin(&core, router, .drain(worker: "w2", on: true))
        XCTAssertEqual(r.ok, true, "\(r)")
        XCTAssertEqual(router.core.worker(named: "w2")?.state, .draining, "drain names the worker by its announced name")
        _ = admin(&core, router, .drain(worker: "w2", on: false))
        XCTAssertEqual(admin(&core, router, .pin(version: "v1")).traffic, ["v1": 1])
        XCTAssertEqual(admin(&core, router, .unpin).ok, true)
        XCTAssertEqual(router.core.trafficSplit, [:])
        XCTAssertEqual(admin(&core, router, .pin(version: "../v9")).code, .invalidRequest, "version names are validated")

        // A rollout owns the split, the window and worker loads.
        r = admin(&core, router, rollout("v2"))
        XCTAssertEqual(r.ok, true, "\(r)")
        XCTAssertEqual(r.rollout?.state, .running)
        let splitNow = router.core.trafficSplit
        let refusedOps: [AdminRequest] = [
            .split(weights: ["v1": 1]), .shadow(version: "v2"), .windowReset, .drain(worker: "w1", on: true),
            .load(worker: "w1", LoadOrder(version: "v2")), .pin(version: "v1"), .unpin,
        ]
        for request in refusedOps {
            router.calls.removeAll()
            let refused = admin(&core, router, request)
            XCTAssertEqual(refused.code, .conflict, "\(request.op) during a rollout: \(refused)")
            XCTAssertTrue(refused.error?.contains("a rollout is running") == true, refused.error ?? "")
            XCTAssertTrue(router.calls.isEmpty, "\(request.op) never reached the router")
        }
        XCTAssertEqual(router.core.trafficSplit, splitNow)
        XCTAssertEqual(router.core.worker(named: "w1")?.state, .ready)
        // Status still answers; a second rollout is refused; rollback ends it and the operations pass again.
        XCTAssertEqual(admin(&core, router, rollout("v2")).code, .conflict)
        XCTAssertEqual(admin(&core, router, .rollback).rollout?.state, .rolledBack)
        XCTAssertEqual(admin(&core, router, .split(weights: ["v1": 1])).ok, true)
    }

    func testMalformedRequests_getTypedRefusals() throws {
        let router = InMemoryRouter()
        var core = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: try registry(["v1"]))
        func ask(_ text: String) -> AdminReply {
            let answer = core.admin(Array(text.utf8), now: 1, router: router.call).answer ?? []
            return try! JSONDecoder().decode(AdminReply.self, from: Data(answer))
        }
        XCTAssertEqual(ask("not json").code, .invalidRequest)
        XCTAssertEqual(ask(#"{"op": "explode"}"#).code, .unknownOp)
        XCTAssertEqual(ask(#"{"op": "pin"}"#).error, #"pin needs "version""#)
        XCTAssertEqual(ask(#"{"op": "rollout", "version": "v2", "canary": "lots"}"#).code, .invalidRequest)
        XCTAssertEqual(ask(#"{"op": "rollout", "version": "v2", "min_requests": 0}"#).code, .invalidRequest)
        XCTAssertEqual(ask(#"{"op": "rollout", "version": "nope"}"#).code, .notFound)
        XCTAssertEqual(ask(#"{"op": "split", "weights": {"v1": -1}}"#).code, .invalidRequest)
        let status = core.admin(Array(#"{"op": "status"}"#.utf8), now: 1, router: router.call).answer ?? []
        XCTAssertEqual(try AdminJSON.answer(PoolStatus.self, status).workers, [], "no worker: status still answers")
        var silent = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: nil)
        let none = silent.admin(Array(#"{"op": "status"}"#.utf8), now: 1, router: { _ in nil }).answer ?? []
        XCTAssertEqual(try JSONDecoder().decode(AdminReply.self, from: Data(none)).code, .unavailable)
    }

    /// A router that restarts mid-step has no split, no shadow and another window: the next tick puts the split
    /// back and opens a window the step is judged on; the workers reconnecting under new identities cause no
    /// rollback.
    func testTick_afterRouterRestart_restoresSplitAndWindow() throws {
        let router = InMemoryRouter()
        router.join("w1", "v1")
        router.join("w2", "v1")
        var core = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: try registry(["v1", "v2"]), expectedWorkers: ["w1", "w2"])
        XCTAssertEqual(admin(&core, router, rollout("v2"), at: 0).ok, true)
        let opened = try XCTUnwrap(core.machine.judgedEpoch)
        XCTAssertEqual(opened, router.core.windowEpoch, "the rollout's window is the router's")
        // The tick orders one worker moved, by name.
        var effects = core.tick(now: 1, router: router.call)
        XCTAssertTrue(effects.contains(.log(.info, "moving worker w1 from v1 to v2")) || effects.contains(.log(.info, "moving worker w2 from v1 to v2")), "\(effects)")
        let moving = try XCTUnwrap(router.core.workerViews.first { $0.state == .loading })
        // The worker comes back on v2 (READY after its load).
        var ready = Zrank_V1_WorkerReady()
        ready.workerID = moving.name
        ready.modelVersion = "v2"
        _ = router.core.workerMessage([moving.identity, FrameHeader(type: .workerReady, requestID: 0).bytes, try ready.serializedBytes()], now: 2)
        _ = core.tick(now: 2, router: router.call)

        // Restart: a fresh router, workers reconnect under new identities.
        router.core = RouterCore()
        XCTAssertTrue(router.core.trafficSplit.isEmpty)
        let restartEffects = core.tick(now: 3, router: router.call)
        XCTAssertEqual(core.machine.record.state, .running, "no worker in view for a moment is not a death")
        XCTAssertTrue(
            restartEffects.contains { if case .persist(let r) = $0 { return r.windowEpoch == router.core.windowEpoch } else { return false } },
            "the new router's window is opened and the record says so: \(restartEffects)")
        router.join("w1", moving.name == "w1" ? "v2" : "v1", suffix: "b")
        router.join("w2", moving.name == "w2" ? "v2" : "v1", suffix: "b")
        effects = core.tick(now: 4, router: router.call)
        XCTAssertEqual(core.machine.record.state, .running, "\(effects)")
        XCTAssertEqual(router.core.trafficSplit["v2"] ?? 0, 0.1, accuracy: 1e-9, "the split is put back")
        XCTAssertEqual(core.machine.judgedEpoch, router.core.windowEpoch, "a window of the new router is opened and judged")
        XCTAssertNotEqual(core.machine.judgedEpoch, opened)
        // Status names both workers ready, the rollout and the judged window.
        let status = try XCTUnwrap(core.status(router: router.call))
        XCTAssertEqual(status.workers.map(\.name).sorted(), ["w1", "w2"])
        XCTAssertEqual(status.rollout?.target, "v2")
        XCTAssertEqual(status.coordinator?.judgedEpoch, status.windowEpoch)
    }

    func testStatus_showsExpectedWorkersStartingThenDead() throws {
        let router = InMemoryRouter()
        var core = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: nil, expectedWorkers: ["w1", "w2"])
        router.join("w1", "v1")
        var status = try XCTUnwrap(core.status(router: router.call))
        XCTAssertEqual(status.workers.first { $0.name == "w2" }?.state, .starting)
        router.join("w2", "v1")
        _ = core.status(router: router.call)
        router.core = RouterCore()
        router.join("w1", "v1", suffix: "c")
        status = try XCTUnwrap(core.status(router: router.call))
        XCTAssertEqual(status.workers.first { $0.name == "w2" }?.state, .dead)
        XCTAssertEqual(status.workers.first { $0.name == "w1" }?.state, .ready)
    }

    /// Outside a rollout the split and the shadow are the operator's: ticks do not undo them, also after a
    /// rollback once the workers are back; with a registry, `load` is refused (workers run its live version).
    func testOperatorChanges_stickAcrossTicks_whenNoRolloutOwnsThem() throws {
        let router = InMemoryRouter()
        router.join("w1", "v1")
        router.join("w2", "v1")
        var core = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: try registry(["v1", "v2"]))
        XCTAssertEqual(admin(&core, router, .shadow(version: "v1")).ok, true)
        XCTAssertEqual(admin(&core, router, .pin(version: "v1")).ok, true)
        for t in 1...3 { _ = core.tick(now: Double(t), router: router.call) }
        XCTAssertEqual(router.core.shadow?.version, "v1", "an idle coordinator leaves the operator's shadow alone")
        XCTAssertEqual(router.core.trafficSplit, ["v1": 1])
        let load = admin(&core, router, .load(worker: "w1", LoadOrder(version: "v2")))
        XCTAssertEqual(load.code, .conflict)
        XCTAssertTrue(load.error?.contains("zrankctl rollout") == true, load.error ?? "")
        // A rollout and its rollback: once every worker is back on v1, a pin sticks again.
        _ = admin(&core, router, .shadow(version: nil))
        _ = admin(&core, router, .unpin)
        XCTAssertEqual(admin(&core, router, rollout("v2"), at: 10).ok, true)
        XCTAssertEqual(admin(&core, router, .rollback, at: 11).rollout?.state, .rolledBack)
        XCTAssertEqual(router.core.trafficSplit, ["v1": 1], "a rollback sends all traffic to the live version")
        _ = core.tick(now: 12, router: router.call)
        XCTAssertEqual(admin(&core, router, .pin(version: "v1")).ok, true)
        XCTAssertEqual(admin(&core, router, .unpin).ok, true)
        _ = core.tick(now: 13, router: router.call)
        XCTAssertEqual(router.core.trafficSplit, [:], "every worker is on v1: the unpin is not undone")
    }

    /// A load order the router refuses (the worker vanished between status and order) is forgotten, not judged a
    /// failed load: no rollback.
    func testRefusedLoadOrder_isNotAFailedLoad() throws {
        let router = InMemoryRouter()
        router.join("w1", "v1")
        router.join("w2", "v1")
        var core = CoordinatorCore(record: RolloutRecord(stable: "v1"), registry: try registry(["v1", "v2"]))
        XCTAssertEqual(admin(&core, router, rollout("v2"), at: 0).ok, true)
        // Between the status the tick reads and its load order, the worker it picks is gone from the router.
        let refusing: CoordinatorCore.RouterCall = { request in
            if case .load = request {
                return AdminJSON.encode(AdminReply.refusal(.notFound, "no live worker"))
            }
            return router.call(request)
        }
        let effects = core.tick(now: 1, router: refusing)
        XCTAssertTrue(effects.contains { if case .log(.warning, let line) = $0 { return line.contains("not delivered") } else { return false } }, "\(effects)")
        for t in 2...5 { _ = core.tick(now: Double(t) * 2, router: router.call) }
        XCTAssertEqual(core.machine.record.state, .running, "\(core.machine.record.history)")
        XCTAssertEqual(router.core.workerViews.filter { $0.state == .loading || $0.state == .draining }.count, 1, "the order was given again")
    }
}
