import CLISupport
import Foundation
import XCTest

/// The shared progress display: a bar redrawn in place on a terminal, plain lines elsewhere, never both.
final class ProgressMeterTests: XCTestCase {
    /// Collects what a meter writes.
    final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private var parts: [String] = []
        func write(_ s: String) { lock.lock(); parts.append(s); lock.unlock() }
        var text: String { lock.lock(); defer { lock.unlock() }; return parts.joined() }
    }

    func testLines_areWholeLinesWithRateAndETA_andNoCarriageReturns() {
        let sink = Sink()
        let meter = ProgressMeter(label: "indexing", total: 1000, unit: "items", mode: .lines(every: 0)) { sink.write($0) }
        for _ in 0..<10 {
            usleep(2000)
            meter.advance(by: 50)
        }
        meter.finish("2 threads")
        let text = sink.text
        XCTAssertFalse(text.contains("\r"))
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 11, text)
        XCTAssertTrue(lines[0].hasPrefix("indexing: 50/1000 items (5%), "), String(lines[0]))
        XCTAssertTrue(lines[0].contains("items/s, ETA "), String(lines[0]))
        XCTAssertTrue(lines[9].hasPrefix("indexing: 500/1000 items (50%)"), String(lines[9]))
        XCTAssertTrue(lines[10].hasPrefix("indexing: 500 items in "), String(lines[10]))
        XCTAssertTrue(lines[10].hasSuffix(", 2 threads"), String(lines[10]))
    }

    func testLines_areRateLimited() {
        let sink = Sink()
        let meter = ProgressMeter(label: "x", total: 100, unit: "items", mode: .lines(every: 3600)) { sink.write($0) }
        for _ in 0..<100 { meter.advance() }
        XCTAssertEqual(sink.text, "", "nothing before the first interval has passed")
        meter.finish()
        XCTAssertTrue(sink.text.hasPrefix("x: 100 items in "), sink.text)
    }

    func testBar_redrawsInPlace_andEndsWithOneLine() {
        let sink = Sink()
        let meter = ProgressMeter(label: "fine-tune", total: 4, unit: "steps", mode: .bar) { sink.write($0) }
        for i in 1...4 {
            meter.update(done: i, note: "loss 0.\(i)")
            usleep(120_000)  // past the redraw interval
        }
        let drawn = sink.text
        XCTAssertFalse(drawn.contains("\n"), "a bar never scrolls")
        XCTAssertTrue(drawn.contains("\r\u{1B}[Kfine-tune [######------------------] 1/4 steps (25%)"), drawn)
        XCTAssertTrue(drawn.contains("loss 0.1"), drawn)
        meter.finish()
        XCTAssertTrue(sink.text.hasSuffix("\n"))
        XCTAssertEqual(sink.text.filter { $0 == "\n" }.count, 1)
    }

    func testSilent_writesNothing_andFinishIsIdempotent() {
        let sink = Sink()
        let meter = ProgressMeter(label: "x", total: 10, unit: "items", mode: .silent) { sink.write($0) }
        meter.advance(by: 10)
        meter.finish()
        meter.finish()
        XCTAssertEqual(sink.text, "")
        let once = ProgressMeter(label: "y", total: 1, unit: "items", mode: .lines(every: 100)) { sink.write($0) }
        once.finish()
        once.finish()
        XCTAssertEqual(sink.text.split(separator: "\n").count, 1)
    }

    func testConcurrentAdvances_areAllCounted() {
        let sink = Sink()
        let meter = ProgressMeter(label: "x", total: 8000, unit: "items", mode: .silent) { sink.write($0) }
        DispatchQueue.concurrentPerform(iterations: 8) { _ in for _ in 0..<1000 { meter.advance() } }
        XCTAssertTrue(meter.statusText().hasPrefix("8000/8000 items (100%)"), meter.statusText())
    }
}
