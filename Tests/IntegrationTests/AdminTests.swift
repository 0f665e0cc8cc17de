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
                (s["workers"] as? [[String: Any]])?.count == 2
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
        XCTAssertNotNil(extra.terminate(within: 5))
        XCTAssertNotNil(pool.terminate(within: 5))
        let unreachable = try ctl(["status", "--admin", fixture.ipcEndpoint("nobody"), "--timeout-ms", "300"])
        XCTAssertEqual(unreachable.status, 2)
    }
}
