import Foundation
import Training
import XCTest

/// Impression logs: good lines parse, each malformed line is reported with its number and reason.
final class ImpressionLogTests: XCTestCase {
    func testMalformedLines_areReportedWithLineNumbers() throws {
        let lines: [String] = [
            #"{"query": "sofa", "item": "A", "clicked": true, "position": 1, "dwell_s": 12.5, "user": {"id": "u1", "recent": ["B"]}}"#,
            #"{"query": "sofa", "item": "B", "clicked": false}"#,
            #"not json"#,
            #"{"query": "sofa", "item": "C"}"#,
            #"{"query": "sofa", "item": "C", "clicked": false, "position": 0}"#,
            #"{"query": "sofa", "item": "C", "clicked": true, "dwell_s": -1}"#,
            #"{"query": "  ", "item": "C", "clicked": true}"#,
            #"{"query": "sofa", "item": "C", "clicked": true, "user": {"id": "u", "recent": "B"}}"#,
            "",
        ]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        var data = Data(lines.joined(separator: "\n").utf8)
        data.append(contentsOf: [0x0A, 0xFF, 0xFE, 0x0A])  // line 10: invalid UTF-8
        try data.write(to: url)
        let (rows, problems) = try ImpressionLog.read(url.path)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0], Impression(query: "sofa", item: "A", userID: "u1", recent: ["B"], position: 1, clicked: true, dwellSeconds: 12.5))
        XCTAssertEqual(problems.map(\.line), [3, 4, 5, 6, 7, 8, 10])
        XCTAssertTrue(problems[1].reason.contains("clicked"), problems[1].reason)
        XCTAssertTrue(problems[2].reason.contains("position"), problems[2].reason)
        XCTAssertTrue(problems[3].reason.contains("dwell_s"), problems[3].reason)
        XCTAssertTrue(problems[6].reason.contains("UTF-8"), problems[6].reason)
        XCTAssertThrowsError(try ImpressionLog.read("/nonexistent.jsonl"))
    }
}
