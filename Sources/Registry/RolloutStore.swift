import Foundation
import Protocol

/// The rollout as persisted next to the registry (`rollout.json`): enough to resume after a coordinator restart,
/// and what says which version is live.
public struct RolloutRecord: Codable, Equatable, Sendable {
    public var state: RolloutState = .idle
    /// What every worker runs when no rollout moves them (the target once a rollout is done).
    public var stable: String
    public var plan: RolloutPlan?
    public var stage: RolloutStage = .none
    /// The new version's share of unpinned traffic now (0-1).
    public var share = 0.0
    /// Seconds since 1970 when the current stage started (wall clock, so a restarted coordinator resumes).
    public var stageStartedAt = 0.0
    /// Why the rollout ended the way it did (rollback reason, "completed", ...).
    public var reason = ""
    /// The live version's last p99 measured while it had traffic (the p99 bound when it no longer has any).
    public var baselineP99Ms: Double?
    /// The router's judging window this stage is judged on (nil: none opened yet; a reset is due).
    public var windowEpoch: UInt64?
    /// The decisions taken, oldest first (bounded).
    public var history: [String] = []

    public init(stable: String) { self.stable = stable }

    /// Whether a rollout is under way (running or paused).
    public var isActive: Bool { state == .running || state == .paused }

    enum CodingKeys: String, CodingKey {
        case state, stable, plan, stage, share, reason, history
        case stageStartedAt = "stage_started_at"
        case baselineP99Ms = "baseline_p99_ms"
        case windowEpoch = "window_epoch"
    }
}

/// Reads and writes the rollout record (`DIR/rollout.json`).
public struct RolloutStore: Sendable {
    public static let fileName = "rollout.json"
    public let url: URL

    public init(registry: Registry) {
        url = registry.root.appendingPathComponent(Self.fileName)
    }

    /// The saved record, or nil when none was saved (or it cannot be read: the error says why).
    public func load() throws(RegistryError) -> RolloutRecord? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try JSONDecoder().decode(RolloutRecord.self, from: Data(contentsOf: url))
        } catch {
            throw RegistryError(.corrupt, "\(url.path): unreadable rollout state (\(error)); move it aside to start afresh")
        }
    }

    public func save(_ record: RolloutRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(record).write(to: url, options: .atomic)
    }
}

/// The one answer to "which version is live": `zrank serve`, `zrank worker` and the coordinator all ask it.
public struct LiveVersion: Equatable, Sendable {
    /// The version to run.
    public var name: String
    /// The version asked for on the command line, when the rollout record overrides it.
    public var overrides: String?
    /// The rollout record's state, when there is one.
    public var rolloutState: RolloutState?

    public init(name: String, overrides: String? = nil, rolloutState: RolloutState? = nil) {
        self.name = name
        self.overrides = overrides
        self.rolloutState = rolloutState
    }

    /// The live version of `registry`: the rollout record's `stable` (a finished rollout's target, or the version a
    /// rollback returned to) when a record exists, else `asked`. The name is validated and the version's files are
    /// checked: fully (`verify`: checksums, index built by the model, heads) or, with `quick`, by the sizes recorded
    /// when it was registered.
    /// - Throws: `RegistryError` when the record is unreadable, the name invalid or the version does not verify.
    public static func resolve(in registry: Registry, asked: String, quick: Bool = false) throws -> LiveVersion {
        try Registry.validate(name: asked)
        let record = try RolloutStore(registry: registry).load()
        let name = record?.stable ?? asked
        try Registry.validate(name: name)
        if quick {
            try registry.quickCheck(name)
        } else {
            try registry.verify(name)
        }
        return LiveVersion(name: name, overrides: name != asked ? asked : nil, rolloutState: record?.state)
    }
}
