import DequeModule
import Protocol

/// The live workers, keyed by router socket identity, each with its phase as an enum, kept least recently used
/// first. No sockets and no clock of its own: `RouterCore` feeds it events.
package struct WorkerTable {
    /// Where one worker stands.
    package enum Phase: Equatable {
        /// Takes requests.
        case ready
        /// Drained by an operator: no new requests, in-flight ones finish.
        case draining
        /// Draining; once nothing is in flight the LOAD `body` goes out.
        case awaitingLoad(body: [UInt8])
        /// Sent LOAD, waiting for its READY.
        case loading
        /// Mapped the new version; warming up and checking its smoke set (said by its heartbeat).
        case warming

        /// The state status answers show.
        package var state: WorkerState {
            switch self {
            case .ready: return .ready
            case .draining, .awaitingLoad: return .draining
            case .loading: return .loading
            case .warming: return .warming
            }
        }
    }

    package struct Entry: Equatable {
        /// The name the worker announced (stable across reconnects, unlike its socket identity).
        package var name: String
        package var version: String
        package var capacity: Int
        package var inFlight: Set<UInt64> = []
        package var lastSeen: UInt64
        package var phase: Phase = .ready
        /// Its query cache as its last heartbeat said.
        package var queryCache: QueryCacheFigures?
        /// Versions it has loaded in place since it joined: its query-cache figures start again from zero with each.
        package var loads = 0

        /// Takes another request now.
        package var isFree: Bool { phase == .ready && inFlight.count < capacity }
    }

    /// What announcing did.
    package enum Announcement: Equatable {
        /// A live worker announced itself again (after a load, say).
        case refreshed
        /// A new worker; `replacing` is the identity of a live entry with the same name (its restarted predecessor).
        case joined(replacing: [UInt8]?)
    }

    /// The most requests one worker may have in flight, whatever it announces.
    package static let maxCapacity = 64

    package private(set) var entries: [[UInt8]: Entry] = [:]
    /// Least recently used first.
    package private(set) var lru = Deque<[UInt8]>()

    package init() {}

    package subscript(identity: [UInt8]) -> Entry? { entries[identity] }

    package var isEmpty: Bool { entries.isEmpty }
    package var identities: Dictionary<[UInt8], Entry>.Keys { entries.keys }

    /// Whether a live worker serves `version`.
    package func serves(_ version: String) -> Bool { entries.values.contains { $0.version == version } }

    /// Versions of the live workers, sorted (one per worker).
    package var versions: [String] { entries.values.map(\.version).sorted() }

    /// The identity of the live worker announced as `name`, else the one whose socket identity reads `name`.
    package func identity(named name: String) -> [UInt8]? {
        if let hit = lru.first(where: { entries[$0]?.name == name }) { return hit }
        let raw = Array(name.utf8)
        return entries[raw] != nil ? raw : nil
    }

    /// A READY: a new worker joins (at the back of the LRU), or a live one refreshes its version and leaves a load.
    package mutating func announce(_ identity: [UInt8], name: String, version: String, capacity: Int, now: UInt64) -> Announcement {
        let capacity = max(1, min(capacity, Self.maxCapacity))
        if var e = entries[identity] {
            e.version = version
            e.capacity = capacity
            e.lastSeen = now
            if e.phase == .loading || e.phase == .warming {
                e.phase = .ready
                e.queryCache = nil  // a new version starts with an empty cache; its next heartbeat says so
                e.loads += 1
            }
            entries[identity] = e
            return .refreshed
        }
        let name = name.isEmpty ? String(decoding: identity, as: UTF8.self) : name
        let predecessor = lru.first { $0 != identity && entries[$0]?.name == name }
        entries[identity] = Entry(name: name, version: version, capacity: capacity, lastSeen: now)
        lru.append(identity)
        return .joined(replacing: predecessor)
    }

    /// A heartbeat; false when the worker is unknown. `warming` moves a loading worker to `warming`.
    package mutating func heard(_ identity: [UInt8], warming: Bool, queryCache: QueryCacheFigures? = nil, now: UInt64) -> Bool {
        guard var e = entries[identity] else { return false }
        e.lastSeen = now
        if let queryCache { e.queryCache = queryCache }
        if warming && e.phase == .loading { e.phase = .warming }
        entries[identity] = e
        return true
    }

    /// Forgets a worker; returns its entry.
    package mutating func remove(_ identity: [UInt8]) -> Entry? {
        guard let e = entries.removeValue(forKey: identity) else { return nil }
        if let i = lru.firstIndex(of: identity) { lru.remove(at: i) }
        return e
    }

    /// Operator drain on or off (off returns a drained worker to `ready`; a pending load is kept).
    package mutating func setDraining(_ identity: [UInt8], _ on: Bool) {
        guard var e = entries[identity] else { return }
        switch (on, e.phase) {
        case (true, .ready): e.phase = .draining
        case (false, .draining): e.phase = .ready
        default: break
        }
        entries[identity] = e
    }

    /// Drain, then load: the LOAD body waits until nothing is in flight.
    package mutating func orderLoad(_ identity: [UInt8], body: [UInt8]) {
        entries[identity]?.phase = .awaitingLoad(body: body)
    }

    /// The LOAD body to send now when the worker was waiting to load and has drained (it becomes `loading`).
    package mutating func takeLoadIfDrained(_ identity: [UInt8]) -> [UInt8]? {
        guard let e = entries[identity], case .awaitingLoad(let body) = e.phase, e.inFlight.isEmpty else { return nil }
        entries[identity]!.phase = .loading
        return body
    }

    package mutating func touch(_ identity: [UInt8], now: UInt64) { entries[identity]?.lastSeen = now }

    /// Records a request sent to the worker at LRU `position` (from `firstFree`) and moves it to the back of the LRU;
    /// returns its identity. The position comes from the scan that picked it, so the LRU is not searched again.
    @discardableResult
    package mutating func assign(_ ticket: UInt64, at position: Int) -> [UInt8] {
        let identity = lru.remove(at: position)
        lru.append(identity)
        entries[identity]?.inFlight.insert(ticket)
        return identity
    }

    /// Records an answer (or a forgotten request); returns whether the worker had it.
    @discardableResult
    package mutating func release(_ ticket: UInt64, from identity: [UInt8]) -> Bool {
        entries[identity]?.inFlight.remove(ticket) != nil
    }

    /// The LRU position of the least recently used free worker that satisfies `accept`.
    package func firstFree(where accept: (Entry) -> Bool = { _ in true }) -> Int? {
        lru.firstIndex { id in entries[id].map { $0.isFree && accept($0) } ?? false }
    }

    /// Workers silent for longer than `limit` nanoseconds.
    package func silent(now: UInt64, limit: UInt64) -> [[UInt8]] {
        entries.compactMap { now > $0.value.lastSeen && now - $0.value.lastSeen > limit ? $0.key : nil }
    }
}
