import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// What every built executable promises a newcomer: `--help` and `--version` everywhere, options that cannot start a
/// pool stop it at once, progress that suits where stderr goes, parallel indexing that changes nothing but the time.
final class ExecutableContractTests: XCTestCase {
    private var dir: URL!
    private var model: String!

    private func binary(_ name: String) -> String { TestPaths.productsDirectory.appendingPathComponent(name).path }
    private var zrank: String { binary("zrank") }

    override func setUpWithError() throws {
        dir = try TestPaths.temporaryDirectory("contracts")
        try SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary()).write(to: dir.appendingPathComponent("ckpt"))
        model = dir.appendingPathComponent("tiny.zrm").path
        let r = try RealModel.run(zrank, ["convert", "--from", dir.appendingPathComponent("ckpt").path, "--out", model, "--version", "tiny-v1"])
        XCTAssertEqual(r.status, 0, r.output)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// The subcommand names listed under SUBCOMMANDS in a help text (without `help`).
    private func subcommands(_ help: String) -> [String] {
        var names: [String] = []
        var inList = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SUBCOMMANDS:") { inList = true; continue }
            guard inList else { continue }
            if line.isEmpty || !line.hasPrefix("  ") { inList = false; continue }
            let name = line.dropFirst(2).prefix { $0 != " " }
            if !name.isEmpty, !line.hasPrefix("   "), name != "help" { names.append(String(name)) }
        }
        return names
    }

    /// Runs `--help` on `command` and, recursively, on every subcommand; returns the commands checked.
    private func checkHelp(_ command: [String]) throws -> [String] {
        let r = try RealModel.run(command[0], Array(command.dropFirst()) + ["--help"])
        let name = command.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: " ")
        XCTAssertEqual(r.status, 0, "\(name) --help: \(r.output)")
        XCTAssertTrue(r.output.contains("USAGE:"), "\(name) --help prints a usage: \(r.output)")
        XCTAssertFalse(r.output.contains("Could not cast"), r.output)
        var checked = [name]
        for sub in subcommands(r.output) { checked += try checkHelp(command + [sub]) }
        return checked
    }

    func testEveryExecutableAndSubcommand_helpAndVersionExitZero() throws {
        let zrankCommands = try checkHelp([zrank])
        // The subcommands the README documents are among those walked (nested ones included).
        for expected in ["zrank serve", "zrank index", "zrank registry add", "zrank registry list", "zrank train-heads",
                         "zrank simulate-log", "zrank bench-encoder", "zrank worker", "zrank router", "zrank coordinator"] {
            XCTAssertTrue(zrankCommands.contains(expected), "\(expected) not reached: \(zrankCommands)")
        }
        let ctlCommands = try checkHelp([binary("zrankctl")])
        XCTAssertTrue(ctlCommands.contains("zrankctl rollout") && ctlCommands.contains("zrankctl status"), "\(ctlCommands)")
        _ = try checkHelp([binary("zrank-bench")])
        _ = try checkHelp([binary("zrank-router-bench")])
        let short = try RealModel.run(binary("zrank-bench"), ["-h"])
        XCTAssertEqual(short.status, 0, short.output)
        for exe in ["zrank", "zrank-bench", "zrankctl", "zrank-router-bench"] {
            let v = try RealModel.run(binary(exe), ["--version"])
            XCTAssertEqual(v.status, 0, "\(exe) --version: \(v.output)")
            XCTAssertTrue(v.output.hasPrefix("\(exe) 0."), "\(exe) --version: \(v.output)")
            XCTAssertTrue(v.output.contains("libzmq 4."), v.output)
        }
    }

    func testServe_withAnOptionNoChildCanStartWith_exitsAtOnceWithTheReason() throws {
        let start = Date()
        let r = try RealModel.run(zrank, ["serve", "--model", model, "--index", "unused.zri", "--workers", "1",
                                          "--bind", "ipc://\(dir.path)/a.sock", "--deadline-ms=-1"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "serve must not keep restarting a router that cannot start")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("--deadline-ms must be between 1 and"), r.output)
        let zero = try RealModel.run(zrank, ["router", "--bind", "ipc://\(dir.path)/b.sock", "--queue-bound", "0"])
        XCTAssertNotEqual(zero.status, 0)
        XCTAssertTrue(zero.output.contains("--queue-bound must be between 1 and"), zero.output)
        // Numbers that would wrap are refused with their range, whichever way they are written.
        let negative = try RealModel.run(zrank, ["serve", "--model", model, "--index", "unused.zri", "--workers", "1",
                                                 "--bind", "ipc://\(dir.path)/c.sock", "--deadline-ms", "-1"])
        XCTAssertEqual(negative.status, 64, negative.output)
        XCTAssertTrue(negative.output.contains("--deadline-ms must be between 1 and 86400000 milliseconds (got -1)"), negative.output)
        let topK = try RealModel.run(zrank, ["query", "--endpoint", "ipc://\(dir.path)/d.sock", "--text", "lamp", "--top-k", "4294967296"])
        XCTAssertEqual(topK.status, 64, topK.output)
        XCTAssertTrue(topK.output.contains("--top-k must be between 0 (all) and 4294967295 (got 4294967296)"), topK.output)
        let minRequests = try RealModel.run(binary("zrankctl"), ["--admin", "ipc://\(dir.path)/e.sock", "rollout", "v2", "--min-requests", "0"])
        XCTAssertEqual(minRequests.status, 64, minRequests.output)
    }

    /// A value that starts with "-" reaches the children intact (they get --name=value): the worker announces it.
    func testServe_passesValuesStartingWithADashToItsChildren() throws {
        let catalog = dir.appendingPathComponent("catalog.jsonl").path
        let source = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("bench/data/catalog.jsonl"), encoding: .utf8)
        try (source.split(separator: "\n").prefix(50).joined(separator: "\n") + "\n").write(toFile: catalog, atomically: true, encoding: .utf8)
        let index = dir.appendingPathComponent("catalog.zri").path
        let built = try RealModel.run(zrank, ["index", "--model", model, "--catalog", catalog, "--out", index])
        XCTAssertEqual(built.status, 0, built.output)
        let endpoint = "ipc://\(dir.path)/pool.sock"
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: zrank)
        serve.arguments = ["serve", "--model", model, "--index", index, "--workers", "1", "--bind", endpoint, "--version=-dash-v1"]
        serve.standardError = FileHandle.nullDevice
        try serve.run()
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        var answer = ""
        for _ in 0..<60 {
            let q = try RealModel.run(zrank, ["query", "--endpoint", endpoint, "--text", "chair", "--top-k", "1", "--json", "--timeout", "500ms"])
            if q.status == 0 { answer = q.output; break }
            XCTAssertTrue(serve.isRunning, "serve exited")
        }
        XCTAssertTrue(answer.contains("\"model_version\":\"-dash-v1\"") || answer.contains("\"model_version\": \"-dash-v1\""), answer)
    }

    func testIndex_threadsChangeNothingButTheTime_andProgressIsPlainLinesOffATerminal() throws {
        let catalog = dir.appendingPathComponent("catalog.jsonl").path
        let source = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("bench/data/catalog.jsonl"), encoding: .utf8)
        try (source.split(separator: "\n").prefix(700).joined(separator: "\n") + "\n").write(toFile: catalog, atomically: true, encoding: .utf8)
        var indexes: [CatalogIndex] = []
        let file = try ModelFile(path: model)
        for threads in [1, 2, 3] {
            let out = dir.appendingPathComponent("t\(threads).zri").path
            let r = try RealModel.run(
                "env", ["ZRANK_PROGRESS_INTERVAL=0.001", zrank, "index", "--model", model, "--catalog", catalog, "--out", out,
                        "--batch", "16", "--threads", "\(threads)"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertFalse(r.output.contains("\r"), "no bar redraws when stderr is not a terminal")
            XCTAssertTrue(r.output.contains("indexing: 700 items in"), r.output)
            XCTAssertTrue(r.output.contains("\(threads) threads"), r.output)
            XCTAssertTrue(r.output.contains("items/s, ETA"), "periodic lines carry the rate and the ETA: \(r.output)")
            indexes.append(try CatalogIndex(path: out, model: file))
        }
        for other in indexes.dropFirst() {
            XCTAssertEqual(other.count, indexes[0].count)
            for row in 0..<indexes[0].count {
                XCTAssertEqual(other.id(ofRow: row), indexes[0].id(ofRow: row))
                XCTAssertEqual(other.embedding(ofRow: row), indexes[0].embedding(ofRow: row), "row \(row)")
            }
        }
        let bad = try RealModel.run(zrank, ["index", "--model", model, "--catalog", catalog, "--out", "x.zri", "--threads", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--threads must be between 1 and 256"), bad.output)
    }
}
