import Foundation
import Protocol
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Multi-host, on one machine: two routers, two workers and the client each in its own Linux network namespace,
/// joined by veth pairs on a bridge (real TCP between "hosts", no loopback), CURVE on every endpoint; one router is
/// SIGKILLed under `zrank-bench` load. Needs root and `ip` (iproute2): skipped, loudly, where they are missing.
final class NetworkNamespaceTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }
    private let ip = "/usr/sbin/ip"

    /// The namespaces and the bridge of one test, removed at the end.
    private final class Network {
        let suffix = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
        var namespaces: [String] = []
        var bridge: String { "zrb\(suffix)" }
        let ip: String

        init(ip: String) { self.ip = ip }

        @discardableResult
        func run(_ arguments: [String]) throws -> String {
            let r = try RealModel.run(ip, arguments)
            guard r.status == 0 else { throw XCTSkip("ip \(arguments.joined(separator: " ")) failed: \(r.output)") }
            return r.output
        }

        /// A namespace named `name` at 10.77.N.`host`/24 on the bridge.
        func host(_ name: String, _ host: Int) throws -> String {
            let ns = "zr-\(name)-\(suffix)"
            try run(["netns", "add", ns])
            namespaces.append(ns)
            let outside = "zv\(suffix)\(host)"
            try run(["link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns])
            try run(["link", "set", outside, "master", bridge, "up"])
            try run(["-n", ns, "addr", "add", "10.77.0.\(host)/24", "dev", "eth0"])
            try run(["-n", ns, "link", "set", "eth0", "up"])
            try run(["-n", ns, "link", "set", "lo", "up"])
            return ns
        }

        func up() throws {
            try run(["link", "add", bridge, "type", "bridge"])
            try run(["addr", "add", "10.77.0.1/24", "dev", bridge])
            try run(["link", "set", bridge, "up"])
        }

        func launcher(_ ns: String) -> [String] { [ip, "netns", "exec", ns] }

        deinit {
            for ns in namespaces { _ = try? RealModel.run(ip, ["netns", "del", ns]) }
            _ = try? RealModel.run(ip, ["link", "del", bridge])
        }
    }

    func testRoutersWorkersAndClientOnSeparateHosts_withCURVE_killOneRouterUnderLoad() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: ip) else {
            print(String(repeating: "!", count: 78) + "\nNetwork namespace test SKIPPED: it needs root and iproute2 (\(ip))\n")
            throw XCTSkip("needs root and iproute2")
        }
        let net = Network(ip: ip)
        do {
            try net.up()
        } catch {
            print(String(repeating: "!", count: 78) + "\nNetwork namespace test SKIPPED: cannot make a bridge here: \(error)\n")
            throw error
        }
        let (ra, rb) = (try net.host("ra", 2), try net.host("rb", 3))
        let (w1, w2, cl) = (try net.host("w1", 4), try net.host("w2", 5), try net.host("cl", 6))
        let keys = try CurveKeyFiles.make("netns")
        let a = (front: "tcp://10.77.0.2:5555", back: "tcp://10.77.0.2:5556")
        let b = (front: "tcp://10.77.0.3:5555", back: "tcp://10.77.0.3:5556")
        let routerA = try ZRankProcess(["router", "--bind", a.front, "--backend", a.back] + keys.serverOptions, launcher: net.launcher(ra))
        let routerB = try ZRankProcess(["router", "--bind", b.front, "--backend", b.back] + keys.serverOptions, launcher: net.launcher(rb))
        let workers = try [(w1, "w1"), (w2, "w2")].map { ns, id in
            try ZRankProcess(
                ["worker", "--model", fixture.model, "--index", fixture.index, "--connect", "\(a.back),\(b.back)", "--id", id]
                    + keys.client(keys.workerKey),
                launcher: net.launcher(ns))
        }
        // From the client's host, both routers answer over CURVE with a worker behind them (zrank health --ready).
        let zrank = fixture.zrank
        for (front, router) in [(a.front, routerA), (b.front, routerB)] {
            var ready = false
            let start = Date()
            while !ready && Date().timeIntervalSince(start) < 40 {
                ready = try RealModel.run(
                    ip, ["netns", "exec", cl, zrank, "health", "--endpoint", front, "--ready", "--timeout", "2s"]
                        + keys.client(keys.clientKey)).status == 0
                if !ready { usleep(200_000) }
            }
            XCTAssertTrue(ready, router.output + workers.map(\.output).joined())
        }

        // From the client's host: a query without keys gets nothing (exit 2), one with keys is ranked.
        let plain = try RealModel.run(ip, ["netns", "exec", cl, zrank, "query", "--endpoint", a.front, "--text", "chair", "--timeout", "1s"])
        XCTAssertEqual(plain.status, 2, plain.output)
        let keyed = try RealModel.run(
            ip, ["netns", "exec", cl, zrank, "query", "--endpoint", "\(a.front),\(b.front)", "--text", "chair", "--top-k", "3"]
                + keys.client(keys.clientKey))
        XCTAssertEqual(keyed.status, 0, keyed.output)

        let figures = try killRouterUnderLoad(
            endpoints: "\(a.front),\(b.front)", keys: keys, router: routerA, workers: workers, launcher: net.launcher(cl),
            logs: { "\n--- router B:\n" + routerB.output.suffix(3000) + workers.map { "\n--- worker:\n" + $0.output.suffix(3000) }.joined() })
        print("failover across network namespaces: \(figures)")
        XCTAssertTrue(routerB.process.isRunning)
    }
}
