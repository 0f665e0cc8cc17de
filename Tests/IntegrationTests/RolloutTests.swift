import Foundation
import Protocol
import SwiftProtobuf
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Rollouts through the coordinator on real pools (router, workers and coordinator as processes) under
/// `zrank-bench` load: a clean v1 → v2 rollout with shadow scoring and a coordinator restart, and bad versions
/// (failing, slow) that roll back by themselves.
final class RolloutTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }
    private var zrankctl: String { fixture.zrankctl }
    private var bench: String { TestPaths.productsDirectory.appendingPathComponent("zrank-bench").path }

    /// A registry holding the fixture model as tiny-v1 and tiny-v2.
    private func makeRegistry() throws -> String {
        let registry = fixture.directory.appendingPathComponent("rollout-registry-\(UUID().uuidString)").path
        for name in ["tiny-v1", "tiny-v2"] {
            let r = try RealModel.run(fixture.zrank, [
                "registry", "add", "--registry", registry, "--version", name, "--model", fixture.model, "--catalog", fixture.catalog,
            ])
            XCTAssertEqual(r.status, 0, r.output)
        }
        return registry
    }

    private func rollout(_ s: [String: Any]?) -> [String: Any] { s?["rollout"] as? [String: Any] ?? [:] }

    private func readyWorkers(_ s: [String: Any]) -> [[String: Any]] {
        (s["workers"] as? [[String: Any]] ?? []).filter { $0["state"] as? String == "ready" }
    }

    /// `zrank-bench` in the background, open loop.
    private func startBench(_ endpoint: String, rate: Int, seconds: Int, json: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bench)
        p.arguments = [
            "--endpoint", endpoint, "--rate", "\(rate)", "--duration", "\(seconds)s", "--connections", "32", "--candidates", "20",
            "--timeout", "5s", "--json", json,
        ]
        let log = fixture.directory.appendingPathComponent("bench-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    private func httpGet(_ url: String) throws -> String {
        let script = "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
        let r = try RealModel.run("python3", ["-c", script, url])
        XCTAssertEqual(r.status, 0, r.output)
        return r.output
    }

    func testRollout_underLoad_noFailedRequest_versionsSwitch_survivesCoordinatorRestart() throws {
        let registry = try makeRegistry()
        let endpoint = fixture.ipcEndpoint("rollout-front")
        let admin = fixture.ipcEndpoint("rollout-admin")
        let metricsPort = Int.random(in: 20_000...60_000)
        let pool = try ZRankProcess([
            "serve", "--registry", registry, "--version", "tiny-v1", "--workers", "2", "--bind", endpoint, "--admin", admin,
            "--metrics", "127.0.0.1:\(metricsPort)",
        ])
        XCTAssertTrue(try pool.waitUntilServing(endpoint), pool.output)
        XCTAssertNotNil(fixture.waitForStatus(admin, seconds: 20) { self.readyWorkers($0).count == 2 }, pool.output)

        let out = fixture.directory.appendingPathComponent("rollout-\(UUID().uuidString).json").path
        let load = try startBench(endpoint, rate: 100, seconds: 28, json: out)
        sleep(3)
        // The documented form: connection options before the subcommand.
        var r = try RealModel.run(zrankctl, [
            "--admin", admin, "rollout", "tiny-v2", "--shadow", "3s", "--canary", "25%", "--step", "50%", "--interval", "2s",
            "--min-requests", "30", "--max-p99", "2000",
        ])
        XCTAssertEqual(r.status, 0, r.output)
        // A second rollout while one runs is refused with the reason.
        r = try RealModel.run(zrankctl, ["rollout", "tiny-v1", "--admin", admin])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.output.contains("is running"), r.output)

        // Shadow: the same model under another name agrees exactly with the live version.
        let shadowed = fixture.waitForStatus(admin, seconds: 15) { s in
            (s["shadow"] as? [String: Any])?["requests"] as? Int ?? 0 >= 20
        }
        let shadow = try XCTUnwrap(shadowed?["shadow"] as? [String: Any], pool.output)
        XCTAssertEqual(shadow["version"] as? String, "tiny-v2")
        XCTAssertEqual(shadow["top10_overlap"] as? Double ?? 0, 1, accuracy: 1e-9)
        XCTAssertEqual(shadow["rank_correlation"] as? Double ?? 0, 1, accuracy: 1e-9)

        // Mid-rollout, the coordinator dies; the supervisor restarts it and it resumes from rollout.json.
        let step = fixture.waitForStatus(admin, seconds: 20) { self.rollout($0)["stage"] as? String == "canary" }
        XCTAssertNotNil(step, pool.output)
        let coordinator = try XCTUnwrap(pool.childPIDs().first { ZRankProcess.commandLine($0).contains(" coordinator ") })
        kill(coordinator, SIGKILL)
        usleep(300_000)
        XCTAssertNotNil(fixture.waitForStatus(admin, seconds: 10) { self.rollout($0)["state"] as? String == "running" }, "resumed: \(pool.output)")

        let done = fixture.waitForStatus(admin, seconds: 40) { self.rollout($0)["state"] as? String == "done" }
        let final = try XCTUnwrap(done, "rollout did not finish: \(pool.output)")
        XCTAssertEqual(rollout(final)["target"] as? String, "tiny-v2")
        XCTAssertEqual(Set((final["workers"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? String }), ["tiny-v2"])
        let history = rollout(final)["history"] as? [String] ?? []
        XCTAssertTrue(history.contains { $0.hasPrefix("canary: tiny-v2 gets 25%") }, "\(history)")
        XCTAssertTrue(history.contains { $0.hasPrefix("step: tiny-v2 gets 75%") }, "\(history)")
        XCTAssertTrue(history.contains { $0.hasPrefix("step: tiny-v2 gets 100%") }, "\(history)")

        // A worker that dies after the rollout comes back on v2 (it reads the rollout record), never on v1.
        let victim = try XCTUnwrap(pool.childPIDs().first { ZRankProcess.commandLine($0).contains(" worker ") })
        kill(victim, SIGKILL)
        let restartStart = Date()
        var sawV1 = false
        var back = false
        while Date().timeIntervalSince(restartStart) < 15 && !back {
            if let s = fixture.adminStatus(admin) {
                let workers = s["workers"] as? [[String: Any]] ?? []
                sawV1 = sawV1 || workers.contains { $0["version"] as? String == "tiny-v1" }
                back = Date().timeIntervalSince(restartStart) > 4 && readyWorkers(s).count == 2
            }
            usleep(100_000)
        }
        XCTAssertTrue(back, "the killed worker came back: \(pool.output)")
        XCTAssertFalse(sawV1, "the restarted worker came back on tiny-v2")

        // Metrics while the pool runs.
        let metrics = try httpGet("http://127.0.0.1:\(metricsPort)/metrics")
        for needle in [
            "zrank_requests_total{version=\"tiny-v2\",outcome=\"OK\"}", "zrank_queue_time_seconds_bucket",
            "zrank_compute_time_seconds_bucket{version=\"tiny-v2\"", "zrank_queue_depth_requests", "zrank_in_flight_requests",
            "zrank_workers_count{state=\"ready\"} 2", "zrank_rollout_state_info{state=\"done\"} 1", "zrank_traffic_share_ratio",
        ] {
            XCTAssertTrue(metrics.contains(needle), "metrics lack \(needle):\n\(metrics)")
        }

        load.waitUntilExit()
        XCTAssertEqual(load.terminationStatus, 0)
        let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        let sent = j["sent"] as! Int
        XCTAssertGreaterThan(sent, 2000)
        XCTAssertEqual(j["ok"] as? Int, sent, "every request answered with a ranking: \(j["errors"] ?? "") timeouts \(j["client_timeouts"] ?? "")")
        XCTAssertEqual((j["errors"] as? [String: Int])?.values.reduce(0, +), 0)
        XCTAssertEqual(j["client_timeouts"] as? Int, 0)
        let timeline = j["timeline"] as! [[String: Any]]
        let first = timeline.first!["versions"] as! [String: Int]
        let last = timeline.last!["versions"] as! [String: Int]
        XCTAssertEqual(Set(first.keys), ["tiny-v1"], "before the rollout only v1 answers")
        XCTAssertEqual(Set(last.keys), ["tiny-v2"], "after it only v2 answers")
        let mixed = timeline.filter { ($0["versions"] as! [String: Int]).count == 2 }
        XCTAssertFalse(mixed.isEmpty, "a stretch where the split served both")

        // The finished rollout is persisted: a restarted pool serves v2 although asked for v1.
        XCTAssertNotNil(pool.terminate(within: 8))
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: registry + "/rollout.json"))) as! [String: Any]
        XCTAssertEqual(saved["state"] as? String, "done")
        XCTAssertEqual(saved["stable"] as? String, "tiny-v2")
        let again = try ZRankProcess(["serve", "--registry", registry, "--version", "tiny-v1", "--workers", "1", "--bind", endpoint, "--admin", admin])
        XCTAssertTrue(try again.waitUntilServing(endpoint), again.output)
        let s = try XCTUnwrap(fixture.waitForStatus(admin, seconds: 10) { self.readyWorkers($0).count == 1 })
        XCTAssertEqual(readyWorkers(s).first?["version"] as? String, "tiny-v2")
        XCTAssertNotNil(again.terminate(within: 8))
    }

    /// v2 is bad (the worker fault flags, applied only while serving tiny-v2): failing, then slow. Each rollout rolls
    /// back by itself, says why in `zrankctl status` and the log, and the workers return to v1.
    func testBadVersion_rollsBackByItself() throws {
        for (faults, expected) in [
            (["ZRANK_FAULT_FAIL_EVERY": "4"], "error rate"),
            (["ZRANK_FAULT_STALL_MS": "80"], "3× the live p99"),
        ] {
            let registry = try makeRegistry()
            let endpoint = fixture.ipcEndpoint("bad-front")
            let admin = fixture.ipcEndpoint("bad-admin")
            let pool = try ZRankProcess(
                ["serve", "--registry", registry, "--version", "tiny-v1", "--workers", "2", "--bind", endpoint, "--admin", admin],
                environment: faults.merging(["ZRANK_FAULT_VERSION": "tiny-v2"]) { $1 })
            XCTAssertTrue(try pool.waitUntilServing(endpoint), pool.output)
            XCTAssertNotNil(fixture.waitForStatus(admin, seconds: 20) { self.readyWorkers($0).count == 2 }, pool.output)
            let out = fixture.directory.appendingPathComponent("bad-\(UUID().uuidString).json").path
            let load = try startBench(endpoint, rate: 80, seconds: 14, json: out)
            sleep(2)
            let r = try RealModel.run(zrankctl, [
                "rollout", "tiny-v2", "--admin", admin, "--canary", "50%", "--interval", "30s", "--min-requests", "40",
            ])
            XCTAssertEqual(r.status, 0, r.output)
            let back = fixture.waitForStatus(admin, seconds: 25) { self.rollout($0)["state"] as? String == "rolled_back" }
            let s = try XCTUnwrap(back, "no rollback for \(faults): \(pool.output)")
            let reason = rollout(s)["reason"] as? String ?? ""
            XCTAssertTrue(reason.contains(expected), "\(faults): \(reason)")
            XCTAssertEqual(s["traffic"] as? [String: Double], ["tiny-v1": 1])
            let human = try RealModel.run(zrankctl, ["--admin", admin, "status"])
            XCTAssertTrue(human.output.contains("rollout: rolled_back") && human.output.contains(expected), human.output)
            XCTAssertNotNil(
                fixture.waitForStatus(admin, seconds: 20) { s in
                    let w = self.readyWorkers(s)
                    return w.count == 2 && w.allSatisfy { $0["version"] as? String == "tiny-v1" }
                }, "workers back on v1: \(pool.output)")
            XCTAssertTrue(pool.output.contains("rolled back tiny-v2 to tiny-v1"), pool.output)
            load.waitUntilExit()
            let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
            let sent = j["sent"] as! Int
            let ok = j["ok"] as! Int
            let errors = (j["errors"] as! [String: Int]).values.reduce(0, +)
            XCTAssertEqual(sent, ok + errors + (j["client_timeouts"] as! Int), "every request answered or refused explicitly")
            XCTAssertNotNil(pool.terminate(within: 8))
        }
    }

    /// Mid-step, the router is SIGKILLed (the supervisor restarts it: no split, no shadow, a new judging window,
    /// every worker reconnects under a new socket identity) and later the new version's worker stalls past the
    /// liveness timeout and reconnects. Neither is a death: the rollout carries on, is judged only on windows it
    /// opened, and finishes with no rollback.
    func testRollout_survivesRouterRestartAndWorkerReconnect_midStep() throws {
        let registry = try makeRegistry()
        let endpoint = fixture.ipcEndpoint("restart-front")
        let admin = fixture.ipcEndpoint("restart-admin")
        let pool = try ZRankProcess([
            "serve", "--registry", registry, "--version", "tiny-v1", "--workers", "2", "--bind", endpoint, "--admin", admin,
        ])
        XCTAssertTrue(try pool.waitUntilServing(endpoint), pool.output)
        XCTAssertNotNil(fixture.waitForStatus(admin, seconds: 20) { self.readyWorkers($0).count == 2 }, pool.output)
        let out = fixture.directory.appendingPathComponent("restart-\(UUID().uuidString).json").path
        let load = try startBench(endpoint, rate: 100, seconds: 40, json: out)
        sleep(2)
        let r = try RealModel.run(zrankctl, [
            "--admin", admin, "rollout", "tiny-v2", "--canary", "50%", "--step", "50%", "--interval", "8s", "--min-requests", "30",
            "--max-p99", "2000",
        ])
        XCTAssertEqual(r.status, 0, r.output)
        // The canary worker serves v2.
        let canary = try XCTUnwrap(fixture.waitForStatus(admin, seconds: 20) { s in
            self.rollout(s)["stage"] as? String == "canary" && self.readyWorkers(s).contains { $0["version"] as? String == "tiny-v2" }
        }, pool.output)
        let epochBefore = try XCTUnwrap(canary["window_epoch"] as? UInt64)
        // Through the admin socket, the operations a rollout owns are refused while it runs.
        let channel = try AdminChannel(context: ZMQContext(), endpoint: admin)
        for request: AdminRequest in [.split(weights: ["tiny-v1": 1]), .shadow(version: "tiny-v2"), .drain(worker: "w1", on: true), .windowReset] {
            XCTAssertThrowsError(try channel.call(request, expecting: AdminReply.self, timeoutMs: 3000), "\(request.op)") { error in
                guard case .refused(let code, let message) = error as? AdminCallError else { return XCTFail("\(error)") }
                XCTAssertEqual(code, .conflict, message)
            }
        }
        let canaryName = try XCTUnwrap(readyWorkers(canary).first { $0["version"] as? String == "tiny-v2" }?["name"] as? String)

        // The router dies; the supervisor starts another.
        let router = try XCTUnwrap(pool.childPIDs().first { ZRankProcess.commandLine($0).contains(" router ") })
        kill(router, SIGKILL)
        let rejoined = fixture.waitForStatus(admin, seconds: 20) { s in
            self.readyWorkers(s).count == 2 && (s["window_epoch"] as? UInt64) != epochBefore
                && (s["coordinator"] as? [String: Any])?["judged_epoch"] as? UInt64 == s["window_epoch"] as? UInt64
        }
        let afterRestart = try XCTUnwrap(rejoined, "workers back on the new router, a new window opened and judged: \(pool.output)")
        XCTAssertEqual(rollout(afterRestart)["state"] as? String, "running", "\(rollout(afterRestart))")
        XCTAssertEqual((afterRestart["traffic"] as? [String: Double])?["tiny-v2"] ?? 0, 0.5, accuracy: 1e-9, "the split is put back")
        XCTAssertEqual(readyWorkers(afterRestart).first { $0["name"] as? String == canaryName }?["version"] as? String, "tiny-v2")

        // The canary worker stalls past the 3 s liveness timeout, then reconnects under the same name.
        let stalled = try XCTUnwrap(pool.childPIDs().first { ZRankProcess.commandLine($0).contains("--id=\(canaryName)") })
        kill(stalled, SIGSTOP)
        sleep(4)
        kill(stalled, SIGCONT)

        let finished = fixture.waitForStatus(admin, seconds: 45) { s in
            let state = self.rollout(s)["state"] as? String
            return state == "done" || state == "rolled_back"
        }
        let final = try XCTUnwrap(finished, "the rollout did not end: \(pool.output)")
        XCTAssertEqual(rollout(final)["state"] as? String, "done", "no spurious rollback: \(rollout(final))")
        let history = rollout(final)["history"] as? [String] ?? []
        XCTAssertFalse(history.contains { $0.contains("rolled back") || $0.contains("died") }, "\(history)")
        XCTAssertEqual(Set(readyWorkers(final).compactMap { $0["version"] as? String }), ["tiny-v2"])
        XCTAssertGreaterThanOrEqual(final["workers_lost"] as? Int ?? 0, 1, "the router saw the stalled worker go")
        load.waitUntilExit()
        XCTAssertNotNil(pool.terminate(within: 8))
    }
}
