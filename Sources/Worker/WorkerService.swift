import CSystem
import Dispatch
import Foundation
import Logging
import Model
import Protocol
import Ranking
import Registry
import SwiftProtobuf

/// Fault injection for tests: off by default, set only by documented flags or environment variables of the real
/// `zrank worker` binary (`--fault-stall-ms`, `--fault-fail-every`, `--fault-crash-after`, `--fault-pause-ms` with
/// `--fault-pause-after`; environment `ZRANK_FAULT_STALL_MS`, `ZRANK_FAULT_FAIL_EVERY`, `ZRANK_FAULT_CRASH_AFTER`,
/// `ZRANK_FAULT_PAUSE_MS`, `ZRANK_FAULT_PAUSE_AFTER`). With `--fault-version NAME` (`ZRANK_FAULT_VERSION`) the faults
/// apply only while the worker serves that version: a deliberately bad release for rollback tests.
public struct FaultInjection: Sendable, Equatable {
    /// Sleep this long before answering each request.
    public var stallMs = 0
    /// Answer every Nth request with an INTERNAL error.
    public var failEvery = 0
    /// Exit abruptly (no goodbye) on the Nth request, as a crash would.
    public var crashAfter = 0
    /// Stall once, for this long, on request number `pauseAfter` (a GC pause, a page-in storm).
    public var pauseMs = 0
    public var pauseAfter = 0
    /// Only while serving this version (nil: always).
    public var version: String?

    public init(
        stallMs: Int = 0, failEvery: Int = 0, crashAfter: Int = 0, pauseMs: Int = 0, pauseAfter: Int = 0, version: String? = nil
    ) {
        self.version = version
        self.stallMs = stallMs
        self.failEvery = failEvery
        self.crashAfter = crashAfter
        self.pauseMs = pauseMs
        self.pauseAfter = pauseAfter
    }

    /// Any fault active.
    public var isActive: Bool { stallMs > 0 || failEvery > 0 || crashAfter > 0 || pauseMs > 0 }
}

/// How a worker connects and behaves.
public struct WorkerConfiguration: Sendable {
    /// The routers' backend endpoints (tcp:// or ipc://), comma-separated: the worker serves every one.
    public var endpoint: String
    /// `endpoint` split at the commas.
    public var endpoints: [String] { endpoint.split(separator: ",").map(String.init) }
    /// CURVE keys for tcp routers that require them (nil: plain).
    public var curve: CurveClientKeys?
    /// Stable identity; defaults to "w-<pid>".
    public var workerID: String
    public var heartbeatIntervalMs = 1000
    /// Missed heartbeats before the router is presumed dead and the worker reconnects.
    public var liveness = 3
    /// Requests the router may have in flight on this worker (it announces this); set to `maxBatch`.
    public var capacity = 1
    /// Rank requests already waiting that are taken together, their queries encoded as one batch (1: one at a time).
    public var maxBatch = 1 {
        didSet { capacity = max(1, maxBatch) }
    }
    public var faults = FaultInjection()
    /// The registry a LOAD's version is resolved in (nil: the worker serves the files it was started with and
    /// refuses loads).
    public var registry: Registry?

    public init(endpoint: String, workerID: String? = nil) {
        self.endpoint = endpoint
        self.workerID = workerID ?? "w-\(getpid())"
    }
}

/// A worker process's main loop: a DEALER connected to the router's backend that announces itself, heartbeats,
/// ranks requests one at a time and answers every one (a ranked answer or an explicit error).
///
/// Two threads: the I/O thread owns the router socket (heartbeats keep flowing however long a request takes) and a
/// compute thread owns the ranker; they talk over an inproc PAIR socket. Hence `@unchecked Sendable`: the ranker is
/// confined to the compute thread, the sockets to the thread that made them.
public final class WorkerService: @unchecked Sendable {
    /// Confined to the compute thread (replaced when the router asks for another version).
    private var ranker: Ranker
    /// What the worker announces; written by the compute thread, read by the I/O thread on (re)connect.
    private var announcement = Zrank_V1_WorkerReady()
    /// The ranker's query-cache figures, for heartbeats; written by the compute thread after each request.
    private var cacheFigures: QueryCacheFigures?
    private let announcementLock = NSLock()
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let context = ZMQContext()
    private var handled = 0
    private let computeEndpoint = "inproc://zrank-compute"

    public init(ranker: Ranker, configuration: WorkerConfiguration, logger: Logger) {
        self.ranker = ranker
        self.configuration = configuration
        self.logger = logger
        self.announcement = Self.ready(for: ranker, configuration: configuration)
    }

    private static func ready(for ranker: Ranker, configuration: WorkerConfiguration) -> Zrank_V1_WorkerReady {
        var ready = Zrank_V1_WorkerReady()
        ready.workerID = configuration.workerID
        ready.modelVersion = ranker.version
        ready.capacity = UInt32(configuration.capacity)
        ready.modelContentHash = ranker.model.contentHash
        ready.catalogSize = UInt64(ranker.index.count)
        return ready
    }

    /// One router this worker serves (a worker connects to every router of the pool).
    private struct RouterLink {
        let endpoint: String
        var socket: ZMQSocket?
        /// Why the router may be silent (a refused CURVE key).
        var monitor: HandshakeMonitor?
        var lastHeard: UInt64 = 0
        var nextHeartbeat: UInt64 = 0
        var heardAny = false
        var backoffMs = 250
        /// When to connect again (while `socket` is nil).
        var reconnectAt: UInt64 = 0
    }

    /// Runs until SIGTERM/SIGINT (installed by the caller via CSystem), then says goodbye and returns.
    ///
    /// No send to a router ever blocks this thread: a DEALER whose router is gone (or refused its key) has no pipe
    /// to queue on, and a blocking send would stop the heartbeats to every other router. What cannot be queued is
    /// dropped: the router times the request out and retries it elsewhere.
    ///
    /// The I/O thread keeps one DEALER per router (`--connect E1,E2`): each is announced, heartbeated and judged
    /// alive on its own, and reconnected with backoff when its router goes silent; the others keep serving. Every
    /// request goes to the compute thread tagged with its router, and its answer goes back to that router. A load's
    /// new READY (and its "warming" notice) goes to every router.
    public func run() throws {
        let link = try ZMQSocket(context, type: .pair)
        try link.bind(computeEndpoint)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            computeLoop()
            finished.signal()
        }
        defer {
            try? link.send([[]])  // empty frame: stop
            finished.wait()
        }
        var routers = configuration.endpoints.map { RouterLink(endpoint: $0) }
        let interval = UInt64(configuration.heartbeatIntervalMs) * 1_000_000
        while true {
            var now = monotonicNanos()
            if stopRequested {
                for r in routers {
                    try? r.socket?.send([FrameHeader(type: .disconnect, requestID: 0).bytes], dontWait: true)
                }
                logger.info("worker stopping", metadata: ["requests.handled": "\(handled)"])
                return
            }
            for i in routers.indices where routers[i].socket == nil && now >= routers[i].reconnectAt {
                (routers[i].socket, routers[i].monitor) = try connect(routers[i].endpoint)
                routers[i].lastHeard = now
                routers[i].nextHeartbeat = now + interval
                routers[i].heardAny = false
            }
            let live = routers.indices.filter { routers[$0].socket != nil }
            let wait = live.map { routers[$0].nextHeartbeat > now ? Int((routers[$0].nextHeartbeat - now) / 1_000_000) + 1 : 0 }.min() ?? 200
            let ready = try ZMQPoller.poll(live.map { routers[$0].socket! } + [link], timeoutMs: min(wait, 200))
            if ready[live.count] {
                while let reply = try link.receive(dontWait: true), reply.count >= 2 {
                    let frames = Array(reply.dropFirst())
                    if let tag = reply[0].first, Int(tag) < routers.count {
                        try? routers[Int(tag)].socket?.send(frames, dontWait: true)
                    } else {
                        for r in routers { try? r.socket?.send(frames, dontWait: true) }  // a load's READY: every router
                    }
                }
            }
            for (slot, i) in live.enumerated() where ready[slot] {
                guard let socket = routers[i].socket else { continue }
                while let frames = try socket.receive(dontWait: true) {
                    routers[i].heardAny = true
                    routers[i].lastHeard = monotonicNanos()
                    if try !handle(frames, router: i, link: link) {
                        logger.info("router asked this worker to reconnect", metadata: ["endpoint": "\(routers[i].endpoint)"])
                        drop(&routers[i], now: monotonicNanos())
                        break
                    }
                }
            }
            now = monotonicNanos()
            for i in routers.indices {
                guard let socket = routers[i].socket else { continue }
                if now >= routers[i].nextHeartbeat {
                    // The heartbeat carries the query cache's figures (written by the compute thread).
                    announcementLock.lock()
                    let beat = WorkerHeartbeat(queryCache: cacheFigures)
                    announcementLock.unlock()
                    try? socket.send([FrameHeader(type: .heartbeat, requestID: 0).bytes, AdminJSON.encode(beat)], dontWait: true)
                    routers[i].nextHeartbeat = now + interval
                }
                if now - routers[i].lastHeard > interval * UInt64(configuration.liveness) {
                    if case .refused(let status)? = routers[i].monitor?.refresh() {
                        logger.error(
                            "the router refused this worker's CURVE key: it is not in the router's --curve-workers folder",
                            metadata: ["endpoint": "\(routers[i].endpoint)", "zap.status": "\(status)",
                                       "public.key": "\(configuration.curve?.own.publicKey.z85 ?? "-")"])
                    }
                    logger.warning(
                        "router silent; reconnecting",
                        metadata: ["endpoint": "\(routers[i].endpoint)", "backoff.ms": "\(routers[i].heardAny ? 250 : routers[i].backoffMs)"])
                    drop(&routers[i], now: now)
                }
            }
        }
    }

    /// Closes a router's socket and schedules the reconnect (backoff doubling while the router stays silent).
    private func drop(_ router: inout RouterLink, now: UInt64) {
        if router.heardAny { router.backoffMs = 250 }
        router.socket = nil
        router.monitor = nil
        router.reconnectAt = now + UInt64(router.backoffMs) * 1_000_000
        router.backoffMs = min(router.backoffMs * 2, 4000)
    }

    private var stopRequested: Bool { CSystem_stop_requested() != 0 }

    private func connect(_ endpoint: String) throws -> (ZMQSocket, HandshakeMonitor?) {
        let socket = try ZMQSocket(context, type: .dealer)
        try socket.setIdentity(Array("\(configuration.workerID)-\(UInt32.random(in: 0...UInt32.max))".utf8))
        if let curve = configuration.curve, endpoint.hasPrefix("tcp://") { try socket.makeCurveClient(curve) }
        // Let the last answer and the goodbye leave before the socket closes.
        try socket.setInt(ZMQOption.linger, 500)
        let monitor = try? HandshakeMonitor(socket)
        try socket.connect(endpoint)
        announcementLock.lock()
        let ready = announcement
        announcementLock.unlock()
        try? socket.send([FrameHeader(type: .workerReady, requestID: 0).bytes, try ready.serializedBytes()], dontWait: true)
        logger.info(
            "worker ready",
            metadata: ["worker.id": "\(configuration.workerID)", "model.version": "\(ready.modelVersion)",
                       "endpoint": "\(endpoint)", "curve": "\(configuration.curve == nil ? "off" : "on")"])
        return (socket, monitor)
    }

    /// Handles one message from router number `router`; returns false when it asked this worker to reconnect.
    private func handle(_ frames: [[UInt8]], router: Int, link: ZMQSocket) throws -> Bool {
        guard let first = frames.first, let header = try? FrameHeader(decoding: first) else {
            logger.warning("dropping malformed frame from the router")
            return true
        }
        switch header.type {
        case .heartbeat, .workerReady:
            return true
        case .disconnect:
            return false
        case .rankRequest, .infoRequest, .load:
            // To the compute thread, tagged with the router; the answer (or, for a load, the new READY) comes back
            // over the link.
            try link.send([[UInt8(router)], first, frames.count > 1 ? frames[frames.count - 1] : []])
        case .rankResponse, .infoResponse, .error, .control:
            logger.warning("unexpected message type from the router", metadata: ["type": "\(header.type)"])
        }
        return true
    }

    /// The compute thread: ranks what the I/O thread hands over, one request at a time, until the empty frame.
    private func computeLoop() {
        guard let link = try? ZMQSocket(context, type: .pair), (try? link.connect(computeEndpoint)) != nil else {
            logger.critical("cannot open the compute link")
            exit(70)
        }
        // A message taken off the link while gathering a batch that is not a rank request: handled next, in order.
        // Each message is [router tag, header, body]; each answer goes back as [the same tag, header, body] (an empty
        // tag: to every router).
        var held: [[UInt8]]?
        while true {
            guard let frames = held ?? (try? link.receive()), frames.count == 3,
                let header = try? FrameHeader(decoding: frames[1])
            else { return }
            held = nil
            let tag = frames[0]
            switch header.type {
            case .infoRequest: try? link.send([tag] + info(header))
            case .load: try? link.send([[]] + load(frames[2], link: link))
            case .rankRequest:
                // Take what is already waiting (never wait for a batch to fill), up to --max-batch requests.
                var batch = [(header, frames[2])]
                var tags = [tag]
                while batch.count < configuration.maxBatch, let next = try? link.receive(dontWait: true) {
                    guard next.count == 3, let h = try? FrameHeader(decoding: next[1]), h.type == .rankRequest else {
                        held = next
                        break
                    }
                    batch.append((h, next[2]))
                    tags.append(next[0])
                }
                for (t, answer) in zip(tags, rankBatch(batch)) { try? link.send([t] + answer) }
                publishCacheFigures()
            default:
                try? link.send([tag] + errorFrames(requestID: header.requestID, .invalidRequest, "message type \(header.type) is not for a worker"))
            }
        }
    }

    /// Hands the ranker's query-cache figures to the I/O thread (for heartbeats).
    private func publishCacheFigures() {
        guard ranker.limits.queryCacheEntries > 0 else { return }
        let s = ranker.queryCacheStats
        announcementLock.lock()
        cacheFigures = QueryCacheFigures(hits: s.hits, misses: s.misses, entries: s.entries, bytes: s.bytes)
        announcementLock.unlock()
    }

    /// Loads another version in place: map the model and index, warm up, check a smoke set of queries (each must
    /// get a ranked answer), then serve it. On any failure the current version stays. Returns the READY to send.
    private func load(_ body: [UInt8], link: ZMQSocket) -> [[UInt8]] {
        let started = monotonicNanos()
        do {
            let order: LoadOrder
            do {
                order = try JSONDecoder().decode(LoadOrder.self, from: Data(body))
            } catch let error as AdminMessageError {
                throw RankError("refusing the load: \(error)")
            } catch {
                throw RankError("a LOAD body must be {\"version\": NAME}")
            }
            guard let registry = configuration.registry else {
                throw RankError("this worker serves the files it was started with (--model/--index); it loads versions only from a registry (zrank worker --registry DIR)")
            }
            // The name was validated when the order was decoded: it stays inside the registry folder. Files are read
            // once into private memory, so editing or truncating them later cannot reach this worker.
            let version = order.version
            let (modelPath, indexPath) = (registry.modelPath(version), registry.indexPath(version))
            logger.info("loading version", metadata: ["model.version": "\(version)", "model.path": "\(modelPath)"])
            let model = try ModelFile(path: modelPath, loading: .privateCopy)
            let index = try CatalogIndex(path: indexPath, model: model, loading: .privateCopy)
            let heads = try registry.headsPath(version).map { path throws(HeadsError) in try RankingHeads.load(path) }
            let next = try Ranker(
                model: model, index: index, version: version, limits: ranker.limits, threads: ranker.threads, heads: heads)
            // Mapped: tell the router (through the I/O thread) that warm-up and the smoke set are next.
            try? link.send([[], FrameHeader(type: .heartbeat, requestID: 0).bytes, Array("warming".utf8)])
            _ = try next.embed("warm up")
            for query in ["sofa", "modern accent chair", "outdoor rug"] {
                let outcome = try next.rank(RankQuery(query: query, topK: 3))
                guard !outcome.items.isEmpty else { throw RankError("smoke query \"\(query)\" got no ranked items") }
            }
            ranker = next
            announcementLock.lock()
            announcement = Self.ready(for: next, configuration: configuration)
            cacheFigures = next.limits.queryCacheEntries > 0 ? QueryCacheFigures(hits: 0, misses: 0, entries: 0, bytes: 0) : nil
            announcementLock.unlock()
            logger.info(
                "version loaded",
                metadata: ["model.version": "\(version)", "load.ms": "\((monotonicNanos() - started) / 1_000_000)"])
        } catch {
            logger.error("load failed; keeping the current version", metadata: ["error": "\(error)", "model.version": "\(ranker.version)"])
        }
        announcementLock.lock()
        let ready = announcement
        announcementLock.unlock()
        return [FrameHeader(type: .workerReady, requestID: 0).bytes, (try? ready.serializedBytes()) ?? []]
    }

    /// Rank requests taken together (one, with --max-batch 1): their queries encoded as one batch, each answered on
    /// its own (the same answers as one at a time).
    private func rankBatch(_ batch: [(FrameHeader, [UInt8])]) -> [[[UInt8]]] {
        let start = monotonicNanos()
        var answers = [[[UInt8]]?](repeating: nil, count: batch.count)
        var ready: [(index: Int, request: Zrank_V1_RankRequest, query: RankQuery)] = []
        for (i, (header, body)) in batch.enumerated() {
            switch prepare(header, body: body) {
            case .failure(let answer): answers[i] = answer.frames
            case .success(let (request, query)): ready.append((i, request, query))
            }
        }
        let outcomes = ranker.rank(batch: ready.map(\.query))
        for (r, outcome) in zip(ready, outcomes) {
            answers[r.index] = respond(batch[r.index].0, request: r.request, outcome: outcome, start: start)
        }
        return answers.map { $0! }  // every request was answered early or ranked
    }

    /// An answer made before ranking (a fault, a body that does not decode).
    private struct EarlyAnswer: Error {
        var frames: [[UInt8]]
    }

    /// Fault injection, then the body decoded into a query; or the answer to send instead.
    private func prepare(_ header: FrameHeader, body: [UInt8]) -> Result<(Zrank_V1_RankRequest, RankQuery), EarlyAnswer> {
        handled += 1
        let faults = configuration.faults.version.map { $0 == ranker.version } ?? true ? configuration.faults : FaultInjection()
        if faults.crashAfter > 0 && handled >= faults.crashAfter {
            logger.critical("fault injection: crashing", metadata: ["requests.handled": "\(handled)"])
            exit(86)
        }
        if faults.stallMs > 0 { Thread.sleep(forTimeInterval: Double(faults.stallMs) / 1000) }
        if faults.pauseMs > 0 && handled == max(1, faults.pauseAfter) {
            logger.warning("fault injection: pausing", metadata: ["pause.ms": "\(faults.pauseMs)"])
            Thread.sleep(forTimeInterval: Double(faults.pauseMs) / 1000)
        }
        if faults.failEvery > 0 && handled % faults.failEvery == 0 {
            return .failure(EarlyAnswer(frames: errorFrames(requestID: header.requestID, .internal, "fault injection: request \(handled) failed on purpose")))
        }
        let request: Zrank_V1_RankRequest
        do {
            request = try Zrank_V1_RankRequest(serializedBytes: body)
        } catch BinaryDecodingError.invalidUTF8 {
            return .failure(EarlyAnswer(frames: errorFrames(requestID: header.requestID, .invalidRequest, "invalid UTF-8 in a string field of the RankRequest body")))
        } catch {
            return .failure(EarlyAnswer(frames: errorFrames(requestID: header.requestID, .invalidRequest, "malformed RankRequest body: \(error)")))
        }
        return .success((request, RankQuery(request)))
    }

    /// The answer to a ranked (or failed) request.
    private func respond(
        _ header: FrameHeader, request: Zrank_V1_RankRequest, outcome result: Result<RankOutcome, RankError>, start: UInt64
    ) -> [[UInt8]] {
        let outcome: RankOutcome
        switch result {
        case .success(let o): outcome = o
        case .failure(let error):
            return errorFrames(requestID: header.requestID, error.isInternal ? .internal : .invalidRequest, error.description)
        }
        var response = Zrank_V1_RankResponse()
        response.modelVersion = ranker.version
        response.items = outcome.items.map { item in
            var r = Zrank_V1_RankedItem()
            r.id = item.id
            r.score = item.score
            if request.explain {
                var c = Zrank_V1_ScoreComponents()
                c.cosine = item.cosine
                if let h = item.heads {
                    c.ctr = h.ctr
                    c.engagement = h.engagement
                    c.combined = h.combined
                    c.alpha = h.alpha
                    c.beta = h.beta
                    c.contributions = h.contributions.map { term in
                        var f = Zrank_V1_FeatureContribution()
                        f.feature = term.feature
                        f.ctrLogit = term.ctrLogit
                        f.engagement = term.engagement
                        return f
                    }
                }
                r.components = c
            }
            return r
        }
        response.notFound = outcome.notFound
        response.userContextUsed = outcome.userContextUsed
        response.unknownRecentIds = outcome.unknownRecent
        response.headsVersion = ranker.heads?.heads.headsVersion ?? ""
        var timings = Zrank_V1_Timings()
        timings.queueUs = UInt64(header.queueMicros)
        timings.encodeUs = outcome.encodeNanos / 1000
        timings.scoreUs = outcome.scoreNanos / 1000
        timings.totalUs = (monotonicNanos() - start) / 1000 + UInt64(header.queueMicros)
        response.timings = timings
        guard let bytes = try? response.serializedBytes() as [UInt8] else {
            return errorFrames(requestID: header.requestID, .internal, "cannot encode the response")
        }
        return [FrameHeader(type: .rankResponse, requestID: header.requestID).bytes, bytes]
    }

    private func info(_ header: FrameHeader) -> [[UInt8]] {
        var response = Zrank_V1_InfoResponse()
        response.modelVersion = ranker.version
        response.catalogSize = UInt64(ranker.index.count)
        response.modelContentHash = ranker.model.contentHash
        response.embeddingDimension = UInt32(ranker.index.dimension)
        response.maxCandidates = UInt32(ranker.limits.maxCandidates)
        let n = ranker.index.count
        let sample = min(n, 10_000)
        response.sampleItemIds = (0..<sample).map { ranker.index.id(ofRow: n <= 10_000 ? $0 : $0 * n / sample) }
        guard let bytes = try? response.serializedBytes() as [UInt8] else {
            return errorFrames(requestID: header.requestID, .internal, "cannot encode the response")
        }
        return [FrameHeader(type: .infoResponse, requestID: header.requestID).bytes, bytes]
    }
}
