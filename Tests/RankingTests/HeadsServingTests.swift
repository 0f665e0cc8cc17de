import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// Serving with ranking heads on the pool fixture (tiny generated model, 400-item catalog): explanations sum to the
/// scores exactly, the folded serving form equals the features as trained, personalisation inputs are reported,
/// bad heads files and requests get clear errors.
final class HeadsServingTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func randomHeads(_ model: ModelFile, _ index: CatalogIndex, seed: UInt64 = 3) -> RankingHeads {
        var rng = SplitMix(seed: seed)
        func normal(_ s: Float) -> Float { Float.random(in: -1...1, using: &rng) * s }
        let n = FeatureSet.scalarCount + index.dimension
        let mean = (0..<n).map { i in i < FeatureSet.scalarCount ? normal(0.5) : normal(0.002) }
        let std = (0..<n).map { i in i < FeatureSet.scalarCount ? 0.2 + abs(normal(1)) : 0.01 + abs(normal(0.02)) }
        let ctr = LinearHead(bias: -2, weights: (0..<n).map { _ in normal(0.3) })
        let engagement = LinearHead(bias: 0.5, weights: (0..<n).map { _ in normal(0.1) })
        return RankingHeads(
            headsVersion: "random-heads", dimension: index.dimension, mean: mean, std: std, ctr: ctr, engagement: engagement,
            modelContentHash: model.contentHash)
    }

    func testExplanationsSumToScores_andServingEqualsTrainingForm() throws {
        let model = try ModelFile(path: fixture.model)
        let index = try CatalogIndex(path: fixture.index, model: model)
        XCTAssertTrue(index.hasItemFacts)
        let heads = randomHeads(model, index)
        let ranker = try Ranker(model: model, index: index, heads: heads)
        let candidates = Array(fixture.itemIDs.prefix(60))
        let recent = Array(fixture.itemIDs.suffix(3)) + ["NOT-AN-ITEM"]
        let query = "modern grey velvet accent chair"
        let outcome = try ranker.rank(RankQuery(query: query, candidateIDs: candidates, topK: 60, explain: true, recentItemIDs: recent))
        XCTAssertEqual(outcome.items.count, 60)
        XCTAssertEqual(outcome.unknownRecent, ["NOT-AN-ITEM"])
        XCTAssertTrue(outcome.userContextUsed)
        XCTAssertEqual(outcome.items.map(\.score), outcome.items.map(\.score).sorted(by: >), "best first by the combined score")

        // The features as the trainer computes them (fp32), for the reference.
        let q = try ranker.embed(query)
        let profile = FeatureSet.profile(recent.compactMap { index.row(of: $0) }.map { index.embedding(ofRow: Int($0)) })!
        let tokenizer = try model.makeTokenizer()
        let pieces = wordPieces(tokenizer, query)
        for item in outcome.items {
            let h = try XCTUnwrap(item.heads)
            let logit = log(h.ctr / (1 - h.ctr))
            let ctrSum = h.contributions.reduce(Float(0)) { $0 + $1.ctrLogit }
            let engSum = h.contributions.reduce(Float(0)) { $0 + $1.engagement }
            XCTAssertEqual(ctrSum, logit, accuracy: 1e-3 * max(1, abs(logit)), "CTR terms sum to the logit")
            XCTAssertEqual(engSum, h.engagement, accuracy: 1e-5 * max(1, abs(h.engagement)), "engagement terms sum to the prediction")
            XCTAssertEqual(h.combined, h.alpha * h.ctr + h.beta * h.engagement, accuracy: 1e-6)
            XCTAssertEqual(item.score, h.combined)
            // The serving-constant position term is folded into "bias", not listed.
            XCTAssertEqual(
                h.contributions.map(\.feature), ["bias"] + FeatureSet.scalarNames.filter { $0 != "position_bias" } + ["interaction"])

            let row = Int(index.row(of: item.id)!)
            let d = index.embedding(ofRow: row)
            var x: [Float] = [
                zip(q, d).reduce(0) { $0 + $1.0 * $1.1 },
                index.titlePieces(ofRow: row).withMemoryRebound(to: UInt32.self) { FeatureSet.lexical(query: pieces, title: $0) },
                zip(profile, d).reduce(0) { $0 + $1.0 * $1.1 }, 1, index.logPopularity(ofRow: row),
                index.logPrice(ofRow: row), FeatureSet.positionFeature(FeatureSet.servingPosition),
            ]
            x += zip(q, d).map { $0 * $1 }
            var reference = heads.ctr.bias
            for (i, v) in x.enumerated() { reference += heads.ctr.weights[i] * (v.isNaN ? 0 : (v - heads.mean[i]) / heads.std[i]) }
            XCTAssertEqual(logit, reference, accuracy: 0.03 * max(1, abs(reference)), "served logit equals the trained form for \(item.id)")
        }

        // alpha/beta from the request; the order follows.
        let engagementOnly = try ranker.rank(RankQuery(query: query, candidateIDs: candidates, topK: 60, explain: true, alpha: 0, beta: 1))
        for item in engagementOnly.items { XCTAssertEqual(item.score, item.heads!.engagement, accuracy: 1e-6) }
        XCTAssertEqual(engagementOnly.items.map(\.score), engagementOnly.items.map(\.score).sorted(by: >))
        XCTAssertFalse(engagementOnly.userContextUsed)
        // Whole catalog and inline candidates rank with the heads too.
        let whole = try ranker.rank(RankQuery(query: query))
        XCTAssertEqual(whole.items.count, 10)
        XCTAssertNotNil(whole.items.first?.heads)
        let inline = try ranker.rank(RankQuery(query: query, inlineCandidates: [(id: "new", text: "grey velvet accent chair")], explain: true))
        let h = try XCTUnwrap(inline.items.first?.heads)
        XCTAssertEqual(h.contributions.reduce(Float(0)) { $0 + $1.engagement }, h.engagement, accuracy: 1e-4)
    }

    func testBadHeadsAndRequests_clearErrors() throws {
        let model = try ModelFile(path: fixture.model)
        let index = try CatalogIndex(path: fixture.index, model: model)
        var heads = randomHeads(model, index)
        let dir = try TestPaths.temporaryDirectory("heads-bad")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.json").path
        try heads.write(good)
        XCTAssertEqual(try RankingHeads.load(good), heads, "round trip")
        // Another model's heads.
        var other = heads
        other.modelContentHash = String(repeating: "0", count: 64)
        XCTAssertThrowsError(try Ranker(model: model, index: index, heads: other)) { XCTAssertTrue("\($0)".contains("another model"), "\($0)") }
        // Broken files.
        func load(_ edit: (inout [String: Any]) -> Void) throws -> String {
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: good))) as! [String: Any]
            edit(&object)
            let p = dir.appendingPathComponent("\(UUID().uuidString).json").path
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: p))
            do {
                _ = try RankingHeads.load(p)
                return ""
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(try load { $0["feature_set"] = "something-else" }.contains("feature set"))
        XCTAssertTrue(try load { $0["std"] = Array(($0["std"] as! [Double]).dropLast()) }.contains("mismatched"))
        XCTAssertTrue(try load { var s = $0["std"] as! [Double]; s[0] = 0; $0["std"] = s }.contains("non-positive"))
        XCTAssertTrue(try load { $0["format_version"] = 99 }.contains("not supported"))
        XCTAssertTrue(try load { $0.removeValue(forKey: "ctr") }.contains("not a heads file"))
        // Requests.
        heads.alpha = 1
        let ranker = try Ranker(model: model, index: index, heads: heads)
        XCTAssertThrowsError(try ranker.rank(RankQuery(query: "lamp", recentItemIDs: Array(repeating: "x", count: 101)))) {
            XCTAssertTrue("\($0)".contains("recent item ids exceed"), "\($0)")
        }
        XCTAssertThrowsError(try ranker.rank(RankQuery(query: "lamp", alpha: .nan))) { XCTAssertTrue("\($0)".contains("finite"), "\($0)") }
    }
}
