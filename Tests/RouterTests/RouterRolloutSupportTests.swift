import Protocol
import Router
import SwiftProtobuf
import XCTest

/// What the coordinator relies on in the router: judging windows, completions for metrics, worker phases and
/// shadow scoring (copies compared, never answered).
final class RouterRolloutSupportTests: XCTestCase {
    private let client: [UInt8] = Array("client-A".utf8)
    private let live: [UInt8] = Array("w1-x".utf8)
    private let canary: [UInt8] = Array("w2-y".utf8)

    private func ready(_ identity: [UInt8], _ version: String, name: String) -> [[UInt8]] {
        var r = Zrank_V1_WorkerReady()
        r.modelVersion = version
        r.workerID = name
        r.capacity = 1
        return [identity, FrameHeader(type: .workerReady, requestID: 0).bytes, try! r.serializedBytes()]
    }

    private func request(_ id: UInt64) -> [[UInt8]] {
        [client, FrameHeader(type: .rankRequest, requestID: id).bytes, Array("body-\(id)".utf8)]
    }

    private func ranked(_ worker: [UInt8], ticket: UInt64, _ ids: [String], version: String) -> [[UInt8]] {
        var r = Zrank_V1_RankResponse()
        r.modelVersion = version
        r.items = ids.map { var i = Zrank_V1_RankedItem(); i.id = $0; return i }
        return [worker, FrameHeader(type: .rankResponse, requestID: ticket).bytes, try! r.serializedBytes()]
    }

    private func sent(_ actions: [RouterAction]) -> [([UInt8], UInt64)] {
        actions.compactMap {
            guard case .toWorker(let f) = $0, let h = try? FrameHeader(decoding: f[1]), h.type == .rankRequest else { return nil }
            return (f[0], h.requestID)
        }
    }

    private func clientAnswers(_ actions: [RouterAction]) -> Int {
        actions.filter { if case .toClient = $0 { return true } else { return false } }.count
    }

    private func pairs(_ actions: [RouterAction]) -> [ShadowPair] {
        actions.compactMap { if case .compare(let p) = $0 { return p } else { return nil } }
    }

    func testShadowCopies_areComparedAndNeverAnswered() {
        var core = RouterCore()
        let comparator = ShadowComparator()
        _ = core.workerMessage(ready(live, "v1", name: "w1"), now: 0)
        _ = core.workerMessage(ready(canary, "v2", name: "w2"), now: 0)
        core.setTrafficSplit(["v1": 1])
        comparator.reset(generation: core.setShadow("v2"))
        let orders: [([String], [String])] = [
            (["a", "b", "c", "d"], ["a", "b", "c", "d"]),  // same: overlap 1, rho 1
            (["a", "b", "c", "d"], ["d", "c", "b", "a"]),  // reversed: overlap 1, rho -1
            (["a", "b", "c", "d"], ["a", "b", "x", "y"]),  // half: overlap 0.5, rho 1 over {a, b}
        ]
        for (i, (l, s)) in orders.enumerated() {
            let out = sent(core.clientMessage(request(UInt64(i + 1)), now: 10))
            XCTAssertEqual(out.map(\.0), [live, canary], "one live send and one shadow copy")
            let shadowAnswer = core.workerMessage(ranked(canary, ticket: out[1].1, s, version: "v2"), now: 11)
            XCTAssertEqual(clientAnswers(shadowAnswer), 0, "a shadow answer never reaches the client")
            XCTAssertTrue(pairs(shadowAnswer).isEmpty, "a pair goes to the comparator once both answers are in")
            let liveAnswer = core.workerMessage(ranked(live, ticket: out[0].1, l, version: "v1"), now: 12)
            XCTAssertEqual(clientAnswers(liveAnswer), 1)
            // The router forwards the two bodies as they came; the comparator decodes them (off the routing path).
            let forwarded = pairs(liveAnswer)
            XCTAssertEqual(forwarded.count, 1)
            forwarded.forEach(comparator.submit)
        }
        comparator.flush()
        let s = try! XCTUnwrap(core.shadow)
        XCTAssertEqual(s.sent, 3)
        XCTAssertEqual(s.errors, 0)
        let agreement = comparator.figures
        XCTAssertEqual(agreement.compared, 3)
        XCTAssertEqual(agreement.top10Overlap, 2.5 / 3, accuracy: 1e-12)
        XCTAssertEqual(agreement.rankCorrelation, 1.0 / 3, accuracy: 1e-12)
        // A pair from an earlier shadow run is ignored once a new run started.
        let stale = ShadowPair(generation: s.generation, live: [], shadow: [])
        XCTAssertEqual(core.setShadow("v2"), s.generation, "the same shadow again keeps its run")
        XCTAssertEqual(core.shadow?.sent, 3)
        comparator.reset(generation: core.setShadow("v3"))
        comparator.compare(stale)
        XCTAssertEqual(comparator.figures.compared, 0)
        XCTAssertEqual(core.stats["v2"]?.requests ?? 0, 0, "shadow answers are not live answers")
        XCTAssertTrue(core.isIdle)
        core.setShadow(nil)
        XCTAssertEqual(sent(core.clientMessage(request(9), now: 20)).map(\.0), [live])
    }

    func testWindowCompletionsAndWarming() {
        var core = RouterCore()
        _ = core.workerMessage(ready(live, "v1", name: "w1"), now: 0)
        var out = sent(core.clientMessage(request(1), now: 1_000_000))
        _ = core.workerMessage(ranked(live, ticket: out[0].1, ["a"], version: "v1"), now: 3_000_000)
        out = sent(core.clientMessage(request(2), now: 4_000_000))
        _ = core.workerMessage([live] + errorFrames(requestID: out[0].1, .internal, "boom"), now: 5_000_000)
        XCTAssertEqual(core.windowStats["v1"]?.requests, 2)
        XCTAssertEqual(core.windowStats["v1"]?.errors, 1)
        let done = core.takeCompletions()
        XCTAssertEqual(done.map(\.outcome), ["OK", "INTERNAL"])
        XCTAssertEqual(done[0].computeMicros, 2000)
        XCTAssertTrue(core.takeCompletions().isEmpty)
        core.resetWindow()
        XCTAssertNil(core.windowStats["v1"])
        XCTAssertEqual(core.stats["v1"]?.requests, 2, "the overall figures stay")
        // Router-made errors count with no version.
        var pinned = FrameHeader(type: .rankRequest, requestID: 3)
        pinned.hasPin = true
        _ = core.clientMessage([client, pinned.bytes, Array("nope".utf8), Array("b".utf8)], now: 6_000_000)
        XCTAssertEqual(core.takeCompletions().map { "\($0.version)/\($0.outcome)" }, ["/UNKNOWN_MODEL_VERSION"])
        // Phases: draining for a load, loading, then warming (said by the worker's heartbeat), then ready.
        _ = core.requestLoad(live, body: Array("{}".utf8))
        XCTAssertEqual(core.workerViews.first?.state, .loading)
        XCTAssertEqual(core.workerViews.first?.name, "w1")
        _ = core.workerMessage([live, FrameHeader(type: .heartbeat, requestID: 0).bytes, Array("warming".utf8)], now: 7_000_000)
        XCTAssertEqual(core.workerViews.first?.state, .warming)
        _ = core.workerMessage(ready(live, "v2", name: "w1"), now: 8_000_000)
        XCTAssertEqual(core.workerViews.first?.state, .ready)
        XCTAssertEqual(core.workerViews.first?.version, "v2")
    }

    /// A worker that dies with requests counts them as lost against its version (the requests are retried); a
    /// client's own mistakes (INVALID_REQUEST) are not the version's errors.
    func testWorkerDeath_countsAgainstItsVersion_clientErrorsDoNot() {
        var core = RouterCore()
        _ = core.workerMessage(ready(live, "v1", name: "w1"), now: 0)
        _ = core.workerMessage(ready(canary, "v2", name: "w2"), now: 0)
        core.setTrafficSplit(["v2": 1])
        let out = sent(core.clientMessage(request(1), now: 10))
        XCTAssertEqual(out.first?.0, canary)
        let retried = sent(core.workerMessage([canary, FrameHeader(type: .disconnect, requestID: 0).bytes], now: 20))
        XCTAssertEqual(retried.first?.0, live, "retried on the other worker")
        XCTAssertEqual(core.windowStats["v2"]?.lost, 1, "the death is counted against v2")
        XCTAssertEqual(core.windowStats["v2"]?.errors ?? 0, 0, "but not as an answered error: the request is retried")
        XCTAssertEqual(core.takeCompletions().map(\.outcome), ["WORKER_DIED"])
        _ = core.workerMessage([live] + errorFrames(requestID: retried[0].1, .invalidRequest, "bad ids"), now: 30)
        XCTAssertEqual(core.windowStats["v1"]?.requests, 1)
        XCTAssertEqual(core.windowStats["v1"]?.errors, 0, "a client's mistake is not the version's error")
        // A sender that predates the header's error code (0 there): its body says which code it was.
        let next = sent(core.clientMessage(request(2), now: 40))
        var legacy = errorFrames(requestID: next[0].1, .invalidRequest, "bad ids")
        var header = try! FrameHeader(decoding: legacy[0])
        header.errorCode = 0
        legacy[0] = header.bytes
        _ = core.workerMessage([next[0].0] + legacy, now: 50)
        XCTAssertEqual(core.windowStats["v1"]?.errors, 0, "still the client's mistake")
        XCTAssertEqual(core.takeCompletions().last?.outcome, "INVALID_REQUEST")
    }

    /// A restarted worker announces the same id: its dead predecessor is dropped at once and the request it held
    /// goes to the successor, without waiting for the liveness timeout.
    func testRestartedWorker_replacesItsPredecessorAtOnce() {
        var core = RouterCore()
        _ = core.workerMessage(ready(live, "v1", name: "w1"), now: 0)
        let first = sent(core.clientMessage(request(1), now: 10))
        XCTAssertEqual(first.first?.0, live)
        let successor: [UInt8] = Array("w1-z".utf8)
        let resent = sent(core.workerMessage(ready(successor, "v1", name: "w1"), now: 20))
        XCTAssertEqual(resent.first?.0, successor, "the held request is retried on the successor")
        XCTAssertEqual(core.workerViews.map(\.name), ["w1"])
        XCTAssertEqual(core.workersLost, 1)
    }
}
