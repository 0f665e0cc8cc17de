import Foundation
import Protocol
import SwiftProtobuf
import XCTest
import _TestSupport

/// The admin socket and `zrankctl status|pin|unpin` against a pool whose workers serve two versions.
final class AdminTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }
    private var zrankctl: String { TestPaths.productsDirectory.appendingPathComponent("zrankctl").path }

    private func ctl(_ args: [String]) throws -> (status: Int32, output: String) { try RealModel.run(zrankctl, args) }

    private func versions(_ client: PoolClient, _ n: Int, startID: UInt64) throws -> [String] {
        var r = Zrank_V1_RankRequest()
        r.query = "lamp"
        r.candidateIds = Array(fixture.itemIDs.prefix(3))
        let body: [UInt8] = try r.serializedBytes()
        var out: [String] = []
        for i in 0..<n {
            try client.send(type: .rankRequest, requestID: startID + UInt64(i), body: body)
            guard let a = try client.receive(timeoutMs: 5000), a.header.type == .rankResponse else {
                XCTFail("no ranked answer")
                return out
            }
            out.append(try Zrank_V1_RankResponse(serializedBytes: a.body).modelVersion)
        }
        return out
    }

    func testStatusPinUnpin_withTwoVersionsLive() throws {
        let endpoint = fixture.ipcEndpoint("admin-front")
        let backend = fixture.ipcEndpoint("admin-back")
        let admin = fixture.ipcEndpoint("admin")
        let pool = try ZRankProcess(["serve", "--model", fixture.model, "--index", fixture.index, "--workers", "1",
                                     "--bind", endpoint, "--backend", backend, "--admin", admin])
        let extra = try ZRankProcess(["worker", "--model", fixture.model, "--index", fixture.index, "--connect", backend,
                                      "--version", "tiny-v2", "--id", "canary"])
        // Wait for both workers.
        let start = Date()
        var status: [String: Any] = [:]
        while Date().timeIntervalSince(start) < 20 {
            let r = try ctl(["status", "--admin", admin, "--json"])
            if r.status == 0, let s = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any],
                (s["workers"] as? [[String: Any]])?.filter({ $0["state"] as? String == "ready" }).count == 2
            {
                status = s
                break
            }
            usleep(200_000)
        }
        let workers = try XCTUnwrap(status["workers"] as? [[String: Any]], pool.output + extra.output)
        XCTAssertEqual(Set(workers.compactMap { $0["version"] as? String }), ["tiny-v1", "tiny-v2"])
        XCTAssertTrue(workers.allSatisfy { $0["state"] as? String == "ready" })
        XCTAssertEqual((status["traffic"] as? [String: Double])?["tiny-v2"] ?? 0, 0.5, accuracy: 1e-9)

        let client = try PoolClient(endpoint: endpoint)
        XCTAssertEqual(Set(try versions(client, 8, startID: 1)), ["tiny-v1", "tiny-v2"])
        var r = try ctl(["pin", "tiny-v2", "--admin", admin])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(Set(try versions(client, 8, startID: 100)), ["tiny-v2"])
        r = try ctl(["status", "--admin", admin, "--json"])
        let pinned = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as! [String: Any]
        XCTAssertEqual(pinned["traffic"] as? [String: Double], ["tiny-v2": 1])
        let stats = pinned["versions"] as! [String: [String: Any]]
        XCTAssertGreaterThanOrEqual(stats["tiny-v2"]?["requests"] as? Int ?? 0, 8)
        XCTAssertNotNil(stats["tiny-v2"]?["p99_ms"])
        r = try ctl(["pin", "no-such", "--admin", admin])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.output.contains("no live worker serves"), r.output)
        XCTAssertEqual(try ctl(["unpin", "--admin", admin]).status, 0)
        XCTAssertEqual(Set(try versions(client, 8, startID: 200)), ["tiny-v1", "tiny-v2"])
        let human = try ctl(["status", "--admin", admin])
        XCTAssertTrue(human.output.contains("versions:"), human.output)
        // The same admin socket from Python, with the package's admin client and nothing but PROTOCOL.md's schema.
        let python = TestPaths.packageRoot.appendingPathComponent(".venv-test/bin/python").path
        if FileManager.default.isExecutableFile(atPath: python) {
            let script = TestPaths.packageRoot.appendingPathComponent("proto/python/tests/drive_admin.py").path
            let py = try RealModel.run(python, [script, admin, "tiny-v1", "tiny-v2"])
            XCTAssertEqual(py.status, 0, py.output)
            XCTAssertTrue(py.output.contains("python admin client: ok: metrics text"), py.output)
        } else {
            print(String(repeating: "!", count: 78) + "\nPython admin client check SKIPPED: run scripts/python-env.sh (make test does)\n")
        }
        XCTAssertNotNil(extra.terminate(within: 5))
        XCTAssertNotNil(pool.terminate(within: 5))
        let unreachable = try ctl(["status", "--admin", fixture.ipcEndpoint("nobody"), "--timeout-ms", "300"])
        XCTAssertEqual(unreachable.status, 2)
    }

    private func control(_ endpoint: String, _ request: [String: Any]) throws -> [String: Any] {
        let socket = try ZMQSocket(ZMQContext(), type: .dealer)
        try socket.connect(endpoint)
        try socket.send([FrameHeader(type: .control, requestID: 1).bytes, Array(try JSONSerialization.data(withJSONObject: request))])
        guard try ZMQPoller.poll([socket], timeoutMs: 3000)[0], let frames = try socket.receive(dontWait: true) else { return [:] }
        return try JSONSerialization.jsonObject(with: Data(frames[1])) as! [String: Any]
    }

    /// A registry with the fixture model as tiny-v1 and tiny-v2, plus two versions an attacker prepared: one whose
    /// model file is a FIFO, one whose heads file is a symlink to /dev/zero.
    private func hostileRegistry() throws -> String {
        let registry = fixture.directory.appendingPathComponent("load-registry-\(UUID().uuidString)").path
        for name in ["tiny-v1", "tiny-v2"] {
            let r = try RealModel.run(fixture.zrank, ["registry", "add", "--registry", registry, "--version", name, "--model", fixture.model, "--catalog", fixture.catalog])
            XCTAssertEqual(r.status, 0, r.output)
        }
        let fm = FileManager.default
        for name in ["fifo-v", "zero-v"] {
            let folder = registry + "/" + name
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try fm.copyItem(atPath: registry + "/tiny-v1/manifest.json", toPath: folder + "/manifest.json")
            try fm.copyItem(atPath: registry + "/tiny-v1/catalog.zri", toPath: folder + "/catalog.zri")
        }
        XCTAssertEqual(mkfifo(registry + "/fifo-v/model.zrm", 0o600), 0)
        try fm.copyItem(atPath: registry + "/tiny-v1/model.zrm", toPath: registry + "/zero-v/model.zrm")
        try fm.createSymbolicLink(atPath: registry + "/zero-v/heads.json", withDestinationPath: "/dev/zero")
        return registry
    }

    /// A worker drains, loads another registry version in place (named, never a path), passes its smoke set and
    /// returns to the pool while traffic keeps flowing with no failed request; loads with a path, a name that
    /// leaves the registry, a FIFO model or /dev/zero heads are refused and the worker keeps serving.
    func testLoadInPlace_fromTheRegistry_underTraffic_noFailedRequest_hostileLoadsRefused() throws {
        let registry = try hostileRegistry()
        let endpoint = fixture.ipcEndpoint("load-front")
        let backend = fixture.ipcEndpoint("load-back")
        let controlEndpoint = fixture.ipcEndpoint("load-control")
        let router = try ZRankProcess(["router", "--bind", endpoint, "--backend", backend, "--control", controlEndpoint])
        let workers = try ["w1", "w2"].map {
            try ZRankProcess(["worker", "--registry", registry, "--version", "tiny-v1", "--connect", backend, "--id", $0])
        }
        func output() -> String { ([router] + workers).map(\.output).joined(separator: "\n") }
        var status: [String: Any] = [:]
        let start = Date()
        while Date().timeIntervalSince(start) < 20 {
            status = (try? control(controlEndpoint, ["op": "status"])) ?? [:]
            if (status["workers"] as? [[String: Any]])?.filter({ $0["state"] as? String == "ready" }).count == 2 { break }
            usleep(200_000)
        }
        XCTAssertEqual((status["workers"] as? [[String: Any]])?.count, 2, output())
        let client = try PoolClient(endpoint: endpoint)
        var r = Zrank_V1_RankRequest()
        r.query = "lamp"
        r.candidateIds = Array(fixture.itemIDs.prefix(3))
        let body: [UInt8] = try r.serializedBytes()
        var seen: [String: Int] = [:]
        var failures = 0
        var loadSent = false
        var id: UInt64 = 0
        let t0 = Date()
        while Date().timeIntervalSince(t0) < 6 {
            id += 1
            try client.send(type: .rankRequest, requestID: id, body: body)
            guard let a = try client.receive(timeoutMs: 5000) else { failures += 1; continue }
            if a.header.type == .rankResponse {
                seen[try Zrank_V1_RankResponse(serializedBytes: a.body).modelVersion, default: 0] += 1
            } else {
                failures += 1
            }
            if !loadSent && id == 20 {
                let answer = try control(controlEndpoint, ["op": "load", "worker": "w1", "version": "tiny-v2"])
                XCTAssertEqual(answer["ok"] as? Bool, true, "\(answer)")
                loadSent = true
            }
        }
        XCTAssertEqual(failures, 0, "no failed or lost request during the load")
        XCTAssertGreaterThan(seen["tiny-v1"] ?? 0, 0)
        XCTAssertGreaterThan(seen["tiny-v2"] ?? 0, 0, "the reloaded worker answers as tiny-v2: \(seen)")
        func w1() throws -> [String: Any]? {
            (try control(controlEndpoint, ["op": "status"])["workers"] as? [[String: Any]])?.first { $0["name"] as? String == "w1" }
        }
        XCTAssertEqual(try w1()?["version"] as? String, "tiny-v2")

        // Refused by the router: a path, a name that leaves the registry.
        for (request, why) in [
            (["op": "load", "worker": "w1", "version": "tiny-v1", "model": "/tmp/evil.zrm"], "never a path"),
            (["op": "load", "worker": "w1", "version": "../tiny-v1"], "invalid version name"),
        ] as [([String: Any], String)] {
            let answer = try control(controlEndpoint, request)
            XCTAssertEqual(answer["code"] as? String, "invalid_request", "\(answer)")
            XCTAssertTrue((answer["error"] as? String ?? "").contains(why), "\(answer)")
        }
        // Refused by the worker, which keeps serving tiny-v2: a FIFO model (without blocking on it), /dev/zero heads.
        for (version, why) in [("fifo-v", "not a regular file"), ("zero-v", "not a regular file")] {
            let before = output().components(separatedBy: "load failed; keeping the current version").count
            XCTAssertEqual(try control(controlEndpoint, ["op": "load", "worker": "w1", "version": version])["ok"] as? Bool, true)
            let waitStart = Date()
            while output().components(separatedBy: "load failed; keeping the current version").count == before && Date().timeIntervalSince(waitStart) < 5 {
                usleep(100_000)
            }
            XCTAssertGreaterThan(output().components(separatedBy: "load failed; keeping the current version").count, before, "\(version): \(output())")
            XCTAssertTrue(output().contains(why), output())
            var back: [String: Any]?
            let readyStart = Date()
            repeat {
                back = try w1()
                usleep(100_000)
            } while back?["state"] as? String != "ready" && Date().timeIntervalSince(readyStart) < 5
            XCTAssertEqual(back?["version"] as? String, "tiny-v2", "\(version) left the worker on tiny-v2")
        }
        try client.send(type: .rankRequest, requestID: 9999, body: body)
        XCTAssertEqual(try client.receive(timeoutMs: 5000)?.header.type, .rankResponse, "the pool still ranks")

        // Through the coordinator, rolling out the hostile versions is refused before any worker is touched.
        let admin = fixture.ipcEndpoint("load-admin")
        let pool = try ZRankProcess(["serve", "--registry", registry, "--version", "tiny-v1", "--workers", "1",
                                     "--bind", fixture.ipcEndpoint("load-front2"), "--admin", admin])
        XCTAssertNotNil(fixture.waitForStatus(admin, seconds: 20) { ($0["workers"] as? [[String: Any]])?.first?["state"] as? String == "ready" }, pool.output)
        for (version, why) in [("fifo-v", "not a regular file"), ("zero-v", "not a regular file"), ("../tiny-v2", "invalid version name")] {
            let refused = try ctl(["--admin", admin, "rollout", version])
            XCTAssertEqual(refused.status, 1, refused.output)
            XCTAssertTrue(refused.output.contains(why), refused.output)
        }
        XCTAssertEqual(try ctl(["--admin", admin, "status"]).status, 0)
        XCTAssertNotNil(pool.terminate(within: 8))
        for w in workers { XCTAssertNotNil(w.terminate(within: 5)) }
        XCTAssertNotNil(router.terminate(within: 5))
    }
}
