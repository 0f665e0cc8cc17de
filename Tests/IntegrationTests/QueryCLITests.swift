import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// `zrank query` and `zrank index` contracts against a real pool, plus inline candidates and the catalog checks.
final class QueryCLITests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func zrank(_ args: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
        try RealModel.run(fixture.zrank, args, stdin: stdin.map { Data($0.utf8) })
    }

    private func startPool(_ endpoint: String, extra: [String] = []) throws -> ZRankProcess {
        let pool = try ZRankProcess(["serve", "--model", fixture.model, "--index", fixture.index, "--workers", "1", "--bind", endpoint] + extra)
        XCTAssertTrue(try pool.waitUntilServing(endpoint), "pool did not come up: \(pool.output)")
        return pool
    }

    func testBatch_answersEveryLineInOrder_withErrorsInPlace_andExitStatus1() throws {
        let endpoint = fixture.ipcEndpoint("batch")
        let pool = try startPool(endpoint)
        let ids = fixture.itemIDs
        var lines: [String] = []
        for i in 0..<30 {
            lines.append("{\"id\": \(i), \"query\": \"query \(i)\", \"candidates\": [\"\(ids[i])\", \"\(ids[i + 1])\", \"\(ids[i + 2])\"]}")
        }
        lines.insert("{\"id\": \"dup\", \"query\": \"chair\", \"candidates\": [\"a\", \"a\"]}", at: 10)
        lines.insert("not json", at: 20)
        let file = fixture.directory.appendingPathComponent("batch-\(UUID().uuidString).jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try zrank(["query", "--endpoint", endpoint, "--batch", file, "--top-k", "2", "--in-flight", "4", "--json"])
        XCTAssertEqual(r.status, 1, r.output)
        let out = r.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(out.count, 32, r.output)
        var expectedID = 0
        for (n, o) in out.enumerated() {
            if n == 10 {
                XCTAssertEqual(o["id"] as? String, "dup")
                XCTAssertEqual((o["error"] as? [String: Any])?["code"] as? String, "INVALID_REQUEST")
                continue
            }
            if n == 20 {
                XCTAssertEqual((o["error"] as? [String: Any])?["code"] as? String, "INVALID_INPUT")
                continue
            }
            XCTAssertEqual(o["id"] as? Int, expectedID, "answers keep input order")
            XCTAssertEqual((o["items"] as? [[String: Any]])?.count, 2)
            XCTAssertEqual(o["model_version"] as? String, "tiny-v1")
            XCTAssertNotNil(o["not_found"])
            expectedID += 1
        }
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    func testBatch_retriesOverloaded_untilEveryRequestIsRanked() throws {
        let endpoint = fixture.ipcEndpoint("overload")
        // A queue of 2 and a slow worker: most sends are refused OVERLOADED at first, then retried with backoff.
        let pool = try startPool(endpoint, extra: ["--queue-bound", "2", "--fault-stall-ms", "15"])
        let lines = (0..<40).map { "{\"id\": \($0), \"query\": \"lamp \($0)\", \"candidates\": [\"\(fixture.itemIDs[$0])\"]}" }
        let file = fixture.directory.appendingPathComponent("overload-\(UUID().uuidString).jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try zrank(["query", "--endpoint", endpoint, "--batch", file, "--in-flight", "16", "--timeout", "20s", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let out = r.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(out.count, 40)
        XCTAssertTrue(out.allSatisfy { $0["error"] == nil }, "every request ranked after OVERLOADED retries")
        XCTAssertEqual(out.map { $0["id"] as? Int }, (0..<40).map { $0 })
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    func testUnreachablePool_exitStatus2() throws {
        let r = try zrank(["query", "--endpoint", fixture.ipcEndpoint("nobody"), "--text", "sofa", "--timeout", "300ms", "--json"])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("CLIENT_TIMEOUT"), r.output)
    }

    func testInlineCandidates_areEncodedAndRankedWithCatalogOnes() throws {
        let model = try ModelFile(path: fixture.model)
        let ranker = try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model))
        let query = RankQuery(
            query: "walnut coffee table", candidateIDs: Array(fixture.itemIDs.prefix(5)),
            inlineCandidates: [(id: "new-1", text: "walnut coffee table"), (id: "new-2", text: "garden hose reel")], topK: 0)
        let first = try ranker.rank(query)
        XCTAssertEqual(first.items.count, 7)
        XCTAssertEqual(first.items.first?.id, "new-1", "identical text ranks first")
        XCTAssertEqual(first.items.first?.score ?? 0, 1, accuracy: 1e-4)
        // Cached the second time: same answer.
        XCTAssertEqual(try ranker.rank(query).items, first.items)
        // Scores are cosines: the inline fp32 vector of a catalog item's own text agrees with its int8 row.
        let catalog = try CatalogIndexBuilder.readCatalog(fixture.catalog).items
        let item = catalog[3]
        let both = try ranker.rank(RankQuery(query: "x lamp", candidateIDs: [item.id], inlineCandidates: [(id: "copy", text: item.indexedText)]))
        XCTAssertEqual(both.items[0].score, both.items[1].score, accuracy: 0.02)
        var limits = RankLimits()
        limits.maxInlineCandidates = 1
        let strict = try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model), limits: limits)
        XCTAssertThrowsError(try strict.rank(query)) { XCTAssertTrue("\($0)".contains("inline candidates exceed")) }
    }

    func testIndex_refusesBadCatalogs_withTheLineNumber() throws {
        let cases: [(String, String)] = [
            ("{\"id\": \"a\", \"title\": \"x\"}\nnot json\n", "line 2: not a JSON object"),
            ("{\"id\": \"a\", \"title\": \"x\"}\n{\"id\": \"a\", \"title\": \"y\"}\n", "line 2: duplicated id \"a\""),
            ("{\"title\": \"x\"}\n", "line 1: missing string \"id\""),
            ("{\"id\": \"a\"}\n", "line 1: missing string \"title\""),
            ("{\"id\": \"\(String(repeating: "x", count: 129))\", \"title\": \"x\"}\n", "exceeds 128"),
            ("\n\n", "has no items"),
        ]
        for (content, message) in cases {
            let catalog = fixture.directory.appendingPathComponent("bad-\(UUID().uuidString).jsonl").path
            try content.write(toFile: catalog, atomically: true, encoding: .utf8)
            let r = try zrank(["index", "--model", fixture.model, "--catalog", catalog, "--out", catalog + ".zri"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.output.contains(message), "expected \(message): \(r.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: catalog + ".zri"))
        }
    }
}
