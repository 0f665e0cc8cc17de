import ArgumentParser
import CLISupport
import Foundation
import Protocol

/// `zrankctl`: operator commands against a pool's admin socket.
@main
struct ZRankCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zrankctl",
        abstract: "Operate a running zrank pool through its admin socket.",
        discussion: """
            Exit status: 0 done, 1 refused (the reason is printed), 2 no answer from the admin endpoint.
            Shares and rates take a percentage (10%) or a fraction (0.1); durations take ms, s or m (30s).
            """,
        version: ZRankRelease.versionString("zrankctl"),
        subcommands: [Status.self, Rollout.self, Pause.self, Resume.self, Rollback.self, Pin.self, Unpin.self])

    /// `zrankctl --admin ENDPOINT status` (the documented form) and `zrankctl status --admin ENDPOINT` both work:
    /// the connection options are the root command's, and each subcommand takes them too (its own win).
    @OptionGroup var connection: AdminOptions

    struct AdminOptions: ParsableArguments {
        @Option(name: .long, help: "The admin endpoint (printed by `zrank serve` at start).")
        var admin: String?

        @Option(name: .long, help: ArgumentHelp("Milliseconds to wait for the answer (1-600000).", valueName: "ms"))
        var timeoutMs: Int?

        @OptionGroup var curve: CurveClientOptions

        func validate() throws {
            if let admin, !isSupportedEndpoint(admin) {
                throw ValidationError("--admin \(admin): use tcp://HOST:PORT or ipc://PATH")
            }
            if let timeoutMs, !(1...600_000).contains(timeoutMs) {
                throw ValidationError("--timeout-ms must be between 1 and 600000 (got \(timeoutMs))")
            }
        }
    }

    /// A subcommand that talks to the admin socket: its own connection options, else the root's.
    protocol AdminCommand: ParsableCommand {
        var options: AdminOptions { get }
        var root: ZRankCtl { get }
    }

    /// A subcommand's connection: its own options, else the root's.
    struct Connection {
        var admin: String
        var timeoutMs: Int
        var curve: CurveClientKeys?

        init(_ local: AdminOptions, _ root: AdminOptions) throws {
            guard let admin = local.admin ?? root.admin else {
                throw ValidationError("give --admin ENDPOINT (printed by `zrank serve` at start)")
            }
            self.admin = admin
            timeoutMs = local.timeoutMs ?? root.timeoutMs ?? 2000
            curve = try local.curve.keys() ?? root.curve.keys()
        }

        /// Sends one request; exits 1 on a refusal (printing why) and 2 when nothing answers.
        func call<T: Decodable>(_ request: AdminRequest, expecting: T.Type) throws -> T {
            do {
                let channel = try AdminChannel(context: ZMQContext(), endpoint: admin, curve: curve)
                return try channel.call(request, expecting: T.self, timeoutMs: timeoutMs)
            } catch let error as AdminCallError {
                FileHandle.standardError.write(Data("zrankctl: \(error)\n".utf8))
                if case .refused = error { throw ExitCode(1) }
                throw ExitCode(2)
            } catch {
                FileHandle.standardError.write(Data("zrankctl: \(admin): \(error)\n".utf8))
                throw ExitCode(2)
            }
        }

        @discardableResult
        func call(_ request: AdminRequest) throws -> AdminReply { try call(request, expecting: AdminReply.self) }
    }

    struct Status: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Workers, their versions and states, traffic split, per-version figures.")

        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let status = try connection.call(.status, expecting: PoolStatus.self)
            if json {
                print(AdminJSON.pretty(status))
                return
            }
            print("workers:")
            for w in status.workers {
                var line = "  \(w.name)  version \(w.version.isEmpty ? "-" : w.version)  \(w.state.rawValue)  in flight \(w.inFlight)"
                if let c = w.queryCache {
                    line += String(format: "  query cache %d entries, %d hits / %d misses (%.1f%%)", c.entries, c.hits, c.misses, c.hitRate * 100)
                }
                print(line)
            }
            print("traffic:")
            for (v, f) in status.traffic.sorted(by: { $0.key < $1.key }) {
                print(String(format: "  %@  %.1f%%", v, f * 100))
            }
            if let r = status.rollout {
                var line = "rollout: \(r.state.rawValue)"
                if !r.target.isEmpty { line += "  target \(r.target)" }
                if r.stage != .none { line += String(format: "  %@ at %.1f%%", r.stage.rawValue, r.share * 100) }
                if !r.reason.isEmpty { line += "  (\(r.reason))" }
                print(line)
            }
            if let s = status.shadow {
                print(String(
                    format: "shadow: %@  %d compared, top-10 overlap %.3f, rank correlation %.3f", s.version, s.requests,
                    s.top10Overlap, s.rankCorrelation))
            }
            print("versions:")
            for (v, s) in status.versions.sorted(by: { $0.key < $1.key }) {
                print(String(format: "  %@  %d requests, %.2f%% errors, p99 %.2f ms", v, s.requests, s.errorRate * 100, s.p99Ms))
            }
        }
    }

    struct Pin: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Send all unpinned traffic to one version.")

        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl

        @Argument(help: "The version to pin.")
        var version: String

        func run() throws {
            try connection.call(.pin(version: version))
            print("pinned all traffic to \(version)")
        }
    }

    struct Unpin: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Clear the pin: traffic goes to any live worker again.")

        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl

        func run() throws {
            try connection.call(.unpin)
            print("unpinned")
        }
    }

    /// A share: `10%` or a fraction `0.1`.
    struct Share: ExpressibleByArgument {
        var value: Double
        init?(argument: String) {
            if argument.hasSuffix("%") {
                guard let v = Double(argument.dropLast()), v >= 0, v <= 100 else { return nil }
                value = v / 100
            } else {
                guard let v = Double(argument), v >= 0, v <= 1 else { return nil }
                value = v
            }
        }
    }

    struct Rollout: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Roll a registry version out across the workers, one worker at a time, with automatic rollback.",
            discussion: """
                Optional shadow scoring first (--shadow), then a canary share, then --step more every --interval once \
                the new version has answered --min-requests requests in the step. It rolls back by itself when the new \
                version's error rate or p99 crosses the bounds (default p99 bound: 3x the live version's p99 over the \
                same window). Returns at once; follow it with `zrankctl status`.
                """)

        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl

        @Argument(help: "The registry version to roll out.")
        var version: String

        @Option(help: "Traffic share of the canary step.")
        var canary: Share = Share(argument: "10%")!

        @Option(help: "Traffic share added at each later step.")
        var step: Share = Share(argument: "25%")!

        @Option(help: "Least time at each step.")
        var interval: DurationArgument = DurationArgument(argument: "30s")!

        @Option(help: "Roll back when the new version's error rate exceeds this.")
        var maxErrorRate: Share = Share(argument: "1%")!

        @Option(help: "Roll back when the new version's p99 exceeds this many milliseconds (default: 3x the live p99).")
        var maxP99: Double?

        @Option(help: "Requests the new version answers in a step before it is judged and the rollout moves on (1-10^9).")
        var minRequests: Int = 200

        func validate() throws {
            guard (1...1_000_000_000).contains(minRequests) else {
                throw ValidationError("--min-requests must be between 1 and 10^9 (got \(minRequests))")
            }
            if let maxP99, !(maxP99 > 0 && maxP99.isFinite) {
                throw ValidationError("--max-p99 must be a positive number of milliseconds")
            }
        }

        @Option(help: "Shadow-score copies of live requests on one worker for this long before the canary (e.g. 60s).")
        var shadow: DurationArgument?

        func run() throws {
            var request = RolloutRequest(version: version)
            request.canary = canary.value
            request.step = step.value
            request.intervalSeconds = interval.seconds
            request.maxErrorRate = maxErrorRate.value
            request.maxP99Ms = maxP99
            request.minRequests = minRequests
            request.shadowSeconds = shadow?.seconds
            let answer = try connection.call(.rollout(request))
            let state = answer.rollout?.state.rawValue ?? "started"
            print("rollout of \(version) \(state) (\(answer.rollout?.stage.rawValue ?? "?"))")
        }
    }

    struct Pause: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Hold the running rollout at its current share.")
        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl
        func run() throws {
            try connection.call(.pause)
            print("paused")
        }
    }

    struct Resume: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Continue a paused rollout (its step interval starts again).")
        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl
        func run() throws {
            try connection.call(.resume)
            print("resumed")
        }
    }

    struct Rollback: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Send all traffic back to the live version and move workers back.")
        @OptionGroup var options: AdminOptions
        @ParentCommand var root: ZRankCtl
        func run() throws {
            try connection.call(.rollback)
            print("rolled back")
        }
    }
}

extension ZRankCtl.AdminCommand {
    /// The endpoint and timeout to use.
    var connection: ZRankCtl.Connection { get throws { try ZRankCtl.Connection(options, root.connection) } }
}
