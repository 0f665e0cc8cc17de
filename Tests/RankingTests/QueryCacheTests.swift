import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// The query-embedding cache: a repeated query (or one that tokenizes alike) is served from the cache with scores
/// bit-equal to encoding it again; counters and bounds; off with 0; a ranker of another model never sees another's
/// entries.
final class QueryCacheTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func ranker(entries: Int, heads: Bool = false) throws -> Ranker {
        let model = try ModelFile(path: fixture.model)
        var limits = RankLimits()
        limits.queryCacheEntries = entries
        return try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model), limits: limits)
    }

    private func scores(_ r: Ranker, _ query: String) throws -> [String: Float] {
        let outcome = try r.rank(RankQuery(query: query, candidateIDs: Array(fixture.itemIDs.prefix(50)), topK: 0))
        return Dictionary(uniqueKeysWithValues: outcome.items.map { ($0.id, $0.score) })
    }

    func testHits_areBitEqualToEncodingAgain_andCounted() throws {
        let cached = try ranker(entries: 3)
        let uncached = try ranker(entries: 0)
        let queries = ["modern accent chair", "outdoor rug", "MODERN  accent chair", "sofa", "lamp", "modern accent chair"]
        for q in queries {
            XCTAssertEqual(try scores(cached, q), try scores(uncached, q), q)
        }
        // "MODERN  accent chair" lowercases and splits to the same token ids as "modern accent chair": a hit, which
        // makes it the most recently used; "lamp" then evicts "outdoor rug" (capacity 3), and the last query hits.
        XCTAssertEqual(cached.queryCacheStats.hits, 2)
        XCTAssertEqual(cached.queryCacheStats.misses, 4)
        XCTAssertEqual(cached.queryCacheStats.entries, 3)
        XCTAssertEqual(cached.queryCacheStats.bytes, 3 * (cached.index.dimension * 4 + 128))
        XCTAssertEqual(uncached.queryCacheStats, QueryCacheStats(), "0 turns the cache off")
        // Repeats within capacity hit, with the same answer.
        let first = try scores(cached, "lamp")
        XCTAssertEqual(try scores(cached, "lamp"), first)
        XCTAssertEqual(cached.queryCacheStats.hits, 4)
        _ = try scores(cached, "outdoor rug")
        XCTAssertEqual(cached.queryCacheStats.misses, 5, "evicted: encoded again")
    }

    /// A worker's LOAD builds a new ranker for the new model: its cache starts empty, so a query cached under the
    /// old model is encoded again by the new one (its scores are the new model's, not the old cached vector's).
    func testAnotherModel_encodesAgain() throws {
        let old = try ranker(entries: 100)
        _ = try scores(old, "salon chair")
        let dir = try TestPaths.temporaryDirectory("query-cache")
        try SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary(), seed: 77).write(to: dir.appendingPathComponent("ckpt"))
        let modelPath = dir.appendingPathComponent("other.zrm").path
        _ = try ModelConverter.convert(from: dir.appendingPathComponent("ckpt").path, to: modelPath, version: "other")
        let model = try ModelFile(path: modelPath)
        let indexPath = dir.appendingPathComponent("other.zri").path
        _ = try CatalogIndexBuilder.build(model: model, catalog: fixture.catalog, output: indexPath)
        var limits = RankLimits()
        limits.queryCacheEntries = 100
        let new = try Ranker(model: model, index: try CatalogIndex(path: indexPath, model: model), limits: limits)
        var uncachedLimits = RankLimits()
        uncachedLimits.queryCacheEntries = 0
        let reference = try Ranker(model: model, index: try CatalogIndex(path: indexPath, model: model), limits: uncachedLimits)
        let served = try scores(new, "salon chair")
        XCTAssertEqual(new.queryCacheStats.misses, 1, "encoded again under the new model")
        XCTAssertEqual(served, try scores(reference, "salon chair"))
        XCTAssertNotEqual(served, try scores(old, "salon chair"), "the two models score differently")
    }
}
