import Foundation
import Protocol
import XCTest
import _TestSupport

/// `zrank health`, the probe process supervisors (Kubernetes) run: alive, ready, down.
final class HealthTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func health(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try RealModel.run(fixture.zrank, ["health", "--timeout", "1s"] + arguments)
    }

    func testHealth_aliveWithoutWorkers_readyWithOne_downWhenGone() throws {
        let (front, back) = (fixture.ipcEndpoint("health"), fixture.ipcEndpoint("health-back"))
        let router = try ZRankProcess(["router", "--bind", front, "--backend", back])
        // No worker yet: alive (the router answers), not ready.
        var alive = try health(["--endpoint", front])
        for _ in 0..<20 where alive.status != 0 {
            usleep(100_000)
            alive = try health(["--endpoint", front])
        }
        XCTAssertEqual(alive.status, 0, alive.output + router.output)
        let notReady = try health(["--endpoint", front, "--ready"])
        XCTAssertEqual(notReady.status, 1, notReady.output)
        XCTAssertTrue(notReady.output.contains("not ready"), notReady.output)
        let worker = try ZRankProcess(["worker", "--model", fixture.model, "--index", fixture.index, "--connect", back])
        XCTAssertTrue(try worker.waitUntilServing(front), worker.output)
        let ready = try health(["--endpoint", front, "--ready"])
        XCTAssertEqual(ready.status, 0, ready.output)
        XCTAssertTrue(ready.output.contains("tiny-v1"), ready.output)
        XCTAssertNotNil(router.terminate(within: 5))
        let down = try health(["--endpoint", front])
        XCTAssertEqual(down.status, 2, down.output)
        XCTAssertTrue(down.output.contains("no answer"), down.output)
    }
}
