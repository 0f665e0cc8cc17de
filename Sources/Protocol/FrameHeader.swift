/// The kinds of message the header's type byte names (see proto/PROTOCOL.md).
public enum MessageType: UInt8, Sendable, CaseIterable {
    case rankRequest = 1
    case rankResponse = 2
    case infoRequest = 3
    case infoResponse = 4
    case error = 5
    case workerReady = 16
    case heartbeat = 17
    case disconnect = 18
    /// Router → worker: load another model version in place (JSON body {"version", "model", "index"}); the worker
    /// answers with WORKER_READY naming the version it serves afterwards.
    case load = 19
    /// Operator control of the router (admin socket only): JSON bodies, see proto/PROTOCOL.md.
    case control = 32
}

/// The fixed 24-byte binary header frame every zrank message starts with.
///
/// Everything the router routes on lives here (plus the optional pin frame), so it never decodes a body.
public struct FrameHeader: Sendable, Equatable {
    /// `"ZR"`.
    public static let magic: (UInt8, UInt8) = (0x5A, 0x52)
    public static let size = 24
    public static let currentMajor: UInt8 = 1
    public static let currentMinor: UInt8 = 0
    /// Flag bit: a version-pin frame follows the header.
    public static let pinFlag: UInt8 = 1

    public var major: UInt8
    public var minor: UInt8
    public var type: MessageType
    public var flags: UInt8
    /// Chosen by the client; echoed in the answer.
    public var requestID: UInt64
    /// Relative deadline in milliseconds; 0 = server default.
    public var deadlineMs: UInt32
    /// Router → worker only: microseconds the request waited in the router's queue (0 elsewhere).
    public var queueMicros: UInt32 = 0
    /// ERROR only: the `Error.Code` the body carries (bytes 6-7), so the router counts errors from the header alone;
    /// 0 elsewhere (and from senders that predate it).
    public var errorCode: UInt16 = 0

    public init(type: MessageType, requestID: UInt64, deadlineMs: UInt32 = 0, flags: UInt8 = 0) {
        self.major = Self.currentMajor
        self.minor = Self.currentMinor
        self.type = type
        self.flags = flags
        self.requestID = requestID
        self.deadlineMs = deadlineMs
    }

    /// Whether a version-pin frame follows.
    public var hasPin: Bool {
        get { flags & Self.pinFlag != 0 }
        set { flags = newValue ? flags | Self.pinFlag : flags & ~Self.pinFlag }
    }

    /// The 24 header bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out[0] = Self.magic.0
        out[1] = Self.magic.1
        out[2] = major
        out[3] = minor
        out[4] = type.rawValue
        out[5] = flags
        withUnsafeBytes(of: errorCode.littleEndian) { out.replaceSubrange(6..<8, with: $0) }
        withUnsafeBytes(of: requestID.littleEndian) { out.replaceSubrange(8..<16, with: $0) }
        withUnsafeBytes(of: deadlineMs.littleEndian) { out.replaceSubrange(16..<20, with: $0) }
        withUnsafeBytes(of: queueMicros.littleEndian) { out.replaceSubrange(20..<24, with: $0) }
        return out
    }

    /// Decodes a header frame.
    /// - Throws: `HeaderError` saying what is wrong; `requestID(ofMalformed:)` recovers the id when possible.
    public init<Bytes: Collection>(decoding frame: Bytes) throws(HeaderError) where Bytes.Element == UInt8 {
        let b = Array(frame)
        guard b.count == Self.size else { throw .wrongSize(b.count) }
        guard b[0] == Self.magic.0, b[1] == Self.magic.1 else { throw .badMagic }
        let id = b[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard b[2] == Self.currentMajor else { throw .unsupportedMajor(b[2], requestID: id) }
        guard let type = MessageType(rawValue: b[4]) else { throw .unknownType(b[4], requestID: id) }
        self.major = b[2]
        self.minor = b[3]
        self.type = type
        self.flags = b[5]
        self.errorCode = UInt16(b[6]) | UInt16(b[7]) << 8
        self.requestID = id
        self.deadlineMs = b[16..<20].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        self.queueMicros = b[20..<24].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }
}

/// Why a header frame was refused.
public enum HeaderError: Error, Equatable, CustomStringConvertible {
    case wrongSize(Int)
    case badMagic
    case unsupportedMajor(UInt8, requestID: UInt64)
    case unknownType(UInt8, requestID: UInt64)

    /// The request id, when the frame was well-formed enough to carry one.
    public var requestID: UInt64 {
        switch self {
        case .wrongSize, .badMagic: return 0
        case .unsupportedMajor(_, let id), .unknownType(_, let id): return id
        }
    }

    public var description: String {
        switch self {
        case .wrongSize(let n): return "malformed header frame: \(n) bytes, expected \(FrameHeader.size)"
        case .badMagic: return "malformed header frame: bad magic"
        case .unsupportedMajor(let v, _):
            return "unsupported protocol major version \(v) (this server speaks \(FrameHeader.currentMajor))"
        case .unknownType(let t, _): return "unknown message type \(t)"
        }
    }
}
