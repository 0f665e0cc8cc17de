/// A client of a zrank pool: one DEALER socket, many requests in flight, answers matched by request id.
public final class PoolClient {
    /// One decoded answer frame set.
    public struct Answer {
        public var header: FrameHeader
        public var body: [UInt8]
    }

    private let socket: ZMQSocket
    public let endpoint: String

    /// Connects to `endpoint` (tcp:// or ipc://). Connection is asynchronous in ZeroMQ: an unreachable pool shows
    /// up as answers that never come.
    public init(endpoint: String, context: ZMQContext = ZMQContext()) throws(ZMQError) {
        self.endpoint = endpoint
        socket = try ZMQSocket(context, type: .dealer)
        try socket.setInt(ZMQOption.sendHighWaterMark, 0)
        try socket.setInt(ZMQOption.receiveHighWaterMark, 0)
        try socket.connect(endpoint)
    }

    /// Sends one request.
    public func send(
        type: MessageType, requestID: UInt64, body: [UInt8], deadlineMs: UInt32 = 0, pin: String? = nil
    ) throws(ZMQError) {
        var header = FrameHeader(type: type, requestID: requestID, deadlineMs: deadlineMs)
        var frames: [[UInt8]] = []
        if let pin {
            header.hasPin = true
            frames = [header.bytes, Array(pin.utf8), body]
        } else {
            frames = [header.bytes, body]
        }
        try socket.send(frames)
    }

    /// Sends raw frames (tests of malformed input).
    public func sendRaw(_ frames: [[UInt8]]) throws(ZMQError) {
        try socket.send(frames)
    }

    /// Waits up to `timeoutMs` for one answer; nil on timeout. Malformed answers are returned with a nil header
    /// decoding error thrown.
    public func receive(timeoutMs: Int) throws -> Answer? {
        if try !ZMQPoller.poll([socket], timeoutMs: timeoutMs)[0] { return nil }
        guard let frames = try socket.receive(dontWait: true), let first = frames.first else { return nil }
        let header = try FrameHeader(decoding: first)
        return Answer(header: header, body: frames.count > 1 ? frames[frames.count - 1] : [])
    }
}
