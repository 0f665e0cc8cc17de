import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// Cross-request batching: queries encoded as one ragged batch give every request exactly the answer it gets alone
/// (bit-equal scores), with failures kept to their own request.
final class BatchRankingTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func ranker(cache: Int) throws -> Ranker {
        let model = try ModelFile(path: fixture.model)
        var limits = RankLimits()
        limits.queryCacheEntries = cache
        return try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model), limits: limits)
    }

    func testBatchedAnswers_equalOneAtATime_bitForBit() throws {
        let ids = fixture.itemIDs
        let queries: [RankQuery] = [
            RankQuery(query: "modern accent chair", candidateIDs: Array(ids.prefix(40)), topK: 0),
            RankQuery(query: "outdoor rug", topK: 5),  // the whole catalog
            RankQuery(query: "a much longer query about a walnut coffee table with storage and drawers", candidateIDs: Array(ids.suffix(30)), topK: 10),
            RankQuery(query: "", candidateIDs: ["no-such-id"] + Array(ids.prefix(3)), topK: 0),
            RankQuery(query: "modern accent chair", candidateIDs: Array(ids.dropFirst(100).prefix(20)), topK: 0),  // same query again
            RankQuery(query: "lamp", candidateIDs: [String](repeating: "x", count: 20_000), topK: 0),  // over the limit: refused
            RankQuery(query: "sofa", candidateIDs: [], inlineCandidates: [(id: "new-1", text: "grey velvet sofa")], topK: 0),
        ]
        for cache in [0, 100] {
            let alone = try ranker(cache: cache)
            let together = try ranker(cache: cache)
            let batched = together.rank(batch: queries)
            XCTAssertEqual(batched.count, queries.count)
            for (i, q) in queries.enumerated() {
                let single = Result { () throws(RankError) in try alone.rank(q) }
                switch (single, batched[i]) {
                case (.success(let a), .success(let b)):
                    XCTAssertEqual(a.items.map(\.id), b.items.map(\.id), "request \(i), cache \(cache)")
                    XCTAssertEqual(a.items.map(\.score.bitPattern), b.items.map(\.score.bitPattern), "request \(i), cache \(cache): bit-equal scores")
                    XCTAssertEqual(a.notFound, b.notFound)
                case (.failure(let a), .failure(let b)):
                    XCTAssertEqual(a.description, b.description, "request \(i)")
                default:
                    XCTFail("request \(i), cache \(cache): alone \(single), batched \(batched[i])")
                }
            }
            if case .success = batched[5] { XCTFail("the over-limit request fails on its own") }
            if cache > 0 {
                let answered = queries.indices.filter { if case .success = batched[$0] { return true } else { return false } }
                let distinct = Set(answered.map { queries[$0].query }).count
                XCTAssertEqual(together.queryCacheStats.misses, distinct, "each distinct query encoded once")
                XCTAssertEqual(together.queryCacheStats.hits, answered.count - distinct, "the repeat within the batch")
                XCTAssertGreaterThanOrEqual(answered.count, 4)
            }
        }
    }
}
