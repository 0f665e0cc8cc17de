import Foundation
import Training
import XCTest
import _TestSupport

/// The graded simulator's truth model (grades from category, attributes and accessories) and its click model.
final class GradedSimulatorTests: XCTestCase {
    private var catalog: String { TestPaths.packageRoot.appendingPathComponent("bench/data/catalog.jsonl").path }
    private var queries: String { TestPaths.packageRoot.appendingPathComponent("bench/data/wands/query.csv").path }

    func testGrades_exactSubstitutePartialIrrelevant() throws {
        let sim = try GradedSimulator(catalog: catalog, queries: queries)
        let beds = sim.items.filter { $0.category == "Beds" }
        // A bed with a sibling of the same material in another colour.
        let bed = try XCTUnwrap(beds.first { b in
            beds.contains { $0.attributes[.material] == b.attributes[.material] && $0.attributes[.color] != b.attributes[.color] }
        })
        let color = try XCTUnwrap(bed.attributes[.color]), material = try XCTUnwrap(bed.attributes[.material])
        let query = GradedSimulator.Query(text: "\(color) \(material) bed", cls: "Beds", attributes: [.color: color, .material: material])
        XCTAssertEqual(sim.grade(query, bed), 3, "a bed with every named attribute")
        let otherColour = try XCTUnwrap(beds.first { $0.attributes[.material] == material && $0.attributes[.color] != color })
        XCTAssertEqual(sim.grade(query, otherColour), 2, "one attribute wrong: a substitute")
        let neither = try XCTUnwrap(beds.first { $0.attributes[.material] != material && $0.attributes[.color] != color })
        XCTAssertEqual(sim.grade(query, neither), 1, "two wrong: partial")
        let accessory = try XCTUnwrap(sim.items.first { $0.category == "Bed Accessories" })
        XCTAssertEqual(sim.grade(query, accessory), 0, "a bed accessory is not a bed")
        let kidsBed = try XCTUnwrap(sim.items.first { $0.category == "Kids Beds" })
        XCTAssertEqual(sim.grade(query, kidsBed), 1, "a related product sharing the head noun")
        let sofa = try XCTUnwrap(sim.items.first { $0.category == "Sofas" })
        XCTAssertEqual(sim.grade(query, sofa), 0)
    }

    func testLog_isDeterministic_clicksAndDwellFollowTheGrade() throws {
        let dir = try TestPaths.temporaryDirectory("graded")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sim = try GradedSimulator(catalog: catalog, queries: queries)
        var options = GradedSimulator.Options()
        options.sessions = 1500
        options.queryPool = 300
        let a = dir.appendingPathComponent("a.jsonl").path
        let b = dir.appendingPathComponent("b.jsonl").path
        let judged = try sim.write(to: a, options: options)
        let again = try sim.write(to: b, options: options)
        XCTAssertTrue(again == judged, "same seed, same judgements")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)), "same seed, same bytes")
        let (rows, problems) = try ImpressionLog.read(a)
        XCTAssertTrue(problems.isEmpty)
        XCTAssertEqual(rows.count, 1500 * options.shown)
        var grade: [String: Int] = [:]
        for j in judged { grade[j.query + "\u{0}" + j.item] = j.grade }
        // Every grade occurs among the shown pairs; clicks per impression and dwell rise with the grade.
        var shown = [0, 0, 0, 0], clicks = [0, 0, 0, 0], dwell = [[Double]](repeating: [], count: 4)
        for r in rows {
            let g = try XCTUnwrap(grade[r.query + "\u{0}" + r.item])
            shown[g] += 1
            if r.clicked {
                clicks[g] += 1
                dwell[g].append(try XCTUnwrap(r.dwellSeconds))
            }
        }
        XCTAssertTrue(shown.allSatisfy { $0 > 500 }, "\(shown)")
        let ctr = (0..<4).map { Double(clicks[$0]) / Double(shown[$0]) }
        XCTAssertEqual(ctr, ctr.sorted(), "click rate rises with the grade: \(ctr)")
        let medians = dwell.map { $0.sorted()[$0.count / 2] }
        XCTAssertEqual(medians, medians.sorted(), "dwell rises with the grade: \(medians)")
        // Positions bias clicks: the first position is clicked more than the tenth at the same grade.
        func clickRate(atPosition p: Int) -> Double {
            let at = rows.filter { $0.position == p && grade[$0.query + "\u{0}" + $0.item] == 3 }
            let clicked = at.filter(\.clicked).count
            return Double(clicked) / Double(max(1, at.count))
        }
        XCTAssertGreaterThan(clickRate(atPosition: 1), clickRate(atPosition: 10))
        // The truth file reads back.
        let truthPath = dir.appendingPathComponent("truth.jsonl").path
        try GradedSimulator.writeTruth(judged, to: truthPath)
        let read = try GradedSimulator.readTruth(truthPath)
        XCTAssertEqual(read.values.map(\.count).reduce(0, +), judged.count)
    }
}
