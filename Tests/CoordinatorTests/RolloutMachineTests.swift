import Coordinator
import Foundation
import Protocol
import Registry
import XCTest

/// The rollout state machine without sockets: steps, judging, rollback, one worker at a time, restarts, persistence.
final class RolloutMachineTests: XCTestCase {
    /// Worker `wN`; `connection` names its socket identity (another one after a reconnect).
    private func worker(_ n: Int, _ version: String, _ state: WorkerState = .ready, connection: String = "a") -> WorkerStatus {
        WorkerStatus(id: "w\(n)-\(connection)", name: "w\(n)", version: version, state: state, inFlight: 0)
    }

    private func fig(requests: Int, errors: Int, p99Ms: Double, lost: Int = 0) -> VersionFigures {
        VersionFigures(
            requests: requests, errors: errors, errorRate: requests > 0 ? Double(errors) / Double(requests) : 0, p99Ms: p99Ms, lost: lost)
    }

    private func observation(_ workers: [WorkerStatus], _ window: [String: VersionFigures] = [:], at now: Double) -> PoolObservation {
        PoolObservation(workers: workers, window: window, windowEpoch: 0, now: now)
    }

    private var epoch: UInt64 = 1000

    /// Plays the coordinator's part for the judging window: opens the window the machine asks for and reports its
    /// epoch back, and observes with the figures of that window.
    private func observed(_ m: inout RolloutMachine, _ o: PoolObservation) -> [RolloutAction] {
        var o = o
        if m.isActive && m.judgedEpoch == nil {
            epoch += 1
            _ = m.windowOpened(epoch)
        }
        o.windowEpoch = m.judgedEpoch ?? epoch
        let a = m.observe(o)
        if a.contains(.resetWindow) {
            epoch += 1
            _ = m.windowOpened(epoch)
        }
        return a
    }

    private func observe(
        _ m: inout RolloutMachine, _ workers: [WorkerStatus], _ window: [String: VersionFigures] = [:], at now: Double
    ) -> [RolloutAction] {
        observed(&m, observation(workers, window, at: now))
    }

    private func loads(_ actions: [RolloutAction]) -> [(String, String)] {
        actions.compactMap { if case .load(let w, let v) = $0 { return (w, v) } else { return nil } }
    }

    private func splits(_ actions: [RolloutAction]) -> [[String: Double]] {
        actions.compactMap { if case .split(let s) = $0 { return s } else { return nil } }
    }

    private func plan(_ target: String = "v2") -> RolloutPlan {
        var p = RolloutPlan(target: target)
        p.canary = 0.1
        p.step = 0.5
        p.intervalSeconds = 10
        p.minRequests = 50
        p.maxErrorRate = 0.01
        return p
    }

    func testCanaryStepsAndDone_movesOneWorkerAtATime() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        var a = try m.start(plan(), workerCount: 2, now: 0)
        XCTAssertEqual(splits(a), [["v1": 0.9, "v2": 0.1]])
        XCTAssertTrue(a.contains(.persist))
        XCTAssertEqual(m.record.state, .running)
        XCTAssertEqual(m.record.stage, .canary)

        a = observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 1)
        XCTAssertEqual(loads(a).count, 1)
        let moved = loads(a)[0].0
        XCTAssertEqual(loads(a)[0].1, "v2")
        // While it loads, nothing else moves.
        let loading = [worker(1, "v1", moved == "w1" ? .loading : .ready), worker(2, "v1", moved == "w2" ? .warming : .ready)]
        XCTAssertTrue(loads(observe(&m, loading, at: 2)).isEmpty)
        let after = [worker(1, moved == "w1" ? "v2" : "v1"), worker(2, moved == "w2" ? "v2" : "v1")]
        a = observe(&m, after, ["v2": fig(requests: 10, errors: 0, p99Ms: 1)], at: 3)
        XCTAssertTrue(loads(a).isEmpty, "one worker on v2 is what 10% of 2 workers asks")
        // Interval not over, or too few requests: stays.
        XCTAssertTrue(splits(observe(&m, after, ["v2": fig(requests: 60, errors: 0, p99Ms: 1)], at: 5)).isEmpty)
        XCTAssertTrue(splits(observe(&m, after, ["v2": fig(requests: 40, errors: 0, p99Ms: 1)], at: 12)).isEmpty)
        // Both: next step (10% + 50%).
        a = observe(&m, after, ["v2": fig(requests: 60, errors: 0, p99Ms: 1)], at: 12)
        XCTAssertEqual(splits(a).count, 1)
        XCTAssertEqual(splits(a)[0]["v2"]!, 0.6, accuracy: 1e-12)
        XCTAssertTrue(a.contains(.resetWindow))
        XCTAssertEqual(m.record.stage, .step)
        // 60% of 2 workers still leaves one on v1; then 100% moves the last one.
        a = observe(&m, after, ["v2": fig(requests: 60, errors: 0, p99Ms: 1)], at: 23)
        XCTAssertEqual(splits(a), [["v2": 1]])
        XCTAssertEqual(loads(a).map(\.1), ["v2"], "the same observation moves the last v1 worker")
        let all = [worker(1, "v2"), worker(2, "v2")]
        _ = observe(&m, all, [:], at: 25)
        XCTAssertEqual(m.record.state, .running, "done needs the interval and min-requests at 100% too")
        a = observe(&m, all, ["v2": fig(requests: 80, errors: 0, p99Ms: 1)], at: 36)
        XCTAssertEqual(m.record.state, .done)
        XCTAssertEqual(m.record.stable, "v2")
        XCTAssertEqual(splits(a), [[:]])
        XCTAssertTrue(loads(observe(&m, all, [:], at: 40)).isEmpty)
    }

    func testErrorRate_rollsBackAndMovesWorkersBack() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let workers = [worker(1, "v2"), worker(2, "v1")]
        // Below min-requests: not judged, however bad.
        _ = observe(&m, workers, ["v2": fig(requests: 49, errors: 49, p99Ms: 1)], at: 1)
        XCTAssertEqual(m.record.state, .running)
        let a = observe(&m, workers, ["v2": fig(requests: 50, errors: 5, p99Ms: 1)], at: 2)
        XCTAssertEqual(m.record.state, .rolledBack)
        XCTAssertTrue(m.record.reason.contains("error rate 10.00% > 1.00% after 50 requests"), m.record.reason)
        XCTAssertEqual(splits(a), [["v1": 1]])
        XCTAssertTrue(a.contains(.shadow(nil)))
        XCTAssertEqual(loads(a).map { $0.0 + ">" + $0.1 }, ["w1>v1"], "the v2 worker goes back")
        XCTAssertEqual(m.record.stable, "v1")
        XCTAssertTrue(m.record.history.last!.hasPrefix("rolled back v2 to v1"))
    }

    func testP99_defaultBoundIsThreeTimesLiveP99() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let workers = [worker(1, "v2"), worker(2, "v1")]
        _ = observe(&m, workers, ["v1": fig(requests: 500, errors: 0, p99Ms: 2), "v2": fig(requests: 60, errors: 0, p99Ms: 5.9)], at: 1)
        XCTAssertEqual(m.record.state, .running)
        _ = observe(&m, workers, ["v1": fig(requests: 500, errors: 0, p99Ms: 2), "v2": fig(requests: 60, errors: 0, p99Ms: 6.1)], at: 2)
        XCTAssertEqual(m.record.state, .rolledBack)
        XCTAssertTrue(m.record.reason.contains("3× the live p99"), m.record.reason)

        var explicit = RolloutMachine(record: RolloutRecord(stable: "v1"))
        var p = plan()
        p.maxP99Ms = 100
        _ = try explicit.start(p, workerCount: 2, now: 0)
        _ = observe(&explicit, workers, ["v1": fig(requests: 500, errors: 0, p99Ms: 2), "v2": fig(requests: 60, errors: 0, p99Ms: 50)], at: 1)
        XCTAssertEqual(explicit.record.state, .running, "--max-p99 replaces the 3x rule")
        _ = observe(&explicit, workers, ["v2": fig(requests: 60, errors: 0, p99Ms: 101)], at: 2)
        XCTAssertEqual(explicit.record.state, .rolledBack)
        XCTAssertTrue(explicit.record.reason.contains("--max-p99"), explicit.record.reason)
    }

    func testPauseHoldsResumeRestartsInterval() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let workers = [worker(1, "v2"), worker(2, "v1")]
        _ = try m.pause(now: 1)
        XCTAssertThrowsError(try m.pause(now: 1))
        XCTAssertTrue(splits(observe(&m, workers, ["v2": fig(requests: 100, errors: 0, p99Ms: 1)], at: 20)).isEmpty)
        XCTAssertEqual(m.record.share, 0.1)
        _ = try m.resume(now: 30)
        XCTAssertTrue(splits(observe(&m, workers, ["v2": fig(requests: 100, errors: 0, p99Ms: 1)], at: 35)).isEmpty)
        XCTAssertEqual(splits(observe(&m, workers, ["v2": fig(requests: 100, errors: 0, p99Ms: 1)], at: 41)).count, 1)
        let a = try m.rollback(reason: "operator rollback", now: 42)
        XCTAssertEqual(splits(a), [["v1": 1]])
        XCTAssertEqual(m.record.reason, "operator rollback")
        XCTAssertThrowsError(try m.rollback(reason: "again", now: 43))
    }

    func testRestartedWorker_isMovedToTheVersionItShouldHave() throws {
        var record = RolloutRecord(stable: "v2")
        record.state = .done
        var m = RolloutMachine(record: record)
        // w2 restarted with its original arguments (v1).
        let a = observe(&m, [worker(1, "v2"), worker(2, "v1")], at: 1)
        XCTAssertEqual(loads(a).map { $0.0 + ">" + $0.1 }, ["w2>v2"])
        // During a rollout the count follows the share: a restarted canary worker is replaced.
        var r = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try r.start(plan(), workerCount: 3, now: 0)
        XCTAssertEqual(loads(observe(&r, [worker(1, "v1"), worker(2, "v1"), worker(3, "v1")], at: 1)).count, 1)
        XCTAssertEqual(r.desiredTargetWorkers(of: 3), 1)
    }

    func testFailedLoad_rollsBack() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let a = observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 1)
        let target = try XCTUnwrap(loads(a).first?.0)
        _ = observe(&m, [worker(1, "v1", .loading), worker(2, "v1", .loading)].map { $0.name == target ? $0 : worker(2, "v1") }, at: 2)
        // Back ready on the old version after its smoke set failed.
        _ = observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 5)
        XCTAssertEqual(m.record.state, .rolledBack)
        XCTAssertTrue(m.record.reason.contains("failed to load v2"), m.record.reason)
    }

    func testShadowStage_thenCanary() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        var p = plan()
        p.shadowSeconds = 5
        var a = try m.start(p, workerCount: 2, now: 0)
        XCTAssertEqual(m.record.stage, .shadow)
        XCTAssertEqual(splits(a), [["v1": 1]])
        XCTAssertTrue(a.contains(.shadow("v2")))
        XCTAssertEqual(loads(observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 1)).count, 1)
        let workers = [worker(1, "v2"), worker(2, "v1")]
        XCTAssertTrue(splits(observe(&m, workers, at: 3)).isEmpty)
        var judged = observation(workers, at: 6)
        judged.shadowCompared = 60
        a = observed(&m, judged)
        XCTAssertEqual(m.record.stage, .canary)
        XCTAssertTrue(a.contains(.shadow(nil)))
        XCTAssertEqual(splits(a), [["v1": 0.9, "v2": 0.1]])
        // Shadow errors roll back too.
        var bad = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try bad.start(p, workerCount: 2, now: 0)
        var o = observation(workers, at: 1)
        o.shadowCompared = 40
        o.shadowErrors = 20
        _ = observed(&bad, o)
        XCTAssertEqual(bad.record.state, .rolledBack)
        XCTAssertTrue(bad.record.reason.hasPrefix("shadow error rate"), bad.record.reason)
    }

    func testRefusals() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        XCTAssertThrowsError(try m.start(plan("v1"), workerCount: 2, now: 0)) { XCTAssertTrue("\($0)".contains("already the live version")) }
        var p = plan()
        p.shadowSeconds = 10
        XCTAssertThrowsError(try m.start(p, workerCount: 1, now: 0)) { XCTAssertTrue("\($0)".contains("at least 2 workers")) }
        p = plan()
        p.canary = 0
        XCTAssertThrowsError(try m.start(p, workerCount: 2, now: 0)) { XCTAssertTrue("\($0)".contains("--canary")) }
        XCTAssertThrowsError(try m.resume(now: 0))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        XCTAssertThrowsError(try m.start(plan("v3"), workerCount: 2, now: 0)) { XCTAssertTrue("\($0)".contains("is running")) }
    }

    func testRecordPersistsAndResumes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollout-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = RolloutStore(registry: try Registry(path: dir.path))
        XCTAssertNil(try store.load())
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        var p = plan()
        p.maxP99Ms = 42
        _ = try m.start(p, workerCount: 2, now: 100)
        epoch += 1
        _ = m.windowOpened(epoch)
        try store.save(m.record)
        let loaded = try XCTUnwrap(try store.load())
        XCTAssertEqual(loaded, m.record)
        // A coordinator restarted mid-step carries on from the saved stage start.
        var resumed = RolloutMachine(record: loaded)
        let workers = [worker(1, "v2"), worker(2, "v1")]
        XCTAssertEqual(loaded.windowEpoch, m.judgedEpoch, "the judged window is persisted")
        XCTAssertEqual(splits(observe(&resumed, workers, ["v2": fig(requests: 60, errors: 0, p99Ms: 1)], at: 111)).count, 1)
        try Data("{not json".utf8).write(to: store.url)
        XCTAssertThrowsError(try store.load()) { XCTAssertTrue("\($0)".contains("unreadable rollout state")) }
    }

    func testTargetWorkerDeath_pausedJudging_shadowNeedsEvidence_desiredSplit() throws {
        // A worker that served the new version and vanished died on it: roll back.
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        XCTAssertEqual(m.desiredSplit, ["v1": 0.9, "v2": 0.1])
        _ = observe(&m, [worker(1, "v2"), worker(2, "v1")], at: 1)
        _ = observe(&m, [worker(2, "v1")], at: 2)
        XCTAssertEqual(m.record.state, .running, "missing for a moment (a reconnect, a router restart) is not dead")
        _ = observe(&m, [worker(2, "v1")], at: 12.5)
        XCTAssertEqual(m.record.state, .rolledBack)
        XCTAssertTrue(m.record.reason.contains("w1 died while serving v2"), m.record.reason)
        XCTAssertEqual(m.desiredSplit, ["v1": 1])
        // Dying while loading it too.
        var l = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try l.start(plan(), workerCount: 2, now: 0)
        let moved = try XCTUnwrap(loads(observe(&l, [worker(1, "v1"), worker(2, "v1")], at: 1)).first?.0)
        _ = observe(&l, [worker(1, "v1"), worker(2, "v1")].filter { $0.name != moved }, at: 2)
        XCTAssertEqual(l.record.state, .running)
        _ = observe(&l, [worker(1, "v1"), worker(2, "v1")].filter { $0.name != moved }, at: 12.5)
        XCTAssertEqual(l.record.state, .rolledBack)
        XCTAssertTrue(l.record.reason.contains("died while loading v2"), l.record.reason)
        // Paused is still judged.
        var p = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try p.start(plan(), workerCount: 2, now: 0)
        _ = try p.pause(now: 1)
        _ = observe(&p, [worker(1, "v2"), worker(2, "v1")], ["v2": fig(requests: 100, errors: 50, p99Ms: 1)], at: 2)
        XCTAssertEqual(p.record.state, .rolledBack)
        // Shadow moves on only after min-requests compared.
        var s = RolloutMachine(record: RolloutRecord(stable: "v1"))
        var sp = plan()
        sp.shadowSeconds = 1
        _ = try s.start(sp, workerCount: 2, now: 0)
        XCTAssertEqual(s.desiredShadow, "v2")
        XCTAssertEqual(s.desiredSplit, ["v1": 1])
        var o = observation([worker(1, "v2"), worker(2, "v1")], at: 5)
        o.shadowCompared = 10
        _ = observed(&s, o)
        XCTAssertEqual(s.record.stage, .shadow, "10 copies compared are not enough to judge")
        o.shadowCompared = 50
        o.now = 6
        _ = observed(&s, o)
        XCTAssertEqual(s.record.stage, .canary)
        XCTAssertNil(s.desiredShadow)
    }

    /// A router restart (a new window epoch, workers gone a moment and back under new socket identities) and a
    /// worker reconnect mid-step: no rollback, the reset is asked for again, and the step is judged only on the
    /// window it opened.
    func testRouterRestartAndReconnect_midStep_noSpuriousRollback() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let moved = try XCTUnwrap(loads(observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 1)).first?.0)
        let onV2 = moved == "w1" ? [worker(1, "v2"), worker(2, "v1")] : [worker(1, "v1"), worker(2, "v2")]
        _ = observe(&m, onV2, at: 2)
        let judged = try XCTUnwrap(m.judgedEpoch)
        // The router restarts: for a few ticks it has no workers, then they reconnect (new identities, same names)
        // and its window has another epoch, whose figures are not the step's.
        var a = m.observe(PoolObservation(workers: [], window: [:], windowEpoch: 77, now: 3))
        XCTAssertEqual(m.record.state, .running)
        XCTAssertTrue(a.contains(.resetWindow), "the reset is sent again when the router shows another window")
        XCTAssertNil(m.judgedEpoch)
        XCTAssertTrue(loads(a).isEmpty, "nothing moves while the pool is not in view")
        let back = onV2.map { worker(Int(String($0.name.dropFirst()))!, $0.version, connection: "b") }
        // Figures of a window the step did not open are never judged, however bad.
        a = m.observe(PoolObservation(workers: back, window: ["v2": fig(requests: 500, errors: 500, p99Ms: 1)], windowEpoch: 77, now: 5))
        XCTAssertEqual(m.record.state, .running, "a foreign window's errors are not the step's")
        XCTAssertTrue(a.contains(.resetWindow))
        _ = m.windowOpened(judged + 1)
        a = m.observe(PoolObservation(workers: back, window: ["v2": fig(requests: 60, errors: 0, p99Ms: 1)], windowEpoch: judged + 1, now: 12))
        XCTAssertEqual(m.record.state, .running)
        XCTAssertEqual(splits(a).count, 1, "judged on its own window, the step moves on")
        XCTAssertEqual(m.record.stage, .step)
    }

    /// A worker that restarted while serving the new version comes back on the live one (the supervisor restarts it
    /// from the record): it died on the new version.
    func testTargetWorkerBackOnAnotherVersion_rollsBack() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let moved = try XCTUnwrap(loads(observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 1)).first?.0)
        let onV2 = moved == "w1" ? [worker(1, "v2"), worker(2, "v1")] : [worker(1, "v1"), worker(2, "v2")]
        _ = observe(&m, onV2, at: 2)
        _ = observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 3)
        XCTAssertEqual(m.record.state, .rolledBack)
        XCTAssertTrue(m.record.reason.contains("\(moved) died while serving v2"), m.record.reason)
    }

    /// One request lost to a worker that stalled past the liveness timeout is not a failing release; workers of the
    /// new version that keep dying are, whatever the error rate.
    func testLostRequests_oneIsNoise_threeRollBack() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let moved = try XCTUnwrap(loads(observe(&m, [worker(1, "v1"), worker(2, "v1")], at: 1)).first?.0)
        let onV2 = moved == "w1" ? [worker(1, "v2"), worker(2, "v1")] : [worker(1, "v1"), worker(2, "v2")]
        _ = observe(&m, onV2, ["v2": fig(requests: 60, errors: 0, p99Ms: 1, lost: 1)], at: 2)
        XCTAssertEqual(m.record.state, .running)
        _ = observe(&m, onV2, ["v2": fig(requests: 60, errors: 0, p99Ms: 1, lost: 3)], at: 3)
        XCTAssertEqual(m.record.state, .rolledBack)
        XCTAssertTrue(m.record.reason.contains("3 v2 workers died with requests in flight"), m.record.reason)
    }

    /// The router restarts while a worker loads the new version: the worker reconnects (a new socket identity) still
    /// on the old version; the order is given again instead of being judged a failed load.
    func testRouterRestartDuringALoad_reordersIt() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        _ = try m.start(plan(), workerCount: 2, now: 0)
        let pool = [worker(1, "v1"), worker(2, "v1")]
        let moved = try XCTUnwrap(loads(observe(&m, pool, at: 1)).first?.0)
        let draining = pool.map { $0.name == moved ? WorkerStatus(id: $0.id, name: $0.name, version: "v1", state: .draining, inFlight: 1) : $0 }
        _ = observe(&m, draining, at: 2)
        // Back after the restart: new identities, ready, on v1.
        let a = observe(&m, [worker(1, "v1", connection: "b"), worker(2, "v1", connection: "b")], at: 5)
        XCTAssertEqual(m.record.state, .running, m.record.reason)
        XCTAssertEqual(loads(a).map(\.0), [moved], "the load is ordered again")
        _ = observe(&m, [worker(1, moved == "w1" ? "v2" : "v1", connection: "b"), worker(2, moved == "w2" ? "v2" : "v1", connection: "b")], at: 6)
        XCTAssertEqual(m.record.state, .running)
    }

    /// While a worker seen moments ago is out of view, nothing moves: with 3 workers at 50% two should serve v2, and
    /// a live-version worker briefly missing must not make the machine move a v2 worker back.
    func testMissingWorker_holdsReconcile_untilBackOrGone() throws {
        var m = RolloutMachine(record: RolloutRecord(stable: "v1"))
        var p = plan()
        p.canary = 0.5
        _ = try m.start(p, workerCount: 3, now: 0)
        let full = [worker(1, "v2"), worker(2, "v2"), worker(3, "v1")]
        XCTAssertTrue(loads(observe(&m, full, at: 1)).isEmpty, "2 of 3 on v2 is what 50% asks")
        XCTAssertTrue(loads(observe(&m, Array(full.prefix(2)), at: 2)).isEmpty, "w3 missing: hold")
        XCTAssertTrue(loads(observe(&m, full, at: 3)).isEmpty, "w3 back: still nothing to move")
        // Gone for longer than the grace time: the pool is 2 workers now, and 50% of 2 is 1 on v2.
        _ = observe(&m, Array(full.prefix(2)), at: 4)
        XCTAssertEqual(loads(observe(&m, Array(full.prefix(2)), at: 20)).map(\.1), ["v1"])
    }
}
