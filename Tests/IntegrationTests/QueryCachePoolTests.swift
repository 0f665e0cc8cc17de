import Foundation
import Model
import Protocol
import Ranking
import SwiftProtobuf
import XCTest
import _TestSupport

/// A worker's query-embedding cache seen from outside, with a real router and worker process: repeated queries show
/// as hits in the router's status, `zrankctl status` and its Prometheus text; and after the worker LOADs another
/// model, the same query is encoded again by that model (scores equal in-process scoring with it, bit for bit), never
/// answered from the embedding the old version cached, and the Prometheus counters keep counting across the reset.
final class QueryCachePoolTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func control(_ endpoint: String, _ request: [String: Any]) throws -> [String: Any] {
        let socket = try ZMQSocket(ZMQContext(), type: .dealer)
        try socket.connect(endpoint)
        try socket.send([FrameHeader(type: .control, requestID: 1).bytes, Array(try JSONSerialization.data(withJSONObject: request))])
        guard try ZMQPoller.poll([socket], timeoutMs: 3000)[0], let frames = try socket.receive(dontWait: true) else { return [:] }
        return try JSONSerialization.jsonObject(with: Data(frames[1])) as? [String: Any] ?? [:]
    }

    /// Worker `w1` as the router's status shows it, polled until `condition` holds (nil after `seconds`).
    private func waitForWorker(_ controlEndpoint: String, seconds: Double, _ condition: ([String: Any]) -> Bool) -> [String: Any]? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            let workers = (try? control(controlEndpoint, ["op": "status"]))?["workers"] as? [[String: Any]] ?? []
            if let w = workers.first(where: { $0["name"] as? String == "w1" }), condition(w) { return w }
            usleep(100_000)
        }
        return nil
    }

    private func cache(_ worker: [String: Any]?) -> (hits: Int, misses: Int, entries: Int) {
        let c = worker?["query_cache"] as? [String: Any] ?? [:]
        return (c["hits"] as? Int ?? -1, c["misses"] as? Int ?? -1, c["entries"] as? Int ?? -1)
    }

    /// The value of a counter line in Prometheus text (nil when absent).
    private func counter(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// Ranks `query` over `candidates` through the pool: the answering version and each item's score bits.
    private func rank(_ client: PoolClient, id: UInt64, _ query: String, _ candidates: [String]) throws -> (version: String, scores: [String: UInt32]) {
        var r = Zrank_V1_RankRequest()
        r.query = query
        r.candidateIds = candidates
        try client.send(type: .rankRequest, requestID: id, body: try r.serializedBytes())
        let a = try XCTUnwrap(try client.receive(timeoutMs: 5000), "no answer to request \(id)")
        XCTAssertEqual(a.header.type, .rankResponse, "request \(id)")
        let response = try Zrank_V1_RankResponse(serializedBytes: a.body)
        return (response.modelVersion, Dictionary(uniqueKeysWithValues: response.items.map { ($0.id, $0.score.bitPattern) }))
    }

    /// In-process scoring with the model and index of one registry version, no cache.
    private func reference(_ folder: String, _ query: String, _ candidates: [String]) throws -> [String: UInt32] {
        let model = try ModelFile(path: folder + "/model.zrm")
        var limits = RankLimits()
        limits.queryCacheEntries = 0
        let ranker = try Ranker(model: model, index: try CatalogIndex(path: folder + "/catalog.zri", model: model), limits: limits)
        let outcome = try ranker.rank(RankQuery(query: query, candidateIDs: candidates, topK: 0))
        return Dictionary(uniqueKeysWithValues: outcome.items.map { ($0.id, $0.score.bitPattern) })
    }

    func testLoadOfAnotherModel_neverServesTheOldCachedEmbedding_andHitsAreCountedInStatusAndMetrics() throws {
        // A registry with the fixture model as tiny-v1 and another synthetic model (other weights) as other-v2.
        let dir = try TestPaths.temporaryDirectory("query-cache-pool")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary(), seed: 77).write(to: dir.appendingPathComponent("ckpt"))
        let otherModel = dir.appendingPathComponent("other.zrm").path
        _ = try ModelConverter.convert(from: dir.appendingPathComponent("ckpt").path, to: otherModel, version: "other-v2")
        let registry = dir.appendingPathComponent("registry").path
        for (name, model) in [("tiny-v1", fixture.model), ("other-v2", otherModel)] {
            let r = try RealModel.run(fixture.zrank, ["registry", "add", "--registry", registry, "--version", name, "--model", model, "--catalog", fixture.catalog])
            XCTAssertEqual(r.status, 0, r.output)
        }

        let endpoint = fixture.ipcEndpoint("cache-front")
        let backend = fixture.ipcEndpoint("cache-back")
        let controlEndpoint = fixture.ipcEndpoint("cache-control")
        let router = try ZRankProcess(["router", "--bind", endpoint, "--backend", backend, "--control", controlEndpoint])
        let worker = try ZRankProcess([
            "worker", "--registry", registry, "--version", "tiny-v1", "--connect", backend, "--id", "w1", "--query-cache", "100",
        ])
        func output() -> String { router.output + "\n" + worker.output }
        XCTAssertNotNil(waitForWorker(controlEndpoint, seconds: 20) { $0["state"] as? String == "ready" }, output())
        let client = try PoolClient(endpoint: endpoint)
        let query = "salon chair"
        let candidates = Array(fixture.itemIDs.prefix(40))

        // Under tiny-v1: one miss, then two hits, all with the same scores as in-process scoring.
        let v1 = try reference(registry + "/tiny-v1", query, candidates)
        for id in 1...3 as ClosedRange<UInt64> {
            let answer = try rank(client, id: id, query, candidates)
            XCTAssertEqual(answer.version, "tiny-v1")
            XCTAssertEqual(answer.scores, v1, "request \(id)")
        }
        let counted = waitForWorker(controlEndpoint, seconds: 5) { self.cache($0).hits == 2 }
        XCTAssertEqual(cache(counted).hits, 2, "the worker's heartbeat reports its hits: \(String(describing: counted))")
        XCTAssertEqual(cache(counted).misses, 1)
        XCTAssertEqual(cache(counted).entries, 1)
        let ctl = try RealModel.run(fixture.zrankctl, ["status", "--admin", controlEndpoint])
        XCTAssertEqual(ctl.status, 0, ctl.output)
        XCTAssertTrue(ctl.output.contains("query cache 1 entries, 2 hits / 1 misses"), ctl.output)
        let before = try XCTUnwrap(control(controlEndpoint, ["op": "metrics"])["text"] as? String)
        XCTAssertEqual(counter(before, "zrank_query_cache_hits_total"), 2, before)
        XCTAssertEqual(counter(before, "zrank_query_cache_misses_total"), 1, before)

        // LOAD other-v2 into the same worker: the same query is now encoded by other-v2. No control request until
        // the worker's first heartbeat under other-v2 has been in: the Prometheus counters must see the reset from
        // the figures alone, whenever they are next read (here, long after).
        let load = try control(controlEndpoint, ["op": "load", "worker": "w1", "version": "other-v2"])
        XCTAssertEqual(load["ok"] as? Bool, true, "\(load)")
        let loadStart = Date()
        while !worker.output.contains("version loaded") && Date().timeIntervalSince(loadStart) < 20 { usleep(50_000) }
        XCTAssertTrue(worker.output.contains("version loaded"), output())
        let v2 = try reference(registry + "/other-v2", query, candidates)
        XCTAssertNotEqual(v2, v1, "the two models score differently, so a stale embedding would show")
        for id in 10...11 as ClosedRange<UInt64> {
            let answer = try rank(client, id: id, query, candidates)
            XCTAssertEqual(answer.version, "other-v2")
            XCTAssertEqual(answer.scores, v2, "request \(id) is scored with other-v2's embedding of the query")
        }
        usleep(2_500_000)  // two heartbeats
        let after = try XCTUnwrap(control(controlEndpoint, ["op": "metrics"])["text"] as? String)
        // The new version's cache started empty: the first request after the load missed and only the second hit
        // (the load's smoke queries count as misses too).
        let fresh = waitForWorker(controlEndpoint, seconds: 5) { self.cache($0).hits == 1 }
        XCTAssertEqual(fresh?["version"] as? String, "other-v2")
        XCTAssertEqual(cache(fresh).hits, 1, "\(String(describing: fresh))")
        XCTAssertGreaterThanOrEqual(cache(fresh).misses, 1)
        // Prometheus counters never go back and never lose counts: they add the new version's hits and misses to
        // the old version's.
        XCTAssertEqual(counter(after, "zrank_query_cache_hits_total"), 3, after)
        XCTAssertEqual(counter(after, "zrank_query_cache_misses_total"), Double(1 + cache(fresh).misses), after)

        XCTAssertNotNil(worker.terminate(within: 5))
        XCTAssertNotNil(router.terminate(within: 5))
    }
}
