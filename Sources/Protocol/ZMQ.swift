import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq error: the errno and libzmq's text for it.
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    public let errno: Int32
    public let operation: String

    init(_ operation: String) {
        self.errno = zmq_errno()
        self.operation = operation
    }

    init(_ operation: String, errno: Int32) {
        self.errno = errno
        self.operation = operation
    }

    public var description: String { "\(operation): \(String(cString: zmq_strerror(errno)))" }

    /// The call would block (non-blocking receive with nothing waiting).
    public var wouldBlock: Bool { errno == EAGAIN }
}

/// A ZeroMQ context. One per process; sockets keep it alive.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() {
        handle = zmq_ctx_new()
    }

    deinit {
        zmq_ctx_term(handle)
    }
}

/// The socket types zrank uses.
public enum ZMQSocketType: Int32, Sendable {
    case req = 3  // ZMQ_REQ
    case rep = 4  // ZMQ_REP
    case pair = 0  // ZMQ_PAIR
    case router = 6  // ZMQ_ROUTER
    case dealer = 5  // ZMQ_DEALER
    /// Raw TCP peers (each message: [peer id, bytes]); zrank serves plain HTTP `/metrics` with it.
    case stream = 11  // ZMQ_STREAM
}

/// A ZeroMQ socket (not thread-safe: one thread owns it).
public final class ZMQSocket {
    public let context: ZMQContext
    let handle: UnsafeMutableRawPointer

    public init(_ context: ZMQContext, type: ZMQSocketType) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, type.rawValue) else { throw ZMQError("zmq_socket") }
        self.context = context
        self.handle = h
        try setInt(ZMQ_LINGER, 0)
    }

    deinit {
        zmq_close(handle)
    }

    /// Sets an integer socket option.
    public func setInt(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError("zmq_setsockopt") }
    }

    /// Sets a 64-bit integer socket option.
    public func setInt64(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError("zmq_setsockopt") }
    }

    /// Sets this socket's routing identity (before connect).
    public func setIdentity(_ identity: [UInt8]) throws(ZMQError) {
        let ok = identity.withUnsafeBytes { zmq_setsockopt(handle, ZMQ_ROUTING_ID, $0.baseAddress, $0.count) }
        guard ok == 0 else { throw ZMQError("zmq_setsockopt(ZMQ_ROUTING_ID)") }
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError("connect \(endpoint)") }
    }

    /// The endpoint actually bound (resolves tcp port 0 / wildcard).
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return String(cString: buffer)
    }

    /// Sends one multipart message.
    /// - Parameter dontWait: fail with EAGAIN instead of blocking (e.g. a ROUTER peer's queue is full).
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) {
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            guard rc >= 0 else { throw ZMQError("zmq_send") }
        }
    }

    /// Receives one multipart message.
    /// - Parameter dontWait: return nil at once when nothing is waiting.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        while true {
            let rc = zmq_msg_recv(&msg, handle, dontWait ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let error = ZMQError("zmq_msg_recv")
                if error.wouldBlock && frames.isEmpty { return nil }
                if error.errno == EINTR && frames.isEmpty { return nil }
                throw error
            }
            let size = zmq_msg_size(&msg)
            let data = zmq_msg_data(&msg)!
            frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            if zmq_msg_more(&msg) == 0 { break }
        }
        return frames
    }
}

/// Waits for input on several sockets.
public enum ZMQPoller {
    /// Blocks up to `timeoutMs` (-1 = forever) until one of `sockets` has a message.
    /// - Returns: for each socket, whether it is readable. All false on timeout or signal.
    public static func poll(_ sockets: [ZMQSocket], timeoutMs: Int) throws(ZMQError) -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let rc = zmq_poll(&items, Int32(items.count), timeoutMs)
        if rc < 0 {
            let error = ZMQError("zmq_poll")
            if error.errno == EINTR { return sockets.map { _ in false } }
            throw error
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}

/// Monotonic time in nanoseconds.
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Socket options zrank sets (libzmq's numbers).
public enum ZMQOption {
    public static let routerMandatory: Int32 = ZMQ_ROUTER_MANDATORY
    public static let sendHighWaterMark: Int32 = ZMQ_SNDHWM
    public static let receiveHighWaterMark: Int32 = ZMQ_RCVHWM
    public static let linger: Int32 = ZMQ_LINGER
    public static let immediate: Int32 = ZMQ_IMMEDIATE
    public static let sendTimeout: Int32 = ZMQ_SNDTIMEO
    /// Int64: inbound frames larger than this close the peer's connection before they are allocated.
    public static let maxMessageSize: Int32 = ZMQ_MAXMSGSIZE
}

/// libzmq's built-in proxy (benchmarks compare the router with it).
public enum ZMQProxy {
    /// Shuttles messages between the two sockets until the context terminates.
    public static func run(frontend: ZMQSocket, backend: ZMQSocket) {
        zmq_proxy(frontend.handle, backend.handle, nil)
    }
}
