#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client of a zrank pool: many requests in flight, answers matched by request id, optionally over CURVE and to
/// several routers at once.
///
/// With several endpoints (`tcp://a:5555,tcp://b:5555`: the pool's routers, active-active) each request goes to one
/// router, taking them in turn; when it is not answered within `tryTimeoutMs` (a router that died with it, a host
/// that went silent) or the router answers UNAVAILABLE (it is draining), the same request, with the same id and what
/// is left of its deadline, is sent to another router; the answer that comes second is dropped. Every socket sets
/// `ZMQ_IMMEDIATE`: a request is never queued for a router that is not connected, to arrive later with a stale
/// deadline; it waits here, within its deadline, for a router to take it.
public final class PoolClient {
    /// One decoded answer frame set.
    public struct Answer {
        public var header: FrameHeader
        public var body: [UInt8]
    }

    /// One router connection.
    private struct Link {
        var endpoint: String
        var socket: ZMQSocket
        var monitor: HandshakeMonitor?
        /// Whether this link speaks CURVE (a tcp endpoint with keys given).
        var curve: Bool
        /// Skipped until then (it failed a try or said UNAVAILABLE), unless every router is.
        var downUntil: UInt64 = 0
        /// When it last sent anything.
        var lastHeard: UInt64 = 0
    }

    /// A request not answered yet.
    private struct Outstanding {
        var header: FrameHeader
        var frames: [[UInt8]]
        /// Monotonic ns when it must be answered (0: no deadline).
        var deadline: UInt64
        /// Monotonic ns of the latest try.
        var triedAt: UInt64
        /// The link of the latest try (nil: no router has taken it yet).
        var link: Int?
        var tries: Int
    }

    private var links: [Link]
    private var outstanding: [UInt64: Outstanding] = [:]
    /// Ids answered lately, so that the second answer of a request sent twice is dropped.
    private var answered = Set<UInt64>()
    private var answeredOrder: [UInt64] = []
    private var turn = 0
    /// Whether some request may be held here, taken by no router yet: set when a dispatch finds no router, cleared
    /// by the pump that finds none held. `send` checks it instead of scanning every outstanding request each time.
    private var mayHoldRequests = false
    /// The endpoints as given, comma-separated.
    public let endpoint: String
    public var endpoints: [String] { links.map(\.endpoint) }
    /// With several endpoints: how long a try may go unanswered before the request goes to another router.
    public var tryTimeoutMs: Int
    /// Requests sent again to another router.
    public private(set) var resends = 0
    /// Answers dropped because their request had been answered already.
    public private(set) var duplicatesDropped = 0

    /// Connects to each endpoint (tcp:// or ipc://; a comma-separated list is split). Connection is asynchronous in
    /// ZeroMQ: an unreachable pool shows up as answers that never come.
    /// - Parameters:
    ///   - curve: the router's public key and this client's key pair, for routers that require CURVE.
    ///   - tryTimeoutMs: with several endpoints, how long one try may take before the request goes to another.
    public init(
        endpoints: [String], context: ZMQContext = ZMQContext(), curve: CurveClientKeys? = nil, tryTimeoutMs: Int = 500
    ) throws(ZMQError) {
        let list = endpoints.flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        self.endpoint = list.joined(separator: ",")
        self.tryTimeoutMs = max(1, tryTimeoutMs)
        links = []
        for endpoint in list {
            let socket = try ZMQSocket(context, type: .dealer)
            try socket.setInt(ZMQOption.sendHighWaterMark, 0)
            try socket.setInt(ZMQOption.receiveHighWaterMark, 0)
            try socket.setInt(ZMQOption.immediate, 1)
            let usesCurve = curve != nil && endpoint.hasPrefix("tcp://")
            if let curve, usesCurve { try socket.makeCurveClient(curve) }
            let monitor = try HandshakeMonitor(socket)
            try socket.connect(endpoint)
            links.append(Link(endpoint: endpoint, socket: socket, monitor: monitor, curve: usesCurve))
        }
        guard !links.isEmpty else { throw ZMQError("connect (no endpoint)", errno: EINVAL) }
        // Connecting is asynchronous, and with ZMQ_IMMEDIATE nothing is queued before a connection is up: wait a
        // little for the first handshake, so that requests sent right after construction leave at once (as they did
        // when libzmq queued them) instead of waiting for the first `receive`.
        let until = monotonicNanos() + Self.connectWaitNs
        while monotonicNanos() < until {
            let outcomes = links.map { $0.monitor?.refresh() ?? .none }
            if outcomes.contains(.succeeded) || outcomes.allSatisfy({ if case .refused = $0 { return true } else { return false } }) {
                break
            }
            usleep(500)
        }
    }

    /// How long construction waits for a first connection (an unreachable pool costs this once).
    static let connectWaitNs: UInt64 = 300_000_000

    /// Connects to `endpoint` (one, or several separated by commas).
    public convenience init(
        endpoint: String, context: ZMQContext = ZMQContext(), curve: CurveClientKeys? = nil, tryTimeoutMs: Int = 500
    ) throws(ZMQError) {
        try self.init(endpoints: [endpoint], context: context, curve: curve, tryTimeoutMs: tryTimeoutMs)
    }

    /// Sends one request (it waits here, within its deadline, when no router is connected yet).
    public func send(
        type: MessageType, requestID: UInt64, body: [UInt8], deadlineMs: UInt32 = 0, pin: String? = nil
    ) throws(ZMQError) {
        var header = FrameHeader(type: type, requestID: requestID, deadlineMs: deadlineMs)
        var frames: [[UInt8]] = []
        if let pin {
            header.hasPin = true
            frames = [[], Array(pin.utf8), body]
        } else {
            frames = [[], body]
        }
        let now = monotonicNanos()
        // No deadline: tracked for at most a minute (the caller gives up before that).
        let deadline = now + UInt64(deadlineMs > 0 ? deadlineMs : 60_000) * 1_000_000
        forgetAnswered(requestID)
        var request = Outstanding(header: header, frames: frames, deadline: deadline, triedAt: now, link: nil, tries: 0)
        try dispatch(&request, now: now, avoiding: nil)
        outstanding[requestID] = request
        // A router took this one: earlier requests held while none was connected go out now too.
        if request.link != nil, mayHoldRequests { _ = try pump(now: now) }
    }

    /// Sends raw frames to the first router (tests of malformed input).
    public func sendRaw(_ frames: [[UInt8]]) throws(ZMQError) {
        try links[0].socket.send(frames)
    }

    /// Waits up to `timeoutMs` for one answer; nil on timeout. Meanwhile requests whose try timed out go to another
    /// router. A malformed answer header is thrown.
    public func receive(timeoutMs: Int) throws -> Answer? {
        let end = monotonicNanos() + UInt64(max(0, timeoutMs)) * 1_000_000
        while true {
            let now = monotonicNanos()
            let wake = try pump(now: now)
            let untilEnd = end > now ? end - now : 0
            let untilWake = wake > now ? wake - now : 0
            let ready = try ZMQPoller.poll(links.map(\.socket), timeoutMs: Int((min(untilEnd, untilWake) + 999_999) / 1_000_000))
            for (i, readable) in ready.enumerated() where readable {
                while let frames = try links[i].socket.receive(dontWait: true), let first = frames.first {
                    links[i].lastHeard = monotonicNanos()
                    let header = try FrameHeader(decoding: first)
                    let body = frames.count > 1 ? frames[frames.count - 1] : []
                    if let answer = try accept(header, body: body, from: i) { return answer }
                }
            }
            if monotonicNanos() >= end { return nil }
        }
    }

    /// Why no answer may be coming, from the handshakes seen (nil when nothing points at the keys).
    public var handshakeProblem: String? {
        var problems: [String] = []
        for i in links.indices {
            guard let outcome = links[i].monitor?.refresh() else { continue }
            switch outcome {
            case .refused(let status):
                problems.append("\(links[i].endpoint) refused this client's CURVE key (ZAP status \(status)): the key is not in the router's list for clients (--curve-clients)")
            case .protocolError:
                problems.append("the handshake with \(links[i].endpoint) failed: the router requires CURVE (give --curve-server FILE.pub --curve-key FILE.key) or does not use it, or --curve-server is not its key")
            case .failed where !links[i].curve:
                // A plain client has no keys that could mismatch. A CURVE router that hangs up on a plain greeting
                // before its own greeting arrives leaves libzmq with no detail; so does a listener that is no ZeroMQ
                // peer at all.
                problems.append("the handshake with \(links[i].endpoint) failed without detail: most likely the router requires CURVE (give --curve-server FILE.pub --curve-key FILE.key), or what listens there is not a zrank router")
            case .failed:
                problems.append("the handshake with \(links[i].endpoint) failed (CURVE keys that do not match?)")
            case .none, .succeeded:
                continue
            }
        }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    // MARK: - Failover

    /// Hands an answer to the caller, or handles it here (a duplicate, a draining router).
    private func accept(_ header: FrameHeader, body: [UInt8], from link: Int) throws -> Answer? {
        let id = header.requestID
        if answered.contains(id) {
            duplicatesDropped += 1
            return nil
        }
        if header.type == .error, links.count > 1, var request = outstanding[id],
            header.errorCode == UInt16(Zrank_V1_Error.Code.unavailable.rawValue)
        {
            // A draining (or worker-less) router: try another while the deadline allows.
            let now = monotonicNanos()
            links[link].downUntil = now + 1_000_000_000
            if now < request.deadline, request.tries < links.count * 2 {
                try dispatch(&request, now: now, avoiding: link, otherwise: .keep)
                if request.link != link {
                    outstanding[id] = request
                    resends += 1
                    return nil
                }
            }
        }
        if outstanding.removeValue(forKey: id) != nil { remember(id) }
        return Answer(header: header, body: body)
    }

    /// Sends unsent requests, moves timed-out tries to another router, forgets requests past their deadline.
    /// - Returns: when it next needs to run.
    private func pump(now: UInt64) throws(ZMQError) -> UInt64 {
        var wake = now + 50_000_000
        let tryNs = UInt64(tryTimeoutMs) * 1_000_000
        var held = false
        for (id, var request) in outstanding {
            if now >= request.deadline {
                outstanding[id] = nil  // the caller times it out
                continue
            }
            wake = min(wake, request.deadline)
            if request.link == nil {
                try dispatch(&request, now: now, avoiding: nil)
                outstanding[id] = request
                if request.link == nil {
                    held = true
                    wake = min(wake, now + 5_000_000)
                }
            } else if links.count > 1, let at = request.link, now - request.triedAt >= tryNs {
                // The router did not answer in time: unless it was heard from since, skip it for a while.
                if links[at].lastHeard < request.triedAt { links[at].downUntil = now + 1_000_000_000 }
                // Only to another router: sending the same request to the same (slow) router again would only add
                // to its queue. When no other takes it, the try goes on.
                try dispatch(&request, now: now, avoiding: at, otherwise: .keep)
                if request.link != at { resends += 1 }
                outstanding[id] = request
                wake = min(wake, now + tryNs)
            } else if links.count > 1 {
                wake = min(wake, request.triedAt + tryNs)
            }
        }
        mayHoldRequests = held  // (a throw above leaves the hint set: dispatch sets it for every request it holds)
        return wake
    }

    /// What `dispatch` does when only the router it should avoid would take the request.
    private enum Fallback {
        /// Send it there anyway (a first try).
        case sameRouter
        /// Leave the request where it is, its try restarted.
        case keep
    }

    /// Sends `request` to the next router that takes it (skipping `avoiding` and routers marked down, unless no other
    /// will); leaves `link` nil when none is connected.
    private func dispatch(
        _ request: inout Outstanding, now: UInt64, avoiding: Int?, otherwise fallback: Fallback = .sameRouter
    ) throws(ZMQError) {
        var header = request.header
        if header.deadlineMs > 0 {
            let left = request.deadline > now ? (request.deadline - now) / 1_000_000 : 0
            header.deadlineMs = UInt32(max(1, min(UInt64(header.deadlineMs), left)))
        }
        var frames = request.frames
        frames[0] = header.bytes
        let order = (0..<links.count).map { (turn + $0) % links.count }
        let preferred = order.filter { $0 != avoiding && links[$0].downUntil <= now }
        let rest = order.filter { !preferred.contains($0) && (fallback == .sameRouter || $0 != avoiding) }
        for i in preferred + rest {
            do {
                try links[i].socket.send(frames, dontWait: true)
            } catch {
                if error.wouldBlock { continue }  // not connected (ZMQ_IMMEDIATE) or full
                throw error
            }
            turn = (i + 1) % links.count
            request.link = i
            request.triedAt = now
            request.tries += 1
            return
        }
        if fallback == .keep, avoiding != nil {
            request.triedAt = now  // no other router: the try goes on where it is
            return
        }
        request.link = nil
        mayHoldRequests = true
    }

    private func remember(_ id: UInt64) {
        answered.insert(id)
        answeredOrder.append(id)
        if answeredOrder.count > 65_536 {
            let old = answeredOrder.prefix(32_768)
            answeredOrder.removeFirst(32_768)
            for id in old { answered.remove(id) }
        }
    }

    private func forgetAnswered(_ id: UInt64) {
        answered.remove(id)
    }
}
