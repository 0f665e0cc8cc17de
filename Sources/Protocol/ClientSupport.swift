/// The closed error-code names of the wire protocol, as clients print them.
extension Zrank_V1_Error.Code {
    public var name: String {
        switch self {
        case .invalidRequest: return "INVALID_REQUEST"
        case .unknownModelVersion: return "UNKNOWN_MODEL_VERSION"
        case .overloaded: return "OVERLOADED"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .workerFailed: return "WORKER_FAILED"
        case .unavailable: return "UNAVAILABLE"
        case .internal: return "INTERNAL"
        default: return "CODE_UNSPECIFIED"
        }
    }
}

/// Parses the durations clients accept on the command line: `<number>(ms|s|m)`, e.g. `500ms`, `5s`, `2m`.
/// - Returns: seconds, or nil when the text is not such a duration.
public func parseDuration(_ text: String) -> Double? {
    for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0)] where text.hasSuffix(suffix) {
        guard let v = Double(text.dropLast(suffix.count)), v >= 0, v.isFinite else { return nil }
        return v * scale
    }
    return nil
}

/// The `[header, body]` frames of an ERROR answer.
public func errorFrames(requestID: UInt64, _ code: Zrank_V1_Error.Code, _ message: String) -> [[UInt8]] {
    var error = Zrank_V1_Error()
    error.code = code
    error.message = message
    var header = FrameHeader(type: .error, requestID: requestID)
    header.errorCode = UInt16(truncatingIfNeeded: code.rawValue)
    return [header.bytes, (try? error.serializedBytes()) ?? []]
}

/// Whether `endpoint` names a transport zrank speaks (`tcp://HOST:PORT` or `ipc://PATH`).
public func isSupportedEndpoint(_ endpoint: String) -> Bool {
    endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://")
}

/// A comma-separated endpoint list (`tcp://a:5555,tcp://b:5555`) split; nil when it is empty or any entry is not an
/// endpoint zrank speaks.
public func splitEndpoints(_ list: String) -> [String]? {
    let endpoints = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard !endpoints.isEmpty, endpoints.allSatisfy(isSupportedEndpoint) else { return nil }
    return endpoints
}
