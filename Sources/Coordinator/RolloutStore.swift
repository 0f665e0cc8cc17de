import Foundation

/// Keeps the rollout record next to the registry (`DIR/rollout.json`), written atomically, so a restarted
/// coordinator resumes where the last one stopped.
public struct RolloutStore: Sendable {
    public static let fileName = "rollout.json"
    public let url: URL

    public init(registry: Registry) {
        url = registry.root.appendingPathComponent(Self.fileName)
    }

    /// The saved record, or nil when none was saved (or it cannot be read: the error says why).
    public func load() throws -> RolloutRecord? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try JSONDecoder().decode(RolloutRecord.self, from: Data(contentsOf: url))
        } catch {
            throw RegistryError("\(url.path): unreadable rollout state (\(error)); move it aside to start afresh")
        }
    }

    public func save(_ record: RolloutRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(record).write(to: url, options: .atomic)
    }
}
