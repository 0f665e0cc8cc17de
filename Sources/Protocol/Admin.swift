import Foundation

// The control plane's messages: what `zrankctl` (or any operator tool) sends to the coordinator's admin socket,
// what the coordinator sends to the router's control socket, and the LOAD body the router hands a worker. All are
// UTF-8 JSON behind a CONTROL header (see proto/PROTOCOL.md, "Admin socket"); golden vectors live in
// proto/vectors/admin.json and are checked in Swift and Python.

// MARK: - States

/// A worker's state as the router and the coordinator report it.
public enum WorkerState: String, Codable, Sendable, CaseIterable {
    /// Started by the supervisor, not yet seen by the router (coordinator only).
    case starting
    /// Takes requests.
    case ready
    /// Takes no new requests; in-flight ones finish (a load follows, or an operator drained it).
    case draining
    /// Was sent LOAD and maps the new version.
    case loading
    /// Mapped the new version; warming up and checking its smoke set.
    case warming
    /// Was seen, now gone (coordinator only).
    case dead
}

/// Where a rollout stands.
public enum RolloutState: String, Codable, Sendable, CaseIterable {
    case idle, running, paused, done
    case rolledBack = "rolled_back"
}

/// Which part of a running rollout.
public enum RolloutStage: String, Codable, Sendable, CaseIterable {
    /// The new version scores copies of live requests on one worker; it answers none.
    case shadow
    /// The new version serves `canary` of the traffic.
    case canary
    /// Later steps, `step` more each time, up to 100%.
    case step
    case none
}

// MARK: - Version names

/// The rule for version names, checked wherever one arrives (rollout, pin, load, shadow, split, registry): 1-64
/// letters, digits, '.', '_' or '-', not starting with '.', so a name can never reach outside the registry folder.
public enum VersionName {
    /// Why `name` is not a version name, or nil.
    public static func problem(_ name: String) -> String? {
        let ok = (1...64).contains(name.utf8.count) && !name.hasPrefix(".")
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
            }
        return ok ? nil : "invalid version name \"\(name)\": use 1-64 letters, digits, '.', '_' or '-' (not starting with '.')"
    }
}

// MARK: - Rollout plan

/// What an operator asks for with `zrankctl rollout VERSION ...` (persisted with the rollout record).
public struct RolloutPlan: Codable, Equatable, Sendable {
    /// The version rolled out (a registry name).
    public var target: String
    /// Share of unpinned traffic the first new-version worker serves (0-1).
    public var canary = 0.10
    /// Share added at each later step (0-1).
    public var step = 0.25
    /// Least time spent at each share before the next (seconds).
    public var intervalSeconds = 30.0
    /// Error rate (0-1) of the new version above which the rollout rolls back.
    public var maxErrorRate = 0.01
    /// p99 (ms) of the new version above which the rollout rolls back; nil: 3× the live version's p99 measured over
    /// the same window.
    public var maxP99Ms: Double?
    /// Requests the new version must have answered in a step before it is judged (and before the rollout moves on).
    public var minRequests = 200
    /// Shadow scoring before the canary (seconds; 0: none).
    public var shadowSeconds = 0.0

    public init(target: String) { self.target = target }

    enum CodingKeys: String, CodingKey {
        case target, canary, step
        case intervalSeconds = "interval_s"
        case maxErrorRate = "max_error_rate"
        case maxP99Ms = "max_p99_ms"
        case minRequests = "min_requests"
        case shadowSeconds = "shadow_s"
    }

    /// Why the plan cannot run, or nil.
    public var problem: String? {
        if !(canary > 0 && canary <= 1) { return "--canary must be above 0% and at most 100%" }
        if !(step > 0 && step <= 1) { return "--step must be above 0% and at most 100%" }
        if !(intervalSeconds >= 0 && intervalSeconds.isFinite) { return "--interval must be a duration" }
        if !(maxErrorRate >= 0 && maxErrorRate <= 1) { return "--max-error-rate must be between 0% and 100%" }
        if let p = maxP99Ms, !(p > 0 && p.isFinite) { return "--max-p99 must be a positive number of milliseconds" }
        if !(1...1_000_000_000).contains(minRequests) { return "--min-requests must be between 1 and 10^9" }
        if !(shadowSeconds >= 0 && shadowSeconds.isFinite) { return "--shadow must be a duration" }
        return nil
    }
}

/// The `rollout` request's fields: the version and the plan's options, each optional (absent: the plan's default).
public struct RolloutRequest: Codable, Equatable, Sendable {
    public var version: String
    public var canary: Double?
    public var step: Double?
    public var intervalSeconds: Double?
    public var maxErrorRate: Double?
    public var maxP99Ms: Double?
    public var minRequests: Int?
    public var shadowSeconds: Double?

    public init(version: String) { self.version = version }

    /// The request as a plan (defaults filled in).
    /// - Throws: `AdminMessageError` when a field is out of range.
    public func plan() throws(AdminMessageError) -> RolloutPlan {
        var plan = RolloutPlan(target: version)
        if let canary { plan.canary = canary }
        if let step { plan.step = step }
        if let intervalSeconds { plan.intervalSeconds = intervalSeconds }
        if let maxErrorRate { plan.maxErrorRate = maxErrorRate }
        plan.maxP99Ms = maxP99Ms
        if let minRequests { plan.minRequests = minRequests }
        if let shadowSeconds { plan.shadowSeconds = shadowSeconds }
        if version.isEmpty { throw AdminMessageError(.invalidField, "rollout needs \"version\"") }
        if let problem = VersionName.problem(version) { throw AdminMessageError(.invalidField, problem) }
        if let problem = plan.problem { throw AdminMessageError(.invalidField, problem) }
        return plan
    }

    enum CodingKeys: String, CodingKey {
        case version, canary, step
        case intervalSeconds = "interval_s"
        case maxErrorRate = "max_error_rate"
        case maxP99Ms = "max_p99_ms"
        case minRequests = "min_requests"
        case shadowSeconds = "shadow_s"
    }
}

// MARK: - Load

/// The LOAD body the router sends a worker: the registry version to load in place. A LOAD names a version, never a
/// path: the worker resolves it inside its own registry folder.
public struct LoadOrder: Codable, Equatable, Sendable {
    public var version: String

    public init(version: String) {
        self.version = version
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        if let path = ["model", "index", "heads"].first(where: { c.contains(AnyKey($0)) }) {
            throw AdminMessageError(.invalidField, "load names a registry version, never a path (\"\(path)\" is not accepted)")
        }
        version = try c.decode(String.self, forKey: AnyKey("version"))
        if let problem = VersionName.problem(version) { throw AdminMessageError(.invalidField, problem) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(version, forKey: AnyKey("version"))
    }
}

/// A JSON key by name.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

// MARK: - Requests

/// The operations of the admin and control sockets.
public enum AdminOp: String, Codable, Sendable, CaseIterable {
    case status, rollout, pause, resume, rollback, pin, unpin, split, drain, load, shadow, metrics
    case windowReset = "window_reset"
}

/// One admin or control request: `{"op": ..., fields...}` on the wire.
public enum AdminRequest: Equatable, Sendable {
    /// Workers, traffic, per-version figures (and, from the coordinator, the rollout).
    case status
    /// Start rolling a registry version out (coordinator).
    case rollout(RolloutRequest)
    /// Hold, continue or roll back the active rollout (coordinator).
    case pause, resume, rollback
    /// All unpinned traffic to one version (coordinator; refused during a rollout).
    case pin(version: String)
    /// Clear the pin (coordinator; refused during a rollout).
    case unpin
    /// Set the traffic split (empty: by worker count). Refused by the coordinator during a rollout.
    case split(weights: [String: Double])
    /// Stop (or resume) sending new requests to a worker, named by its announced name. Refused during a rollout.
    case drain(worker: String, on: Bool)
    /// Drain a worker (by its announced name), then make it load a registry version (router control socket; the
    /// coordinator's admin socket refuses it: its rollouts move workers).
    case load(worker: String, LoadOrder)
    /// Start (version) or stop (nil) shadow scoring. Refused by the coordinator during a rollout.
    case shadow(version: String?)
    /// Open a new judging window; the answer carries its epoch. Refused by the coordinator during a rollout.
    case windowReset
    /// Prometheus text.
    case metrics

    /// The request's operation.
    public var op: AdminOp {
        switch self {
        case .status: return .status
        case .rollout: return .rollout
        case .pause: return .pause
        case .resume: return .resume
        case .rollback: return .rollback
        case .pin: return .pin
        case .unpin: return .unpin
        case .split: return .split
        case .drain: return .drain
        case .load: return .load
        case .shadow: return .shadow
        case .windowReset: return .windowReset
        case .metrics: return .metrics
        }
    }
}

extension AdminRequest: Codable {
    private typealias Key = AnyKey

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard let opName = try? c.decode(String.self, forKey: Key("op")) else {
            throw AdminMessageError(.malformed, "control body must be a JSON object with an \"op\"")
        }
        guard let op = AdminOp(rawValue: opName) else { throw AdminMessageError(.unknownOp, "unknown op \"\(opName)\"") }
        func field<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
            guard c.contains(Key(name)) else { throw AdminMessageError(.missingField, "\(opName) needs \"\(name)\"") }
            do {
                return try c.decode(T.self, forKey: Key(name))
            } catch {
                throw AdminMessageError(.invalidField, "\(opName): \"\(name)\" has the wrong type")
            }
        }
        func optional<T: Decodable>(_ type: T.Type, _ name: String) throws -> T? {
            guard c.contains(Key(name)), !((try? c.decodeNil(forKey: Key(name))) ?? false) else { return nil }
            return try field(T.self, name)
        }
        switch op {
        case .status: self = .status
        case .rollout:
            do {
                let r = try RolloutRequest(from: decoder)
                if let problem = VersionName.problem(r.version) { throw AdminMessageError(.invalidField, problem) }
                self = .rollout(r)
            } catch let e as AdminMessageError {
                throw e
            } catch DecodingError.keyNotFound(let key, _) {
                throw AdminMessageError(.missingField, "rollout needs \"\(key.stringValue)\"")
            } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
                let name = context.codingPath.last?.stringValue ?? "?"
                throw AdminMessageError(.invalidField, "rollout: \"\(name)\" has the wrong type")
            } catch DecodingError.dataCorrupted(let context) {
                let name = context.codingPath.last?.stringValue ?? "?"
                throw AdminMessageError(.invalidField, "rollout: \"\(name)\" has the wrong type")
            }
        case .pause: self = .pause
        case .resume: self = .resume
        case .rollback: self = .rollback
        case .pin:
            let version = try field(String.self, "version")
            if let problem = VersionName.problem(version) { throw AdminMessageError(.invalidField, problem) }
            self = .pin(version: version)
        case .unpin: self = .unpin
        case .split:
            let weights = try field([String: Double].self, "weights")
            if let bad = weights.first(where: { !$0.value.isFinite || $0.value < 0 }) {
                throw AdminMessageError(.invalidField, "weight for \(bad.key) must be a non-negative number")
            }
            if let problem = weights.keys.sorted().lazy.compactMap(VersionName.problem).first {
                throw AdminMessageError(.invalidField, problem)
            }
            self = .split(weights: weights)
        case .drain: self = .drain(worker: try field(String.self, "worker"), on: try optional(Bool.self, "on") ?? true)
        case .load:
            let worker = try field(String.self, "worker")
            _ = try field(String.self, "version")
            do {
                self = .load(worker: worker, try LoadOrder(from: decoder))
            } catch let e as AdminMessageError {
                throw e
            } catch {
                throw AdminMessageError(.invalidField, "load: \"version\" has the wrong type")
            }
        case .shadow:
            let version = try optional(String.self, "version")
            if let version, !version.isEmpty, let problem = VersionName.problem(version) {
                throw AdminMessageError(.invalidField, problem)
            }
            self = .shadow(version: version?.isEmpty == false ? version : nil)
        case .windowReset: self = .windowReset
        case .metrics: self = .metrics
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(op.rawValue, forKey: Key("op"))
        switch self {
        case .status, .pause, .resume, .rollback, .unpin, .windowReset, .metrics:
            break
        case .rollout(let r):
            try r.encode(to: encoder)
        case .pin(let version):
            try c.encode(version, forKey: Key("version"))
        case .split(let weights):
            try c.encode(weights, forKey: Key("weights"))
        case .drain(let worker, let on):
            try c.encode(worker, forKey: Key("worker"))
            try c.encode(on, forKey: Key("on"))
        case .load(let worker, let order):
            try c.encode(worker, forKey: Key("worker"))
            try order.encode(to: encoder)
        case .shadow(let version):
            try c.encode(version ?? "", forKey: Key("version"))
        }
    }
}

// MARK: - Answers

/// What kind of refusal an admin answer carries (`"code"` beside `"error"`), so tools can match on it.
public enum AdminErrorCode: String, Codable, Sendable, CaseIterable {
    /// Not a JSON object with an op, or a field missing or of the wrong type or range.
    case invalidRequest = "invalid_request"
    /// An op this socket does not know.
    case unknownOp = "unknown_op"
    /// Not allowed now (a rollout owns the traffic, no rollout to pause, ...).
    case conflict
    /// The named worker or version does not exist.
    case notFound = "not_found"
    /// The coordinator could not reach the router, or has no registry.
    case unavailable
}

/// Why a control message could not be read.
public struct AdminMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong, to match on.
    public enum Kind: Sendable, Equatable {
        case malformed, unknownOp, missingField, invalidField
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// The refusal code an answer carries for it.
    public var code: AdminErrorCode { kind == .unknownOp ? .unknownOp : .invalidRequest }
}

/// The answer to every operation but `status`: `{"ok": true, ...}` or `{"error": "...", "code": "..."}`.
public struct AdminReply: Codable, Equatable, Sendable {
    public var ok: Bool?
    /// Why the request was refused (with `code`).
    public var error: String?
    public var code: AdminErrorCode?
    /// rollout, pause, resume, rollback: the rollout after the command.
    public var rollout: RolloutStatus?
    /// split, pin, unpin: the split now in force.
    public var traffic: [String: Double]?
    /// window_reset: the new window's epoch.
    public var epoch: UInt64?
    /// drain: requests still in flight on the worker.
    public var inFlight: Int?
    /// load: the worker's state after the order.
    public var state: WorkerState?
    /// metrics: Prometheus text.
    public var text: String?

    public init() {}

    /// `{"ok": true}`.
    public static var ok: AdminReply {
        var r = AdminReply()
        r.ok = true
        return r
    }

    /// A refusal.
    public static func refusal(_ code: AdminErrorCode, _ message: String) -> AdminReply {
        var r = AdminReply()
        r.error = message
        r.code = code
        return r
    }

    enum CodingKeys: String, CodingKey {
        case ok, error, code, rollout, traffic, epoch, state, text
        case inFlight = "in_flight"
    }
}

/// A rollout as status and rollout answers show it.
public struct RolloutStatus: Codable, Equatable, Sendable {
    public var state: RolloutState
    /// The version being (or last) rolled out; empty when none.
    public var target: String
    public var reason: String
    /// The live version.
    public var stable: String
    public var stage: RolloutStage
    /// The target's share of unpinned traffic (0-1).
    public var share: Double
    public var history: [String]
    public var plan: RolloutPlan?

    public init(
        state: RolloutState, target: String, reason: String, stable: String, stage: RolloutStage, share: Double,
        history: [String], plan: RolloutPlan?
    ) {
        self.state = state
        self.target = target
        self.reason = reason
        self.stable = stable
        self.stage = stage
        self.share = share
        self.history = history
        self.plan = plan
    }
}

/// A worker's query-embedding cache: hits and misses since it loaded its version, entries and bytes held.
public struct QueryCacheFigures: Codable, Equatable, Sendable {
    public var hits: Int
    public var misses: Int
    public var entries: Int
    public var bytes: Int

    public init(hits: Int, misses: Int, entries: Int, bytes: Int) {
        self.hits = hits
        self.misses = misses
        self.entries = entries
        self.bytes = bytes
    }

    /// hits / (hits + misses), 0 before any request.
    public var hitRate: Double { hits + misses > 0 ? Double(hits) / Double(hits + misses) : 0 }
}

/// The optional body of a worker's HEARTBEAT: UTF-8 JSON (the older body `warming`, a bare word, still means
/// `{"warming": true}`).
public struct WorkerHeartbeat: Codable, Equatable, Sendable {
    /// Mapped a new version; warming up and checking its smoke set.
    public var warming: Bool?
    public var queryCache: QueryCacheFigures?

    public init(warming: Bool? = nil, queryCache: QueryCacheFigures? = nil) {
        self.warming = warming
        self.queryCache = queryCache
    }

    enum CodingKeys: String, CodingKey {
        case warming
        case queryCache = "query_cache"
    }

    /// Reads a heartbeat body (empty, `warming`, or JSON); nil when it is none of these.
    public static func decode(_ body: [UInt8]) -> WorkerHeartbeat? {
        if body.isEmpty { return WorkerHeartbeat() }
        if body == Array("warming".utf8) { return WorkerHeartbeat(warming: true) }
        return try? JSONDecoder().decode(WorkerHeartbeat.self, from: Data(body))
    }
}

/// One worker in a status answer.
public struct WorkerStatus: Codable, Equatable, Sendable {
    /// The router's socket identity for it (changes on every reconnect; empty for workers the router does not see).
    public var id: String
    /// The name it announced (stable across reconnects): what `drain`, `load` and rollouts name.
    public var name: String
    public var version: String
    public var state: WorkerState
    public var inFlight: Int
    /// Its query-embedding cache, as its last heartbeat said (absent: not reported, or the cache is off).
    public var queryCache: QueryCacheFigures?

    public init(id: String, name: String, version: String, state: WorkerState, inFlight: Int, queryCache: QueryCacheFigures? = nil) {
        self.id = id
        self.name = name
        self.version = version
        self.state = state
        self.inFlight = inFlight
        self.queryCache = queryCache
    }

    enum CodingKeys: String, CodingKey {
        case id, name, version, state
        case inFlight = "in_flight"
        case queryCache = "query_cache"
    }
}

/// Per-version figures: all answers since start (`versions`) or in the current judging window (`window`).
public struct VersionFigures: Codable, Equatable, Sendable {
    public var requests: Int
    /// Server-side failures (the client's own mistakes are not counted).
    public var errors: Int
    public var errorRate: Double
    public var p99Ms: Double
    /// Requests its workers had in flight when they were declared dead or disconnected (each retried elsewhere;
    /// counted neither as requests nor as errors). 0 when absent.
    public var lost: Int

    public init(requests: Int, errors: Int, errorRate: Double, p99Ms: Double, lost: Int = 0) {
        self.requests = requests
        self.errors = errors
        self.errorRate = errorRate
        self.p99Ms = p99Ms
        self.lost = lost
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requests = try c.decode(Int.self, forKey: .requests)
        errors = try c.decode(Int.self, forKey: .errors)
        errorRate = try c.decode(Double.self, forKey: .errorRate)
        p99Ms = try c.decode(Double.self, forKey: .p99Ms)
        lost = try c.decodeIfPresent(Int.self, forKey: .lost) ?? 0
    }

    enum CodingKeys: String, CodingKey {
        case requests, errors, lost
        case errorRate = "error_rate"
        case p99Ms = "p99_ms"
    }
}

/// How the shadow version agrees with the live one.
public struct ShadowFigures: Codable, Equatable, Sendable {
    public var version: String
    /// Pairs (live answer, shadow answer) compared.
    public var requests: Int
    /// Copies sent to the shadow version.
    public var sent: Int
    /// Shadow answers that were server errors.
    public var errors: Int
    public var errorRate: Double
    /// Mean share of the live top 10 that the shadow top 10 also holds (0-1).
    public var top10Overlap: Double
    /// Mean Spearman correlation over the items both top-10 lists hold.
    public var rankCorrelation: Double

    public init(
        version: String, requests: Int, sent: Int, errors: Int, errorRate: Double, top10Overlap: Double,
        rankCorrelation: Double
    ) {
        self.version = version
        self.requests = requests
        self.sent = sent
        self.errors = errors
        self.errorRate = errorRate
        self.top10Overlap = top10Overlap
        self.rankCorrelation = rankCorrelation
    }

    enum CodingKeys: String, CodingKey {
        case version, requests, sent, errors
        case errorRate = "error_rate"
        case top10Overlap = "top10_overlap"
        case rankCorrelation = "rank_correlation"
    }
}

/// The coordinator's own part of a status answer.
public struct CoordinatorInfo: Codable, Equatable, Sendable {
    /// The registry folder (empty: none).
    public var registry: String
    /// Worker names the supervisor runs.
    public var expectedWorkers: [String]
    /// The judging window the rollout judges on (0: none open).
    public var judgedEpoch: UInt64

    public init(registry: String, expectedWorkers: [String], judgedEpoch: UInt64) {
        self.registry = registry
        self.expectedWorkers = expectedWorkers
        self.judgedEpoch = judgedEpoch
    }

    enum CodingKeys: String, CodingKey {
        case registry
        case expectedWorkers = "expected_workers"
        case judgedEpoch = "judged_epoch"
    }
}

/// The `status` answer: the router's view (and, from the coordinator, the rollout and workers the router does not
/// see).
public struct PoolStatus: Codable, Equatable, Sendable {
    public var workers: [WorkerStatus]
    /// The traffic each version gets now (the split, or by ready-worker count when none is set).
    public var traffic: [String: Double]
    /// The split set on the router (empty: none).
    public var split: [String: Double]
    /// Every answer since the router started.
    public var versions: [String: VersionFigures]
    /// Answers in the current judging window.
    public var window: [String: VersionFigures]
    /// The current judging window's number: it changes on every `window_reset` and starts at a random value in
    /// each router process, so a restarted router never continues an old window.
    public var windowEpoch: UInt64
    public var shadow: ShadowFigures?
    public var queueDepth: Int
    public var inFlight: Int
    public var workersLost: Int
    /// Coordinator only.
    public var rollout: RolloutStatus?
    /// Coordinator only.
    public var coordinator: CoordinatorInfo?

    public init(
        workers: [WorkerStatus], traffic: [String: Double], split: [String: Double], versions: [String: VersionFigures],
        window: [String: VersionFigures], windowEpoch: UInt64, shadow: ShadowFigures?, queueDepth: Int, inFlight: Int,
        workersLost: Int
    ) {
        self.workers = workers
        self.traffic = traffic
        self.split = split
        self.versions = versions
        self.window = window
        self.windowEpoch = windowEpoch
        self.shadow = shadow
        self.queueDepth = queueDepth
        self.inFlight = inFlight
        self.workersLost = workersLost
    }

    enum CodingKeys: String, CodingKey {
        case workers, traffic, split, versions, window, shadow, rollout, coordinator
        case windowEpoch = "window_epoch"
        case queueDepth = "queue_depth"
        case inFlight = "in_flight"
        case workersLost = "workers_lost"
    }
}

// MARK: - Encoding

/// JSON for the control plane: sorted keys, so the same message is the same bytes.
public enum AdminJSON {
    /// Encodes a message.
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every control type encodes (finite numbers are checked where they arrive); a failure is a programming error.
        guard let data = try? encoder.encode(value) else {
            return Array(#"{"code":"invalid_request","error":"unencodable answer"}"#.utf8)
        }
        return Array(data)
    }

    /// Pretty, sorted JSON for people (`zrankctl status --json`).
    public static func pretty<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Decodes a request.
    /// - Throws: `AdminMessageError` saying what is wrong with it.
    public static func request(_ bytes: [UInt8]) throws(AdminMessageError) -> AdminRequest {
        do {
            return try JSONDecoder().decode(AdminRequest.self, from: Data(bytes))
        } catch let e as AdminMessageError {
            throw e
        } catch {
            throw AdminMessageError(.malformed, "control body must be a JSON object with an \"op\"")
        }
    }

    /// Decodes an answer of type `T`, or the refusal it carries instead.
    /// - Throws: `AdminCallError.refused` for `{"error": ...}`, `.malformed` for anything else unreadable.
    public static func answer<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(AdminCallError) -> T {
        let data = Data(bytes)
        if let refusal = try? JSONDecoder().decode(AdminReply.self, from: data), let error = refusal.error {
            throw .refused(refusal.code ?? .invalidRequest, error)
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw .malformed("\(T.self): \(error)")
        }
    }
}

/// Why an admin call brought no usable answer.
public enum AdminCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Nothing came back in time.
    case noAnswer(endpoint: String, timeoutMs: Int)
    /// The peer refused, saying why.
    case refused(AdminErrorCode, String)
    /// The answer was not the expected message.
    case malformed(String)
    /// The socket failed.
    case transport(String)
    /// The CURVE handshake failed (a key not listed, a mechanism mismatch): nothing will get through.
    case handshakeRefused(endpoint: String, String)

    public var description: String {
        switch self {
        case .noAnswer(let endpoint, let ms): return "no answer from \(endpoint) within \(ms) ms"
        case .refused(_, let message): return message
        case .malformed(let what): return "unreadable answer: \(what)"
        case .transport(let what): return what
        case .handshakeRefused(_, let why): return why
        }
    }
}

/// A DEALER connection to an admin or control socket: one call at a time, answers matched by request id.
public final class AdminChannel {
    public let endpoint: String
    private let socket: ZMQSocket
    private var nextID: UInt64 = 1

    /// Why calls get no answer, when the handshake says (a refused CURVE key, a mechanism mismatch).
    private let monitor: HandshakeMonitor?

    /// Connects (the peer need not be up yet).
    /// - Parameter curve: the peer's public key and this program's key pair, for a tcp peer that requires CURVE.
    public init(context: ZMQContext, endpoint: String, curve: CurveClientKeys? = nil) throws(ZMQError) {
        self.endpoint = endpoint
        socket = try ZMQSocket(context, type: .dealer)
        try socket.setInt(ZMQOption.linger, 0)
        if let curve, endpoint.hasPrefix("tcp://") { try socket.makeCurveClient(curve) }
        monitor = try? HandshakeMonitor(socket)
        // Queue nothing while the peer is away: a request sent to a dead router must not reach its successor later.
        try socket.setInt(ZMQOption.immediate, 1)
        try socket.connect(endpoint)
    }

    /// Sends `request` and waits up to `timeoutMs` for its answer (stale answers to earlier calls are skipped).
    /// - Parameter stop: checked every 50 ms; true gives up early.
    public func call(_ request: AdminRequest, timeoutMs: Int, stop: () -> Bool = { false }) throws(AdminCallError) -> [UInt8] {
        let id = nextID
        nextID += 1
        let deadline = monotonicNanos() + UInt64(max(0, timeoutMs)) * 1_000_000
        do {
            // With ZMQ_IMMEDIATE a send waits for a connected peer: up to the timeout, then it is "no answer".
            try socket.setInt(ZMQOption.sendTimeout, Int32(clamping: max(1, timeoutMs)))
            try socket.send([FrameHeader(type: .control, requestID: id).bytes, AdminJSON.encode(request)])
        } catch {
            if error.wouldBlock { throw noAnswer(timeoutMs) }
            throw .transport("\(endpoint): \(error)")
        }
        do {
            while !stop() {
                let now = monotonicNanos()
                guard now < deadline else { break }
                let left = min(50, Int((deadline - now) / 1_000_000) + 1)
                guard try ZMQPoller.poll([socket], timeoutMs: left)[0] else { continue }
                while let frames = try socket.receive(dontWait: true) {
                    guard frames.count >= 2, let h = try? FrameHeader(decoding: frames[0]), h.requestID == id else { continue }
                    return frames[1]
                }
            }
        } catch {
            throw .transport("\(endpoint): \(error)")
        }
        throw noAnswer(timeoutMs)
    }

    /// "No answer", or the handshake failure that explains it.
    private func noAnswer(_ timeoutMs: Int) -> AdminCallError {
        switch monitor?.refresh() {
        case .refused(let status)?:
            return .handshakeRefused(endpoint: endpoint, "\(endpoint) refused this program's CURVE key (ZAP status \(status)): it is not in the list for operators (--curve-admins)")
        case .protocolError?, .failed?:
            return .handshakeRefused(endpoint: endpoint, "the handshake with \(endpoint) failed: it requires CURVE (give --curve-server FILE.pub --curve-key FILE.key), or does not use it, or --curve-server is not its key")
        default:
            return .noAnswer(endpoint: endpoint, timeoutMs: timeoutMs)
        }
    }

    /// A call whose answer is decoded as `T`.
    public func call<T: Decodable>(
        _ request: AdminRequest, expecting: T.Type, timeoutMs: Int, stop: () -> Bool = { false }
    ) throws(AdminCallError) -> T {
        try AdminJSON.answer(T.self, try call(request, timeoutMs: timeoutMs, stop: stop))
    }
}
