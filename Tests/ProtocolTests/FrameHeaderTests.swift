import Foundation
import Protocol
import SwiftProtobuf
import XCTest
import _TestSupport

/// The header codec and the golden byte vectors shared with the Python client.
final class FrameHeaderTests: XCTestCase {
    func testHeader_roundTrips_withExactByteLayout() throws {
        var h = FrameHeader(type: .rankRequest, requestID: 0x0102_0304_0506_0708, deadlineMs: 250)
        h.hasPin = true
        h.queueMicros = 77
        let bytes = h.bytes
        XCTAssertEqual(bytes.count, 24)
        XCTAssertEqual(Array(bytes[0..<8]), [0x5A, 0x52, 1, 0, 1, 1, 0, 0])
        XCTAssertEqual(Array(bytes[8..<16]), [8, 7, 6, 5, 4, 3, 2, 1])
        XCTAssertEqual(Array(bytes[16..<20]), [250, 0, 0, 0])
        XCTAssertEqual(Array(bytes[20..<24]), [77, 0, 0, 0])
        XCTAssertEqual(try FrameHeader(decoding: bytes), h)
    }

    func testMalformedHeaders_areRefusedWithReasons() {
        let good = FrameHeader(type: .infoRequest, requestID: 9).bytes
        XCTAssertThrowsError(try FrameHeader(decoding: Array(good.prefix(23)))) {
            XCTAssertEqual($0 as? HeaderError, .wrongSize(23))
        }
        var magic = good
        magic[0] = 0x00
        XCTAssertThrowsError(try FrameHeader(decoding: magic)) { XCTAssertEqual($0 as? HeaderError, .badMagic) }
        var major = good
        major[2] = 2
        XCTAssertThrowsError(try FrameHeader(decoding: major)) {
            XCTAssertEqual($0 as? HeaderError, .unsupportedMajor(2, requestID: 9))
        }
        var type = good
        type[4] = 99
        XCTAssertThrowsError(try FrameHeader(decoding: type)) {
            XCTAssertEqual($0 as? HeaderError, .unknownType(99, requestID: 9))
            XCTAssertEqual(($0 as? HeaderError)?.description, "unknown message type 99")
        }
        var minor = good
        minor[3] = 7  // newer minor: accepted
        XCTAssertEqual(try FrameHeader(decoding: minor).minor, 7)
    }

    private func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var chars = Array(s.utf8)
        while chars.count >= 2 {
            out.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16)!)
            chars.removeFirst(2)
        }
        return out
    }

    func testGoldenVectors_decodeToTheirExpectedFields() throws {
        let url = TestPaths.packageRoot.appendingPathComponent("proto/vectors/vectors.json")
        let vectors = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        XCTAssertEqual(vectors.count, 5)
        for v in vectors {
            let frames = (v["frames"] as! [String]).map(hex)
            let header = try FrameHeader(decoding: frames[0])
            let expectedHeader = v["header"] as! [String: Any]
            XCTAssertEqual(Int(header.type.rawValue), expectedHeader["type"] as? Int)
            XCTAssertEqual(header.requestID, (expectedHeader["request_id"] as! NSNumber).uint64Value)
            XCTAssertEqual(Int(header.deadlineMs), expectedHeader["deadline_ms"] as? Int)
            XCTAssertEqual(header.bytes, frames[0], "re-encoding gives the same bytes")
            let expect = v["expect"] as! [String: Any]
            let body = frames.last!
            switch v["name"] as! String {
            case "rank_request":
                let r = try Zrank_V1_RankRequest(serializedBytes: body)
                XCTAssertEqual(r.query, expect["query"] as? String)
                XCTAssertEqual(r.candidateIds, expect["candidate_ids"] as? [String])
                XCTAssertEqual(Int(r.topK), expect["top_k"] as? Int)
                XCTAssertTrue(r.explain)
                XCTAssertEqual(r.user.userID, "u-42")
                XCTAssertEqual(r.user.recentItemIds, ["SKU-000777"])
                XCTAssertEqual(r.inlineCandidates.map { [$0.id, $0.text] }, expect["inline"] as? [[String]])
                XCTAssertEqual(try r.serializedBytes(), body)
            case "rank_request_pinned":
                XCTAssertTrue(header.hasPin)
                XCTAssertEqual(String(decoding: frames[1], as: UTF8.self), "v2")
                XCTAssertEqual(try Zrank_V1_RankRequest(serializedBytes: body).query, "salon chair")
            case "rank_response":
                let r = try Zrank_V1_RankResponse(serializedBytes: body)
                XCTAssertEqual(r.modelVersion, expect["model_version"] as? String)
                XCTAssertEqual(r.items.map(\.id), ["SKU-000001", "B07XJ8C8F5"])
                XCTAssertEqual(r.items.map(\.score), [0.5, -0.25])
                XCTAssertEqual(r.items[0].components.cosine, 0.5)
                XCTAssertEqual(r.notFound, ["12345"])
                XCTAssertEqual([r.timings.queueUs, r.timings.encodeUs, r.timings.scoreUs, r.timings.totalUs], [12, 900, 40, 960])
            case "error_overloaded":
                let e = try Zrank_V1_Error(serializedBytes: body)
                XCTAssertEqual(e.code, .overloaded)
                XCTAssertEqual(e.message, "queue full")
            case "info_response":
                let r = try Zrank_V1_InfoResponse(serializedBytes: body)
                XCTAssertEqual(r.catalogSize, 3)
                XCTAssertEqual(r.sampleItemIds, ["a", "b", "c"])
            default:
                XCTFail("unknown vector \(v["name"]!)")
            }
        }
    }

    func testTruncatedBody_failsToDecode() throws {
        var r = Zrank_V1_RankRequest()
        r.query = "a long enough query text"
        let bytes: [UInt8] = try r.serializedBytes()
        XCTAssertThrowsError(try Zrank_V1_RankRequest(serializedBytes: Array(bytes.prefix(bytes.count - 3))))
    }
}
