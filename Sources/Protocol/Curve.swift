import CZMQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a CURVE key or key folder could not be used.
public enum CurveKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// libzmq was built without CURVE (no libsodium).
    case unsupported
    /// The file cannot be read (missing, a folder, permissions).
    case unreadable(path: String, reason: String)
    /// The file does not hold a 40-character Z85 key.
    case malformed(path: String)
    /// A secret key file others can read or change.
    case tooOpen(path: String, mode: UInt32)
    /// `zrank keygen` would overwrite an existing file.
    case exists(path: String)
    /// A key folder with no `*.pub` file in it.
    case emptyFolder(path: String)

    public var description: String {
        switch self {
        case .unsupported: return "this libzmq has no CURVE support (it must be built with libsodium)"
        case .unreadable(let path, let reason): return "cannot read the key file \(path): \(reason)"
        case .malformed(let path): return "\(path) does not hold a CURVE key (40 Z85 characters, as zrank keygen writes)"
        case .tooOpen(let path, let mode):
            return "the secret key \(path) has mode \(String(mode, radix: 8)): others may read or change it (chmod 600 \(path))"
        case .exists(let path): return "\(path) exists; refusing to overwrite a key"
        case .emptyFolder(let path): return "the key folder \(path) holds no *.pub file: nobody could connect"
        }
    }
}

/// A CURVE public key: 32 bytes, written as 40 Z85 characters.
public struct CurvePublicKey: Hashable, Sendable, CustomStringConvertible {
    /// The 40-character Z85 text.
    public let z85: String

    /// Checks `z85` is a key's text.
    public init?(z85 text: String) {
        guard Self.decode(text) != nil else { return nil }
        self.z85 = text
    }

    /// The key from 32 raw bytes (as a ZAP request carries it).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, bytes, 32) != nil else { return nil }
        self.z85 = String(cString: text)
    }

    /// The 32 raw bytes.
    public var bytes: [UInt8] { Self.decode(z85)! }

    public var description: String { z85 }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.count == 40, text.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&out, text) != nil else { return nil }
        return out
    }

    /// Reads a `*.pub` file (the first line that is not blank or a `#` comment).
    public static func load(_ path: String) throws(CurveKeyError) -> CurvePublicKey {
        guard let key = CurvePublicKey(z85: try readKeyText(path)) else { throw .malformed(path: path) }
        return key
    }

    /// Every `*.pub` file in `folder` (sorted by name). An empty folder is refused: nobody could connect.
    public static func loadFolder(_ folder: String) throws(CurveKeyError) -> [String: CurvePublicKey] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".pub") }.sorted()
        } catch {
            throw .unreadable(path: folder, reason: "not a readable folder")
        }
        guard !names.isEmpty else { throw .emptyFolder(path: folder) }
        var keys: [String: CurvePublicKey] = [:]
        for name in names {
            keys[String(name.dropLast(4))] = try load((folder as NSString).appendingPathComponent(name))
        }
        return keys
    }
}

/// A CURVE key pair. Only the secret is stored (`PREFIX.key`); the public half is derived from it.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: CurvePublicKey
    /// The 40-character Z85 secret.
    public let secretZ85: String

    /// A new random key pair.
    public static func generate() throws(CurveKeyError) -> CurveKeyPair {
        guard zmq_has("curve") == 1 else { throw .unsupported }
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0, let key = CurvePublicKey(z85: String(cString: pub)) else {
            throw .unsupported
        }
        return CurveKeyPair(publicKey: key, secretZ85: String(cString: sec))
    }

    private init(publicKey: CurvePublicKey, secretZ85: String) {
        self.publicKey = publicKey
        self.secretZ85 = secretZ85
    }

    /// The pair of a Z85 secret; nil when the text is not a key.
    public init?(secretZ85 text: String) {
        guard CurvePublicKey.decode(text) != nil else { return nil }
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, text) == 0, let key = CurvePublicKey(z85: String(cString: pub)) else { return nil }
        self.init(publicKey: key, secretZ85: text)
    }

    /// Reads a secret key file, refusing one that is world-readable or writable by others.
    public static func load(_ path: String) throws(CurveKeyError) -> CurveKeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        let mode = UInt32(info.st_mode) & 0o777
        // Group read stays allowed (Kubernetes Secrets mounted with fsGroup are 0440); nothing else for others.
        guard mode & 0o026 == 0 else { throw .tooOpen(path: path, mode: mode) }
        guard let pair = CurveKeyPair(secretZ85: try readKeyText(path)) else { throw .malformed(path: path) }
        return pair
    }

    /// Writes `PREFIX.key` (the secret, mode 0600) and `PREFIX.pub` (the public key); refuses to overwrite either.
    public func write(prefix: String) throws(CurveKeyError) {
        let secretPath = prefix + ".key"
        let publicPath = prefix + ".pub"
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw .exists(path: path)
        }
        try writeNew(secretPath, "# zrank CURVE secret key: keep it private\n\(secretZ85)\n", mode: 0o600)
        try writeNew(publicPath, "# zrank CURVE public key\n\(publicKey.z85)\n", mode: 0o644)
    }

    private func writeNew(_ path: String, _ text: String, mode: mode_t) throws(CurveKeyError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw .exists(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        _ = fchmod(fd, mode)  // whatever the umask
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
    }
}

/// The first line of a key file that is not blank or a comment.
private func readKeyText(_ path: String) throws(CurveKeyError) -> String {
    var info = stat()
    guard stat(path, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    guard info.st_mode & S_IFMT == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
    guard info.st_size <= 4096 else { throw .malformed(path: path) }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw .unreadable(path: path, reason: "cannot read it")
    }
    for line in text.split(whereSeparator: \.isNewline) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        return trimmed
    }
    throw .malformed(path: path)
}

/// What a client (a query client, a worker, an operator tool) needs to reach a CURVE server.
public struct CurveClientKeys: Sendable, Equatable {
    /// The server's public key (`--curve-server FILE.pub`).
    public var server: CurvePublicKey
    /// This client's own pair (`--curve-key FILE.key`).
    public var own: CurveKeyPair

    public init(server: CurvePublicKey, own: CurveKeyPair) {
        self.server = server
        self.own = own
    }

    /// Reads both files.
    public static func load(server: String, key: String) throws(CurveKeyError) -> CurveClientKeys {
        CurveClientKeys(server: try CurvePublicKey.load(server), own: try CurveKeyPair.load(key))
    }
}

/// The ZAP domains a CURVE server's sockets belong to; each admits its own list of public keys.
public enum CurveDomain: String, Sendable, CaseIterable {
    /// Query clients (the router's frontend).
    case clients
    /// Workers (the router's backend).
    case workers
    /// Operators and the coordinator (admin and control sockets).
    case admins
}

extension ZMQSocket {
    private func setText(_ option: Int32, _ text: String) throws(ZMQError) {
        let bytes = Array(text.utf8)
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    /// Makes this (not yet bound) socket a CURVE server whose peers are judged by the ZAP handler for `domain`.
    public func makeCurveServer(_ own: CurveKeyPair, domain: CurveDomain) throws(ZMQError) {
        try setInt(ZMQ_CURVE_SERVER, 1)
        try setText(ZMQ_CURVE_SECRETKEY, own.secretZ85)
        try setText(ZMQ_ZAP_DOMAIN, domain.rawValue)
    }

    /// Makes this (not yet connected) socket a CURVE client of `keys.server`.
    public func makeCurveClient(_ keys: CurveClientKeys) throws(ZMQError) {
        try setText(ZMQ_CURVE_SERVERKEY, keys.server.z85)
        try setText(ZMQ_CURVE_PUBLICKEY, keys.own.publicKey.z85)
        try setText(ZMQ_CURVE_SECRETKEY, keys.own.secretZ85)
    }
}

/// The public keys each domain admits; what a ZAP handler decides with. Keys come from folders of `*.pub` files
/// (re-read when they change: `reloaded()`) and from keys given directly (the server's own).
public struct CurveAllowList: Sendable, Equatable {
    /// Key → the name it was listed under (the `*.pub` file's name), per domain.
    public private(set) var keys: [CurveDomain: [CurvePublicKey: String]]
    /// The keys given directly, kept across reloads.
    private var fixed: [CurveDomain: [CurvePublicKey: String]]
    /// The folders each domain reads.
    public private(set) var folders: [CurveDomain: [String]] = [:]

    public init(keys: [CurveDomain: [CurvePublicKey: String]] = [:]) {
        self.keys = keys
        self.fixed = keys
    }

    /// Adds a folder's `*.pub` keys to `domain` (and the folder to those re-read by `reloaded()`).
    public mutating func add(folder: String, to domain: CurveDomain) throws(CurveKeyError) {
        for (name, key) in try CurvePublicKey.loadFolder(folder) { keys[domain, default: [:]][key] = name }
        folders[domain, default: []].append(folder)
    }

    /// The same list with every folder read again (a key file added or removed takes effect); throws when a folder
    /// or a key file in it no longer reads.
    public func reloaded() throws(CurveKeyError) -> CurveAllowList {
        var fresh = CurveAllowList(keys: fixed)
        for domain in CurveDomain.allCases {
            for folder in folders[domain] ?? [] { try fresh.add(folder: folder, to: domain) }
        }
        return fresh
    }

    /// What changes when a key file is added, removed or rewritten in one of the folders.
    public var folderSignature: [String] {
        var lines: [String] = []
        for folder in Set(folders.values.joined()).sorted() {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".pub") }.sorted()
            for name in names {
                let path = (folder as NSString).appendingPathComponent(name)
                var info = stat()
                let stamp = stat(path, &info) == 0 ? "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec).\(info.st_size)" : "?"
                lines.append("\(path) \(stamp)")
            }
        }
        return lines
    }

    /// The name a key is listed under in `domain`, or nil: refused.
    public func admit(_ key: CurvePublicKey, domain: CurveDomain) -> String? {
        keys[domain]?[key]
    }
}

/// A ZAP (ZeroMQ Authentication Protocol, RFC 27) handler: a thread with a REP socket at
/// `inproc://zeromq.zap.01` in the server's context that admits a CURVE client when its public key is in the list
/// of the socket's domain (its `ZMQ_ZAP_DOMAIN`), and refuses everything else (a NULL or PLAIN handshake, an unknown
/// domain, an unlisted key) with status 400. It must be started before any CURVE socket of that context binds:
/// without a handler libzmq admits every key.
public final class ZAPHandler: @unchecked Sendable {
    private let lock = NSLock()
    private var stopping = false
    private var refusedCount: [CurveDomain: Int] = [:]
    private var admittedCount: [CurveDomain: Int] = [:]
    private let finished = DispatchSemaphore(value: 0)

    /// Binds the handler's socket in `context` and starts its thread.
    public init(context: ZMQContext, allow: CurveAllowList, log: @escaping @Sendable (String) -> Void = { _ in }) throws(ZMQError) {
        let socket = try ZMQSocket(context, type: .rep)
        try socket.bind("inproc://zeromq.zap.01")
        let box = UncheckedBox(socket)
        Thread.detachNewThread { [self] in
            serve(box.value, allow: allow, log: log)
            finished.signal()
        }
    }

    /// Stops the thread and closes its socket (before the context is terminated).
    public func stop() {
        lock.lock()
        let first = !stopping
        stopping = true
        lock.unlock()
        if first { finished.wait() }
    }

    deinit { stop() }

    /// Handshakes refused and admitted so far, per domain.
    public var figures: (refused: [CurveDomain: Int], admitted: [CurveDomain: Int]) {
        lock.lock()
        defer { lock.unlock() }
        return (refusedCount, admittedCount)
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    private func serve(_ socket: ZMQSocket, allow initial: CurveAllowList, log: (String) -> Void) {
        // Each refused key is logged once (a refused peer reconnects every few hundred ms), up to 1000 keys.
        var logged = Set<CurvePublicKey>()
        var allow = initial
        // The key folders are looked at once a second: a key file added (or removed) is admitted (or refused) from
        // the next handshake on, without a restart. Connections already made stay (CURVE checks at the handshake).
        var signature = allow.folderSignature
        var lastCheck = monotonicNanos()
        while !isStopping {
            if monotonicNanos() - lastCheck > 1_000_000_000 {
                lastCheck = monotonicNanos()
                let now = allow.folderSignature
                if now != signature {
                    signature = now
                    do {
                        allow = try allow.reloaded()
                        logged.removeAll()
                        log("key folders changed; reloaded: " + CurveDomain.allCases.map { "\($0.rawValue) \(allow.keys[$0]?.count ?? 0)" }.joined(separator: ", "))
                    } catch {
                        log("key folders changed but do not read (\(error)); keeping the previous keys")
                    }
                }
            }
            guard (try? ZMQPoller.poll([socket], timeoutMs: 100))?.first == true,
                let frames = try? socket.receive(dontWait: true)
            else { continue }
            // version, request id, domain, address, identity, mechanism, credentials...
            guard frames.count >= 6 else {
                try? socket.send([Array("1.0".utf8), [], Array("500".utf8), Array("malformed ZAP request".utf8), [], []])
                continue
            }
            let requestID = frames[1]
            let domainText = String(decoding: frames[2], as: UTF8.self)
            let address = String(decoding: frames[3], as: UTF8.self)
            let mechanism = String(decoding: frames[5], as: UTF8.self)
            var status = "400"
            var text = "refused"
            var user = ""
            let domain = CurveDomain(rawValue: domainText)
            if mechanism != "CURVE" {
                text = "CURVE required"
            } else if let domain, frames.count >= 7, let key = CurvePublicKey(bytes: frames[6]) {
                if let name = allow.admit(key, domain: domain) {
                    (status, text, user) = ("200", "OK", name)
                } else {
                    text = "key not allowed for \(domain.rawValue)"
                    if logged.count < 1000, logged.insert(key).inserted { log("refused a CURVE key not listed for \(domain.rawValue): \(key.z85) from \(address) (logged once per key)") }
                }
            } else {
                text = "unknown domain \(domainText)"
            }
            if let domain {
                lock.lock()
                if status == "200" { admittedCount[domain, default: 0] += 1 } else { refusedCount[domain, default: 0] += 1 }
                lock.unlock()
            }
            try? socket.send([Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(user.utf8), []])
        }
    }
}

/// Moves a thread-confined value into the thread that will own it.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// How a client's handshakes with its server went, from libzmq's socket monitor: why a CURVE client gets no answer
/// (the server refused its key, or speaks another mechanism), so tools can name the likely cause.
public final class HandshakeMonitor {
    /// What the monitor saw last.
    public enum Outcome: Equatable, Sendable {
        case none
        case succeeded
        /// The server refused the key (ZAP status, e.g. 400).
        case refused(status: Int32)
        /// The peers speak different mechanisms or the handshake was garbled (plain vs CURVE, a wrong server key).
        case protocolError(code: Int32)
        case failed
    }

    private let socket: ZMQSocket
    public private(set) var outcome: Outcome = .none

    /// Starts monitoring `target`'s handshakes (before it connects).
    public init(_ target: ZMQSocket) throws(ZMQError) {
        let endpoint = "inproc://zrank-monitor-\(UInt64.random(in: 0...UInt64.max))"
        let events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        guard zmq_socket_monitor(target.handle, endpoint, events) == 0 else { throw ZMQError("zmq_socket_monitor") }
        socket = try ZMQSocket(target.context, type: .pair)
        try socket.connect(endpoint)
    }

    /// Reads the events waiting and returns the latest outcome (a failure without detail does not replace a refusal
    /// or a protocol error seen before it).
    @discardableResult
    public func refresh() -> Outcome {
        while let frames = try? socket.receive(dontWait: true), let first = frames.first, first.count >= 6 {
            let event = Int32(first[0]) | Int32(first[1]) << 8
            let value = first[2...5].reversed().reduce(Int32(0)) { $0 << 8 | Int32($1) }
            switch event {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: outcome = .succeeded
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: outcome = .refused(status: value)
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: outcome = .protocolError(code: value)
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                // A reconnect that ends without detail says nothing new about a peer that already refused the key or
                // spoke another mechanism: keep the specific reason (a flaky CI run reported "keys that do not
                // match?" for a refused key when a later attempt's bare failure overwrote the refusal).
                switch outcome {
                case .refused, .protocolError: break
                case .none, .succeeded, .failed: outcome = .failed
                }
            default: break
            }
        }
        return outcome
    }
}

/// What a CURVE server (a router, a coordinator) needs: its own key pair and the keys each domain admits.
public struct CurveServerKeys: Sendable, Equatable {
    public var own: CurveKeyPair
    public var allow: CurveAllowList

    public init(own: CurveKeyPair, allow: CurveAllowList) {
        self.own = own
        self.allow = allow
    }
}

/// Whether a tcp endpoint binds only the loopback interface (`127.*`, `localhost`, `[::1]`).
public func isLoopbackTCP(_ endpoint: String) -> Bool {
    guard endpoint.hasPrefix("tcp://") else { return false }
    let rest = endpoint.dropFirst("tcp://".count)
    let host = rest.hasPrefix("[") ? String(rest.prefix { $0 != "]" }.dropFirst()) : String(rest.prefix { $0 != ":" })
    return host.hasPrefix("127.") || host == "localhost" || host == "::1"
}

/// A warning for a plain (no CURVE) tcp endpoint that others can reach; nil for loopback and ipc.
public func plainTCPWarning(_ endpoint: String, role: String) -> String? {
    guard endpoint.hasPrefix("tcp://"), !isLoopbackTCP(endpoint) else { return nil }
    return "warning: the \(role) endpoint \(endpoint) is plain tcp on a non-loopback address: anyone who reaches it is trusted (give --curve-key and the --curve-* key folders)"
}
