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
