import Foundation
import Model
import Protocol
import Ranking
import SwiftProtobuf
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Real pools: `zrank serve` with a router and worker processes over ipc:// and tcp://127.0.0.1, real libzmq
/// sockets, a tiny generated model and a 400-item catalog.
final class PoolTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func startPool(
        endpoint: String, workers: Int = 2, extra: [String] = [], environment: [String: String] = [:]
    ) throws -> ZRankProcess {
        let pool = try ZRankProcess(
            ["serve", "--model", fixture.model, "--index", fixture.index, "--workers", "\(workers)", "--bind", endpoint]
                + extra, environment: environment)
        XCTAssertTrue(try pool.waitUntilServing(endpoint), "pool did not come up: \(pool.output)")
        return pool
    }

    private func rankBody(_ query: String, _ candidates: [String] = [], topK: UInt32 = 0) -> [UInt8] {
        var r = Zrank_V1_RankRequest()
        r.query = query
        r.candidateIds = candidates
        r.topK = topK
        return try! r.serializedBytes()
    }

    private func rank(_ client: PoolClient, id: UInt64, _ body: [UInt8], timeoutMs: Int = 5000) throws -> PoolClient.Answer {
        try client.send(type: .rankRequest, requestID: id, body: body)
        guard let a = try client.receive(timeoutMs: timeoutMs) else {
            XCTFail("no answer to request \(id)")
            throw XCTSkip("no answer")
        }
        XCTAssertEqual(a.header.requestID, id)
        return a
    }

    private func errorCode(_ a: PoolClient.Answer) -> Zrank_V1_Error.Code? {
        a.header.type == .error ? (try? Zrank_V1_Error(serializedBytes: a.body))?.code : nil
    }

    func testRankings_overIPCAndTCP_equalInProcessScoring() throws {
        let model = try ModelFile(path: fixture.model)
        let ranker = try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model))
        for endpoint in [fixture.ipcEndpoint("rank"), fixture.tcpEndpoint()] {
            let pool = try startPool(endpoint: endpoint)
            let client = try PoolClient(endpoint: endpoint)
            let queries = ["salon chair", "smart coffee table", "turquoise pillows", "king poster bed"]
            for (i, q) in queries.enumerated() {
                let candidates = Array(fixture.itemIDs[(i * 50)..<(i * 50 + 40)]) + ["NOT-IN-CATALOG"]
                let a = try rank(client, id: UInt64(i + 1), rankBody(q, candidates, topK: 10))
                XCTAssertEqual(a.header.type, .rankResponse, pool.output)
                let r = try Zrank_V1_RankResponse(serializedBytes: a.body)
                let expected = try ranker.rank(RankQuery(query: q, candidateIDs: candidates, topK: 10))
                XCTAssertEqual(r.items.map(\.id), expected.items.map(\.id), "\(endpoint) \(q)")
                XCTAssertEqual(r.items.map(\.score), expected.items.map(\.score))
                XCTAssertEqual(r.notFound, ["NOT-IN-CATALOG"])
                XCTAssertEqual(r.modelVersion, "tiny-v1")
                XCTAssertFalse(r.userContextUsed)
            }
            // Whole catalog.
            let whole = try Zrank_V1_RankResponse(serializedBytes: rank(client, id: 99, rankBody("outdoor rug", topK: 7)).body)
            let expected = try ranker.rank(RankQuery(query: "outdoor rug", topK: 7))
            XCTAssertEqual(whole.items.map(\.id), expected.items.map(\.id))
            XCTAssertEqual(whole.items.count, 7)
            XCTAssertNotNil(pool.terminate(within: 5))
        }
    }

    func testBadRequests_getInvalidRequest_andThePoolKeepsServing() throws {
        let endpoint = fixture.ipcEndpoint("bad")
        let pool = try startPool(endpoint: endpoint, workers: 1, extra: ["--max-candidates", "50"])
        let client = try PoolClient(endpoint: endpoint)
        var id: UInt64 = 0
        func expect(_ frames: [[UInt8]], _ code: Zrank_V1_Error.Code, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
            try client.sendRaw(frames)
            guard let a = try client.receive(timeoutMs: 5000) else { return XCTFail("no answer to \(what)", file: file, line: line) }
            XCTAssertEqual(errorCode(a), code, what, file: file, line: line)
        }
        func header(_ type: MessageType = .rankRequest) -> [UInt8] {
            id += 1
            return FrameHeader(type: type, requestID: id).bytes
        }
        var badMagic = header()
        badMagic[0] = 0x41
        try expect([badMagic, rankBody("x")], .invalidRequest, "wrong magic")
        try expect([[1, 2, 3], rankBody("x")], .invalidRequest, "short header")
        var major = header()
        major[2] = 2
        try expect([major, rankBody("x")], .invalidRequest, "unknown major version")
        var type = header()
        type[4] = 42
        try expect([type, rankBody("x")], .invalidRequest, "unknown message type")
        let full = rankBody("a query long enough to truncate", ["SKU-000001"])
        try expect([header(), Array(full.prefix(full.count - 4))], .invalidRequest, "truncated protobuf")
        try expect([header(), rankBody("   ")], .invalidRequest, "no query text")
        try expect([header(), rankBody("chair", (0..<51).map { "id-\($0)" })], .invalidRequest, "too many candidates")
        try expect([header(), rankBody("chair", [String(repeating: "x", count: 129)])], .invalidRequest, "id over 128 bytes")
        try expect([header(), rankBody("chair", ["a", "b", "a"])], .invalidRequest, "duplicated ids")
        try expect([header(), rankBody(String(repeating: "chair ", count: 11_000))], .invalidRequest, "query over 64 KiB")
        // A string field holding invalid UTF-8 (field 1, length 2, bytes C3 28).
        try expect([header(), [0x0A, 0x02, 0xC3, 0x28]], .invalidRequest, "invalid UTF-8")
        var pinned = FrameHeader(type: .rankRequest, requestID: 500)
        pinned.hasPin = true
        try expect([pinned.bytes, Array("v9".utf8), rankBody("chair")], .unknownModelVersion, "unknown model version pin")
        // Still serving; a long query is truncated, not rejected.
        let ok = try rank(client, id: 1000, rankBody(String(repeating: "chair ", count: 2000), Array(fixture.itemIDs.prefix(5))))
        XCTAssertEqual(ok.header.type, .rankResponse)
        let pinnedOK = FrameHeader(type: .rankRequest, requestID: 1001, flags: FrameHeader.pinFlag)
        try client.sendRaw([pinnedOK.bytes, Array("tiny-v1".utf8), rankBody("lamp", Array(fixture.itemIDs.prefix(3)))])
        XCTAssertEqual(try client.receive(timeoutMs: 5000)?.header.type, .rankResponse)
        XCTAssertTrue(pool.process.isRunning)
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    func testWorkerKilledMidLoad_losesNoRequest() throws {
        let endpoint = fixture.ipcEndpoint("kill")
        let pool = try startPool(endpoint: endpoint, workers: 2)
        let client = try PoolClient(endpoint: endpoint)
        let total = 300
        var answered: [UInt64: MessageType] = [:]
        var codes: [Zrank_V1_Error.Code] = []
        var sent = 0
        var killed = false
        let start = Date()
        while answered.count < total && Date().timeIntervalSince(start) < 30 {
            while sent < total && sent - answered.count < 16 {
                sent += 1
                try client.send(type: .rankRequest, requestID: UInt64(sent), body: rankBody("chair \(sent)", Array(fixture.itemIDs.prefix(100))), deadlineMs: 10_000)
            }
            if !killed && answered.count >= 60 {
                let worker = pool.childPIDs().first { ZRankProcess.commandLine($0).contains(" worker ") }
                XCTAssertNotNil(worker)
                if let worker { kill(worker, SIGKILL) }
                killed = true
            }
            guard let a = try client.receive(timeoutMs: 100) else { continue }
            XCTAssertNil(answered[a.header.requestID], "one answer per request")
            answered[a.header.requestID] = a.header.type
            if let code = errorCode(a) { codes.append(code) }
        }
        XCTAssertTrue(killed)
        XCTAssertEqual(answered.count, total, "every request got an answer or an explicit error")
        XCTAssertTrue(codes.allSatisfy { $0 == .workerFailed }, "only explicit WORKER_FAILED errors: \(codes)")
        print("PoolTests: worker killed mid-load: \(total) requests, \(codes.count) WORKER_FAILED, rest ranked")
        // The supervisor restarted the worker: two workers again.
        let deadline = Date().addingTimeInterval(10)
        while pool.childPIDs().filter({ ZRankProcess.commandLine($0).contains(" worker ") }).count < 2 && Date() < deadline {
            usleep(100_000)
        }
        XCTAssertEqual(pool.childPIDs().filter { ZRankProcess.commandLine($0).contains(" worker ") }.count, 2)
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    func testSIGTERMUnderLoad_drainsAndExitsInTime_everyRequestAnswered() throws {
        let endpoint = fixture.tcpEndpoint()
        let pool = try startPool(endpoint: endpoint, workers: 2, environment: ["ZRANK_FAULT_STALL_MS": "20"])
        let children = pool.childPIDs()
        XCTAssertEqual(children.count, 4, "router + 2 workers + coordinator")
        let client = try PoolClient(endpoint: endpoint)
        for i in 1...40 {
            try client.send(type: .rankRequest, requestID: UInt64(i), body: rankBody("sofa", Array(fixture.itemIDs.prefix(20))))
        }
        var answers: [UInt64: MessageType] = [:]
        var codes: [Zrank_V1_Error.Code] = []
        // 100 ms of receiving before SIGTERM: requests the client still held (its first handshake took longer than
        // its 300 ms wait on a loaded machine) go out now, so all 40 are in flight when the drain starts.
        let pumpUntil = Date().addingTimeInterval(0.1)
        while Date() < pumpUntil {
            if let a = try client.receive(timeoutMs: 10) {
                answers[a.header.requestID] = a.header.type
                if let c = errorCode(a) { codes.append(c) }
            }
        }
        let start = Date()
        kill(pool.pid, SIGTERM)
        while answers.count < 40 && Date().timeIntervalSince(start) < 6 {
            if let a = try client.receive(timeoutMs: 100) {
                answers[a.header.requestID] = a.header.type
                if let c = errorCode(a) { codes.append(c) }
            }
        }
        XCTAssertEqual(answers.count, 40, "every in-flight request answered during the drain")
        XCTAssertTrue(codes.allSatisfy { $0 == .unavailable }, "\(codes)")
        while pool.process.isRunning && Date().timeIntervalSince(start) < 5 { usleep(10_000) }
        let took = Date().timeIntervalSince(start)
        XCTAssertFalse(pool.process.isRunning, "the supervisor exited within 5 s")
        XCTAssertLessThan(took, 5)
        usleep(200_000)
        for child in children { XCTAssertNotEqual(kill(child, 0), 0, "child \(child) outlived the supervisor") }
        print(String(format: "PoolTests: SIGTERM under load: drained 40 requests, exited in %.2f s", took))
    }

    func testRequestLongerThanTheLivenessWindow_isAnsweredByTheSameWorker() throws {
        // 3.5 s of work per request > 3 heartbeats of 1 s: heartbeats must keep flowing while the worker computes.
        let endpoint = fixture.ipcEndpoint("slow")
        let pool = try startPool(endpoint: endpoint, workers: 1, environment: ["ZRANK_FAULT_STALL_MS": "3500"])
        let client = try PoolClient(endpoint: endpoint)
        try client.send(type: .rankRequest, requestID: 7, body: rankBody("sofa", Array(fixture.itemIDs.prefix(3))), deadlineMs: 10_000)
        let a = try XCTUnwrap(try client.receive(timeoutMs: 9000), "no answer")
        XCTAssertEqual(a.header.type, .rankResponse, "got \(a.header.type): \(String(decoding: a.body, as: UTF8.self))")
        XCTAssertFalse(pool.output.contains("reconnecting"), pool.output)
        XCTAssertNotNil(pool.terminate(within: 8))
    }

    func testChildren_dieWithTheSupervisor_evenOnSIGKILL() throws {
        let endpoint = fixture.ipcEndpoint("orphans")
        let pool = try startPool(endpoint: endpoint, workers: 1)
        let children = pool.childPIDs()
        XCTAssertEqual(children.count, 3, "router + 1 worker + coordinator")
        kill(pool.pid, SIGKILL)
        pool.process.waitUntilExit()
        let deadline = Date().addingTimeInterval(3)
        while children.contains(where: { kill($0, 0) == 0 }) && Date() < deadline { usleep(20_000) }
        for child in children { XCTAssertNotEqual(kill(child, 0), 0, "child \(child) outlived a killed supervisor") }
    }

    func testWorker_refusesAnIndexBuiltByAnotherModel() throws {
        let other = fixture.directory.appendingPathComponent("other")
        try SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary(), seed: 99).write(to: other)
        let otherModel = fixture.directory.appendingPathComponent("other.zrm").path
        XCTAssertEqual(try RealModel.run(fixture.zrank, ["convert", "--from", other.path, "--out", otherModel]).status, 0)
        let r = try RealModel.run(fixture.zrank, ["serve", "--model", otherModel, "--index", fixture.index, "--workers", "1", "--bind", fixture.ipcEndpoint("refuse")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("index was built with model tiny-v1"), r.output)
    }

    func testPythonClient_drivesARunningPool() throws {
        let python = TestPaths.packageRoot.appendingPathComponent(".venv-test/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            print(String(repeating: "!", count: 78) + "\nPython client test SKIPPED: run scripts/python-env.sh (make test does)\n")
            throw XCTSkip("no .venv-test; make test creates it")
        }
        let endpoint = fixture.tcpEndpoint()
        let pool = try startPool(endpoint: endpoint, workers: 1)
        let script = TestPaths.packageRoot.appendingPathComponent("proto/python/tests/drive_pool.py").path
        let r = try RealModel.run(python, [script, endpoint, fixture.itemIDs[0], fixture.itemIDs[1], fixture.itemIDs[2]])
        print(r.output)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("python client: all checks passed"))
        XCTAssertNotNil(pool.terminate(within: 5))
    }
}
