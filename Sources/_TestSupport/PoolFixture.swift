import Foundation
import Protocol

#if canImport(Glibc)
import Glibc
#endif

/// A tiny generated model, a small catalog and its index, built once per test process with the real `zrank`
/// binary, for tests that start real pools. Not API: tests only.
public final class PoolFixture: @unchecked Sendable {
    public let directory: URL
    public let model: String
    public let index: String
    public let catalog: String
    public let itemIDs: [String]
    public let zrank: String

    public static let shared: PoolFixture = {
        do { return try PoolFixture() } catch { fatalError("cannot build the pool fixture: \(error)") }
    }()

    private init() throws {
        zrank = TestPaths.productsDirectory.appendingPathComponent("zrank").path
        directory = try TestPaths.temporaryDirectory("pool")
        try SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary(), seed: 5)
            .write(to: directory.appendingPathComponent("ckpt"))
        model = directory.appendingPathComponent("tiny.zrm").path
        var r = try RealModel.run(zrank, ["convert", "--from", directory.appendingPathComponent("ckpt").path, "--out", model, "--version", "tiny-v1"])
        guard r.status == 0 else { throw NSError(domain: "PoolFixture", code: 1, userInfo: [NSLocalizedDescriptionKey: r.output]) }
        // The first 400 items of the demo catalog.
        let source = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("bench/data/catalog.jsonl"), encoding: .utf8)
        let lines = source.split(separator: "\n").prefix(400)
        catalog = directory.appendingPathComponent("catalog.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: catalog, atomically: true, encoding: .utf8)
        itemIDs = try lines.map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String }
        index = directory.appendingPathComponent("catalog.zri").path
        r = try RealModel.run(zrank, ["index", "--model", model, "--catalog", catalog, "--out", index])
        guard r.status == 0 else { throw NSError(domain: "PoolFixture", code: 2, userInfo: [NSLocalizedDescriptionKey: r.output]) }
    }

    /// A fresh ipc endpoint in the fixture folder.
    public func ipcEndpoint(_ name: String) -> String {
        "ipc://" + directory.appendingPathComponent("\(name)-\(UInt32.random(in: 0...UInt32.max)).sock").path
    }

    /// A free-looking tcp port on 127.0.0.1.
    /// The built `zrankctl`.
    public var zrankctl: String { TestPaths.productsDirectory.appendingPathComponent("zrankctl").path }

    /// `zrankctl status --json` against an admin endpoint, parsed (nil: no answer or not JSON).
    public func adminStatus(_ admin: String) -> [String: Any]? {
        guard let r = try? RealModel.run(zrankctl, ["status", "--admin", admin, "--json"]), r.status == 0 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(r.output.utf8))) as? [String: Any]
    }

    /// Polls `adminStatus` every 0.2 s until `condition` holds; returns that status (nil when it never held).
    public func waitForStatus(_ admin: String, seconds: Double, _ condition: ([String: Any]) -> Bool) -> [String: Any]? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if let s = adminStatus(admin), condition(s) { return s }
            usleep(200_000)
        }
        return nil
    }

    public func tcpEndpoint() -> String { "tcp://127.0.0.1:\(Int.random(in: 20_000...60_000))" }
}

/// A `zrank serve` (or other zrank) child process, with its log captured to a file.
public final class ZRankProcess {
    public let process = Process()
    public let log: URL

    /// - Parameters:
    ///   - program: the executable (default: the built `zrank`).
    ///   - launcher: a command that runs it, e.g. `["/usr/sbin/ip", "netns", "exec", NS]` (it must exec the program,
    ///     so that `pid` is the program's).
    public init(
        _ arguments: [String], environment: [String: String] = [:], program: String? = nil, launcher: [String] = []
    ) throws {
        let fixture = PoolFixture.shared
        log = fixture.directory.appendingPathComponent("proc-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let executable = program ?? fixture.zrank
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = Array(launcher.dropFirst()) + [executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// Waits until the pool at `endpoint` answers an Info request (Info does not count towards a worker's fault
    /// schedule). Returns false when it did not within `seconds` or the process exited.
    public func waitUntilServing(_ endpoint: String, seconds: Double = 20, curve: CurveClientKeys? = nil) throws -> Bool {
        let client = try PoolClient(endpoint: endpoint, curve: curve)
        let start = Date()
        var id: UInt64 = 1_000_000
        while Date().timeIntervalSince(start) < seconds && process.isRunning {
            id += 1
            try client.send(type: .infoRequest, requestID: id, body: [], deadlineMs: 300)
            if let a = try client.receive(timeoutMs: 400), a.header.type == .infoResponse { return true }
        }
        return false
    }

    /// The log so far.
    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Pids of this process's children (from /proc).
    public func childPIDs() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == self.pid
        }
    }

    /// The command line of a pid.
    public static func commandLine(_ pid: Int32) -> String {
        let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    /// Sends SIGTERM and waits up to `seconds`; returns the seconds it took, or nil if it did not exit.
    public func terminate(within seconds: Double) -> Double? {
        let start = Date()
        kill(pid, SIGTERM)
        while process.isRunning && Date().timeIntervalSince(start) < seconds { usleep(10_000) }
        return process.isRunning ? nil : Date().timeIntervalSince(start)
    }
}
