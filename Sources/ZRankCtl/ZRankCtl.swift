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
    /// connection options given before the subcommand are moved after it.
    static func main() {
        main(hoistingConnectionOptions(Array(CommandLine.arguments.dropFirst())))
    }

    static func hoistingConnectionOptions(_ args: [String]) -> [String] {
        let withValue: Set<String> = ["--admin", "--timeout-ms"]
        var hoisted: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if withValue.contains(a), i + 1 < args.count {
                hoisted += [a, args[i + 1]]
                i += 2
            } else if withValue.contains(where: { a.hasPrefix($0 + "=") }) {
                hoisted.append(a)
                i += 1
            } else {
                break
            }
        }
        guard !hoisted.isEmpty, i < args.count else { return args }
        return [args[i]] + hoisted + args[(i + 1)...]
    }

    struct AdminOptions: ParsableArguments {
        @Option(name: .long, help: "The admin endpoint (printed by `zrank serve` at start).")
        var admin: String

        @Option(name: .long, help: "Milliseconds to wait for the answer.")
        var timeoutMs: Int = 2000

        func call(_ request: [String: Any]) throws -> [String: Any] {
            guard isSupportedEndpoint(admin) else {
                throw ValidationError("--admin \(admin): use tcp://HOST:PORT or ipc://PATH")
            }
            let context = ZMQContext()
            let socket = try ZMQSocket(context, type: .dealer)
            try socket.connect(admin)
            let body = try JSONSerialization.data(withJSONObject: request)
            try socket.send([FrameHeader(type: .control, requestID: 1).bytes, Array(body)])
            guard try ZMQPoller.poll([socket], timeoutMs: timeoutMs)[0], let frames = try socket.receive(dontWait: true),
                frames.count >= 2, let answer = try? JSONSerialization.jsonObject(with: Data(frames[1])) as? [String: Any]
            else {
                FileHandle.standardError.write(Data("zrankctl: no answer from \(admin) within \(timeoutMs) ms\n".utf8))
                throw ExitCode(2)
            }
            if let error = answer["error"] as? String {
                FileHandle.standardError.write(Data("zrankctl: \(error)\n".utf8))
                throw ExitCode(1)
            }
            return answer
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Workers, their versions and states, traffic split, per-version figures.")

        @OptionGroup var options: AdminOptions

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let status = try options.call(["op": "status"])
            if json {
                let data = try JSONSerialization.data(withJSONObject: status, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("workers:")
            for w in status["workers"] as? [[String: Any]] ?? [] {
                print("  \(w["id"] ?? "?")  version \(w["version"] ?? "?")  \(w["state"] ?? "?")  in flight \(w["in_flight"] ?? 0)")
            }
            print("traffic:")
            for (v, f) in (status["traffic"] as? [String: Double] ?? [:]).sorted(by: { $0.key < $1.key }) {
                print(String(format: "  %@  %.1f%%", v, f * 100))
            }
            if let r = status["rollout"] as? [String: Any] {
                var line = "rollout: \(r["state"] ?? "?")"
                if let t = r["target"] as? String, !t.isEmpty { line += "  target \(t)" }
                if let stage = r["stage"] as? String, stage != "none" {
                    line += String(format: "  %@ at %.1f%%", stage, (r["share"] as? Double ?? 0) * 100)
                }
                if let reason = r["reason"] as? String, !reason.isEmpty { line += "  (\(reason))" }
                print(line)
            }
            if let s = status["shadow"] as? [String: Any] {
                print(String(
                    format: "shadow: %@  %d compared, top-10 overlap %.3f, rank correlation %.3f", s["version"] as? String ?? "?",
                    s["requests"] as? Int ?? 0, s["top10_overlap"] as? Double ?? 0, s["rank_correlation"] as? Double ?? 0))
            }
            print("versions:")
            for (v, s) in (status["versions"] as? [String: [String: Any]] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let requests = s["requests"] as? Int ?? 0
                let errorRate = (s["error_rate"] as? Double ?? 0) * 100
                let p99 = s["p99_ms"] as? Double ?? 0
                print(String(format: "  %@  %d requests, %.2f%% errors, p99 %.2f ms", v, requests, errorRate, p99))
            }
        }
    }

    struct Pin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send all unpinned traffic to one version.")

        @OptionGroup var options: AdminOptions

        @Argument(help: "The version to pin.")
        var version: String

        func run() throws {
            _ = try options.call(["op": "pin", "version": version])
            print("pinned all traffic to \(version)")
        }
    }

    struct Unpin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear the pin: traffic goes to any live worker again.")

        @OptionGroup var options: AdminOptions

        func run() throws {
            _ = try options.call(["op": "unpin"])
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

    struct Rollout: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Roll a registry version out across the workers, one worker at a time, with automatic rollback.",
            discussion: """
                Optional shadow scoring first (--shadow), then a canary share, then --step more every --interval once \
                the new version has answered --min-requests requests in the step. It rolls back by itself when the new \
                version's error rate or p99 crosses the bounds (default p99 bound: 3x the live version's p99 over the \
                same window). Returns at once; follow it with `zrankctl status`.
                """)

        @OptionGroup var options: AdminOptions

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

        @Option(help: "Requests the new version answers in a step before it is judged and the rollout moves on.")
        var minRequests: Int = 200

        @Option(help: "Shadow-score copies of live requests on one worker for this long before the canary (e.g. 60s).")
        var shadow: DurationArgument?

        func run() throws {
            var request: [String: Any] = [
                "op": "rollout", "version": version, "canary": canary.value, "step": step.value, "interval_s": interval.seconds,
                "max_error_rate": maxErrorRate.value, "min_requests": minRequests,
            ]
            if let maxP99 { request["max_p99_ms"] = maxP99 }
            if let shadow { request["shadow_s"] = shadow.seconds }
            let answer = try options.call(request)
            let r = answer["rollout"] as? [String: Any] ?? [:]
            print("rollout of \(version) \(r["state"] ?? "started") (\(r["stage"] ?? "?"))")
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hold the running rollout at its current share.")
        @OptionGroup var options: AdminOptions
        func run() throws {
            _ = try options.call(["op": "pause"])
            print("paused")
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Continue a paused rollout (its step interval starts again).")
        @OptionGroup var options: AdminOptions
        func run() throws {
            _ = try options.call(["op": "resume"])
            print("resumed")
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send all traffic back to the live version and move workers back.")
        @OptionGroup var options: AdminOptions
        func run() throws {
            _ = try options.call(["op": "rollback"])
            print("rolled back")
        }
    }
}
