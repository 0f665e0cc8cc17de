#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a model or index file's bytes are held in memory.
public enum FileLoading: Sendable, Equatable {
    /// `mmap` of the file: pages shared between processes, but truncating the file under a reader is SIGBUS.
    case mapped
    /// Read once, through the descriptor opened once, into anonymous memory: nothing done to the file afterwards
    /// (truncated, rewritten, replaced) reaches the reader. Workers load this way.
    case privateCopy
}

/// Opening and mapping whole files for the model and index readers: regular files only (a FIFO or a device is
/// refused without blocking on it), mapped or copied (`FileLoading`).
public enum FileMapping {
    /// Opens `path` read-only and returns the descriptor and size; the caller closes it.
    /// - Parameter what: the file's kind in messages ("model file", "index", ...).
    /// - Throws: the reason, when it cannot be opened or is not a regular file.
    public static func open(_ path: String, what: String = "file") throws(FileMappingError) -> (fd: Int32, size: Int) {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileMappingError("cannot open \(what): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw FileMappingError("cannot stat \(what): \(reason)")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw FileMappingError("\(what) is not a regular file (a FIFO, a device or a folder); refusing it")
        }
        return (fd, Int(st.st_size))
    }

    /// The file's `size` bytes in memory, read-only: mapped, or copied into anonymous memory. Release with `munmap`.
    /// - Throws: the reason (the map failed, or the file changed size while being copied).
    public static func load(fd: Int32, size: Int, _ loading: FileLoading) throws(FileMappingError) -> UnsafeMutableRawPointer {
        switch loading {
        case .mapped:
            guard let raw = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), raw != MAP_FAILED else {
                throw FileMappingError("cannot map: \(String(cString: strerror(errno)))")
            }
            return raw
        case .privateCopy:
            guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
                throw FileMappingError("cannot allocate \(size) bytes: \(String(cString: strerror(errno)))")
            }
            var done = 0
            while done < size {
                let n = pread(fd, raw + done, size - done, off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    munmap(raw, size)
                    throw FileMappingError(n == 0 ? "the file shrank while it was read" : "cannot read: \(String(cString: strerror(errno)))")
                }
                done += n
            }
            mprotect(raw, size, PROT_READ)
            return raw
        }
    }
}

/// Why a file could not be opened or loaded.
public struct FileMappingError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
