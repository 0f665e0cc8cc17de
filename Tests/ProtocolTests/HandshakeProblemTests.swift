import Foundation
import Protocol
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What a `PoolClient` says when its handshakes fail, with real libzmq sockets: a plain client whose peer closes the
/// connection mid-handshake (libzmq reports no detail, as when a CURVE router hangs up on a plain greeting before its
/// own greeting arrives) is told the router requires CURVE; a CURVE client in the same spot is told its keys may not
/// match; a CURVE router answering a plain client is named as requiring CURVE.
final class HandshakeProblemTests: XCTestCase {
    /// A tcp listener on 127.0.0.1 that accepts connections and closes them at once, on its own thread. Only that
    /// thread closes the listening socket (after `deinit` shuts it down), so its descriptor cannot be reused by
    /// another socket while the thread might still accept on it.
    private final class HangUpServer {
        let port: UInt16
        private let fd: Int32

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EMFILE) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 16) == 0 else {
                close(fd)
                throw POSIXError(.EADDRINUSE)
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            port = UInt16(bigEndian: address.sin_port)
            self.fd = fd
            Thread.detachNewThread {
                while true {
                    let connection = accept(fd, nil, nil)
                    if connection >= 0 {
                        close(connection)
                    } else if errno != EINTR && errno != ECONNABORTED {
                        break  // shut down by deinit
                    }
                }
                close(fd)
            }
        }

        deinit {
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    /// Waits (up to 5 s) until the client has seen a handshake fail, and returns what it says about it.
    private func problem(of client: PoolClient) -> String? {
        let end = Date().addingTimeInterval(5)
        while Date() < end {
            if let problem = client.handshakeProblem { return problem }
            usleep(20_000)
        }
        return nil
    }

    func testPlainClient_whosePeerHangsUpMidHandshake_isToldTheRouterRequiresCurve() throws {
        let server = try HangUpServer()
        let client = try PoolClient(endpoint: "tcp://127.0.0.1:\(server.port)")
        let said = try XCTUnwrap(problem(of: client))
        XCTAssertTrue(said.contains("requires CURVE"), said)
        XCTAssertFalse(said.contains("keys that do not match"), said)
    }

    func testCurveClient_whosePeerHangsUpMidHandshake_isToldItsKeysMayNotMatch() throws {
        let server = try HangUpServer()
        let keys = CurveClientKeys(server: try CurveKeyPair.generate().publicKey, own: try CurveKeyPair.generate())
        let client = try PoolClient(endpoint: "tcp://127.0.0.1:\(server.port)", curve: keys)
        let said = try XCTUnwrap(problem(of: client))
        XCTAssertTrue(said.contains("keys that do not match"), said)
    }

    func testPlainClient_ofACurveRouter_isToldItRequiresCurve() throws {
        let context = ZMQContext()
        let router = try ZMQSocket(context, type: .router)
        try router.makeCurveServer(try CurveKeyPair.generate(), domain: .clients)
        try router.bind("tcp://127.0.0.1:*")
        let client = try PoolClient(endpoint: router.lastEndpoint, context: context)
        let said = try XCTUnwrap(problem(of: client))
        XCTAssertTrue(said.contains("requires CURVE"), said)
    }
}
