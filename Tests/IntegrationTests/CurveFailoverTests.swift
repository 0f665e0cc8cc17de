import Foundation
import Protocol
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// CURVE on tcp endpoints (keys per domain: clients, workers, operators) and two active-active routers with client
/// failover, with the real binaries: `zrank keygen`, `zrank router`, `zrank worker --connect E1,E2`, `zrank query`,
/// `zrankctl`, `zrank-bench --endpoint E1,E2` and the Python client.
final class CurveFailoverTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }
    private var python: String { TestPaths.packageRoot.appendingPathComponent(".venv-test/bin/python").path }

    private func makeKeys(_ name: String) throws -> CurveKeyFiles { try CurveKeyFiles.make(name) }

    private func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try RealModel.run(program, arguments)
    }

    func testKeygen_writesASecretOnlyItsOwnerReads_andNeverOverwrites() throws {
        let keys = try makeKeys("keygen")
        let attributes = try FileManager.default.attributesOfItem(atPath: keys.serverKey)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let pub = try String(contentsOfFile: keys.serverPub, encoding: .utf8)
        let line = try XCTUnwrap(pub.split(separator: "\n").first { !$0.hasPrefix("#") })
        XCTAssertNotNil(CurvePublicKey(z85: String(line)), pub)
        // The public file is the public half of the secret.
        XCTAssertEqual(try CurveKeyPair.load(keys.serverKey).publicKey, try CurvePublicKey.load(keys.serverPub))
        let again = try run(fixture.zrank, ["keygen", "--out", keys.folder.appendingPathComponent("server").path])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("refusing to overwrite"), again.output)
        // A secret others can read is refused where it is used.
        chmod(keys.clientKey, 0o644)
        let open = try run(fixture.zrank, ["query", "--endpoint", "tcp://127.0.0.1:1", "--text", "x"] + keys.client(keys.clientKey))
        XCTAssertNotEqual(open.status, 0)
        XCTAssertTrue(open.output.contains("chmod 600"), open.output)
    }

    func testCurve_admitsListedKeysPerDomain_andRefusesEverythingElseWithAReason() throws {
        let keys = try makeKeys("curve")
        let (front, back, control) = (fixture.tcpEndpoint(), fixture.tcpEndpoint(), fixture.tcpEndpoint())
        let router = try ZRankProcess(["router", "--bind", front, "--backend", back, "--control", control] + keys.serverOptions)
        let worker = try ZRankProcess(
            ["worker", "--model", fixture.model, "--index", fixture.index, "--connect", back, "--id", "good"] + keys.client(keys.workerKey))
        // A client key cannot register as a worker.
        let intruder = try ZRankProcess(
            ["worker", "--model", fixture.model, "--index", fixture.index, "--connect", back, "--id", "intruder"] + keys.client(keys.clientKey))
        let curve = try CurveClientKeys.load(server: keys.serverPub, key: keys.clientKey)
        XCTAssertTrue(try worker.waitUntilServing(front, curve: curve), router.output + worker.output)

        let ranked = try run(fixture.zrank, ["query", "--endpoint", front, "--text", "modern chair", "--top-k", "3"] + keys.client(keys.clientKey))
        XCTAssertEqual(ranked.status, 0, ranked.output)

        let plain = try run(fixture.zrank, ["query", "--endpoint", front, "--text", "chair", "--timeout", "1s"])
        XCTAssertEqual(plain.status, 2, plain.output)
        XCTAssertTrue(plain.output.contains("requires CURVE"), plain.output)
        // 3 s: the refusal comes from the router's ZAP handler after a reconnect or two; on a loaded machine 1 s
        // saw only failures without detail (a CI run: "keys that do not match?" for a refused key).
        let rogue = try run(fixture.zrank, ["query", "--endpoint", front, "--text", "chair", "--timeout", "3s"] + keys.client(keys.rogueKey))
        XCTAssertEqual(rogue.status, 2, rogue.output)
        XCTAssertTrue(rogue.output.contains("refused this client's CURVE key"), rogue.output)

        // Operators: the operator key drives zrankctl; a client key does not.
        let ctl = fixture.zrankctl
        let status = try run(ctl, ["--admin", control, "status", "--json"] + keys.client(keys.operatorKey))
        XCTAssertEqual(status.status, 0, status.output)
        let pool = try AdminJSON.answer(PoolStatus.self, Array(status.output.utf8))
        XCTAssertEqual(pool.workers.map(\.name), ["good"], status.output)
        let asClient = try run(ctl, ["--admin", control, "status"] + keys.client(keys.clientKey))
        XCTAssertEqual(asClient.status, 2, asClient.output)
        XCTAssertTrue(asClient.output.contains("not in the list for operators"), asClient.output)
        let unkeyed = try run(ctl, ["--admin", control, "status", "--timeout-ms", "1000"])
        XCTAssertEqual(unkeyed.status, 2, unkeyed.output)

        // The intruder stays out (its liveness runs out, it says why) and the router logged the refusal.
        let start = Date()
        while !intruder.output.contains("refused this worker's CURVE key") && Date().timeIntervalSince(start) < 10 { usleep(200_000) }
        XCTAssertTrue(intruder.output.contains("refused this worker's CURVE key"), intruder.output)
        XCTAssertTrue(router.output.contains("refused a CURVE key not listed for workers"), router.output)
        let later = try run(ctl, ["--admin", control, "status", "--json"] + keys.client(keys.operatorKey))
        XCTAssertEqual(try AdminJSON.answer(PoolStatus.self, Array(later.output.utf8)).workers.map(\.name), ["good"])
        let metrics = try run(ctl, ["--admin", control, "status"] + keys.client(keys.operatorKey))
        XCTAssertEqual(metrics.status, 0)

        // The Python client: keyed, plain and a rogue key.
        if FileManager.default.isExecutableFile(atPath: python) {
            let script = TestPaths.packageRoot.appendingPathComponent("proto/python/tests/drive_curve.py").path
            let py = try run(python, [script, front, keys.serverPub, keys.clientKey, keys.rogueKey])
            XCTAssertEqual(py.status, 0, py.output)
            XCTAssertTrue(py.output.contains("all checks passed"), py.output)
        } else {
            print(String(repeating: "!", count: 78) + "\nPython CURVE client check SKIPPED: run scripts/python-env.sh (make test does)\n")
        }
    }

    /// Operators add and revoke client keys by adding and removing `*.pub` files: the router re-reads its key folders
    /// (within a second) and judges the next handshake by the new list, without a restart.
    func testKeyFolders_reloadWithoutARestart_addAdmitsRemoveRefuses() throws {
        let keys = try makeKeys("curve-reload")
        let late = keys.folder.appendingPathComponent("late").path
        XCTAssertEqual(try run(fixture.zrank, ["keygen", "--out", late]).status, 0)
        let (front, back) = (fixture.tcpEndpoint(), fixture.tcpEndpoint())
        let router = try ZRankProcess(["router", "--bind", front, "--backend", back] + keys.serverOptions)
        let worker = try ZRankProcess(
            ["worker", "--model", fixture.model, "--index", fixture.index, "--connect", back] + keys.client(keys.workerKey))
        XCTAssertTrue(try worker.waitUntilServing(front, curve: try CurveClientKeys.load(server: keys.serverPub, key: keys.clientKey)))
        let query = ["query", "--endpoint", front, "--text", "chair", "--top-k", "1", "--timeout", "1s"] + keys.client(late + ".key")
        XCTAssertEqual(try run(fixture.zrank, query).status, 2)
        let listed = keys.clients + "/late.pub"
        try FileManager.default.copyItem(atPath: late + ".pub", toPath: listed)
        var admitted = false
        for _ in 0..<10 where !admitted {
            usleep(500_000)
            admitted = try run(fixture.zrank, query).status == 0
        }
        XCTAssertTrue(admitted, router.output)
        XCTAssertTrue(router.output.contains("key folders changed; reloaded"), router.output)
        try FileManager.default.removeItem(atPath: listed)
        var refused = false
        for _ in 0..<10 where !refused {
            usleep(500_000)
            refused = try run(fixture.zrank, query).status == 2
        }
        XCTAssertTrue(refused, router.output)
    }

    /// Two routers, two workers connected to both, `zrank-bench --endpoint A,B` at 100 req/s for 20 s over CURVE;
    /// router A is SIGKILLed at 5 s while it holds requests (the workers are stopped for 0.2 s around the kill so that
    /// A certainly has some in flight): every request is answered, none errs, none times out, and the requests A
    /// took down with it were sent again to B.
    func testTwoRouters_killOneUnderLoad_noErrorsNoTimeoutsNothingUnaccounted() throws {
        let keys = try makeKeys("failover")
        let a = (front: fixture.tcpEndpoint(), back: fixture.tcpEndpoint())
        let b = (front: fixture.tcpEndpoint(), back: fixture.tcpEndpoint())
        let routerA = try ZRankProcess(["router", "--bind", a.front, "--backend", a.back] + keys.serverOptions)
        let routerB = try ZRankProcess(["router", "--bind", b.front, "--backend", b.back] + keys.serverOptions)
        let workers = try (1...2).map { i in
            try ZRankProcess(
                ["worker", "--model", fixture.model, "--index", fixture.index, "--connect", "\(a.back),\(b.back)", "--id", "w\(i)"]
                    + keys.client(keys.workerKey))
        }
        let curve = try CurveClientKeys.load(server: keys.serverPub, key: keys.clientKey)
        XCTAssertTrue(try workers[0].waitUntilServing(a.front, curve: curve), routerA.output)
        XCTAssertTrue(try workers[0].waitUntilServing(b.front, curve: curve), routerB.output)

        let figures = try killRouterUnderLoad(
            endpoints: "\(a.front),\(b.front)", keys: keys, router: routerA, workers: workers,
            logs: { "\n--- router B:\n" + routerB.output.suffix(3000) + workers.map { "\n--- worker:\n" + $0.output.suffix(3000) }.joined() })
        print("failover: \(figures)")

        // The workers still serve B; the Python client fails over from dead A to B by itself.
        if FileManager.default.isExecutableFile(atPath: python) {
            let script = TestPaths.packageRoot.appendingPathComponent("proto/python/tests/drive_curve.py").path
            let py = try run(python, [script, "\(a.front),\(b.front)", keys.serverPub, keys.clientKey, keys.rogueKey])
            XCTAssertEqual(py.status, 0, py.output + "\n--- router B:\n" + routerB.output.suffix(3000) + workers.map { "\n--- worker:\n" + $0.output.suffix(3000) }.joined())
        }
        XCTAssertTrue(routerB.process.isRunning)
    }
}

/// Key files made with `zrank keygen`: the server's pair and one pair per role.
struct CurveKeyFiles {
    var folder: URL
    var serverKey: String { folder.appendingPathComponent("server.key").path }
    var serverPub: String { folder.appendingPathComponent("server.pub").path }
    var clients: String { folder.appendingPathComponent("clients").path }
    var workers: String { folder.appendingPathComponent("workers").path }
    var admins: String { folder.appendingPathComponent("admins").path }
    var clientKey: String { clients + "/c1.key" }
    var workerKey: String { workers + "/w1.key" }
    var operatorKey: String { admins + "/ops.key" }
    var rogueKey: String { folder.appendingPathComponent("rogue.key").path }

    var serverOptions: [String] {
        ["--curve-key", serverKey, "--curve-clients", clients, "--curve-workers", workers, "--curve-admins", admins]
    }

    func client(_ key: String) -> [String] { ["--curve-server", serverPub, "--curve-key", key] }

    /// Makes the keys with the real `zrank keygen`.
    static func make(_ name: String) throws -> CurveKeyFiles {
        let keys = CurveKeyFiles(folder: try TestPaths.temporaryDirectory(name))
        for sub in ["clients", "workers", "admins"] {
            try FileManager.default.createDirectory(atPath: keys.folder.appendingPathComponent(sub).path, withIntermediateDirectories: true)
        }
        for prefix in ["server", "clients/c1", "workers/w1", "admins/ops", "rogue"] {
            let r = try RealModel.run(PoolFixture.shared.zrank, ["keygen", "--out", keys.folder.appendingPathComponent(prefix).path])
            XCTAssertEqual(r.status, 0, r.output)
        }
        return keys
    }
}

/// Runs `zrank-bench --endpoint ENDPOINTS` over CURVE at 100 req/s for 20 s (1 s warm-up) and SIGKILLs `router` at
/// 5 s while it holds requests (the workers are stopped for 0.2 s around the kill so that it certainly has some in
/// flight); asserts every request was answered, none erred, none timed out, and the caught ones were sent again.
/// - Parameter launcher: runs the bench elsewhere (another network namespace).
/// - Returns: the bench's JSON figures.
func killRouterUnderLoad(
    endpoints: String, keys: CurveKeyFiles, router: ZRankProcess, workers: [ZRankProcess], launcher: [String] = [],
    logs: () -> String, file: StaticString = #filePath, line: UInt = #line
) throws -> [String: Any] {
    let bench = TestPaths.productsDirectory.appendingPathComponent("zrank-bench").path
    let out = try TestPaths.temporaryDirectory("failover-bench").appendingPathComponent("bench.json").path
    let load = Process()
    let arguments = ["--endpoint", endpoints, "--rate", "100", "--duration", "20s", "--warmup", "1s",
                     "--candidates", "100", "--try-timeout", "300ms", "--json", out] + keys.client(keys.clientKey)
    load.executableURL = URL(fileURLWithPath: launcher.first ?? bench)
    load.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [bench] + arguments
    let log = Pipe()
    load.standardOutput = log
    load.standardError = log
    try load.run()
    let started = Date()
    Thread.sleep(forTimeInterval: 5.9)
    for w in workers { kill(w.pid, SIGSTOP) }
    Thread.sleep(forTimeInterval: 0.1)
    kill(router.pid, SIGKILL)
    Thread.sleep(forTimeInterval: 0.1)
    for w in workers { kill(w.pid, SIGCONT) }
    load.waitUntilExit()
    let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) + logs()
    XCTAssertEqual(load.terminationStatus, 0, text, file: file, line: line)
    XCTAssertGreaterThan(Date().timeIntervalSince(started), 20, file: file, line: line)
    let figures = try XCTUnwrap(
        JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any], text, file: file, line: line)
    let sent = figures["sent"] as? Int ?? -1
    XCTAssertGreaterThanOrEqual(sent, 1990, text, file: file, line: line)
    XCTAssertEqual(figures["ok"] as? Int, sent, text, file: file, line: line)
    XCTAssertEqual((figures["errors"] as? [String: Any])?.count, 0, text, file: file, line: line)
    XCTAssertEqual(figures["client_timeouts"] as? Int, 0, text, file: file, line: line)
    XCTAssertEqual(figures["unsent"] as? Int, 0, text, file: file, line: line)
    XCTAssertGreaterThanOrEqual(figures["failover_resends"] as? Int ?? 0, 1, "no request was caught in the killed router: \(text)", file: file, line: line)
    return ["sent": sent, "ok": figures["ok"] ?? "?", "resends": figures["failover_resends"] ?? "?",
            "duplicates_dropped": figures["duplicates_dropped"] ?? "?", "latency_ms": figures["latency_ms"] ?? "?"]
}
