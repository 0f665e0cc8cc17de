import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The private folder a process keeps its ipc sockets in (`BASE/zrank-UID-PID`, BASE = `$XDG_RUNTIME_DIR` or the
/// temporary folder): created with mode 0700, and refused when it already exists but is not a directory owned by
/// this user with no access for anyone else — another local user who pre-creates it must not own the sockets.
public struct RuntimeFolder: Sendable, Equatable {
    public let path: String

    /// Why the folder cannot be used.
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Creates (or checks) `base/zrank-UID-PID`.
    /// - Throws: `Refusal` saying what is wrong: cannot create it, a symlink or not a folder, another owner, open
    ///   permissions.
    public init(base: String? = nil, uid: uid_t = getuid(), pid: pid_t = getpid()) throws(Refusal) {
        let root = base ?? ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? NSTemporaryDirectory()
        path = URL(fileURLWithPath: root).appendingPathComponent("zrank-\(uid)-\(pid)").path
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw Refusal(description: "\(path): cannot create the runtime folder: \(String(cString: strerror(errno)))")
        }
        // lstat: a symlink planted there is refused, not followed.
        var st = stat()
        guard lstat(path, &st) == 0 else {
            throw Refusal(description: "\(path): cannot inspect the runtime folder: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw Refusal(description: "\(path): the runtime folder is not a folder (a symlink or a file is in its place); refusing it")
        }
        guard st.st_uid == uid else {
            throw Refusal(description: "\(path): the runtime folder is owned by uid \(st.st_uid), not \(uid); refusing it (set XDG_RUNTIME_DIR to a private folder)")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw Refusal(description: "\(path): the runtime folder has mode \(String(st.st_mode & 0o777, radix: 8)); refusing it (it must be 700)")
        }
    }

    /// An ipc endpoint for socket `name` in the folder.
    public func endpoint(_ name: String) -> String { "ipc://" + path + "/\(name).sock" }
}
