import Bench
import Foundation
import XCTest

/// zrank-bench's `--json` file: the contract's field names, nulls where a value is absent, fields only in their own
/// mode, and a round trip through the Codable types.
final class ReportTests: XCTestCase {
    private func phase(_ name: String, _ mode: LoadMode) -> PhaseResult {
        var r = PhaseResult(name: name, mode: mode, durationS: 2)
        r.sent = 5
        r.ok = 4
        r.errors = ["OVERLOADED": 1]
        r.clientTimeouts = 1
        for micros: UInt64 in [900, 1200, 1500, 40_000] { r.corrected.record(micros); r.uncorrected.record(micros / 2) }
        r.versions = ["v1": 3, "v2": 1]
        var second = PhaseResult.Second()
        second.ok = 4
        second.errors = 1
        second.latencies = [900, 1200, 1500, 40_000]
        second.versions = ["v1": 3, "v2": 1]
        r.timeline = [second, PhaseResult.Second()]
        return r
    }

    private func object(_ report: RunReport) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
    }

    func testRun_closedLoop_writesTheContractFields_withNullRequestedRate() throws {
        var report = RunReport(endpoint: "tcp://127.0.0.1:5555", modelVersion: "v1", candidates: 100, topK: 10)
        report.total = PhaseReport(phase("main", .closed(concurrency: 4)))
        report.failoverResends = 2
        report.duplicatesDropped = 1
        let o = try object(report)
        for key in ["endpoint", "model_version", "candidates", "top_k", "name", "mode", "requested_rate", "achieved_rate",
                    "duration_s", "sent", "ok", "errors", "client_timeouts", "unsent", "latency_ms",
                    "uncorrected_latency_ms", "histogram", "versions", "timeline", "concurrency", "failover_resends",
                    "duplicates_dropped"] {
            XCTAssertNotNil(o[key], "missing \(key)")
        }
        XCTAssertTrue(o["requested_rate"] is NSNull, "a closed loop's requested_rate is null")
        XCTAssertNil(o["connections"], "connections belongs to an open loop")
        XCTAssertNil(o["phases"], "one phase: no phases list")
        XCTAssertEqual(o["mode"] as? String, "closed")
        XCTAssertEqual(o["achieved_rate"] as? Double, 2)
        XCTAssertEqual(o["errors"] as? [String: Int], ["OVERLOADED": 1])
        let latency = try XCTUnwrap(o["latency_ms"] as? [String: Double])
        XCTAssertEqual(Set(latency.keys), ["p50", "p90", "p99", "p999", "max", "mean"])
        XCTAssertEqual(latency["p50"]!, 1.2, accuracy: 0.01)
        let timeline = try XCTUnwrap(o["timeline"] as? [[String: Any]])
        XCTAssertEqual(timeline.count, 2)
        XCTAssertEqual(timeline[0]["t"] as? Int, 0)
        XCTAssertEqual(timeline[0]["ok"] as? Int, 4)
        XCTAssertEqual(Set(timeline[0].keys), ["t", "ok", "errors", "p50_ms", "p99_ms", "versions"])
        let histogram = try XCTUnwrap(o["histogram"] as? [[String: Any]])
        XCTAssertFalse(histogram.isEmpty)
        XCTAssertEqual(Set(histogram[0].keys), ["value_ms", "percentile", "count"])
        XCTAssertEqual(try JSONDecoder().decode(RunReport.self, from: report.jsonData()), report)
    }

    func testRun_openLoopScenario_listsPhases_andConnections() throws {
        let phases = [phase("warm", .open(rate: 50, connections: 8)), phase("peak", .open(rate: 200, connections: 8))]
        var report = RunReport(endpoint: "tcp://a:1,tcp://b:1", modelVersion: "v2", candidates: 1000, topK: 5)
        report.total = PhaseReport(Report.merge(phases))
        report.phases = phases.map(PhaseReport.init)
        let o = try object(report)
        let listed = try XCTUnwrap(o["phases"] as? [[String: Any]])
        XCTAssertEqual(listed.map { $0["name"] as? String }, ["warm", "peak"])
        XCTAssertEqual(listed[1]["requested_rate"] as? Double, 200)
        XCTAssertEqual(listed[1]["connections"] as? Int, 8)
        XCTAssertNil(listed[1]["concurrency"])
        XCTAssertEqual(o["sent"] as? Int, 10, "the top level is the merged run")
        XCTAssertEqual(try JSONDecoder().decode(RunReport.self, from: report.jsonData()), report)
    }

    func testSweep_writesSteps_andNullBestRate_whenNoRateMetTheObjective() throws {
        var report = RunReport(endpoint: "tcp://127.0.0.1:5555", modelVersion: "v1", candidates: 100, topK: 10)
        let step = SweepStepReport(
            phase: PhaseReport(phase("rate-20", .open(rate: 20, connections: 64))), askedRate: 20, attempt: 2,
            meetsSLO: false)
        report.sweep = RunReport.Sweep(sloP99Ms: 8, bestRate: nil, bestAskedRate: nil, lowestFailingRate: 20, steps: [step])
        let o = try object(report)
        XCTAssertEqual(o["mode"] as? String, "sweep")
        XCTAssertEqual(o["slo_p99_ms"] as? Double, 8)
        XCTAssertTrue(o["best_rate"] is NSNull)
        XCTAssertTrue(o["best_asked_rate"] is NSNull)
        XCTAssertEqual(o["lowest_failing_rate"] as? Double, 20)
        XCTAssertNil(o["sent"], "a sweep has no whole-run fields")
        let steps = try XCTUnwrap(o["sweep"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 1)
        XCTAssertEqual(steps[0]["asked_rate"] as? Double, 20)
        XCTAssertEqual(steps[0]["attempt"] as? Int, 2)
        XCTAssertEqual(steps[0]["meets_slo"] as? Bool, false)
        XCTAssertEqual(steps[0]["name"] as? String, "rate-20")
        XCTAssertEqual(try JSONDecoder().decode(RunReport.self, from: report.jsonData()), report)
    }
}
