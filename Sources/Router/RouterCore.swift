import DequeModule
import Protocol
import SwiftProtobuf

/// Router limits and timings (all configurable from `zrank router` / `zrank serve`).
public struct RouterConfiguration: Sendable {
    /// Requests waiting for a worker before new ones get OVERLOADED.
    public var queueBound = 10_000
    /// Bytes of request bodies the router may hold (queued and in flight) before new ones get OVERLOADED.
    public var queueBytes = 256 << 20
    /// Answers queued per client, and messages per worker each way (ZMQ_SNDHWM/RCVHWM): a client that never reads
    /// its answers holds at most this many of them in the router; beyond it its answers are dropped and counted.
    public var highWaterMark: Int32 = 1000
    /// Frames read ahead per client (the frontend's ZMQ_RCVHWM): what libzmq may hold of one client's requests
    /// before the router has looked at them, at most this many times the largest frame.
    public var clientReadAhead: Int32 = 16
    /// Deadline applied when a request says 0.
    public var defaultDeadlineMs: UInt32 = 5000
    public var heartbeatIntervalMs: UInt64 = 1000
    /// Missed heartbeat intervals before a worker is dead.
    public var liveness: UInt64 = 3
    /// Longest accepted body frame.
    public var maxBodyBytes = 16 * 1024 * 1024

    public init() {}
}

/// What the I/O loop must do after an event.
public enum RouterAction: Equatable {
    /// Send `frames` to the client socket (already prefixed with the client's envelope).
    case toClient([[UInt8]])
    /// Send `frames` to the worker socket (already prefixed with the worker's identity).
    case toWorker([[UInt8]])
    /// Hand a live answer and its shadow copy's answer to the `ShadowComparator` (off the routing path).
    case compare(ShadowPair)
}

/// The router's bookkeeping as a state machine: events in, actions out, no sockets — so every rule ("nothing is
/// silently lost": retry once, deadlines, backpressure, pins, liveness) is testable without I/O.
///
/// It composes four smaller machines: the `WorkerTable` (live workers, each with its phase), the `TicketBook`
/// (requests held and the queue), the `TrafficSplitter` (shares per version) and, for shadow scoring, the pairing of
/// live and shadow answers that go to a `ShadowComparator`. It routes on the header alone: bodies are forwarded as
/// bytes (READY's `WorkerReady` is the one body it reads).
public struct RouterCore {
    /// One answered request, for metrics: which version answered (empty when the router answered itself), the
    /// outcome (`OK` or an error code name), time queued in the router and time on the worker.
    public struct Completion: Equatable, Sendable {
        public var version: String
        public var outcome: String
        public var queueMicros: UInt64
        public var computeMicros: UInt64
    }

    /// What the router has seen of one model version (answers from its workers).
    public struct VersionStats: Equatable, Sendable {
        public var requests = 0
        public var errors = 0
        /// Times a worker of this version was declared dead or disconnected with requests in flight (they are
        /// retried once elsewhere, so they are not counted as requests or errors here).
        public var lost = 0
        /// Recent round trips through the router (receipt to answer), microseconds; bounded window.
        var recentMicros: [UInt64] = []
        var next = 0

        public var errorRate: Double { requests > 0 ? Double(errors) / Double(requests) : 0 }

        /// p99 of the recent window, milliseconds (0 when empty).
        public var p99Ms: Double {
            guard !recentMicros.isEmpty else { return 0 }
            let sorted = recentMicros.sorted()
            return Double(sorted[min(sorted.count - 1, Int(0.99 * Double(sorted.count)))]) / 1000
        }

        mutating func record(micros: UInt64, error: Bool) {
            requests += 1
            if error { errors += 1 }
            if recentMicros.count < 2048 {
                recentMicros.append(micros)
            } else {
                recentMicros[next] = micros
                next = (next + 1) % recentMicros.count
            }
        }
    }

    /// Shadow scoring as the router counts it: the version, copies sent and shadow errors (the agreement figures
    /// come from the `ShadowComparator`).
    public struct ShadowLedger: Equatable, Sendable {
        public var version: String
        /// Numbers this run; pairs from earlier runs carry another.
        public var generation: UInt64
        /// Copies sent to the shadow version.
        public var sent = 0
        /// Shadow answers that were server errors (counted from the ERROR header's code).
        public var errors = 0
    }

    /// A worker as the coordinator sees it.
    public struct WorkerView: Equatable, Sendable {
        public var identity: [UInt8]
        /// The id the worker announced.
        public var name: String
        public var version: String
        public var state: WorkerState
        public var inFlight: Int
        /// Its query cache, as its last heartbeat said.
        public var queryCache: QueryCacheFigures?
        /// Versions it has loaded in place since it joined (its query-cache figures restart with each).
        public var loads: Int
    }

    public let configuration: RouterConfiguration
    private var book = TicketBook()
    private var table = WorkerTable()
    private var splitter = TrafficSplitter()
    private(set) public var stats: [String: VersionStats] = [:]
    /// Per-version figures since the last `resetWindow()` (what a rollout step is judged on).
    private(set) public var windowStats: [String: VersionStats] = [:]
    /// The current judging window's number; random at start so a restarted router never continues an old window.
    private(set) public var windowEpoch: UInt64 = UInt64.random(in: 1...(1 << 40))
    /// Answers not yet collected by `takeCompletions()` (bounded).
    private var completions: [Completion] = []
    /// The version that scores copies of live requests without answering them.
    private(set) public var shadow: ShadowLedger?
    private var shadowGeneration: UInt64 = 0
    /// Shadow copies in flight: shadow ticket → live ticket.
    private var shadowTickets: [UInt64: UInt64] = [:]
    /// Live ticket → (live body, shadow body) until both are in; insertion order bounds it.
    private var pairs: [UInt64: (live: [UInt8]?, shadow: [UInt8]?)] = [:]
    private var pairOrder = Deque<UInt64>()
    private var lastHeartbeat: UInt64 = 0
    private(set) public var draining = false
    /// Workers declared dead or gone since start.
    private(set) public var workersLost = 0

    public init(configuration: RouterConfiguration = RouterConfiguration()) {
        self.configuration = configuration
    }

    /// Requests queued (waiting for a worker).
    public var queueDepth: Int { book.queueDepth }
    /// Requests sent to workers and not answered yet.
    public var inFlight: Int { book.inFlight }
    /// Workers alive, with their versions.
    public var workerVersions: [String] { table.versions }

    /// Every live worker, least recently used first.
    public var workerViews: [WorkerView] {
        table.lru.compactMap { id in
            table[id].map {
                WorkerView(
                    identity: id, name: $0.name, version: $0.version, state: $0.phase.state, inFlight: $0.inFlight.count,
                    queryCache: $0.queryCache, loads: $0.loads)
            }
        }
    }

    /// The live worker announced as `name` (or whose socket identity reads `name`).
    public func worker(named name: String) -> WorkerView? {
        guard let id = table.identity(named: name) else { return nil }
        return workerViews.first { $0.identity == id }
    }

    /// Sets the share of unpinned traffic each version gets (weights are normalised; versions without workers are
    /// skipped). Work-conserving: a request goes to the version furthest below its share among those with a free
    /// worker, so shares hold as closely as the worker count allows.
    public mutating func setTrafficSplit(_ weights: [String: Double]) {
        splitter.set(weights)
    }

    /// The current split (normalised), empty when unset.
    public var trafficSplit: [String: Double] { splitter.shares }

    /// Stops (or resumes) sending new requests to a worker; its in-flight requests finish.
    public mutating func setDraining(_ identity: [UInt8], _ draining: Bool) {
        table.setDraining(identity, draining)
    }

    /// Drains a worker, then tells it to load another version (`body`: the LOAD JSON); it comes back with READY.
    public mutating func requestLoad(_ identity: [UInt8], body: [UInt8]) -> [RouterAction] {
        guard table[identity] != nil else { return [] }
        table.orderLoad(identity, body: body)
        return startLoadIfDrained(identity)
    }

    private mutating func startLoadIfDrained(_ identity: [UInt8]) -> [RouterAction] {
        guard let body = table.takeLoadIfDrained(identity) else { return [] }
        return [.toWorker([identity, FrameHeader(type: .load, requestID: 0).bytes, body])]
    }

    /// Starts a new judging window: `windowStats` empties. Returns the new window's epoch.
    @discardableResult
    public mutating func resetWindow() -> UInt64 {
        windowStats = [:]
        windowEpoch &+= 1
        return windowEpoch
    }

    /// Answers since the last call (for metrics).
    public mutating func takeCompletions() -> [Completion] {
        defer { completions.removeAll(keepingCapacity: true) }
        return completions
    }

    private mutating func complete(_ c: Completion) {
        if completions.count >= 65_536 { completions.removeFirst(32_768) }
        completions.append(c)
    }

    /// Starts (or, with nil, stops) shadow scoring: each unpinned rank request that goes to a live worker is also
    /// sent to a free worker of `version` when one exists; its answer is compared, never returned. Shadow workers
    /// take no live traffic while a split without their version is set. Returns the run's generation (0: stopped).
    @discardableResult
    public mutating func setShadow(_ version: String?) -> UInt64 {
        if version == shadow?.version { return shadow?.generation ?? 0 }
        if let version {
            if shadow?.version != version {
                shadowGeneration += 1
                shadow = ShadowLedger(version: version, generation: shadowGeneration)
            }
        } else {
            shadow = nil
        }
        shadowTickets.removeAll()
        pairs.removeAll()
        pairOrder.removeAll()
        return shadow?.generation ?? 0
    }

    /// Requests in flight on one worker (0 when unknown).
    public func inFlight(on identity: [UInt8]) -> Int { table[identity]?.inFlight.count ?? 0 }

    // MARK: - Events

    /// A client message `[envelope..., header, pin?, body?]` arrived on the frontend.
    public mutating func clientMessage(_ frames: [[UInt8]], now: UInt64) -> [RouterAction] {
        guard let identity = frames.first, frames.count >= 2 else { return [] }
        var envelope = [identity]
        var rest = frames.dropFirst()
        if rest.first?.isEmpty == true {  // REQ client: keep its delimiter
            envelope.append([])
            rest = rest.dropFirst()
        }
        guard let headerFrame = rest.first else {
            return [reply(envelope, id: 0, .invalidRequest, "missing header frame")]
        }
        let header: FrameHeader
        do {
            header = try FrameHeader(decoding: headerFrame)
        } catch {
            return [reply(envelope, id: error.requestID, .invalidRequest, error.description)]
        }
        rest = rest.dropFirst()
        var pin: String?
        if header.hasPin {
            guard let pinFrame = rest.first, !pinFrame.isEmpty, pinFrame.count <= 128,
                let name = String(validating: pinFrame, as: UTF8.self)
            else {
                return [reply(envelope, id: header.requestID, .invalidRequest, "pin flag set without a valid pin frame")]
            }
            pin = name
            rest = rest.dropFirst()
        }
        switch header.type {
        case .rankRequest, .infoRequest:
            break
        case .control, .load:
            return [reply(envelope, id: header.requestID, .invalidRequest, "control messages go to the admin socket")]
        default:
            return [
                reply(envelope, id: header.requestID, .invalidRequest, "message type \(header.type) is not a request")
            ]
        }
        if header.type == .rankRequest && rest.isEmpty {
            return [reply(envelope, id: header.requestID, .invalidRequest, "missing RankRequest body frame")]
        }
        if rest.count > 1 {
            return [reply(envelope, id: header.requestID, .invalidRequest, "unexpected extra frames after the body")]
        }
        let body = rest.first ?? []
        if body.count > configuration.maxBodyBytes {
            return [
                reply(
                    envelope, id: header.requestID, .invalidRequest,
                    "body of \(body.count) bytes exceeds \(configuration.maxBodyBytes)")
            ]
        }
        if draining {
            return [reply(envelope, id: header.requestID, .unavailable, "the router is shutting down")]
        }
        if let pin, !table.isEmpty, !table.serves(pin) {
            return [
                reply(envelope, id: header.requestID, .unknownModelVersion, "no worker serves model version \"\(pin)\"")
            ]
        }
        if book.heldBytes + body.count > configuration.queueBytes {
            return [
                reply(
                    envelope, id: header.requestID, .overloaded,
                    "the router holds \(book.heldBytes) bytes of requests (--queue-bytes \(configuration.queueBytes)); retry later")
            ]
        }
        if book.queueDepth >= configuration.queueBound {
            return [
                reply(
                    envelope, id: header.requestID, .overloaded,
                    "queue full (\(configuration.queueBound) requests waiting); retry later")
            ]
        }
        let deadlineMs = UInt64(header.deadlineMs == 0 ? configuration.defaultDeadlineMs : header.deadlineMs)
        _ = book.open(TicketBook.Ticket(
            envelope: envelope, clientRequestID: header.requestID, type: header.type, pin: pin, body: body,
            receivedAt: now, deadline: now + deadlineMs * 1_000_000))
        return dispatch(now: now)
    }

    /// A worker message `[identity, header, body?]` arrived on the backend.
    public mutating func workerMessage(_ frames: [[UInt8]], now: UInt64) -> [RouterAction] {
        guard frames.count >= 2, let header = try? FrameHeader(decoding: frames[1]) else { return [] }
        let identity = frames[0]
        switch header.type {
        case .workerReady:
            let ready = frames.count > 2 ? (try? Zrank_V1_WorkerReady(serializedBytes: frames[2])) : nil
            let announced = table.announce(
                identity, name: ready?.workerID ?? "", version: ready?.modelVersion ?? "",
                capacity: Int(ready?.capacity ?? 1), now: now)
            // A worker announcing the name of another live entry is its restarted successor: the predecessor is
            // dead (its in-flight requests are retried now rather than after the liveness timeout).
            if case .joined(let predecessor?) = announced {
                return workerFailed(predecessor, now: now) + dispatch(now: now)
            }
            return dispatch(now: now)
        case .heartbeat:
            let beat = frames.count > 2 ? WorkerHeartbeat.decode(frames[2]) : WorkerHeartbeat()
            if table.heard(identity, warming: beat?.warming == true, queryCache: beat?.queryCache, now: now) { return [] }
            // Unknown worker (e.g. the router restarted): ask it to reconnect and announce itself.
            return [.toWorker([identity, FrameHeader(type: .disconnect, requestID: 0).bytes])]
        case .disconnect:
            return workerFailed(identity, now: now)
        case .rankResponse, .infoResponse, .error:
            guard table[identity] != nil else { return [] }
            table.touch(identity, now: now)
            let ticketID = header.requestID
            table.release(ticketID, from: identity)
            var actions: [RouterAction] = startLoadIfDrained(identity)
            let body = frames.count > 2 ? frames[2] : []
            if let liveID = shadowTickets.removeValue(forKey: ticketID) {
                actions += shadowAnswer(liveID, header: header, body: body)
                return actions + dispatch(now: now)
            }
            if let ticket = book[ticketID], ticket.worker == identity {
                book.close(ticketID)
                let version = table[identity]!.version
                let micros = now > ticket.receivedAt ? (now - ticket.receivedAt) / 1000 : 0
                var outcome = "OK"
                var serverError = false
                if header.type == .error {
                    // The code rides in the header: the body is never decoded here.
                    let code = Self.errorCode(header, body: body)
                    outcome = code.name
                    serverError = Self.isServerError(code)
                }
                // A version is judged on its own failures, not on the client's mistakes (INVALID_REQUEST...).
                stats[version, default: VersionStats()].record(micros: micros, error: serverError)
                windowStats[version, default: VersionStats()].record(micros: micros, error: serverError)
                complete(Completion(
                    version: version, outcome: outcome,
                    queueMicros: ticket.dispatchedAt > ticket.receivedAt ? (ticket.dispatchedAt - ticket.receivedAt) / 1000 : 0,
                    computeMicros: now > ticket.dispatchedAt ? (now - ticket.dispatchedAt) / 1000 : 0))
                if pairs[ticketID] != nil {
                    actions += liveAnswer(ticketID, header: header, body: body)
                }
                var h = header
                h.requestID = ticket.clientRequestID
                h.queueMicros = 0
                h.deadlineMs = 0
                actions.append(.toClient(ticket.envelope + [h.bytes] + Array(frames.dropFirst(2))))
            }
            return actions + dispatch(now: now)
        case .rankRequest, .infoRequest, .control, .load:
            return []
        }
    }

    /// Time passes: deadlines, dead workers, heartbeats.
    public mutating func tick(now: UInt64) -> [RouterAction] {
        var actions: [RouterAction] = []
        // Deadlines, queued or in flight. A worker still busy with an expired request keeps the slot until it
        // answers (the late answer is dropped).
        for t in book.expire(now: now) {
            actions.append(
                reply(t.envelope, id: t.clientRequestID, .deadlineExceeded, "deadline passed before an answer came"))
        }
        // Dead workers.
        let limit = configuration.heartbeatIntervalMs * configuration.liveness * 1_000_000
        for identity in table.silent(now: now, limit: limit) {
            actions += workerFailed(identity, now: now)
        }
        if now - lastHeartbeat >= configuration.heartbeatIntervalMs * 1_000_000 {
            lastHeartbeat = now
            let hb = FrameHeader(type: .heartbeat, requestID: 0).bytes
            for identity in table.identities { actions.append(.toWorker([identity, hb])) }
        }
        return actions + dispatch(now: now)
    }

    /// Stop accepting: new requests get UNAVAILABLE; queued and in-flight ones still complete.
    public mutating func beginDrain() {
        draining = true
    }

    /// Whether nothing is queued or in flight.
    public var isIdle: Bool { book.isEmpty }

    /// Answers everything still held with UNAVAILABLE (the last step of a shutdown) and says goodbye to workers.
    public mutating func abandonAll() -> [RouterAction] {
        var actions: [RouterAction] = []
        for t in book.closeAll() {
            actions.append(reply(t.envelope, id: t.clientRequestID, .unavailable, "the router shut down before an answer came"))
        }
        let bye = FrameHeader(type: .disconnect, requestID: 0).bytes
        actions += table.identities.map { .toWorker([$0, bye]) }
        return actions
    }

    // MARK: - Internals

    /// The code of an ERROR: from its header; only a sender that predates the header field (code 0) has its body
    /// decoded, on this error path alone.
    static func errorCode(_ header: FrameHeader, body: [UInt8]) -> Zrank_V1_Error.Code {
        if header.errorCode != 0, let code = Zrank_V1_Error.Code(rawValue: Int(header.errorCode)) { return code }
        return (try? Zrank_V1_Error(serializedBytes: body))?.code ?? .internal
    }

    /// Errors that count against the version that answered (the client's own mistakes do not).
    static func isServerError(_ code: Zrank_V1_Error.Code) -> Bool {
        code != .invalidRequest && code != .unknownModelVersion
    }

    private mutating func workerFailed(_ identity: [UInt8], now: UInt64) -> [RouterAction] {
        guard let entry = table.remove(identity) else { return [] }
        workersLost += 1
        var actions: [RouterAction] = []
        if entry.inFlight.contains(where: { book[$0] != nil }) {
            stats[entry.version, default: VersionStats()].lost += 1
            windowStats[entry.version, default: VersionStats()].lost += 1
        }
        for id in entry.inFlight.sorted() {
            shadowTickets[id] = nil
            guard let t = book[id] else { continue }
            // The request is retried (or answered WORKER_FAILED); the death is counted against the version (`lost`,
            // once per death), apart from its errors: a worker that stalls past the liveness timeout and reconnects is
            // not a failing release, a release whose workers keep dying is (the coordinator judges both).
            let micros = now > t.receivedAt ? (now - t.receivedAt) / 1000 : 0
            complete(Completion(version: entry.version, outcome: "WORKER_DIED", queueMicros: 0, computeMicros: micros))
            if t.attempts < 2 {
                // Retry once on another worker: back to the front of the queue.
                book.requeueFront(id)
            } else {
                book.close(id)
                actions.append(
                    reply(t.envelope, id: t.clientRequestID, .workerFailed, "the worker died twice with this request"))
            }
        }
        return actions + dispatch(now: now)
    }

    private mutating func dispatch(now: UInt64) -> [RouterAction] {
        var actions: [RouterAction] = []
        var index = 0
        while index < book.queue.count {
            let id = book.queue[index]
            guard let t = book[id] else {
                book.dropQueued(at: index)
                continue
            }
            if t.deadline <= now {
                book.dropQueued(at: index)
                book.close(id)
                actions.append(
                    reply(t.envelope, id: t.clientRequestID, .deadlineExceeded, "deadline passed before an answer came"))
                continue
            }
            // A fresh request pinned to a version nobody serves is refused; a retried one waits (its worker may be
            // reconnecting) until its deadline.
            if let pin = t.pin, t.attempts == 0, !table.isEmpty, !table.serves(pin) {
                book.dropQueued(at: index)
                book.close(id)
                actions.append(
                    reply(t.envelope, id: t.clientRequestID, .unknownModelVersion, "no worker serves model version \"\(pin)\""))
                continue
            }
            guard let position = pickWorker(pin: t.pin) else {
                if t.pin == nil { break }  // no free worker at all for unpinned work
                index += 1
                continue
            }
            let identity = table.assign(id, at: position)
            let version = table[identity]!.version
            let (_, ticket) = book.dispatch(at: index, to: identity, now: now)
            if t.pin == nil { splitter.record(version) }
            var header = FrameHeader(type: t.type, requestID: id)
            let left = t.deadline > now ? (t.deadline - now) / 1_000_000 : 1
            header.deadlineMs = UInt32(min(left, UInt64(UInt32.max)))
            header.queueMicros = UInt32(min((now - t.receivedAt) / 1000, UInt64(UInt32.max)))
            actions.append(.toWorker([identity, header.bytes, t.body]))
            if let s = shadow, t.pin == nil, t.type == .rankRequest, ticket.attempts == 1, version != s.version {
                actions += shadowCopy(of: id, header: header, body: t.body)
            }
        }
        return actions
    }

    /// The LRU position of a free worker for a request: pinned → that version only; unpinned with a split → the
    /// version furthest below its share among those with a free worker; otherwise the least recently used.
    private func pickWorker(pin: String?) -> Int? {
        if let pin { return table.firstFree { $0.version == pin } }
        guard !splitter.isEmpty else { return table.firstFree() }
        if let position = splitter.pick(firstFree: { version in table.firstFree { $0.version == version } }) {
            return position
        }
        // Versions outside the split only take traffic when no version in it has a worker taking requests at all.
        let splitServed = table.entries.values.contains { splitter.shares[$0.version] != nil && $0.phase == .ready }
        return splitServed ? nil : table.firstFree()
    }

    /// An error answer from the router itself (counted as a completion with no version).
    private mutating func reply(_ envelope: [[UInt8]], id: UInt64, _ code: Zrank_V1_Error.Code, _ message: String) -> RouterAction {
        complete(Completion(version: "", outcome: code.name, queueMicros: 0, computeMicros: 0))
        return .toClient(envelope + errorFrames(requestID: id, code, message))
    }

    // MARK: - Shadow scoring

    /// Sends a copy of live ticket `liveID` to a free shadow worker, if there is one.
    private mutating func shadowCopy(of liveID: UInt64, header: FrameHeader, body: [UInt8]) -> [RouterAction] {
        guard let version = shadow?.version, let position = table.firstFree(where: { $0.version == version }) else {
            return []
        }
        let shadowID = book.newID()
        let identity = table.assign(shadowID, at: position)
        shadowTickets[shadowID] = liveID
        pairs[liveID] = (nil, nil)
        pairOrder.append(liveID)
        while pairOrder.count > 4096, let old = pairOrder.popFirst() { pairs[old] = nil }
        shadow!.sent += 1
        var h = header
        h.requestID = shadowID
        return [.toWorker([identity, h.bytes, body])]
    }

    private mutating func liveAnswer(_ liveID: UInt64, header: FrameHeader, body: [UInt8]) -> [RouterAction] {
        guard header.type == .rankResponse else {
            pairs[liveID] = nil
            return []
        }
        pairs[liveID]!.live = body
        return finishPair(liveID)
    }

    private mutating func shadowAnswer(_ liveID: UInt64, header: FrameHeader, body: [UInt8]) -> [RouterAction] {
        guard pairs[liveID] != nil else { return [] }
        guard header.type == .rankResponse else {
            let code = header.type == .error ? Self.errorCode(header, body: body) : .internal
            if Self.isServerError(code) { shadow?.errors += 1 }
            pairs[liveID] = nil
            return []
        }
        pairs[liveID]!.shadow = body
        return finishPair(liveID)
    }

    private mutating func finishPair(_ liveID: UInt64) -> [RouterAction] {
        guard let pair = pairs[liveID], let live = pair.live, let copy = pair.shadow, let s = shadow else { return [] }
        pairs[liveID] = nil
        return [.compare(ShadowPair(generation: s.generation, live: live, shadow: copy))]
    }
}
