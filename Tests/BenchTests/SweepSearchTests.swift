import Bench
import XCTest

/// The sweep's search on a simulated pool whose p99 meets the objective up to a known capacity.
final class SweepSearchTests: XCTestCase {
    /// Runs the search against `meets(rate, stepIndex)`; returns it finished.
    private func run(_ search: SweepSearch, _ meets: (Double, Int) -> Bool) -> SweepSearch {
        var s = search
        while let rate = s.next() { s.record(passed: meets(rate, s.steps.count)) }
        return s
    }

    func testBisectionFindsTheCapacityWithinTolerance() throws {
        let s = run(SweepSearch(start: 20, factor: 1.5, tolerance: 0.05)) { rate, _ in rate <= 537 }
        let best = try XCTUnwrap(s.highestPassing)
        let failing = try XCTUnwrap(s.lowestFailing)
        XCTAssertLessThanOrEqual(best, 537)
        XCTAssertGreaterThan(failing, 537)
        XCTAssertLessThanOrEqual(failing, best * 1.05, "bisection narrows the bracket to the tolerance")
        XCTAssertGreaterThan(best, 537 / 1.05)
    }

    func testOneNoisyStepIsRepeatedAndDoesNotEndTheSearch() throws {
        // The third step (rate 45) has one bad second; its repeat passes.
        let s = run(SweepSearch(start: 20, factor: 1.5, tolerance: 0.05)) { rate, index in index == 2 ? false : rate <= 537 }
        XCTAssertEqual(s.steps[2], SweepSearch.Step(rate: 45, attempt: 1, passed: false))
        XCTAssertEqual(s.steps[3], SweepSearch.Step(rate: 45, attempt: 2, passed: true))
        XCTAssertGreaterThan(try XCTUnwrap(s.highestPassing), 500, "a noisy step early on does not stop the sweep at 30 req/s")
    }

    func testEveryFailureThatCountsWasRunTwice() throws {
        let s = run(SweepSearch(start: 20)) { rate, _ in rate <= 300 }
        for (i, step) in s.steps.enumerated() where !step.passed && step.attempt == 2 {
            XCTAssertEqual(s.steps[i - 1].rate, step.rate)
            XCTAssertFalse(s.steps[i - 1].passed)
        }
        XCTAssertTrue(s.steps.contains { !$0.passed && $0.attempt == 2 })
    }

    func testStartRateFailingHalvesDownwards() throws {
        let s = run(SweepSearch(start: 100, tolerance: 0.05)) { rate, _ in rate <= 30 }
        XCTAssertEqual(s.steps.first?.rate, 100)
        let best = try XCTUnwrap(s.highestPassing)
        XCTAssertLessThanOrEqual(best, 30)
        XCTAssertGreaterThan(best, 30 / 1.05 - 1e-9)
    }

    func testNothingMeetsTheObjective() throws {
        let s = run(SweepSearch(start: 8, minRate: 1)) { _, _ in false }
        XCTAssertNil(s.highestPassing)
        XCTAssertEqual(s.steps.last?.attempt, 2)
        XCTAssertGreaterThanOrEqual(s.steps.last!.rate, 1)
    }

    func testStopsAtTheMaximumRateAndTheStepBudget() throws {
        let capped = run(SweepSearch(start: 20, factor: 2, maxRate: 100)) { _, _ in true }
        XCTAssertEqual(capped.steps.map(\.rate), [20, 40, 80, 100])
        let budget = run(SweepSearch(start: 20, factor: 1.01, maxSteps: 5)) { _, _ in true }
        XCTAssertEqual(budget.steps.count, 5)
    }
}
