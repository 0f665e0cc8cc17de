import Foundation
import Training
import XCTest

/// Reading a simulation truth file back (`zrank train-heads --truth`): a file the click model cannot use is refused
/// when decoded, never trapped on when the attraction is computed.
final class SimulationTruthTests: XCTestCase {
    private func truth(priceCuts: String = "[100, 400]", popularityStd: String = "0.5") -> Data {
        Data("""
            {"tastes": {"u1": {"brands": ["B"], "colors": ["c"], "styles": ["s"], "price_band": 1, "strong": true}},
             "query_classes": {"q": "C"},
             "items": {"i": {"id": "i", "category": "C", "brand": "B", "color": "c", "style": "s", "price": 150,
                             "popularity": 1}},
             "price_cuts": \(priceCuts), "popularity_mean": 1, "popularity_std": \(popularityStd)}
            """.utf8)
    }

    func testATruthFileDecodesAndGivesAttractions() throws {
        let t = try JSONDecoder().decode(SimulationTruth.self, from: truth())
        XCTAssertEqual(t.priceBand(150), 1)
        let a = try XCTUnwrap(t.attraction(user: "u1", query: "q", item: "i"))
        XCTAssertTrue(a > 0 && a < 1, "\(a)")
        XCTAssertNil(t.attraction(user: "u2", query: "q", item: "i"))
        // What the simulator writes reads back.
        let again = try JSONDecoder().decode(SimulationTruth.self, from: JSONEncoder().encode(t))
        XCTAssertEqual(again.priceCuts, [100, 400])
    }

    /// Found with the FuzzHeads fuzz target (mode 7, fuzz/README.md): `"price_cuts": []` decoded, then `attraction`
    /// trapped (index out of range) in `priceBand`. Such a file is now refused when it is read.
    func testPriceCutsOtherThanTwoAreRefused() {
        for cuts in ["[]", "[100]", "[1, 2, 3]"] {
            XCTAssertThrowsError(try JSONDecoder().decode(SimulationTruth.self, from: truth(priceCuts: cuts)), cuts)
        }
    }

    func testANonPositivePopularityDeviationIsRefused() {
        for std in ["0", "-1"] {
            XCTAssertThrowsError(try JSONDecoder().decode(SimulationTruth.self, from: truth(popularityStd: std)), std)
        }
    }
}
