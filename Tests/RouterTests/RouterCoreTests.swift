import Protocol
import Router
import SwiftProtobuf
import XCTest

/// The router's rules, driven as a state machine (no sockets): every request gets an answer or an explicit error.
final class RouterCoreTests: XCTestCase {
    private let ms: UInt64 = 1_000_000
    private let client: [UInt8] = Array("client-A".utf8)
    private let w1: [UInt8] = Array("w1".utf8)
    private let w2: [UInt8] = Array("w2".utf8)

    private func ready(_ identity: [UInt8], version: String = "v1", capacity: UInt32 = 1) -> [[UInt8]] {
        var r = Zrank_V1_WorkerReady()
        r.modelVersion = version
        r.capacity = capacity
        return [identity, FrameHeader(type: .workerReady, requestID: 0).bytes, try! r.serializedBytes()]
    }

    private func request(_ id: UInt64, deadlineMs: UInt32 = 0, pin: String? = nil, req: Bool = false) -> [[UInt8]] {
        var h = FrameHeader(type: .rankRequest, requestID: id, deadlineMs: deadlineMs)
        var frames = [client] + (req ? [[]] : [])
        if let pin {
            h.hasPin = true
            frames += [h.bytes, Array(pin.utf8)]
        } else {
            frames += [h.bytes]
        }
        return frames + [Array("body-\(id)".utf8)]
    }

    /// (worker identity, ticket) of each request sent to a worker.
    private func sentToWorkers(_ actions: [RouterAction]) -> [([UInt8], UInt64)] {
        actions.compactMap {
            guard case .toWorker(let f) = $0, let h = try? FrameHeader(decoding: f[1]), h.type == .rankRequest else {
                return nil
            }
            return (f[0], h.requestID)
        }
    }

    /// (client request id, error code or nil for a response) of each answer to a client.
    private func answers(_ actions: [RouterAction]) -> [(UInt64, Zrank_V1_Error.Code?)] {
        actions.compactMap {
            guard case .toClient(let f) = $0 else { return nil }
            let headerIndex = f[1].isEmpty ? 2 : 1
            let h = try! FrameHeader(decoding: f[headerIndex])
            if h.type == .error { return (h.requestID, try! Zrank_V1_Error(serializedBytes: f.last!).code) }
            return (h.requestID, nil)
        }
    }

    private func respond(_ worker: [UInt8], ticket: UInt64) -> [[UInt8]] {
        [worker, FrameHeader(type: .rankResponse, requestID: ticket).bytes, Array("answer".utf8)]
    }

    func testRequest_goesToReadyWorker_andAnswerReturnsWithClientsID() {
        var core = RouterCore()
        XCTAssertTrue(core.workerMessage(ready(w1), now: 0).isEmpty)
        let sent = sentToWorkers(core.clientMessage(request(42), now: 1))
        XCTAssertEqual(sent.count, 1)
        let back = core.workerMessage(respond(w1, ticket: sent[0].1), now: 2)
        XCTAssertEqual(answers(back).map(\.0), [42])
        XCTAssertNil(answers(back)[0].1)
        XCTAssertTrue(core.isIdle)
    }

    func testREQClient_getsItsDelimiterBack() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1), now: 0)
        let sent = sentToWorkers(core.clientMessage(request(5, req: true), now: 1))
        let back = core.workerMessage(respond(w1, ticket: sent[0].1), now: 2)
        guard case .toClient(let frames) = back[0] else { return XCTFail() }
        XCTAssertEqual(frames[0], client)
        XCTAssertEqual(frames[1], [])
        XCTAssertEqual(try FrameHeader(decoding: frames[2]).requestID, 5)
    }

    func testDeadWorker_requestRetriedOnceOnAnother_thenWorkerFailed() {
        var config = RouterConfiguration()
        config.defaultDeadlineMs = 60_000
        var core = RouterCore(configuration: config)
        _ = core.workerMessage(ready(w1), now: 0)
        let first = sentToWorkers(core.clientMessage(request(1), now: 0))
        XCTAssertEqual(first.map(\.0), [w1])
        _ = core.workerMessage(ready(w2), now: 0)
        // w1 goes silent for 3+ s while w2 keeps heartbeating: the request moves to w2.
        _ = core.workerMessage([w2, FrameHeader(type: .heartbeat, requestID: 0).bytes], now: 3000 * ms)
        let retry = core.tick(now: 3500 * ms)
        XCTAssertEqual(sentToWorkers(retry).map(\.0), [w2])
        XCTAssertTrue(answers(retry).isEmpty)
        // w2 dies too: the client gets WORKER_FAILED, not silence.
        let failed = core.workerMessage([w2, FrameHeader(type: .disconnect, requestID: 0).bytes], now: 3600 * ms)
        XCTAssertEqual(answers(failed).map(\.0), [1])
        XCTAssertEqual(answers(failed).map(\.1), [.workerFailed])
        XCTAssertTrue(core.isIdle)
    }

    func testDeadlines_inQueueAndInFlight_giveDeadlineExceeded_andLateAnswersAreDropped() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1), now: 0)
        let sent = sentToWorkers(core.clientMessage(request(1, deadlineMs: 100), now: 0))
        _ = core.clientMessage(request(2, deadlineMs: 100), now: 0)  // queued behind it
        let expired = core.tick(now: 150 * ms)
        XCTAssertEqual(Set(answers(expired).map(\.0)), [1, 2])
        XCTAssertTrue(answers(expired).allSatisfy { $0.1 == .deadlineExceeded })
        let late = core.workerMessage(respond(w1, ticket: sent[0].1), now: 200 * ms)
        XCTAssertTrue(answers(late).isEmpty)
    }

    func testQueueBound_givesOverloadedAtOnce() {
        var config = RouterConfiguration()
        config.queueBound = 2
        var core = RouterCore(configuration: config)
        for id in 1...2 { XCTAssertTrue(core.clientMessage(request(UInt64(id)), now: 0).isEmpty) }  // no workers: wait
        let third = core.clientMessage(request(3), now: 0)
        XCTAssertEqual(answers(third).map(\.1), [.overloaded])
        XCTAssertEqual(core.queueDepth, 2)
        // A worker arrives: the queued requests are served in order.
        XCTAssertEqual(sentToWorkers(core.workerMessage(ready(w1, capacity: 2), now: 1)).count, 2)
    }

    func testPins_routeOnlyToThatVersion_andUnknownVersionIsAnError() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1, version: "v1"), now: 0)
        _ = core.workerMessage(ready(w2, version: "v2"), now: 0)
        for i in 0..<4 {
            let sent = sentToWorkers(core.clientMessage(request(UInt64(i), pin: "v2"), now: 0))
            XCTAssertEqual(sent.map(\.0), [w2])
            _ = core.workerMessage(respond(w2, ticket: sent[0].1), now: 0)
        }
        let unknown = core.clientMessage(request(9, pin: "v3"), now: 0)
        XCTAssertEqual(answers(unknown).map(\.1), [.unknownModelVersion])
    }

    func testMalformedInput_getsInvalidRequest_withRequestIDWhenReadable() {
        var core = RouterCore()
        XCTAssertEqual(answers(core.clientMessage([client, [1, 2, 3]], now: 0)).map(\.1), [.invalidRequest])
        var wrongMajor = FrameHeader(type: .rankRequest, requestID: 77).bytes
        wrongMajor[2] = 9
        let a = answers(core.clientMessage([client, wrongMajor, [1]], now: 0))
        XCTAssertEqual(a.map(\.0), [77])
        XCTAssertEqual(a.map(\.1), [.invalidRequest])
        var unknownType = FrameHeader(type: .rankRequest, requestID: 78).bytes
        unknownType[4] = 200
        XCTAssertEqual(answers(core.clientMessage([client, unknownType, [1]], now: 0)).map(\.0), [78])
        let noBody = [client, FrameHeader(type: .rankRequest, requestID: 79).bytes]
        XCTAssertEqual(answers(core.clientMessage(noBody, now: 0)).map(\.1), [.invalidRequest])
        let notRequest = [client, FrameHeader(type: .rankResponse, requestID: 80).bytes, [1]]
        XCTAssertEqual(answers(core.clientMessage(notRequest, now: 0)).map(\.1), [.invalidRequest])
        var pinNoFrame = FrameHeader(type: .rankRequest, requestID: 81)
        pinNoFrame.hasPin = true
        XCTAssertEqual(answers(core.clientMessage([client, pinNoFrame.bytes], now: 0)).map(\.1), [.invalidRequest])
        XCTAssertTrue(core.isIdle)
    }

    func testDrain_refusesNewRequests_finishesHeldOnes() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1), now: 0)
        let sent = sentToWorkers(core.clientMessage(request(1), now: 0))
        core.beginDrain()
        XCTAssertEqual(answers(core.clientMessage(request(2), now: 0)).map(\.1), [.unavailable])
        XCTAssertFalse(core.isIdle)
        XCTAssertEqual(answers(core.workerMessage(respond(w1, ticket: sent[0].1), now: 1)).map(\.0), [1])
        XCTAssertTrue(core.isIdle)
    }

    func testLeastRecentlyUsedWorker_getsTheNextRequest() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1), now: 0)
        _ = core.workerMessage(ready(w2), now: 0)
        var order: [[UInt8]] = []
        for i in 0..<4 {
            let sent = sentToWorkers(core.clientMessage(request(UInt64(i)), now: 0))
            order.append(sent[0].0)
            _ = core.workerMessage(respond(sent[0].0, ticket: sent[0].1), now: 0)
        }
        XCTAssertEqual(order, [w1, w2, w1, w2])
    }

    func testTrafficSplit_servesTheAskedShares_andStatsPerVersion() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1, version: "v1"), now: 0)
        _ = core.workerMessage(ready(w2, version: "v2"), now: 0)
        core.setTrafficSplit(["v1": 3, "v2": 1])
        var served: [String: Int] = [:]
        for i in 0..<100 {
            let sent = sentToWorkers(core.clientMessage(request(UInt64(i)), now: UInt64(i) * ms))
            XCTAssertEqual(sent.count, 1)
            let version = sent[0].0 == w1 ? "v1" : "v2"
            served[version, default: 0] += 1
            let answer: [[UInt8]] = version == "v2" && served["v2"]! % 5 == 0
                ? [sent[0].0, FrameHeader(type: .error, requestID: sent[0].1).bytes, []]
                : respond(sent[0].0, ticket: sent[0].1)
            _ = core.workerMessage(answer, now: UInt64(i) * ms + 2 * ms)
        }
        XCTAssertEqual(served["v1"], 75)
        XCTAssertEqual(served["v2"], 25)
        XCTAssertEqual(core.stats["v1"]?.requests, 75)
        XCTAssertEqual(core.stats["v2"]?.requests, 25)
        XCTAssertEqual(core.stats["v2"]?.errors, 5)
        XCTAssertEqual(core.stats["v2"]!.errorRate, 0.2, accuracy: 1e-9)
        XCTAssertEqual(core.stats["v1"]?.errors, 0)
        XCTAssertEqual(core.stats["v1"]!.p99Ms, 2, accuracy: 0.01)
        // All traffic to v2; pinned requests still reach v1.
        core.setTrafficSplit(["v2": 1])
        for i in 0..<5 {
            let sent = sentToWorkers(core.clientMessage(request(UInt64(200 + i)), now: 0))
            XCTAssertEqual(sent.map(\.0), [w2])
            _ = core.workerMessage(respond(w2, ticket: sent[0].1), now: 0)
        }
        XCTAssertEqual(sentToWorkers(core.clientMessage(request(300, pin: "v1"), now: 0)).map(\.0), [w1])
    }

    func testDrainingWorker_getsNoNewRequests_butFinishesItsOwn() {
        var core = RouterCore()
        _ = core.workerMessage(ready(w1), now: 0)
        _ = core.workerMessage(ready(w2), now: 0)
        let first = sentToWorkers(core.clientMessage(request(1), now: 0))
        XCTAssertEqual(first.map(\.0), [w1])
        core.setDraining(w1, true)
        XCTAssertEqual(core.workerViews.first { $0.identity == w1 }?.state, .draining)
        XCTAssertEqual(core.inFlight(on: w1), 1)
        for i in 2...4 {
            let sent = sentToWorkers(core.clientMessage(request(UInt64(i)), now: 0))
            XCTAssertEqual(sent.map(\.0), [w2])
            _ = core.workerMessage(respond(w2, ticket: sent[0].1), now: 0)
        }
        XCTAssertEqual(answers(core.workerMessage(respond(w1, ticket: first[0].1), now: 1)).map(\.0), [1])
        XCTAssertEqual(core.inFlight(on: w1), 0)
    }
}

