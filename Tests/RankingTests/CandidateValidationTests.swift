import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// A request's candidate ids: none empty or too long, none twice, whether in the catalog, outside it, or given
/// inline; each refusal is a `RankError` with the reason, and a refusal or an answer leaves nothing behind for the
/// next request (the same ids in the next request are no duplicates).
final class CandidateValidationTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func ranker() throws -> Ranker {
        let model = try ModelFile(path: fixture.model)
        return try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model))
    }

    private func refusal(_ r: Ranker, _ q: RankQuery) -> String? {
        do {
            _ = try r.rank(q)
            return nil
        } catch {
            return error.description
        }
    }

    func testDuplicatedIds_areRefusedWherever_theyAre_andNothingCarriesOverToTheNextRequest() throws {
        let r = try ranker()
        let ids = fixture.itemIDs
        let cases: [(RankQuery, String)] = [
            (RankQuery(query: "chair", candidateIDs: [ids[0], ids[1], ids[0]]), "duplicated candidate id \"\(ids[0])\""),
            (RankQuery(query: "chair", candidateIDs: ["gone-1", ids[2], "gone-1"]), "duplicated candidate id \"gone-1\""),
            (RankQuery(query: "chair", candidateIDs: [ids[3]], inlineCandidates: [(id: ids[3], text: "a chair")]),
             "duplicated candidate id \"\(ids[3])\""),
            (RankQuery(query: "chair", candidateIDs: ["new-1"], inlineCandidates: [(id: "new-1", text: "a chair")]),
             "duplicated candidate id \"new-1\""),
            (RankQuery(query: "chair", candidateIDs: [ids[4], ""]), "empty candidate id"),
            (RankQuery(query: "chair", candidateIDs: [String(repeating: "x", count: 10_000)]), "exceeds"),
        ]
        for (i, (q, reason)) in cases.enumerated() {
            let said = try XCTUnwrap(refusal(r, q), "case \(i) is refused")
            XCTAssertTrue(said.contains(reason), "case \(i): \(said)")
            XCTAssertThrowsError(try r.validate(q), "case \(i): validate agrees")
        }
        // The ids of the refused requests, each once, in later requests (and the same request twice): answered.
        let again = RankQuery(query: "chair", candidateIDs: [ids[0], ids[1], ids[2], ids[3], ids[4], "gone-1"])
        for _ in 0..<2 {
            let outcome = try r.rank(again)
            XCTAssertEqual(Set(outcome.items.map(\.id)), Set(ids.prefix(5)))
            XCTAssertEqual(outcome.notFound, ["gone-1"])
        }
        XCTAssertNoThrow(try r.validate(RankQuery(query: "chair", candidateIDs: [ids[3]], inlineCandidates: [(id: "new-1", text: "x")])))
    }
}
