import Foundation
import Protocol
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `zrank-bench` against real pools: the measuring itself (coordinated omission), the JSON contract, exit codes.
final class ZRankBenchTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }
    private var bench: String { TestPaths.productsDirectory.appendingPathComponent("zrank-bench").path }

    private func startPool(_ endpoint: String, environment: [String: String] = [:]) throws -> ZRankProcess {
        let pool = try ZRankProcess(
            ["serve", "--model", fixture.model, "--index", fixture.index, "--workers", "1", "--bind", endpoint],
            environment: environment)
        XCTAssertTrue(try pool.waitUntilServing(endpoint), "pool did not come up: \(pool.output)")
        return pool
    }

    private func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    private func checkCounters(_ j: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        let sent = j["sent"] as! Int
        let ok = j["ok"] as! Int
        let errors = (j["errors"] as! [String: Int]).values.reduce(0, +)
        let timeouts = j["client_timeouts"] as! Int
        XCTAssertEqual(sent, ok + errors + timeouts, "sent == ok + errors + client_timeouts", file: file, line: line)
        for key in ["mode", "requested_rate", "achieved_rate", "duration_s", "latency_ms", "uncorrected_latency_ms", "histogram"] {
            XCTAssertNotNil(j[key], "missing \(key)", file: file, line: line)
        }
        for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
            XCTAssertNotNil((j["latency_ms"] as? [String: Any])?[key], "missing latency_ms.\(key)", file: file, line: line)
        }
    }

    /// A worker that stalls once for a known time during an open-loop run: the corrected p99 and max show the
    /// stall, the uncorrected p99 does not.
    func testOpenLoop_correctsCoordinatedOmission_forAKnownStall() throws {
        let endpoint = fixture.ipcEndpoint("stall")
        let pauseMs = 800.0
        // 100 req/s; warm-up 0.5 s (~50 requests) then 3 s measured; the worker pauses on its 200th request (readiness probes count too).
        let pool = try startPool(endpoint, environment: ["ZRANK_FAULT_PAUSE_MS": "\(Int(pauseMs))", "ZRANK_FAULT_PAUSE_AFTER": "200"])
        let out = fixture.directory.appendingPathComponent("stall.json").path
        let svg = fixture.directory.appendingPathComponent("stall.svg").path
        let r = try RealModel.run(bench, [
            "--endpoint", endpoint, "--rate", "100", "--duration", "3s", "--warmup", "500ms", "--connections", "1",
            "--candidates", "20", "--json", out, "--plot", svg,
        ])
        XCTAssertEqual(r.status, 0, r.output)
        let j = try json(out)
        checkCounters(j)
        XCTAssertEqual(j["mode"] as? String, "open")
        let corrected = j["latency_ms"] as! [String: Double]
        let uncorrected = j["uncorrected_latency_ms"] as! [String: Double]
        print("ZRankBenchTests: stall \(pauseMs) ms: corrected p99 \(corrected["p99"]!) max \(corrected["max"]!); uncorrected p99 \(uncorrected["p99"]!) max \(uncorrected["max"]!)")
        XCTAssertGreaterThan(corrected["max"]!, pauseMs * 0.8, "the corrected max shows the stall")
        XCTAssertGreaterThan(corrected["p99"]!, pauseMs * 0.5, "the corrected p99 shows the stall")
        XCTAssertLessThan(uncorrected["p99"]!, pauseMs * 0.25, "the uncorrected p99 hides it (coordinated omission)")
        XCTAssertTrue(try String(contentsOfFile: svg, encoding: .utf8).contains("<polyline"))
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    func testClosedLoop_scenarioPhases_commands_andSLOExitCode() throws {
        let endpoint = fixture.tcpEndpoint()
        let pool = try startPool(endpoint)
        let marker = fixture.directory.appendingPathComponent("command-ran-\(UUID().uuidString)").path
        let scenario = fixture.directory.appendingPathComponent("scenario.yaml").path
        try """
            phases:
              - name: steady
                concurrency: 2
                duration: 1s
              - name: burst
                rate: 150
                duration: 1s
                commands:
                  - at: 200ms
                    run: "touch \(marker)"
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let out = fixture.directory.appendingPathComponent("scenario.json").path
        let r = try RealModel.run(bench, ["--endpoint", endpoint, "--scenario", scenario, "--warmup", "200ms", "--candidates", "50", "--catalog", fixture.catalog, "--json", out])
        XCTAssertEqual(r.status, 0, r.output)
        let j = try json(out)
        checkCounters(j)
        let phases = j["phases"] as! [[String: Any]]
        XCTAssertEqual(phases.map { $0["name"] as? String }, ["steady", "burst"])
        XCTAssertEqual(phases.map { $0["mode"] as? String }, ["closed", "open"])
        for p in phases { checkCounters(p) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker), "the scenario's command ran")
        XCTAssertGreaterThan(phases[0]["ok"] as! Int, 0)
        // An objective nobody meets: exit 3.
        let slo = try RealModel.run(bench, ["--endpoint", endpoint, "--concurrency", "2", "--duration", "500ms", "--warmup", "0s", "--slo-p99", "0.001ms"])
        XCTAssertEqual(slo.status, 3, slo.output)
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    func testBadOptions_andUnreachablePool_exit2WithClearErrors() throws {
        let dead = fixture.ipcEndpoint("nobody-home")
        let cases: [([String], String)] = [
            (["--endpoint", dead, "--rate=-5", "--duration", "1s"], "--rate must be a positive"),
            (["--endpoint", "http://localhost:1", "--rate", "5", "--duration", "1s"], "unknown scheme"),
            (["--endpoint", dead, "--rate", "5"], "--duration is required"),
            (["--endpoint", dead, "--rate", "5", "--concurrency", "2", "--duration", "1s"], "exactly one of --rate and --concurrency"),
            (["--endpoint", dead, "--rate", "5", "--duration", "1s", "--queries", "/nonexistent/q.csv"], "cannot read the query workload"),
            (["--endpoint", dead, "--rate", "5", "--duration", "soon"], "duration"),
        ]
        for (args, message) in cases {
            let r = try RealModel.run(bench, args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.output)")
            XCTAssertTrue(r.output.contains(message), "\(args) should say \(message): \(r.output)")
        }
        let start = Date()
        let unreachable = try RealModel.run(bench, ["--endpoint", dead, "--rate", "5", "--duration", "1s"])
        XCTAssertEqual(unreachable.status, 2)
        XCTAssertTrue(unreachable.output.contains("unreachable"), unreachable.output)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.5, "reported within about a second")
        // Too many candidates for the catalog.
        let endpoint = fixture.ipcEndpoint("toomany")
        let pool = try startPool(endpoint)
        let r = try RealModel.run(bench, ["--endpoint", endpoint, "--rate", "5", "--duration", "1s", "--candidates", "100000"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.output.contains("exceeds the 400 distinct catalog ids"), r.output)
        XCTAssertNotNil(pool.terminate(within: 5))
    }

    /// The sweep against a real pool: every step tried is in the JSON with its asked rate, attempt and verdict; a
    /// stalling worker makes steps fail, and each failure that counts was run twice; steps last long enough for
    /// --sweep-min-requests.
    func testSweep_reportsEveryStep_repeatsFailures() throws {
        let endpoint = fixture.ipcEndpoint("sweep")
        // Every request stalls 30 ms: a 1-worker pool serves about 33 req/s, so the sweep brackets that.
        let pool = try startPool(endpoint, environment: ["ZRANK_FAULT_STALL_MS": "30"])
        let out = fixture.directory.appendingPathComponent("sweep-\(UUID().uuidString).json").path
        let r = try RealModel.run(bench, [
            "--endpoint", endpoint, "--sweep", "--rate", "10", "--sweep-factor", "2", "--slo-p99", "200ms", "--duration", "1s",
            "--warmup", "0s", "--sweep-min-requests", "30", "--sweep-max-steps", "8", "--candidates", "20", "--catalog", fixture.catalog,
            "--json", out])
        XCTAssertEqual(r.status, 0, r.output)
        let j = try json(out)
        let steps = try XCTUnwrap(j["sweep"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 8, "the step budget is used: growth, repeats, bisection")
        XCTAssertEqual(steps.first?["asked_rate"] as? Double, 10)
        XCTAssertEqual(steps.first?["attempt"] as? Int, 1)
        // At 10 req/s a 1 s step would hold 10 requests: it lasts 3 s for 30.
        XCTAssertGreaterThanOrEqual(steps.first?["sent"] as? Int ?? 0, 28)
        for (i, step) in steps.enumerated() where (step["attempt"] as? Int) == 2 {
            XCTAssertEqual(steps[i - 1]["asked_rate"] as? Double, step["asked_rate"] as? Double, "a repeat runs the same rate")
            XCTAssertEqual(steps[i - 1]["meets_slo"] as? Bool, false, "only a failing step is repeated")
        }
        let best = try XCTUnwrap(j["best_asked_rate"] as? Double, "\(j)")
        let failing = try XCTUnwrap(j["lowest_failing_rate"] as? Double, "\(j)")
        XCTAssertLessThan(best, failing)
        XCTAssertLessThan(best, 40, "a 30 ms stall caps one worker near 33 req/s")
        XCTAssertNotNil(pool.terminate(within: 5))
    }
}
