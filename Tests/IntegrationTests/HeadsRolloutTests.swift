import Foundation
import Protocol
import XCTest
import _TestSupport

/// End to end with the real binaries: simulate a log, train heads, register a version that reuses v1's model and
/// index with the heads, roll it out under load with no failed request, and read explanations from `zrank query`.
final class HeadsRolloutTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }
    private var zrankctl: String { fixture.zrankctl }
    private var bench: String { TestPaths.productsDirectory.appendingPathComponent("zrank-bench").path }

    private func zrank(_ args: [String]) throws -> (status: Int32, output: String) { try RealModel.run(fixture.zrank, args) }

    func testTrainRegisterRollOut_thenExplain() throws {
        let dir = fixture.directory.appendingPathComponent("heads-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let log = dir.appendingPathComponent("log.jsonl").path
        let queries = TestPaths.packageRoot.appendingPathComponent("bench/data/wands/query.csv").path
        var r = try zrank(["simulate-log", "--catalog", fixture.catalog, "--queries", queries, "--users", "40", "--sessions", "400",
                           "--out", log, "--seed", "3"])
        XCTAssertEqual(r.status, 0, r.output)
        // A malformed line is reported with its number and training goes on.
        try (String(contentsOfFile: log, encoding: .utf8) + "{broken\n").write(toFile: log, atomically: true, encoding: .utf8)
        let heads = dir.appendingPathComponent("heads.json").path
        r = try zrank(["train-heads", "--model", fixture.model, "--index", fixture.index, "--log", log, "--out", heads, "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("line 8001: not a JSON object (skipped)"), r.output)
        let reportText = String(r.output[r.output.firstIndex(of: "{")!...])
        let report = try JSONSerialization.jsonObject(with: Data(reportText.utf8)) as! [String: Any]
        XCTAssertEqual(report["malformed_lines"] as? Int, 1)
        XCTAssertEqual(report["rows"] as? Int, 8000)
        for key in ["ctr_log_loss", "ctr_auc", "cosine_auc", "ndcg10", "cosine_ndcg10", "engagement_rmse"] {
            XCTAssertNotNil(report[key], "report has \(key)")
        }

        let registry = dir.appendingPathComponent("registry").path
        r = try zrank(["registry", "add", "--registry", registry, "--version", "tiny-v1", "--model", fixture.model, "--catalog", fixture.catalog])
        XCTAssertEqual(r.status, 0, r.output)
        r = try zrank(["registry", "add", "--registry", registry, "--version", "tiny-v2", "--from", "tiny-v1", "--heads", heads])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("heads heads (model and index of tiny-v1)"), r.output)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: registry + "/tiny-v2/manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["reused_from"] as? String, "tiny-v1")
        XCTAssertEqual(manifest["heads_version"] as? String, "heads")
        // Heads trained with another model are refused.
        var foreign = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: heads))) as! [String: Any]
        foreign["model_content_hash"] = String(repeating: "ab", count: 32)
        let foreignPath = dir.appendingPathComponent("foreign.json").path
        try JSONSerialization.data(withJSONObject: foreign).write(to: URL(fileURLWithPath: foreignPath))
        r = try zrank(["registry", "add", "--registry", registry, "--version", "tiny-v3", "--from", "tiny-v1", "--heads", foreignPath])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("trained with another model"), r.output)

        // Roll the heads out under load.
        let endpoint = fixture.ipcEndpoint("heads-front")
        let admin = fixture.ipcEndpoint("heads-admin")
        let pool = try ZRankProcess(["serve", "--registry", registry, "--version", "tiny-v1", "--workers", "2", "--bind", endpoint, "--admin", admin])
        XCTAssertTrue(try pool.waitUntilServing(endpoint), pool.output)
        let out = dir.appendingPathComponent("load.json").path
        let load = Process()
        load.executableURL = URL(fileURLWithPath: bench)
        load.arguments = ["--endpoint", endpoint, "--rate", "80", "--duration", "16s", "--connections", "32", "--candidates", "20",
                          "--timeout", "5s", "--json", out]
        load.standardOutput = FileHandle.nullDevice
        try load.run()
        sleep(2)
        r = try RealModel.run(zrankctl, ["rollout", "tiny-v2", "--admin", admin, "--canary", "50%", "--step", "50%", "--interval", "2s",
                                         "--min-requests", "30", "--max-p99", "2000"])
        XCTAssertEqual(r.status, 0, r.output)
        let start = Date()
        var state = ""
        while Date().timeIntervalSince(start) < 30 && state != "done" {
            state = (fixture.adminStatus(admin)?["rollout"] as? [String: Any])?["state"] as? String ?? ""
            usleep(200_000)
        }
        XCTAssertEqual(state, "done", pool.output)
        load.waitUntilExit()
        let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        XCTAssertEqual(j["ok"] as? Int, j["sent"] as? Int, "no failed request: \(j["errors"] ?? "") timeouts \(j["client_timeouts"] ?? "")")
        XCTAssertGreaterThan(j["sent"] as? Int ?? 0, 1000)
        XCTAssertEqual(Set((j["versions"] as? [String: Int] ?? [:]).keys), ["tiny-v1", "tiny-v2"])

        // Explanations from the heads version.
        r = try zrank(["query", "--endpoint", endpoint, "--text", "modern accent chair", "--candidates", fixture.itemIDs.prefix(30).joined(separator: ","),
                       "--top-k", "5", "--explain", "--json", "--recent", fixture.itemIDs.suffix(2).joined(separator: ",") + ",NOPE"])
        XCTAssertEqual(r.status, 0, r.output)
        let answer = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as! [String: Any]
        XCTAssertEqual(answer["model_version"] as? String, "tiny-v2")
        XCTAssertEqual(answer["heads_version"] as? String, "heads")
        XCTAssertEqual(answer["unknown_recent_ids"] as? [String], ["NOPE"])
        let items = answer["items"] as! [[String: Any]]
        XCTAssertEqual(items.count, 5)
        for item in items {
            let ctr = try XCTUnwrap(item["ctr"] as? Double)
            let engagement = try XCTUnwrap(item["engagement"] as? Double)
            let contributions = try XCTUnwrap(item["contributions"] as? [String: [String: Double]])
            XCTAssertEqual(Set(contributions.keys), Set(["bias", "cosine", "lexical", "personal", "has_profile", "log_popularity", "log_price", "interaction"]))
            let logit = contributions.values.reduce(0) { $0 + $1["ctr_logit"]! }
            XCTAssertEqual(1 / (1 + exp(-logit)), ctr, accuracy: 1e-4, "CTR terms sum to the logit")
            XCTAssertEqual(contributions.values.reduce(0) { $0 + $1["engagement"]! }, engagement, accuracy: 1e-4)
            XCTAssertEqual(item["score"] as? Double ?? 0, item["combined"] as? Double ?? 1, accuracy: 1e-6)
        }
        // Requests beyond the limits get a clear error.
        r = try zrank(["query", "--endpoint", endpoint, "--text", "lamp", "--recent", Array(repeating: "x", count: 101).joined(separator: ","), "--json"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.output.contains("INVALID_REQUEST") && r.output.contains("recent item ids exceed"), r.output)
        XCTAssertNotNil(pool.terminate(within: 8))
    }
}
