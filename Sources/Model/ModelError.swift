import Foundation

/// Why a model file, a checkpoint folder or a conversion was refused.
///
/// An error set that may grow: a struct wrapping a private enum, one static constructor per case, and a message
/// that names the file and the problem.
public struct ModelError: Error, Hashable, CustomStringConvertible {
    private enum Base: Hashable {
        case io(path: String, reason: String)
        case truncated(path: String, expected: Int, actual: Int)
        case badMagic(path: String)
        case unsupportedFormatVersion(path: String, found: UInt32, supported: UInt32)
        case checksumMismatch(path: String)
        case corruptMetadata(path: String, reason: String)
        case missingTensor(name: String)
        case badTensor(name: String, reason: String)
        case unsupportedModel(reason: String)
        case invalidArgument(reason: String)
    }

    private let base: Base

    private init(_ base: Base) {
        self.base = base
    }

    /// The file could not be opened, read, mapped or written.
    public static func io(path: String, reason: String) -> ModelError { .init(.io(path: path, reason: reason)) }
    /// The file is shorter than its header says (an interrupted copy or download).
    public static func truncated(path: String, expected: Int, actual: Int) -> ModelError {
        .init(.truncated(path: path, expected: expected, actual: actual))
    }
    /// The file does not start with the zrank model magic.
    public static func badMagic(path: String) -> ModelError { .init(.badMagic(path: path)) }
    /// The file was written by another format version.
    public static func unsupportedFormatVersion(path: String, found: UInt32, supported: UInt32) -> ModelError {
        .init(.unsupportedFormatVersion(path: path, found: found, supported: supported))
    }
    /// The checksum over the file does not match: the bytes were changed after writing.
    public static func checksumMismatch(path: String) -> ModelError { .init(.checksumMismatch(path: path)) }
    /// The metadata section cannot be decoded or is inconsistent.
    public static func corruptMetadata(path: String, reason: String) -> ModelError {
        .init(.corruptMetadata(path: path, reason: reason))
    }
    /// A tensor the encoder needs is not in the file or checkpoint.
    public static func missingTensor(_ name: String) -> ModelError { .init(.missingTensor(name: name)) }
    /// A tensor has the wrong shape, type or bounds.
    public static func badTensor(_ name: String, reason: String) -> ModelError {
        .init(.badTensor(name: name, reason: reason))
    }
    /// The checkpoint is not a BERT model this engine runs.
    public static func unsupportedModel(_ reason: String) -> ModelError { .init(.unsupportedModel(reason: reason)) }
    /// A caller passed a value outside the model's limits.
    public static func invalidArgument(_ reason: String) -> ModelError { .init(.invalidArgument(reason: reason)) }

    public var description: String {
        switch base {
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .truncated(let path, let expected, let actual):
            return "\(path): truncated model file: expected \(expected) bytes, found \(actual)"
        case .badMagic(let path):
            return "\(path): not a zrank model file (bad magic)"
        case .unsupportedFormatVersion(let path, let found, let supported):
            return "\(path): model format version \(found) is not supported (this build reads version \(supported));"
                + " re-run `zrank convert`"
        case .checksumMismatch(let path):
            return "\(path): checksum mismatch: the model file is corrupted"
        case .corruptMetadata(let path, let reason):
            return "\(path): corrupt model metadata: \(reason)"
        case .missingTensor(let name):
            return "missing tensor \(name)"
        case .badTensor(let name, let reason):
            return "tensor \(name): \(reason)"
        case .unsupportedModel(let reason):
            return "unsupported model: \(reason)"
        case .invalidArgument(let reason):
            return reason
        }
    }
}
