import Foundation
import XCTest
import _TestSupport

/// The `zrank` executable's contracts: exact line formats, per-line errors with exit status 1, start-up errors.
final class ZRankCLITests: XCTestCase {
    private var dir: URL!
    private var model: String!

    private var zrank: String { TestPaths.productsDirectory.appendingPathComponent("zrank").path }

    override func setUpWithError() throws {
        dir = try TestPaths.temporaryDirectory("cli")
        try SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary()).write(to: dir.appendingPathComponent("ckpt"))
        model = dir.appendingPathComponent("tiny.zrm").path
        let r = try run(["convert", "--from", dir.appendingPathComponent("ckpt").path, "--out", model, "--version", "tiny-v1"])
        XCTAssertEqual(r.status, 0, r.output)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func run(_ args: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
        try RealModel.run(zrank, args, stdin: stdin.map { Data($0.utf8) })
    }

    private func run(_ args: [String], stdinBytes: Data) throws -> (status: Int32, output: String) {
        try RealModel.run(zrank, args, stdin: stdinBytes)
    }

    private func lines(_ s: String) -> [[String: Any]] {
        s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func testTokenize_writesIdsInInputOrder_andEchoesIds() throws {
        let input = """
            {"id": 7, "text": "Sofa"}
            {"id": "b", "text": "", "text_pair": "table"}
            {"id": "c", "text": "   "}
            """
        let r = try run(["tokenize", "--model", model], stdin: input)
        XCTAssertEqual(r.status, 0, r.output)
        let out = lines(r.output)
        XCTAssertEqual(out.count, 3)
        XCTAssertEqual(out[0]["id"] as? Int, 7)
        XCTAssertEqual(out[0]["input_ids"] as? [Int], [101, 10682, 102])
        XCTAssertEqual(out[1]["id"] as? String, "b")
        XCTAssertEqual(out[1]["input_ids"] as? [Int], [101, 102, 2795, 102])
        XCTAssertEqual(out[1]["token_type_ids"] as? [Int], [0, 0, 1, 1])
        XCTAssertEqual(out[2]["input_ids"] as? [Int], [101, 102])
    }

    func testTokenize_maxLengthTruncates_andZeroKeepsEverything() throws {
        let text = String(repeating: "chair ", count: 200)
        let input = "{\"id\": 1, \"text\": \"\(text)\"}\n"
        let tokens = (try run(["tokenize", "--model", model], stdin: input).output)
        XCTAssertEqual((lines(tokens).first?["input_ids"] as? [Int])?.count, 64, "default clamps to the model's limit")
        let truncated = lines(try run(["tokenize", "--model", model, "--max-length", "16"], stdin: input).output)
        XCTAssertEqual((truncated[0]["input_ids"] as! [Int]).count, 16)
        XCTAssertEqual((truncated[0]["input_ids"] as! [Int]).last, 102)
        let full = lines(try run(["tokenize", "--model", model, "--max-length", "0"], stdin: input).output)
        XCTAssertEqual((full[0]["input_ids"] as! [Int]).count, 202)
    }

    func testBadLines_giveErrorRecords_otherLinesProceed_exitStatus1() throws {
        var input = Data("{\"id\": 1, \"text\": \"lamp\"}\n".utf8)
        input.append(Data("not json\n".utf8))
        input.append(Data("{\"id\": 3}\n".utf8))
        input.append(Data("{\"id\": 4, \"text\": \"caf".utf8) + Data([0xC3, 0x28]) + Data("\"}\n".utf8))
        input.append(Data("{\"id\": 5, \"text\": 12}\n".utf8))
        input.append(Data("{\"id\": 6, \"text\": \"rug\"}\n".utf8))
        for command in ["tokenize", "embed"] {
            let r = try run([command, "--model", model], stdinBytes: input)
            XCTAssertEqual(r.status, 1, r.output)
            let out = lines(r.output)
            guard out.count == 6 else { return XCTFail("expected 6 lines: \(r.output)") }
            XCTAssertEqual(out[0]["id"] as? Int, 1)
            XCTAssertNil(out[0]["error"])
            XCTAssertEqual(out[1]["line"] as? Int, 2)
            XCTAssertEqual(out[1]["error"] as? String, "invalid JSON")
            XCTAssertEqual(out[2]["line"] as? Int, 3)
            XCTAssertEqual(out[2]["id"] as? Int, 3)
            XCTAssertEqual(out[2]["error"] as? String, "missing \"text\" field")
            XCTAssertEqual(out[3]["line"] as? Int, 4)
            XCTAssertEqual(out[3]["error"] as? String, "invalid UTF-8")
            XCTAssertEqual(out[4]["error"] as? String, "\"text\" must be a string")
            XCTAssertEqual(out[5]["id"] as? Int, 6)
            XCTAssertNil(out[5]["error"])
        }
    }

    func testEmbed_writesUnitVectors_forEmptyPairAndLongText() throws {
        let long = String(repeating: "outdoor dining ", count: 400)
        let input = """
            {"id": "a", "text": ""}
            {"id": "b", "text": "oak desk", "text_pair": "solid oak writing desk"}
            {"id": "c", "text": "\(long)"}
            """
        let r = try run(["embed", "--model", model, "--batch", "2", "--max-length", "0"], stdin: input)
        XCTAssertEqual(r.status, 0, r.output)
        let out = lines(r.output)
        XCTAssertEqual(out.map { $0["id"] as? String }, ["a", "b", "c"])
        for row in out {
            let v = row["embedding"] as! [Double]
            XCTAssertEqual(v.count, 32)
            XCTAssertEqual(v.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-4)
        }
    }

    func testMaxLengthAbovePositionLimit_isAnErrorAtStart() throws {
        let r = try run(["embed", "--model", model, "--max-length", "600"], stdin: "{\"text\": \"x\"}\n")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("exceeds the model's position limit (64)"), r.output)
        XCTAssertFalse(r.output.contains("embedding"))
    }

    func testInspect_validatesAndDescribes_andRefusesCorruptFiles() throws {
        let ok = try run(["inspect", model])
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertTrue(ok.output.contains("model version:   tiny-v1"), ok.output)
        XCTAssertTrue(ok.output.contains("checksum OK"))
        let json = try run(["inspect", "--json", model])
        XCTAssertEqual(lines(json.output).first?["version"] as? String, "tiny-v1")

        var data = try Data(contentsOf: URL(fileURLWithPath: model))
        data[data.count / 2] ^= 1
        let corrupt = dir.appendingPathComponent("corrupt.zrm").path
        try data.write(to: URL(fileURLWithPath: corrupt))
        let bad = try run(["inspect", corrupt])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("checksum mismatch"), bad.output)
        let missing = try run(["embed", "--model", dir.appendingPathComponent("none.zrm").path], stdin: "")
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("cannot open model file"), missing.output)
    }

    func testVersion_reportsKernelsAndLinkedLibzmq() throws {
        let r = try run(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("libzmq 4."), r.output)
    }
}
