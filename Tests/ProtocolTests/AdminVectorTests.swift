import Foundation
import Protocol
import XCTest
import _TestSupport

/// The admin protocol's golden vectors (proto/vectors/admin.json), also checked by the Python client's tests: each
/// request decodes to an `AdminRequest` and encodes back to the same JSON, each invalid one is refused with its
/// code, each answer decodes to its type and encodes back to the same JSON.
final class AdminVectorTests: XCTestCase {
    private func vectors() throws -> [String: Any] {
        let url = TestPaths.packageRoot.appendingPathComponent("proto/vectors/admin.json")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private func bytes(_ object: Any) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// Equal as JSON values (numbers by value, objects by keys).
    private func assertSameJSON(_ encoded: [UInt8], _ expected: Any, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let got = try JSONSerialization.jsonObject(with: Data(encoded))
        XCTAssertEqual(got as? NSObject, expected as? NSObject, "\(name): \(String(decoding: encoded, as: UTF8.self))", file: file, line: line)
    }

    func testRequests_roundTripExactly() throws {
        let requests = try XCTUnwrap(try vectors()["requests"] as? [[String: Any]])
        XCTAssertEqual(Set(requests.compactMap { ($0["json"] as? [String: Any])?["op"] as? String }), Set(AdminOp.allCases.map(\.rawValue)),
                       "every op has a vector")
        for v in requests {
            let name = v["name"] as! String
            let request = try AdminJSON.request(try bytes(v["json"]!))
            try assertSameJSON(AdminJSON.encode(request), v["json"]!, name)
        }
    }

    func testInvalidRequests_areRefusedWithTheirCode() throws {
        for v in try XCTUnwrap(try vectors()["invalid"] as? [[String: Any]]) {
            let name = v["name"] as! String
            XCTAssertThrowsError(try AdminJSON.request(try bytes(v["json"]!)), name) { error in
                XCTAssertEqual((error as? AdminMessageError)?.code.rawValue, v["code"] as? String, "\(name): \(error)")
            }
        }
    }

    func testAnswers_decodeToTheirTypes_andEncodeBackTheSame() throws {
        for v in try XCTUnwrap(try vectors()["answers"] as? [[String: Any]]) {
            let name = v["name"] as! String
            let json = try bytes(v["json"]!)
            switch v["kind"] as! String {
            case "status":
                try assertSameJSON(AdminJSON.encode(try JSONDecoder().decode(PoolStatus.self, from: Data(json))), v["json"]!, name)
            case "reply":
                let reply = try JSONDecoder().decode(AdminReply.self, from: Data(json))
                try assertSameJSON(AdminJSON.encode(reply), v["json"]!, name)
                if let code = reply.code {
                    XCTAssertThrowsError(try AdminJSON.answer(AdminReply.self, json)) {
                        XCTAssertEqual($0 as? AdminCallError, .refused(code, reply.error ?? ""), name)
                    }
                }
            case "load":
                try assertSameJSON(AdminJSON.encode(try JSONDecoder().decode(LoadOrder.self, from: Data(json))), v["json"]!, name)
            default:
                XCTFail("\(name): unknown kind")
            }
        }
        let coordinator = try XCTUnwrap((try vectors()["answers"] as! [[String: Any]]).first { $0["name"] as? String == "status_coordinator" })
        let status = try JSONDecoder().decode(PoolStatus.self, from: Data(try bytes(coordinator["json"]!)))
        XCTAssertEqual(status.workers.map(\.state), [.ready, .warming, .dead])
        XCTAssertEqual(status.rollout?.stage, .canary)
        XCTAssertEqual(status.windowEpoch, 1_099_511_627_777)
    }

    /// An ERROR header carries the body's code (bytes 6-7), so the router counts it without decoding the body.
    func testErrorFrames_carryTheCodeInTheHeader() throws {
        let frames = errorFrames(requestID: 9, .overloaded, "full")
        let header = try FrameHeader(decoding: frames[0])
        XCTAssertEqual(header.errorCode, UInt16(Zrank_V1_Error.Code.overloaded.rawValue))
        XCTAssertEqual(frames[0][6], UInt8(Zrank_V1_Error.Code.overloaded.rawValue))
        XCTAssertEqual(FrameHeader(type: .rankRequest, requestID: 1).bytes[6...7], [0, 0])
    }
}
