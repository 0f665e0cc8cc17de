import Foundation
import Model
import XCTest
import _TestSupport

/// The safetensors reader (`zrank convert`'s input) on hostile headers: refused with a `ModelError`, never a trap or a
/// read outside the file. The damaged headers are the ones fuzzing found (fuzz/run.sh, FuzzModelFile) and their
/// neighbours.
final class SafetensorsTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try TestPaths.temporaryDirectory("safetensors")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// A safetensors file with `header` (JSON, padded to 8 bytes) and `body`, or the raw `bytes`.
    private func file(_ name: String, header: String? = nil, body: [UInt8] = [], bytes: [UInt8]? = nil) throws -> String {
        var data: [UInt8]
        if let bytes {
            data = bytes
        } else {
            var h = Array(header!.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            data = withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h + body
        }
        let path = dir.appendingPathComponent(name).path
        try Data(data).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func assertRefused(_ path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { error in
            XCTAssertTrue(error is ModelError, "\(error)", file: file, line: line)
        }
    }

    func testReadsF32F16AndBF16() throws {
        let body = withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian, Array.init)
            + withUnsafeBytes(of: Float16(-2).bitPattern.littleEndian, Array.init) + [0x80, 0x3F]  // BF16 1.0
        let path = try file(
            "ok.safetensors",
            header: #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
                + #""b":{"dtype":"F16","shape":[1,1],"data_offsets":[4,6]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]}}"#,
            body: body)
        let st = try SafetensorsFile(path: path)
        XCTAssertEqual(try st.floats("a").values, [1.5])
        XCTAssertEqual(try st.floats("b").values, [-2])
        XCTAssertEqual(try st.floats("b").shape, [1, 1])
        XCTAssertEqual(try st.floats("c").values, [1])
    }

    /// Fuzzing found this one: a header length of 2^63 or more trapped converting it to Int.
    func testHeaderLengthWithTheTopBitSetIsRefused() throws {
        assertRefused(try file("top-bit.safetensors", bytes: [UInt8](repeating: 0xFF, count: 16)))
        assertRefused(try file("2^63.safetensors", bytes: [0, 0, 0, 0, 0, 0, 0, 0x80, 0x7B, 0x7D]))
        assertRefused(try file("too-long.safetensors", bytes: [0xF0, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D]))
        assertRefused(try file("zero.safetensors", bytes: [0, 0, 0, 0, 0, 0, 0, 0]))
    }

    /// Offsets before the data section, past its end, or large enough to overflow when added to its start.
    func testOffsetsOutsideTheDataAreRefused() throws {
        for (i, offsets) in ["[-4,0]", "[0,9]", "[0,9223372036854775807]", "[4,2]", "[0]"].enumerated() {
            let path = try file(
                "offsets-\(i).safetensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":\#(offsets)}}"#,
                body: [0, 0, 0, 0])
            assertRefused(path)
        }
    }

    /// Negative dimensions, and dimensions whose product overflows (they trapped in `floats`).
    func testShapesThatCannotBeCountedAreRefused() throws {
        for (i, shape) in ["[-1]", "[-2,-2]", "[4294967296,4294967296]", "[9223372036854775807,2]"].enumerated() {
            let path = try file(
                "shape-\(i).safetensors", header: #"{"a":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,4]}}"#,
                body: [0, 0, 0, 0])
            assertRefused(path)
        }
    }

    /// A shape whose element count does not fit the bytes is an error of `floats`, for every dtype width.
    func testSizeMismatchIsAnError() throws {
        let path = try file(
            "mismatch.safetensors",
            header: #"{"a":{"dtype":"F32","shape":[3037000499,3037000499],"data_offsets":[0,4]},"#
                + #""b":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]},"c":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}"#,
            body: [0, 0, 0, 0])
        let st = try SafetensorsFile(path: path)
        for name in ["a", "b", "c"] {
            XCTAssertThrowsError(try st.floats(name)) { XCTAssertTrue($0 is ModelError, "\($0)") }
        }
    }
}
