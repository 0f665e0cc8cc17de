import ArgumentParser
import CLISupport
import Foundation
import Logging
import Protocol
import Router
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// `zrank-router-bench`: a request's round trip through the zrank router to a worker that answers at once, against
/// a bare ZeroMQ DEALER → ROUTER/DEALER proxy (zmq_proxy) → worker hop, in the same run, alternating rounds.
@main
struct RouterBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zrank-router-bench",
        abstract: "The zrank router's round trip against a bare zmq_proxy hop, alternating rounds in one run.",
        version: ZRankRelease.versionString("zrank-router-bench"))

    enum Transport: String, ExpressibleByArgument, CaseIterable {
        case tcp, ipc
    }

    @Option(name: .long, help: "Transport between the parties.")
    var transport: Transport = .tcp

    @Option(name: .long, help: "Alternating rounds (zrank, then bare).")
    var rounds: Int = 5

    @Option(name: .long, help: "Sequential requests per round and path.")
    var requests: Int = 4000

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1") }
    }

    func run() throws {
        let transport = self.transport.rawValue
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zrank-routerbench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var port = 31_000 + Int(getpid() % 2000)
        func endpoint(_ name: String) -> String {
            port += 1
            return transport == "tcp" ? "tcp://127.0.0.1:\(port)" : "ipc://\(dir.path)/\(name).sock"
        }
        // Each party has its own context (its own I/O thread), as separate processes would.
        let context = ZMQContext()

        // zrank router (in-process loop on its own thread) + a worker speaking the worker protocol that answers at once.
        let routerFront = endpoint("router-front")
        let routerBack = endpoint("router-back")
        Thread.detachNewThread {
            let router = RouterService(
                frontend: routerFront, backend: routerBack, configuration: RouterConfiguration(),
                logger: Logger(label: "bench"))
            try? router.run()
        }
        usleep(100_000)
        Thread.detachNewThread { try? protocolEchoWorker(context: ZMQContext(), endpoint: routerBack) }

        // Bare proxy: ROUTER frontend, DEALER backend, zmq_proxy; the worker is a REP socket answering at once.
        let proxyFront = endpoint("proxy-front")
        let proxyBack = endpoint("proxy-back")
        Thread.detachNewThread { try? runProxy(context: ZMQContext(), frontend: proxyFront, backend: proxyBack) }
        usleep(100_000)
        Thread.detachNewThread { try? repEchoWorker(context: ZMQContext(), endpoint: proxyBack) }
        usleep(300_000)

        let zrankClient = try PoolClient(endpoint: routerFront, context: context)
        let bareClient = try ZMQSocket(context, type: .dealer)
        try bareClient.connect(proxyFront)
        var body = Zrank_V1_RankRequest()
        body.query = "salon chair"
        body.candidateIds = ["SKU-000001", "SKU-000002"]
        let bytes: [UInt8] = try body.serializedBytes()
        var zrankLatencies: [Double] = []
        var bareLatencies: [Double] = []
        var id: UInt64 = 0
        // Warm-up.
        for _ in 0..<500 {
            id += 1
            try zrankClient.send(type: .rankRequest, requestID: id, body: bytes)
            _ = try zrankClient.receive(timeoutMs: 2000)
            try bareClient.send([[], FrameHeader(type: .rankRequest, requestID: id).bytes, bytes])
            _ = try bareClient.receive()
        }
        for _ in 0..<rounds {
            for _ in 0..<requests {
                id += 1
                let t0 = monotonicNanos()
                try zrankClient.send(type: .rankRequest, requestID: id, body: bytes)
                guard let a = try zrankClient.receive(timeoutMs: 2000), a.header.requestID == id else {
                    fatalError("router round trip lost request \(id)")
                }
                zrankLatencies.append(Double(monotonicNanos() - t0) / 1000)
            }
            for _ in 0..<requests {
                id += 1
                let t0 = monotonicNanos()
                try bareClient.send([[], FrameHeader(type: .rankRequest, requestID: id).bytes, bytes])
                _ = try bareClient.receive()
                bareLatencies.append(Double(monotonicNanos() - t0) / 1000)
            }
        }
        func pct(_ v: [Double], _ p: Double) -> Double {
            let s = v.sorted()
            return s[min(s.count - 1, Int(p * Double(s.count)))]
        }
        let z50 = pct(zrankLatencies, 0.5), z99 = pct(zrankLatencies, 0.99)
        let b50 = pct(bareLatencies, 0.5), b99 = pct(bareLatencies, 0.99)
        print("transport \(transport), \(rounds) alternating rounds of \(requests) sequential requests each")
        print(String(format: "  zrank router -> worker:      p50 %7.1f us  p99 %7.1f us", z50, z99))
        print(String(format: "  bare zmq_proxy -> REP worker: p50 %7.1f us  p99 %7.1f us", b50, b99))
        print(String(format: "  router overhead vs bare hop: p50 %+.1f us (%.2fx)  p99 %+.1f us (%.2fx)", z50 - b50, z50 / b50, z99 - b99, z99 / b99))
        print(String(
            format: "{\"transport\": \"%@\", \"rounds\": %d, \"requests_per_round\": %d, \"zrank_p50_us\": %.1f, \"zrank_p99_us\": %.1f, \"bare_p50_us\": %.1f, \"bare_p99_us\": %.1f}",
            transport, rounds, requests, z50, z99, b50, b99))
        try? FileManager.default.removeItem(at: dir)
        // The echo threads never return; leave without waiting for them.
        Foundation.exit(0)
    }
}

/// A worker that speaks zrank's worker protocol and answers every request at once with an empty response.
func protocolEchoWorker(context: ZMQContext, endpoint: String) throws {
    let socket = try ZMQSocket(context, type: .dealer)
    try socket.connect(endpoint)
    var ready = Zrank_V1_WorkerReady()
    ready.modelVersion = "bench"
    ready.capacity = 1
    try socket.send([FrameHeader(type: .workerReady, requestID: 0).bytes, try ready.serializedBytes()])
    let response: [UInt8] = try Zrank_V1_RankResponse().serializedBytes()
    var lastBeat = monotonicNanos()
    while true {
        if try ZMQPoller.poll([socket], timeoutMs: 500)[0], let frames = try socket.receive(dontWait: true),
            let h = try? FrameHeader(decoding: frames[0]), h.type == .rankRequest
        {
            try socket.send([FrameHeader(type: .rankResponse, requestID: h.requestID).bytes, response])
        }
        if monotonicNanos() - lastBeat > 500_000_000 {
            try socket.send([FrameHeader(type: .heartbeat, requestID: 0).bytes])
            lastBeat = monotonicNanos()
        }
    }
}

/// A REP worker behind the bare proxy, answering at once.
func repEchoWorker(context: ZMQContext, endpoint: String) throws {
    let socket = try ZMQSocket(context, type: .rep)
    try socket.connect(endpoint)
    let response: [UInt8] = try Zrank_V1_RankResponse().serializedBytes()
    while true {
        guard let frames = try socket.receive(), let h = try? FrameHeader(decoding: frames[0]) else { continue }
        try socket.send([FrameHeader(type: .rankResponse, requestID: h.requestID).bytes, response])
    }
}

/// The textbook ROUTER/DEALER proxy.
func runProxy(context: ZMQContext, frontend: String, backend: String) throws {
    let front = try ZMQSocket(context, type: .router)
    let back = try ZMQSocket(context, type: .dealer)
    try front.bind(frontend)
    try back.bind(backend)
    ZMQProxy.run(frontend: front, backend: back)
}
