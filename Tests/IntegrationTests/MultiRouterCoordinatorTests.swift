import Foundation
import Protocol
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One coordinator drives every router of the pool (`zrank coordinator --router-control A,B`): what shapes traffic
/// reaches both routers, and status still answers when one router is gone.
final class MultiRouterCoordinatorTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func status(_ admin: String) throws -> PoolStatus? {
        let r = try RealModel.run(fixture.zrankctl, ["--admin", admin, "status", "--json", "--timeout-ms", "3000"])
        guard r.status == 0 else { return nil }
        return try AdminJSON.answer(PoolStatus.self, Array(r.output.utf8))
    }

    func testPinAndUnpin_reachBothRouters_andStatusSurvivesARouterKill() throws {
        let a = (front: fixture.ipcEndpoint("mr-a"), back: fixture.ipcEndpoint("mr-a-back"), control: fixture.ipcEndpoint("mr-a-ctl"))
        let b = (front: fixture.ipcEndpoint("mr-b"), back: fixture.ipcEndpoint("mr-b-back"), control: fixture.ipcEndpoint("mr-b-ctl"))
        let admin = fixture.ipcEndpoint("mr-admin")
        let routerA = try ZRankProcess(["router", "--bind", a.front, "--backend", a.back, "--control", a.control])
        let routerB = try ZRankProcess(["router", "--bind", b.front, "--backend", b.back, "--control", b.control])
        let worker = try ZRankProcess(
            ["worker", "--model", fixture.model, "--index", fixture.index, "--connect", "\(a.back),\(b.back)", "--id", "w1"])
        let coordinator = try ZRankProcess(
            ["coordinator", "--admin", admin, "--router-control", "\(a.control),\(b.control)", "--version", "tiny-v1"])
        XCTAssertTrue(try worker.waitUntilServing(a.front), routerA.output + worker.output)
        XCTAssertTrue(try worker.waitUntilServing(b.front), routerB.output + worker.output)

        let pin = try RealModel.run(fixture.zrankctl, ["--admin", admin, "pin", "tiny-v1"])
        XCTAssertEqual(pin.status, 0, pin.output + coordinator.output)
        XCTAssertEqual(try status(a.control)?.split, ["tiny-v1": 1])
        XCTAssertEqual(try status(b.control)?.split, ["tiny-v1": 1])
        XCTAssertEqual(try RealModel.run(fixture.zrankctl, ["--admin", admin, "unpin"]).status, 0)
        XCTAssertEqual(try status(a.control)?.split, [:])
        XCTAssertEqual(try status(b.control)?.split, [:])

        // Router A gone: the coordinator reads the pool from B (the worker serves both).
        kill(routerA.pid, SIGKILL)
        let seen = try XCTUnwrap(try status(admin), coordinator.output)
        XCTAssertEqual(seen.workers.filter { $0.state == .ready }.map(\.name), ["w1"], coordinator.output)
        XCTAssertTrue(coordinator.output.contains("reading the pool from another router"), coordinator.output)
        let pinAgain = try RealModel.run(fixture.zrankctl, ["--admin", admin, "pin", "tiny-v1"])
        XCTAssertEqual(pinAgain.status, 0, pinAgain.output)
        XCTAssertEqual(try status(b.control)?.split, ["tiny-v1": 1])
    }
}
