import ArgumentParser
import Foundation
import Protocol

/// `zrankctl`: operator commands against a pool's admin socket.
@main
struct ZRankCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zrankctl",
        abstract: "Operate a running zrank pool through its admin socket.",
        discussion: "Rollouts (rollout, pause, resume, rollback) arrive with the coordinator; this build has status, pin and unpin.",
        subcommands: [Status.self, Pin.self, Unpin.self])

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
            _ = try options.call(["op": "split", "weights": [version: 1.0]])
            print("pinned all traffic to \(version)")
        }
    }

    struct Unpin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear the pin: traffic goes to any live worker again.")

        @OptionGroup var options: AdminOptions

        func run() throws {
            _ = try options.call(["op": "split", "weights": [String: Double]()])
            print("unpinned")
        }
    }
}
