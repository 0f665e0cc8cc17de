import Foundation
import Training
import XCTest

/// The evaluation figures and the optimiser on cases whose answers are known in closed form.
final class MetricsTests: XCTestCase {
    func testAUC_knownCases() {
        XCTAssertEqual(RankingMetrics.auc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75, accuracy: 1e-12)
        XCTAssertEqual(RankingMetrics.auc([1, 2, 3], [false, true, true]), 1)
        XCTAssertEqual(RankingMetrics.auc([3, 2, 1], [false, true, true]), 0)
        XCTAssertEqual(RankingMetrics.auc([1, 1, 1, 1], [false, true, false, true]), 0.5, "ties count half")
        XCTAssertTrue(RankingMetrics.auc([1, 2], [true, true]).isNaN, "one class only")
    }

    func testNDCG_knownCases() {
        // One group: the only relevant item ranked 2nd → 1 / log2(3).
        XCTAssertEqual(RankingMetrics.ndcg(groups: [[0, 1, 2]], score: [3, 2, 1], gain: [0, 1, 0]), 1 / log2(3), accuracy: 1e-12)
        XCTAssertEqual(RankingMetrics.ndcg(groups: [[0, 1, 2]], score: [1, 2, 3], gain: [0, 0, 1]), 1, accuracy: 1e-12)
        // Groups without gain are skipped; the mean is over the others.
        XCTAssertEqual(RankingMetrics.ndcg(groups: [[0, 1], [2, 3]], score: [2, 1, 2, 1], gain: [1, 0, 0, 0]), 1, accuracy: 1e-12)
        // Only the top k count.
        let twelve = Array(0..<12)
        var gain = [Double](repeating: 0, count: 12)
        gain[11] = 1
        XCTAssertEqual(RankingMetrics.ndcg(groups: [twelve], score: (0..<12).map { Double(12 - $0) }, gain: gain, k: 10), 0)
    }

    func testLogLossAndRMSE() {
        XCTAssertEqual(RankingMetrics.logLoss([0.5, 0.5], [true, false]), log(2), accuracy: 1e-12)
        XCTAssertEqual(RankingMetrics.rmse([1, 3], [2, 2]), 1, accuracy: 1e-12)
    }

    func testLBFGS_findsTheMinimumOfAnIllConditionedQuadratic() {
        // f(x) = Σ c_i (x_i - t_i)^2 with conditioning 1e4.
        let c = [1.0, 10, 100, 1000, 10000]
        let t = [1.0, -2, 3, -4, 5]
        let x = LBFGS().minimise([0, 0, 0, 0, 0]) { x in
            var f = 0.0
            var g = [Double](repeating: 0, count: 5)
            for i in 0..<5 {
                f += c[i] * (x[i] - t[i]) * (x[i] - t[i])
                g[i] = 2 * c[i] * (x[i] - t[i])
            }
            return (f, g)
        }
        for i in 0..<5 { XCTAssertEqual(x[i], t[i], accuracy: 1e-4) }
    }
}
