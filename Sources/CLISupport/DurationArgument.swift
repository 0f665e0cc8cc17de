import ArgumentParser
import Protocol

/// A duration on the command line: `<number>(ms|s|m)`, e.g. `500ms`, `30s`, `2m` (one parser for every zrank
/// executable: `parseDuration`).
public struct DurationArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    public let seconds: Double
    public let description: String

    public init?(argument: String) {
        guard let seconds = parseDuration(argument) else { return nil }
        self.seconds = seconds
        description = argument
    }

    public var milliseconds: Int { Int((seconds * 1000).rounded()) }
}
