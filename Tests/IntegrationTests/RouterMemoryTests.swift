import Foundation
import Protocol
import XCTest
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The router's memory is bounded by bytes, not by request count: big requests against stalled workers get
/// OVERLOADED beyond `--queue-bytes`, and a client that floods malformed frames and never reads its answers cannot
/// grow the router (its answers beyond the high-water mark are dropped and counted).
final class RouterMemoryTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func rssMiB(_ pid: Int32) -> Double {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    func testBigRequestsAndAFlood_keepTheRoutersRSSUnderQueueBytesPlusAConstant() throws {
        let endpoint = fixture.ipcEndpoint("mem-front")
        let admin = fixture.ipcEndpoint("mem-admin")
        let queueBytes = 64 << 20
        // The worker stalls 60 s on every rank request: whatever is accepted stays held.
        let pool = try ZRankProcess(
            ["serve", "--model", fixture.model, "--index", fixture.index, "--workers", "1", "--bind", endpoint, "--admin", admin,
             "--queue-bytes", "\(queueBytes)"],
            environment: ["ZRANK_FAULT_STALL_MS": "60000"])
        XCTAssertTrue(try pool.waitUntilServing(endpoint), pool.output)
        let router = try XCTUnwrap(pool.childPIDs().first { ZRankProcess.commandLine($0).contains(" router ") })
        let baseline = rssMiB(router)
        // The documented constant: what the router holds besides the bodies it accepted (its own heap, libzmq's
        // buffers: 16 frames read ahead from the client, 1000 small answers queued to it).
        let allowance = Double(queueBytes >> 20) + 160
        var peak = baseline

        // 2,000 requests of 15 MiB. The client's own queue is kept short so the test does not hold gigabytes.
        let context = ZMQContext()
        let client = try ZMQSocket(context, type: .dealer)
        try client.setInt(ZMQOption.sendHighWaterMark, 4)
        try client.setInt(ZMQOption.linger, 0)
        try client.connect(endpoint)
        let body = [UInt8](repeating: 0x41, count: 15 << 20)
        var answers: [Zrank_V1_Error.Code: Int] = [:]
        var ranked = 0
        func drain(waitMs: Int) throws {
            while try ZMQPoller.poll([client], timeoutMs: waitMs)[0] {
                while let frames = try client.receive(dontWait: true) {
                    let header = try FrameHeader(decoding: frames[0])
                    if header.type == .error {
                        answers[try Zrank_V1_Error(serializedBytes: frames[1]).code, default: 0] += 1
                    } else {
                        ranked += 1
                    }
                }
                if waitMs == 0 { return }
            }
        }
        let sendStart = Date()
        for i in 0..<2000 {
            try client.send([FrameHeader(type: .rankRequest, requestID: UInt64(i + 1), deadlineMs: 120_000).bytes, body])
            try drain(waitMs: 0)
            if i % 50 == 0 { peak = max(peak, rssMiB(router)) }
        }
        try drain(waitMs: 3000)
        peak = max(peak, rssMiB(router))
        let accepted = 2000 - answers.values.reduce(0, +)
        print("router memory: 2000 x 15 MiB sent in \(String(format: "%.1f", Date().timeIntervalSince(sendStart))) s; answers \(answers), held \(accepted); RSS baseline \(String(format: "%.0f", baseline)) MiB, peak \(String(format: "%.0f", peak)) MiB")
        XCTAssertLessThanOrEqual(accepted, queueBytes / (15 << 20), "no more than --queue-bytes of bodies held")
        XCTAssertGreaterThanOrEqual(answers[.overloaded] ?? 0, 2000 - queueBytes / (15 << 20), "the excess is answered OVERLOADED: \(answers)")
        XCTAssertLessThan(peak - baseline, allowance, "RSS grew \(peak - baseline) MiB")

        // 10^6 malformed frames from a client that never reads.
        let flood = try ZMQSocket(context, type: .dealer)
        try flood.setInt(ZMQOption.linger, 0)
        try flood.connect(endpoint)
        let floodStart = Date()
        for i in 0..<1_000_000 {
            try flood.send([[0x5A, 0x52, UInt8(truncatingIfNeeded: i)]])
            if i % 50_000 == 0 { peak = max(peak, rssMiB(router)) }
        }
        let settle = Date()
        while Date().timeIntervalSince(settle) < 3 {
            peak = max(peak, rssMiB(router))
            usleep(200_000)
        }
        print("router memory: 10^6 malformed frames sent in \(String(format: "%.1f", Date().timeIntervalSince(floodStart))) s; RSS peak \(String(format: "%.0f", peak)) MiB (baseline \(String(format: "%.0f", baseline)) MiB)")
        XCTAssertLessThan(peak - baseline, allowance, "RSS grew \(peak - baseline) MiB")
        XCTAssertEqual(kill(router, 0), 0, "the router is alive")
        // Still answering, and the dropped answers are counted.
        let status = try XCTUnwrap(fixture.adminStatus(admin), pool.output)
        XCTAssertEqual((status["workers"] as? [[String: Any]])?.count, 1)
        let metrics = try RealModel.run(fixture.zrankctl, ["--admin", admin, "status"])
        XCTAssertEqual(metrics.status, 0)
        let channel = try AdminChannel(context: context, endpoint: admin)
        let text = try channel.call(.metrics, expecting: AdminReply.self, timeoutMs: 3000).text ?? ""
        let dropped = text.split(separator: "\n").first { $0.hasPrefix("zrank_answers_dropped_total") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        XCTAssertGreaterThan(dropped, 0, "answers to the client that never reads were dropped and counted")
        XCTAssertNotNil(pool.terminate(within: 8))
    }
}
