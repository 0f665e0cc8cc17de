import DequeModule
import Protocol
import SwiftProtobuf

/// Router limits and timings (all configurable from `zrank router` / `zrank serve`).
public struct RouterConfiguration: Sendable {
    /// Requests waiting for a worker before new ones get OVERLOADED.
    public var queueBound = 10_000
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
}

/// The router's bookkeeping as a state machine: events in, actions out, no sockets — so every rule ("nothing is
/// silently lost": retry once, deadlines, backpressure, pins, liveness) is testable without I/O.
public struct RouterCore {
    /// A request the router holds, from receipt to answer.
    struct Ticket {
        var envelope: [[UInt8]]  // client identity (+ empty delimiter for REQ clients)
        var clientRequestID: UInt64
        var type: MessageType
        var pin: String?
        var body: [UInt8]
        var receivedAt: UInt64
        var deadline: UInt64
        var attempts: Int
        var worker: [UInt8]?
        var dispatchedAt: UInt64 = 0
    }

    struct WorkerEntry {
        /// The id the worker announced (stable across reconnects, unlike its socket identity).
        var name: String
        var version: String
        var capacity: Int
        var inFlight: Set<UInt64> = []
        var lastSeen: UInt64
        /// Taking no new requests (a rollout is about to reload it); in-flight ones finish.
        var draining = false
        /// A load to send once the worker has drained.
        var pendingLoad: [UInt8]?
        /// Loading another version (sent LOAD, waiting for its READY).
        var loading = false
        /// Loaded, now warming up and checking its smoke set (said by the worker's heartbeat).
        var warming = false
    }

    /// One answered request, for metrics: which version answered (empty when the router answered itself), the
    /// outcome (`OK` or an error code name), time queued in the router and time on the worker.
    public struct Completion: Equatable, Sendable {
        public var version: String
        public var outcome: String
        public var queueMicros: UInt64
        public var computeMicros: UInt64
    }

    /// How a shadow version's rankings agree with the live version's on the same requests.
    public struct ShadowStats: Equatable, Sendable {
        public var version: String
        /// Copies sent to the shadow version.
        public var sent = 0
        /// Pairs (live answer, shadow answer) compared.
        public var compared = 0
        /// Shadow answers that were errors.
        public var errors = 0
        var overlapSum = 0.0
        var correlationSum = 0.0
        var correlationCount = 0

        /// Mean share of the live top 10 that the shadow top 10 also holds (0-1).
        public var top10Overlap: Double { compared > 0 ? overlapSum / Double(compared) : 0 }
        /// Mean Spearman rank correlation over the items both top-10 lists hold (pairs sharing at least 2 items).
        public var rankCorrelation: Double { correlationCount > 0 ? correlationSum / Double(correlationCount) : 0 }
        public var errorRate: Double { compared + errors > 0 ? Double(errors) / Double(compared + errors) : 0 }

        mutating func add(live: [String], shadow: [String]) {
            let a = Array(live.prefix(10))
            let b = Array(shadow.prefix(10))
            compared += 1
            let common = Set(a).intersection(b)
            let denominator = max(a.count, b.count)
            overlapSum += denominator > 0 ? Double(common.count) / Double(denominator) : 1
            guard common.count >= 2 else { return }
            let ra = a.filter(common.contains)
            let rb = Dictionary(b.filter(common.contains).enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
            let n = Double(common.count)
            var d2 = 0.0
            for (i, id) in ra.enumerated() {
                let d = Double(i - rb[id]!)
                d2 += d * d
            }
            correlationSum += 1 - 6 * d2 / (n * (n * n - 1))
            correlationCount += 1
        }
    }

    /// What the router has seen of one model version (answers from its workers).
    public struct VersionStats: Equatable, Sendable {
        public var requests = 0
        public var errors = 0
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

    /// A worker as the coordinator sees it.
    public struct WorkerView: Equatable, Sendable {
        public var identity: [UInt8]
        /// The id the worker announced.
        public var name: String
        public var version: String
        public var state: String  // "ready" | "draining" | "loading" | "warming"
        public var inFlight: Int
    }

    public let configuration: RouterConfiguration
    private var tickets: [UInt64: Ticket] = [:]
    private var queue = Deque<UInt64>()
    private var workers: [[UInt8]: WorkerEntry] = [:]
    /// Least recently used first.
    private var lru = Deque<[UInt8]>()
    private var nextTicket: UInt64 = 1
    /// Share of unpinned traffic per version (empty: any worker, least recently used first).
    private var split: [String: Double] = [:]
    /// Unpinned requests dispatched per version since the split was set (for deficit scheduling).
    private var dispatchedByVersion: [String: Int] = [:]
    private(set) public var stats: [String: VersionStats] = [:]
    /// Per-version figures since the last `resetWindow()` (what a rollout step is judged on).
    private(set) public var windowStats: [String: VersionStats] = [:]
    /// Answers not yet collected by `takeCompletions()` (bounded).
    private var completions: [Completion] = []
    /// The version that scores copies of live requests without answering them, and how it agrees.
    private(set) public var shadow: ShadowStats?
    /// Shadow copies in flight: shadow ticket → live ticket.
    private var shadowTickets: [UInt64: UInt64] = [:]
    /// Live ticket → (live ranking, shadow ranking) until both are in; insertion order bounds it.
    private var comparisons: [UInt64: (live: [String]?, shadow: [String]?)] = [:]
    private var comparisonOrder = Deque<UInt64>()
    private var lastHeartbeat: UInt64 = 0
    private(set) public var draining = false
    /// Workers declared dead or gone since start.
    private(set) public var workersLost = 0

    public init(configuration: RouterConfiguration = RouterConfiguration()) {
        self.configuration = configuration
    }

    /// Requests queued (waiting for a worker).
    public var queueDepth: Int { queue.count }
    /// Requests sent to workers and not answered yet.
    public var inFlight: Int { tickets.count - queue.count }
    /// Workers alive, with their versions.
    public var workerVersions: [String] { workers.values.map(\.version).sorted() }

    /// Every live worker, least recently used first.
    public var workerViews: [WorkerView] {
        lru.compactMap { id in
            workers[id].map {
                WorkerView(
                    identity: id, name: $0.name, version: $0.version,
                    state: $0.loading ? ($0.warming ? "warming" : "loading") : $0.draining ? "draining" : "ready",
                    inFlight: $0.inFlight.count)
            }
        }
    }

    /// Sets the share of unpinned traffic each version gets (weights are normalised; versions without workers are
    /// skipped). Work-conserving: a request goes to the version furthest below its share among those with a free
    /// worker, so shares hold as closely as the worker count allows.
    public mutating func setTrafficSplit(_ weights: [String: Double]) {
        let total = weights.values.filter { $0 > 0 }.reduce(0, +)
        split = total > 0 ? weights.filter { $0.value > 0 }.mapValues { $0 / total } : [:]
        dispatchedByVersion = [:]
    }

    /// The current split (normalised), empty when unset.
    public var trafficSplit: [String: Double] { split }

    /// Stops (or resumes) sending new requests to a worker; its in-flight requests finish.
    public mutating func setDraining(_ identity: [UInt8], _ draining: Bool) {
        workers[identity]?.draining = draining
    }

    /// Drains a worker, then tells it to load another version (`body`: the LOAD JSON); it comes back with READY.
    public mutating func requestLoad(_ identity: [UInt8], body: [UInt8]) -> [RouterAction] {
        guard workers[identity] != nil else { return [] }
        workers[identity]!.draining = true
        workers[identity]!.pendingLoad = body
        return startLoadIfDrained(identity)
    }

    private mutating func startLoadIfDrained(_ identity: [UInt8]) -> [RouterAction] {
        guard let e = workers[identity], let body = e.pendingLoad, e.inFlight.isEmpty else { return [] }
        workers[identity]!.pendingLoad = nil
        workers[identity]!.loading = true
        return [.toWorker([identity, FrameHeader(type: .load, requestID: 0).bytes, body])]
    }

    /// Starts a new judging window: `windowStats` empties.
    public mutating func resetWindow() {
        windowStats = [:]
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
    /// take no live traffic while a split without their version is set.
    public mutating func setShadow(_ version: String?) {
        if let version {
            if shadow?.version != version { shadow = ShadowStats(version: version) }
        } else {
            shadow = nil
        }
        shadowTickets.removeAll()
        comparisons.removeAll()
        comparisonOrder.removeAll()
    }

    /// Requests in flight on one worker (0 when unknown).
    public func inFlight(on identity: [UInt8]) -> Int { workers[identity]?.inFlight.count ?? 0 }

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
        if let pin, !workers.isEmpty, !workers.values.contains(where: { $0.version == pin }) {
            return [
                reply(envelope, id: header.requestID, .unknownModelVersion, "no worker serves model version \"\(pin)\"")
            ]
        }
        if queue.count >= configuration.queueBound {
            return [
                reply(
                    envelope, id: header.requestID, .overloaded,
                    "queue full (\(configuration.queueBound) requests waiting); retry later")
            ]
        }
        let deadlineMs = UInt64(header.deadlineMs == 0 ? configuration.defaultDeadlineMs : header.deadlineMs)
        let ticketID = nextTicket
        nextTicket += 1
        tickets[ticketID] = Ticket(
            envelope: envelope, clientRequestID: header.requestID, type: header.type, pin: pin, body: body,
            receivedAt: now, deadline: now + deadlineMs * 1_000_000, attempts: 0, worker: nil)
        queue.append(ticketID)
        return dispatch(now: now)
    }

    /// A worker message `[identity, header, body?]` arrived on the backend.
    public mutating func workerMessage(_ frames: [[UInt8]], now: UInt64) -> [RouterAction] {
        guard frames.count >= 2, let header = try? FrameHeader(decoding: frames[1]) else { return [] }
        let identity = frames[0]
        switch header.type {
        case .workerReady:
            let ready = frames.count > 2 ? (try? Zrank_V1_WorkerReady(serializedBytes: frames[2])) : nil
            let version = ready?.modelVersion ?? ""
            let capacity = max(1, Int(ready?.capacity ?? 1))
            if workers[identity] != nil {
                // A live worker announcing itself again (e.g. after loading a version): keep its in-flight work.
                workers[identity]!.version = version
                workers[identity]!.capacity = capacity
                workers[identity]!.lastSeen = now
                if workers[identity]!.loading {
                    workers[identity]!.loading = false
                    workers[identity]!.warming = false
                    workers[identity]!.draining = false
                }
            } else {
                let name = ready?.workerID ?? ""
                // A worker announcing the id of another live entry is its restarted successor: the predecessor is
                // dead (its in-flight requests are retried now rather than after the liveness timeout).
                var replaced: [RouterAction] = []
                if !name.isEmpty, let old = workers.first(where: { $0.key != identity && $0.value.name == name })?.key {
                    replaced = workerFailed(old, now: now)
                }
                workers[identity] = WorkerEntry(
                    name: name.isEmpty ? String(decoding: identity, as: UTF8.self) : name, version: version,
                    capacity: capacity, lastSeen: now)
                lru.append(identity)
                return replaced + dispatch(now: now)
            }
            return dispatch(now: now)
        case .heartbeat:
            if workers[identity] != nil {
                workers[identity]!.lastSeen = now
                if frames.count > 2 && frames[2] == Array("warming".utf8) && workers[identity]!.loading {
                    workers[identity]!.warming = true
                }
                return []
            }
            // Unknown worker (e.g. the router restarted): ask it to reconnect and announce itself.
            return [.toWorker([identity, FrameHeader(type: .disconnect, requestID: 0).bytes])]
        case .disconnect:
            return workerFailed(identity, now: now)
        case .rankResponse, .infoResponse, .error:
            guard workers[identity] != nil else { return [] }
            workers[identity]!.lastSeen = now
            let ticketID = header.requestID
            workers[identity]!.inFlight.remove(ticketID)
            var actions: [RouterAction] = startLoadIfDrained(identity)
            if let liveID = shadowTickets.removeValue(forKey: ticketID) {
                shadowAnswer(liveID, header: header, body: frames.count > 2 ? frames[2] : [])
                return actions + dispatch(now: now)
            }
            if let ticket = tickets[ticketID], ticket.worker == identity {
                tickets[ticketID] = nil
                let version = workers[identity]!.version
                let micros = now > ticket.receivedAt ? (now - ticket.receivedAt) / 1000 : 0
                var outcome = "OK"
                var serverError = false
                if header.type == .error {
                    let code = (frames.count > 2 ? (try? Zrank_V1_Error(serializedBytes: frames[2]))?.code : nil) ?? .internal
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
                if comparisons[ticketID] != nil {
                    liveAnswer(ticketID, header: header, body: frames.count > 2 ? frames[2] : [])
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
        // answers (the late answer is dropped); expired queue entries are pruned in one pass.
        var expiredQueued = false
        for (id, t) in tickets where t.deadline <= now {
            tickets[id] = nil
            if t.worker == nil { expiredQueued = true }
            actions.append(
                reply(t.envelope, id: t.clientRequestID, .deadlineExceeded, "deadline passed before an answer came"))
        }
        if expiredQueued { queue = Deque(queue.filter { tickets[$0] != nil }) }
        // Dead workers.
        let limit = configuration.heartbeatIntervalMs * configuration.liveness * 1_000_000
        for (identity, w) in workers where now > w.lastSeen && now - w.lastSeen > limit {
            actions += workerFailed(identity, now: now)
        }
        if now - lastHeartbeat >= configuration.heartbeatIntervalMs * 1_000_000 {
            lastHeartbeat = now
            let hb = FrameHeader(type: .heartbeat, requestID: 0).bytes
            for identity in workers.keys { actions.append(.toWorker([identity, hb])) }
        }
        return actions + dispatch(now: now)
    }

    /// Stop accepting: new requests get UNAVAILABLE; queued and in-flight ones still complete.
    public mutating func beginDrain() {
        draining = true
    }

    /// Whether nothing is queued or in flight.
    public var isIdle: Bool { tickets.isEmpty }

    /// Answers everything still held with UNAVAILABLE (the last step of a shutdown) and says goodbye to workers.
    public mutating func abandonAll() -> [RouterAction] {
        var actions = tickets.values.map {
            reply($0.envelope, id: $0.clientRequestID, .unavailable, "the router shut down before an answer came")
        }
        tickets.removeAll()
        queue.removeAll()
        let bye = FrameHeader(type: .disconnect, requestID: 0).bytes
        actions += workers.keys.map { .toWorker([$0, bye]) }
        return actions
    }

    // MARK: - Internals

    /// Errors that count against the version that answered (the client's own mistakes do not).
    static func isServerError(_ code: Zrank_V1_Error.Code) -> Bool {
        code != .invalidRequest && code != .unknownModelVersion
    }

    private mutating func workerFailed(_ identity: [UInt8], now: UInt64) -> [RouterAction] {
        guard let entry = workers.removeValue(forKey: identity) else { return [] }
        workersLost += 1
        if let i = lru.firstIndex(of: identity) { lru.remove(at: i) }
        var actions: [RouterAction] = []
        for id in entry.inFlight.sorted() {
            guard var t = tickets[id] else { continue }
            // The request is retried (or answered WORKER_FAILED), but the death counts against the version that
            // had it: a release that crashes workers must not look clean to a rollout.
            let micros = now > t.receivedAt ? (now - t.receivedAt) / 1000 : 0
            stats[entry.version, default: VersionStats()].record(micros: micros, error: true)
            windowStats[entry.version, default: VersionStats()].record(micros: micros, error: true)
            complete(Completion(version: entry.version, outcome: "WORKER_DIED", queueMicros: 0, computeMicros: micros))
            if t.attempts < 2 {
                // Retry once on another worker: back to the front of the queue.
                t.worker = nil
                tickets[id] = t
                queue.prepend(id)
            } else {
                tickets[id] = nil
                actions.append(
                    reply(t.envelope, id: t.clientRequestID, .workerFailed, "the worker died twice with this request"))
            }
        }
        return actions + dispatch(now: now)
    }

    private mutating func dispatch(now: UInt64) -> [RouterAction] {
        var actions: [RouterAction] = []
        var index = 0
        while index < queue.count {
            let id = queue[index]
            guard let t = tickets[id] else {
                queue.remove(at: index)
                continue
            }
            if t.deadline <= now {
                queue.remove(at: index)
                tickets[id] = nil
                actions.append(
                    reply(t.envelope, id: t.clientRequestID, .deadlineExceeded, "deadline passed before an answer came"))
                continue
            }
            // A fresh request pinned to a version nobody serves is refused; a retried one waits (its worker may be
            // reconnecting) until its deadline.
            if let pin = t.pin, t.attempts == 0, !workers.isEmpty, !workers.values.contains(where: { $0.version == pin }) {
                queue.remove(at: index)
                tickets[id] = nil
                actions.append(
                    reply(t.envelope, id: t.clientRequestID, .unknownModelVersion, "no worker serves model version \"\(pin)\""))
                continue
            }
            guard let w = pickWorker(pin: t.pin) else {
                if t.pin == nil { break }  // no free worker at all for unpinned work
                index += 1
                continue
            }
            let identity = lru.remove(at: w)
            lru.append(identity)
            queue.remove(at: index)
            if t.pin == nil && !split.isEmpty { dispatchedByVersion[workers[identity]!.version, default: 0] += 1 }
            workers[identity]!.inFlight.insert(id)
            var ticket = t
            ticket.worker = identity
            ticket.attempts += 1
            ticket.dispatchedAt = now
            tickets[id] = ticket
            var header = FrameHeader(type: t.type, requestID: id)
            let left = t.deadline > now ? (t.deadline - now) / 1_000_000 : 1
            header.deadlineMs = UInt32(min(left, UInt64(UInt32.max)))
            header.queueMicros = UInt32(min((now - t.receivedAt) / 1000, UInt64(UInt32.max)))
            actions.append(.toWorker([identity, header.bytes, t.body]))
            if let s = shadow, t.pin == nil, t.type == .rankRequest, t.attempts == 0, workers[identity]!.version != s.version {
                actions += shadowCopy(of: id, header: header, body: t.body)
            }
        }
        return actions
    }

    /// The LRU position of a free worker for a request: pinned → that version only; unpinned with a split → the
    /// version furthest below its share among those with a free worker; otherwise the least recently used.
    private func pickWorker(pin: String?) -> Int? {
        func free(_ id: [UInt8]) -> Bool {
            guard let e = workers[id] else { return false }
            return !e.draining && e.inFlight.count < e.capacity
        }
        if let pin { return lru.firstIndex { free($0) && workers[$0]!.version == pin } }
        guard !split.isEmpty else { return lru.firstIndex(where: free) }
        let total = dispatchedByVersion.values.reduce(0, +) + 1
        var best: (Int, Double)?
        for (i, id) in lru.enumerated() where free(id) {
            let version = workers[id]!.version
            guard let share = split[version] else { continue }
            let deficit = share * Double(total) - Double(dispatchedByVersion[version, default: 0])
            if best == nil || deficit > best!.1 { best = (i, deficit) }
        }
        // Versions outside the split only take traffic when no version in it has a worker at all.
        if best == nil && !workers.values.contains(where: { split[$0.version] != nil && !$0.draining }) {
            return lru.firstIndex(where: free)
        }
        return best?.0
    }

    /// An error answer from the router itself (counted as a completion with no version).
    private mutating func reply(_ envelope: [[UInt8]], id: UInt64, _ code: Zrank_V1_Error.Code, _ message: String) -> RouterAction {
        complete(Completion(version: "", outcome: code.name, queueMicros: 0, computeMicros: 0))
        return .toClient(envelope + errorFrames(requestID: id, code, message))
    }

    // MARK: - Shadow scoring

    /// Sends a copy of live ticket `liveID` to a free shadow worker, if there is one.
    private mutating func shadowCopy(of liveID: UInt64, header: FrameHeader, body: [UInt8]) -> [RouterAction] {
        guard let version = shadow?.version,
            let w = lru.firstIndex(where: {
                guard let e = workers[$0] else { return false }
                return e.version == version && !e.draining && e.inFlight.count < e.capacity
            })
        else { return [] }
        let identity = lru.remove(at: w)
        lru.append(identity)
        let shadowID = nextTicket
        nextTicket += 1
        workers[identity]!.inFlight.insert(shadowID)
        shadowTickets[shadowID] = liveID
        comparisons[liveID] = (nil, nil)
        comparisonOrder.append(liveID)
        while comparisonOrder.count > 4096, let old = comparisonOrder.popFirst() { comparisons[old] = nil }
        shadow!.sent += 1
        var h = header
        h.requestID = shadowID
        return [.toWorker([identity, h.bytes, body])]
    }

    private static func rankedIDs(_ header: FrameHeader, _ body: [UInt8]) -> [String]? {
        guard header.type == .rankResponse, let r = try? Zrank_V1_RankResponse(serializedBytes: body) else { return nil }
        return r.items.map(\.id)
    }

    private mutating func liveAnswer(_ liveID: UInt64, header: FrameHeader, body: [UInt8]) {
        guard let ids = Self.rankedIDs(header, body) else {
            comparisons[liveID] = nil
            return
        }
        comparisons[liveID]!.live = ids
        finishComparison(liveID)
    }

    private mutating func shadowAnswer(_ liveID: UInt64, header: FrameHeader, body: [UInt8]) {
        guard comparisons[liveID] != nil else { return }
        guard let ids = Self.rankedIDs(header, body) else {
            let code = header.type == .error ? ((try? Zrank_V1_Error(serializedBytes: body))?.code ?? .internal) : .internal
            if Self.isServerError(code) { shadow?.errors += 1 }
            comparisons[liveID] = nil
            return
        }
        comparisons[liveID]!.shadow = ids
        finishComparison(liveID)
    }

    private mutating func finishComparison(_ liveID: UInt64) {
        guard let pair = comparisons[liveID], let live = pair.live, let copy = pair.shadow else { return }
        comparisons[liveID] = nil
        shadow?.add(live: live, shadow: copy)
    }
}
