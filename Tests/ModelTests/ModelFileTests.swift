import Foundation
import Model
import XCTest
import _TestSupport

/// The converter and the model file: round trip of a generated checkpoint, and a clear typed error for every kind of
/// damaged file.
final class ModelFileTests: XCTestCase {
    private var dir: URL!
    private var modelPath: String!

    override func setUpWithError() throws {
        dir = try TestPaths.temporaryDirectory("modelfile")
        let checkpoint = SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary())
        try checkpoint.write(to: dir.appendingPathComponent("ckpt"))
        modelPath = dir.appendingPathComponent("tiny.zrm").path
        try ModelConverter.convert(from: dir.appendingPathComponent("ckpt").path, to: modelPath, version: nil)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func mutated(_ name: String, _ change: (inout Data) -> Void) throws -> String {
        var data = try Data(contentsOf: URL(fileURLWithPath: modelPath))
        change(&data)
        let path = dir.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    private func assertRefused(_ path: String, _ expected: ModelError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelFile(path: path), file: file, line: line) { error in
            XCTAssertEqual(error as? ModelError, expected, file: file, line: line)
        }
    }

    func testConvert_writesValidatedFile_withConfigVocabAndDerivedVersion() throws {
        let model = try ModelFile(path: modelPath)
        XCTAssertEqual(model.config.hiddenSize, 32)
        XCTAssertEqual(model.config.numLayers, 2)
        XCTAssertEqual(model.metadata.tokenizer.vocabulary.count, 30522)
        XCTAssertEqual(model.contentHash.count, 64)
        XCTAssertEqual(model.version, "minilm-" + model.contentHash.prefix(12))
        XCTAssertEqual(model.metadata.tensors.count, 5 + 8 * 2)
    }

    func testConvert_withVersionName_keepsContentHash() throws {
        let named = dir.appendingPathComponent("named.zrm").path
        try ModelConverter.convert(from: dir.appendingPathComponent("ckpt").path, to: named, version: "v2-canary")
        let a = try ModelFile(path: modelPath)
        let b = try ModelFile(path: named)
        XCTAssertEqual(b.version, "v2-canary")
        XCTAssertEqual(a.contentHash, b.contentHash)
    }

    func testTruncatedFile_isRefusedAsTruncated() throws {
        let size = try Data(contentsOf: URL(fileURLWithPath: modelPath)).count
        let path = try mutated("trunc.zrm") { $0 = $0.prefix(size - 1000) }
        assertRefused(path, .truncated(path: path, expected: size, actual: size - 1000))
        let tiny = try mutated("tiny.zrm") { $0 = $0.prefix(10) }
        assertRefused(tiny, .truncated(path: tiny, expected: 64, actual: 10))
    }

    func testFlippedByte_isRefusedAsChecksumMismatch() throws {
        let size = try Data(contentsOf: URL(fileURLWithPath: modelPath)).count
        for offset in [100, size / 2, size - 40] {
            let path = try mutated("flip\(offset).zrm") { $0[offset] ^= 0x10 }
            assertRefused(path, .checksumMismatch(path: path))
        }
    }

    func testWrongMagicAndFormatVersion_areNamed() throws {
        let magic = try mutated("magic.zrm") { $0[0] = UInt8(ascii: "X") }
        assertRefused(magic, .badMagic(path: magic))
        let version = try mutated("version.zrm") { $0[8] = 9 }
        assertRefused(version, .unsupportedFormatVersion(path: version, found: 9, supported: ModelFileFormat.version))
    }

    func testMissingFile_andMissingCheckpointTensor_giveClearErrors() throws {
        XCTAssertThrowsError(try ModelFile(path: dir.appendingPathComponent("nope.zrm").path)) { error in
            XCTAssertTrue("\(error)".contains("cannot open model file"), "\(error)")
        }
        // A checkpoint folder with no weights.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: dir.appendingPathComponent("ckpt/config.json"), to: empty.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(
            at: dir.appendingPathComponent("ckpt/vocab.txt"), to: empty.appendingPathComponent("vocab.txt"))
        XCTAssertThrowsError(try ModelConverter.convert(from: empty.path, to: dir.appendingPathComponent("x.zrm").path, version: nil)) {
            XCTAssertTrue("\($0)".contains("cannot read safetensors file"), "\($0)")
        }
    }

    func testSafetensorsWithBadHeader_isRefused() throws {
        let bad = dir.appendingPathComponent("bad")
        try FileManager.default.copyItem(at: dir.appendingPathComponent("ckpt"), to: bad)
        let st = bad.appendingPathComponent("model.safetensors")
        var data = try Data(contentsOf: st)
        data[8] = UInt8(ascii: "#")
        try data.write(to: st)
        XCTAssertThrowsError(try ModelConverter.convert(from: bad.path, to: dir.appendingPathComponent("y.zrm").path, version: nil)) {
            XCTAssertTrue("\($0)".contains("not JSON"), "\($0)")
        }
    }
}
