import CLISupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The private runtime folder: created 0700, and refused when someone else prepared it.
final class RuntimeFolderTests: XCTestCase {
    private var base: String!

    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("runtime-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: base)
    }

    private func mode(_ path: String) -> mode_t {
        var st = stat()
        lstat(path, &st)
        return st.st_mode & 0o777
    }

    func testCreated_private_andReusedByItsOwner() throws {
        let folder = try RuntimeFolder(base: base, pid: 4242)
        XCTAssertEqual(folder.path, base + "/zrank-\(getuid())-4242")
        XCTAssertEqual(mode(folder.path), 0o700)
        XCTAssertEqual(folder.endpoint("admin"), "ipc://\(folder.path)/admin.sock")
        XCTAssertEqual(try RuntimeFolder(base: base, pid: 4242), folder, "its owner may use it again")
    }

    func testPrecreatedByAnotherUser_orOpen_orASymlink_isRefused() throws {
        // Open permissions.
        let open = base + "/zrank-\(getuid())-1"
        XCTAssertEqual(mkdir(open, 0o755), 0)
        chmod(open, 0o755)
        XCTAssertThrowsError(try RuntimeFolder(base: base, pid: 1)) { XCTAssertTrue("\($0)".contains("mode 755"), "\($0)") }
        // A symlink to a folder the attacker controls.
        let target = base + "/elsewhere"
        XCTAssertEqual(mkdir(target, 0o700), 0)
        XCTAssertEqual(symlink(target, base + "/zrank-\(getuid())-2"), 0)
        XCTAssertThrowsError(try RuntimeFolder(base: base, pid: 2)) { XCTAssertTrue("\($0)".contains("not a folder"), "\($0)") }
        // Owned by another user (needs root to arrange; CI runs as root).
        guard getuid() == 0 else {
            print("RuntimeFolderTests: the other-owner case SKIPPED (needs root to chown)")
            return
        }
        let foreign = base + "/zrank-0-3"
        XCTAssertEqual(mkdir(foreign, 0o700), 0)
        XCTAssertEqual(chown(foreign, 65534, 65534), 0)
        XCTAssertThrowsError(try RuntimeFolder(base: base, uid: 0, pid: 3)) {
            XCTAssertTrue("\($0)".contains("owned by uid 65534"), "\($0)")
        }
    }
}
