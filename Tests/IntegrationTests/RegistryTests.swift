import Foundation
import Protocol
import SwiftProtobuf
import XCTest
import _TestSupport

/// `zrank registry` and `zrank serve --registry`: versions as folders, checksum refusal, the registry name as the
/// version everywhere.
final class RegistryTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func zrank(_ args: [String]) throws -> (status: Int32, output: String) {
        try RealModel.run(fixture.zrank, args)
    }

    func testAddListRemove_sameModelUnderTwoNames_andCorruptModelRefused() throws {
        let registry = fixture.directory.appendingPathComponent("registry-\(UUID().uuidString)").path
        var r = try zrank(["registry", "add", "--registry", registry, "--version", "v1", "--model", fixture.model, "--catalog", fixture.catalog, "--notes", "first"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try zrank(["registry", "add", "--registry", registry, "--version", "v2", "--model", fixture.model, "--catalog", fixture.catalog])
        XCTAssertEqual(r.status, 0, r.output)
        for name in ["v1", "v2"] {
            for file in ["model.zrm", "catalog.zri", "manifest.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(registry)/\(name)/\(file)"), "\(name)/\(file)")
            }
        }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(registry)/v1/manifest.json"))) as! [String: Any]
        XCTAssertEqual(manifest["version"] as? String, "v1")
        XCTAssertEqual((manifest["model_content_hash"] as? String)?.count, 64)
        XCTAssertEqual((manifest["catalog_source_hash"] as? String)?.count, 64)
        XCTAssertNotNil(manifest["created_at"])
        XCTAssertEqual(manifest["notes"] as? String, "first")
        let list = try zrank(["registry", "list", "--registry", registry, "--json"])
        XCTAssertEqual(list.status, 0)
        let versions = try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as! [[String: Any]]
        XCTAssertEqual(versions.map { $0["version"] as? String }, ["v1", "v2"])
        XCTAssertEqual(Set(versions.map { $0["model_content_hash"] as! String }).count, 1, "same model, same hash")
        // Already registered.
        r = try zrank(["registry", "add", "--registry", registry, "--version", "v1", "--model", fixture.model, "--catalog", fixture.catalog])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("already registered"), r.output)
        // A model whose checksum does not verify is refused.
        var data = try Data(contentsOf: URL(fileURLWithPath: fixture.model))
        data[data.count / 3] ^= 0x40
        let corrupt = fixture.directory.appendingPathComponent("corrupt-\(UUID().uuidString).zrm").path
        try data.write(to: URL(fileURLWithPath: corrupt))
        r = try zrank(["registry", "add", "--registry", registry, "--version", "bad", "--model", corrupt, "--catalog", fixture.catalog])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("checksum mismatch"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(registry)/bad"))
        r = try zrank(["registry", "add", "--registry", registry, "--version", "../escape", "--model", fixture.model, "--catalog", fixture.catalog])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("invalid version name"), r.output)
        // Remove.
        XCTAssertEqual(try zrank(["registry", "remove", "--registry", registry, "--version", "v2"]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(registry)/v2"))
        XCTAssertNotEqual(try zrank(["registry", "remove", "--registry", registry, "--version", "v2"]).status, 0)
    }

    func testServeFromRegistry_reportsTheRegistryName() throws {
        let registry = fixture.directory.appendingPathComponent("registry-\(UUID().uuidString)").path
        XCTAssertEqual(try zrank(["registry", "add", "--registry", registry, "--version", "prod-2026-11", "--model", fixture.model, "--catalog", fixture.catalog]).status, 0)
        let endpoint = fixture.ipcEndpoint("registry")
        let pool = try ZRankProcess(["serve", "--registry", registry, "--version", "prod-2026-11", "--workers", "1", "--bind", endpoint])
        let client = try PoolClient(endpoint: endpoint)
        var r = Zrank_V1_RankRequest()
        r.query = "lamp"
        r.candidateIds = Array(fixture.itemIDs.prefix(5))
        let body: [UInt8] = try r.serializedBytes()
        var answer: PoolClient.Answer?
        let start = Date()
        var id: UInt64 = 0
        while answer == nil && Date().timeIntervalSince(start) < 20 {
            id += 1
            try client.send(type: .rankRequest, requestID: id, body: body, deadlineMs: 500)
            if let a = try client.receive(timeoutMs: 600), a.header.type == .rankResponse { answer = a }
        }
        let response = try Zrank_V1_RankResponse(serializedBytes: try XCTUnwrap(answer, pool.output).body)
        XCTAssertEqual(response.modelVersion, "prod-2026-11")
        // Pins name registry versions.
        try client.send(type: .rankRequest, requestID: 9999, body: body, pin: "prod-2026-11")
        XCTAssertEqual(try client.receive(timeoutMs: 5000)?.header.type, .rankResponse)
        XCTAssertNotNil(pool.terminate(within: 5))
        // An unknown version is a clear start-up error.
        let bad = try zrank(["serve", "--registry", registry, "--version", "nope", "--workers", "1", "--bind", fixture.ipcEndpoint("x")])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("version nope is not registered"), bad.output)
    }
}
