import Foundation
import Model
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Files for the model and index readers: regular files only, and private copies that later edits cannot reach.
final class FileMappingTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mapping-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// The private copy survives the file being truncated to nothing (a mapping would die of SIGBUS reading it).
    func testPrivateCopy_isUnaffectedByTruncatingTheFile() throws {
        let path = dir.appendingPathComponent("blob").path
        let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (fd, size) = try FileMapping.open(path)
        defer { close(fd) }
        XCTAssertEqual(size, bytes.count)
        let copy = try FileMapping.load(fd: fd, size: size, .privateCopy)
        defer { munmap(copy, size) }
        XCTAssertEqual(truncate(path, 0), 0)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: copy, count: size)), bytes)
    }

    /// A FIFO is refused at once (no wait for a writer), and so are devices and folders.
    func testNonRegularFiles_areRefusedWithoutBlocking() throws {
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let start = Date()
        for path in [fifo, "/dev/zero", dir.path] {
            XCTAssertThrowsError(try FileMapping.open(path), path) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        XCTAssertThrowsError(try ModelFile(path: fifo, loading: .privateCopy)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
    }
}
