import Crypto
import Foundation
import FuzzDriver

#if canImport(Glibc)
import Glibc
#endif

// What the fuzz targets share (fuzz/README.md): the libFuzzer entry, a byte reader for structured inputs, scratch
// files for parsers that take paths, checksum trailers, and the committed fixtures (fuzz/fixtures).

/// A fuzz target's `LLVMFuzzerTestOneInput`.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer's driver with `callback` as the target and the process arguments as its flags; never returns.
///
/// SwiftPM links executables with `main` aliased to the module's own entry point, so libFuzzer's `main` is never
/// reached: each fuzz target's `main.swift` calls this instead.
public func runFuzzer(_ callback: FuzzCallback) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// The input as an array (libFuzzer passes a null pointer for the empty input).
public func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Reads a structured input from the front: every read succeeds, short of bytes it returns zeros / what is left, so
/// any byte string is a valid script.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Little-endian.
    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }

    /// Up to `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> [UInt8] {
        let n = min(max(0, count), bytes.count - offset)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    /// A frame: a little-endian u16 length, then that many bytes (fewer at the end).
    public mutating func frame() -> [UInt8] { take(Int(u16())) }

    /// Everything left.
    public mutating func rest() -> [UInt8] { take(bytes.count - offset) }
}

/// Splits `bytes` at its first NUL into two parts (the second empty without one).
public func splitAtNUL(_ bytes: [UInt8]) -> ([UInt8], [UInt8]) {
    guard let i = bytes.firstIndex(of: 0) else { return (bytes, []) }
    return (Array(bytes[..<i]), Array(bytes[(i + 1)...]))
}

/// `bytes` with its last 32 bytes replaced by the SHA-256 of everything before them: the trailer the model and index
/// formats end with, so that mutated files get past the checksum into the parsing behind it (inputs under 32 bytes
/// are returned as they are).
public func withSHA256Trailer(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= 32 else { return bytes }
    var out = bytes
    let digest = Array(SHA256.hash(data: bytes[..<(bytes.count - 32)]))
    out.replaceSubrange((bytes.count - 32)..., with: digest)
    return out
}

/// A file the process rewrites for every input, for parsers that take a path. One per name and process (so
/// `-fork`/`-jobs` workers do not share it), in `$ZRANK_FUZZ_TMP` or the temporary folder; removed at exit.
public final class ScratchFile: @unchecked Sendable {
    public let path: String

    public init(_ name: String) {
        path = scratchPath(name)
    }

    /// A fresh folder (same naming and removal as the files).
    public static func folder(_ name: String) -> String {
        let path = scratchPath(name)
        try? FileManager.default.removeItem(atPath: path)
        precondition((try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil)
        return path
    }

    /// Replaces the file's contents with `bytes`; returns its path.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot write the scratch file \(path): \(String(cString: strerror(errno)))")
        defer { close(fd) }
        var done = 0
        bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                precondition(n > 0, "cannot write the scratch file \(path): \(String(cString: strerror(errno)))")
                done += n
            }
        }
        return path
    }
}

private let scratchLock = NSLock()
nonisolated(unsafe) private var scratchPaths: [String] = []

/// `$ZRANK_FUZZ_TMP`/zrank-fuzz-PID-NAME, removed at exit.
private func scratchPath(_ name: String) -> String {
    let folder = ProcessInfo.processInfo.environment["ZRANK_FUZZ_TMP"] ?? NSTemporaryDirectory()
    let path = (folder as NSString).appendingPathComponent("zrank-fuzz-\(getpid())-\(name)")
    scratchLock.lock()
    if scratchPaths.isEmpty { atexit { removeScratchFiles() } }
    scratchPaths.append(path)
    scratchLock.unlock()
    return path
}

private func removeScratchFiles() {
    for path in scratchPaths { try? FileManager.default.removeItem(atPath: path) }
}

/// The committed fixtures (fuzz/fixtures: a tiny model, its catalog, index and heads; see fuzz/make_fixtures.py).
public enum Fixtures {
    /// `$ZRANK_FUZZ_FIXTURES`, else `fuzz/fixtures` of the package this was built from.
    public static let directory: String = {
        if let dir = ProcessInfo.processInfo.environment["ZRANK_FUZZ_FIXTURES"] { return dir }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fuzz/fixtures").path
    }()

    public static func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Stops the fuzzer with a clear message when a fixture cannot be used (a setup problem, not a finding).
    public static func require<T>(_ what: String, _ make: () throws -> T) -> T {
        do {
            return try make()
        } catch {
            FileHandle.standardError.write(Data("fuzz setup: cannot load \(what) from \(directory): \(error)\n".utf8))
            exit(2)
        }
    }
}
