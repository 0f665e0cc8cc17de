/// What an operator asks for with `zrankctl rollout VERSION ...`.
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
        if minRequests < 1 { return "--min-requests must be at least 1" }
        if !(shadowSeconds >= 0 && shadowSeconds.isFinite) { return "--shadow must be a duration" }
        return nil
    }
}

/// Where a rollout stands.
public enum RolloutState: String, Codable, Sendable {
    case idle, running, paused, done
    case rolledBack = "rolled_back"
}

/// Which part of a running rollout.
public enum RolloutStage: String, Codable, Sendable {
    /// The new version scores copies of live requests on one worker; it answers none.
    case shadow
    /// The new version serves `canary` of the traffic.
    case canary
    /// Later steps, `step` more each time, up to 100%.
    case step
    case none
}

/// The rollout as persisted next to the registry (`rollout.json`): enough to resume after a coordinator restart.
public struct RolloutRecord: Codable, Equatable, Sendable {
    public var state: RolloutState = .idle
    /// What every worker runs when no rollout moves them (the target once a rollout is done).
    public var stable: String
    public var plan: RolloutPlan?
    public var stage: RolloutStage = .none
    /// The new version's share of unpinned traffic now (0-1).
    public var share = 0.0
    /// Seconds since 1970 when the current stage started (wall clock, so a restarted coordinator resumes).
    public var stageStartedAt = 0.0
    /// Why the rollout ended the way it did (rollback reason, "completed", ...).
    public var reason = ""
    /// The live version's last p99 measured while it had traffic (the p99 bound when it no longer has any).
    public var baselineP99Ms: Double?
    /// The decisions taken, oldest first (bounded).
    public var history: [String] = []

    public init(stable: String) { self.stable = stable }

    enum CodingKeys: String, CodingKey {
        case state, stable, plan, stage, share, reason, history
        case stageStartedAt = "stage_started_at"
        case baselineP99Ms = "baseline_p99_ms"
    }
}

/// A worker as the coordinator sees it through the router.
public struct WorkerSnapshot: Equatable, Sendable {
    /// The router's identity for it (what `load` names).
    public var id: String
    /// The id it announced.
    public var name: String
    public var version: String
    /// ready | draining | loading | warming
    public var state: String

    public init(id: String, name: String, version: String, state: String) {
        self.id = id
        self.name = name
        self.version = version
        self.state = state
    }
}

/// Per-version figures over the router's current judging window.
public struct WindowFigures: Equatable, Sendable {
    public var requests: Int
    public var errors: Int
    public var p99Ms: Double

    public init(requests: Int, errors: Int, p99Ms: Double) {
        self.requests = requests
        self.errors = errors
        self.p99Ms = p99Ms
    }

    public var errorRate: Double { requests > 0 ? Double(errors) / Double(requests) : 0 }
}

/// What the coordinator observed of the pool at one moment.
public struct PoolObservation: Equatable, Sendable {
    public var workers: [WorkerSnapshot]
    public var window: [String: WindowFigures]
    /// Shadow answers compared and shadow errors, when shadow scoring runs.
    public var shadowCompared = 0
    public var shadowErrors = 0
    /// Seconds since 1970.
    public var now: Double

    public init(workers: [WorkerSnapshot], window: [String: WindowFigures], now: Double) {
        self.workers = workers
        self.window = window
        self.now = now
    }
}

/// What the coordinator must do after a decision.
public enum RolloutAction: Equatable, Sendable {
    /// Set the router's traffic split (empty: by worker count).
    case split([String: Double])
    /// Start (version) or stop (nil) shadow scoring.
    case shadow(String?)
    /// Start a new judging window.
    case resetWindow
    /// Drain a worker and load a version on it.
    case load(worker: String, version: String)
    /// Write the record.
    case persist
    /// Tell the operator (log line).
    case log(String)
}

/// Why a rollout command was refused.
public struct RolloutError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The rollout state machine: operator commands and pool observations in, actions out; no sockets, no clocks of
/// its own, so every rule (steps, thresholds, rollback, one worker at a time, restarts) is testable without I/O.
///
/// Workers move one at a time: the machine asks for a load only when no worker is draining, loading or warming.
/// The number of workers on the new version follows the share: at least one while the rollout runs, at least one
/// left on the live version until the share reaches 100%.
public struct RolloutMachine: Sendable {
    public private(set) var record: RolloutRecord
    /// A load asked for and not yet seen through: (worker id, version, when).
    private var pendingLoad: (worker: String, version: String, since: Double)?
    /// Workers seen serving the new version during this rollout (id → name): one that vanishes died on it.
    private var onTarget: [String: String] = [:]
    /// Seconds a load may take before it counts as failed.
    public var loadTimeoutSeconds = 120.0

    public init(record: RolloutRecord) {
        self.record = record
    }

    /// Whether a rollout is under way (running or paused).
    public var isActive: Bool { record.state == .running || record.state == .paused }

    /// The traffic split the router should have now (nil: not the rollout's to say; operators may pin).
    public var desiredSplit: [String: Double]? {
        switch record.state {
        case .running, .paused:
            guard let target = record.plan?.target else { return nil }
            if record.stage == .shadow { return [record.stable: 1] }
            return record.share >= 1 ? [target: 1] : [record.stable: 1 - record.share, target: record.share]
        case .rolledBack:
            return [record.stable: 1]
        case .idle, .done:
            return nil
        }
    }

    /// The version the router should shadow-score now (nil: none).
    public var desiredShadow: String? { isActive && record.stage == .shadow ? record.plan?.target : nil }

    // MARK: - Operator commands

    /// Starts rolling `plan.target` out over `workerCount` live workers.
    public mutating func start(_ plan: RolloutPlan, workerCount: Int, now: Double) throws(RolloutError) -> [RolloutAction] {
        if isActive {
            throw RolloutError("a rollout to \(record.plan?.target ?? "?") is \(record.state.rawValue); roll it back or let it finish first")
        }
        if let problem = plan.problem { throw RolloutError(problem) }
        if plan.target == record.stable { throw RolloutError("\(plan.target) is already the live version") }
        if workerCount < 1 { throw RolloutError("no live worker to roll out to") }
        if plan.shadowSeconds > 0 && workerCount < 2 {
            throw RolloutError("shadow scoring needs at least 2 workers (one scores copies while the others answer)")
        }
        var r = RolloutRecord(stable: record.stable)
        r.state = .running
        r.plan = plan
        r.history = Array(record.history.suffix(40))
        record = r
        pendingLoad = nil
        onTarget = [:]
        let started = note("rollout of \(plan.target) started (live: \(record.stable))")
        if plan.shadowSeconds > 0 {
            return [started] + enter(.shadow, share: 0, now: now)
        }
        return [started] + enter(.canary, share: plan.canary, now: now)
    }

    /// Stops moving (traffic stays split as it is; a restarted worker still gets the version it should have).
    public mutating func pause(now: Double) throws(RolloutError) -> [RolloutAction] {
        guard record.state == .running else { throw RolloutError("no running rollout to pause (state: \(record.state.rawValue))") }
        record.state = .paused
        return [note("rollout paused at \(percent(record.share))"), .persist]
    }

    /// Resumes a paused rollout; the current step's interval starts again.
    public mutating func resume(now: Double) throws(RolloutError) -> [RolloutAction] {
        guard record.state == .paused else { throw RolloutError("no paused rollout to resume (state: \(record.state.rawValue))") }
        record.state = .running
        record.stageStartedAt = now
        return [note("rollout resumed at \(percent(record.share))"), .resetWindow, .persist]
    }

    /// Rolls back: all traffic to the live version at once, then its workers move back one at a time.
    public mutating func rollback(reason: String, now: Double) throws(RolloutError) -> [RolloutAction] {
        guard isActive else { throw RolloutError("no rollout to roll back (state: \(record.state.rawValue))") }
        return rollBack(reason, now: now)
    }

    // MARK: - Observations

    /// Judges the new version, moves the rollout on, and moves workers towards where they should be.
    public mutating func observe(_ o: PoolObservation) -> [RolloutAction] {
        var actions: [RolloutAction] = []
        actions += followLoad(o)
        if isActive, let target = record.plan?.target {
            // A worker that served the new version and vanished died on it.
            let live = Set(o.workers.map(\.id))
            if let dead = onTarget.first(where: { !live.contains($0.key) }) {
                actions += rollBack("worker \(dead.value) died while serving \(target)", now: o.now)
            }
            for w in o.workers where w.version == target { onTarget[w.id] = w.name }
        } else {
            onTarget = [:]
        }
        // Judged while running and while paused (a paused bad canary still rolls back); moved on only when running.
        if isActive, let plan = record.plan {
            if let reason = verdict(o, plan) {
                actions += rollBack(reason, now: o.now)
            } else if record.state == .running {
                actions += advance(o, plan)
            }
        }
        if let p99 = liveP99(o) { record.baselineP99Ms = p99 }
        actions += reconcile(o)
        return actions
    }

    /// Workers that should run the new version now.
    public func desiredTargetWorkers(of n: Int) -> Int {
        guard isActive, n > 0 else { return 0 }
        if record.share >= 1 { return n }
        let wanted = Int((record.share * Double(n)).rounded(.up))
        return max(1, min(n - 1, wanted))
    }

    // MARK: - Internals

    private func percent(_ share: Double) -> String {
        let p = share * 100
        return p == p.rounded() ? "\(Int(p))%" : String(format: "%.1f%%", p)
    }

    private mutating func note(_ line: String) -> RolloutAction {
        record.history.append(line)
        if record.history.count > 50 { record.history.removeFirst(record.history.count - 50) }
        return .log(line)
    }

    private mutating func enter(_ stage: RolloutStage, share: Double, now: Double) -> [RolloutAction] {
        guard let target = record.plan?.target else { return [] }
        record.stage = stage
        record.share = min(1, share)
        record.stageStartedAt = now
        let line = stage == .shadow
            ? "shadow: \(target) scores copies of live requests" : "\(stage.rawValue): \(target) gets \(percent(record.share)) of traffic"
        return [.resetWindow, .split(desiredSplit ?? [:]), .shadow(desiredShadow), note(line), .persist]
    }

    /// The live version's p99 in this window, when it has enough answers to mean something.
    private func liveP99(_ o: PoolObservation) -> Double? {
        guard let w = o.window[record.stable], w.requests >= 20, w.p99Ms > 0 else { return nil }
        return w.p99Ms
    }

    /// A reason to roll back, or nil.
    private func verdict(_ o: PoolObservation, _ plan: RolloutPlan) -> String? {
        if record.stage == .shadow {
            let answered = o.shadowCompared + o.shadowErrors
            guard answered >= plan.minRequests else { return nil }
            let rate = Double(o.shadowErrors) / Double(answered)
            if rate > plan.maxErrorRate {
                return String(format: "shadow error rate %.2f%% > %.2f%% after %d requests", rate * 100, plan.maxErrorRate * 100, answered)
            }
            return nil
        }
        guard let w = o.window[plan.target], w.requests >= plan.minRequests else { return nil }
        if w.errorRate > plan.maxErrorRate {
            return String(
                format: "error rate %.2f%% > %.2f%% after %d requests on %@", w.errorRate * 100, plan.maxErrorRate * 100,
                w.requests, plan.target)
        }
        let bound = plan.maxP99Ms ?? (liveP99(o) ?? record.baselineP99Ms).map { 3 * $0 }
        if let bound, w.p99Ms > bound {
            let why = plan.maxP99Ms != nil ? "--max-p99" : "3× the live p99"
            return String(format: "p99 %.2f ms > %.2f ms (%@) after %d requests on %@", w.p99Ms, bound, why, w.requests, plan.target)
        }
        return nil
    }

    /// Moves to the next stage when the workers are in place, the stage has lasted long enough and the new version
    /// has answered enough requests to be judged.
    private mutating func advance(_ o: PoolObservation, _ plan: RolloutPlan) -> [RolloutAction] {
        let onTarget = o.workers.filter { $0.version == plan.target && $0.state == "ready" }.count
        guard settled(o), onTarget >= desiredTargetWorkers(of: o.workers.count) else { return [] }
        let elapsed = o.now - record.stageStartedAt
        switch record.stage {
        case .shadow:
            // Long enough and judged on enough copies (a slow version gets few: it waits here).
            guard elapsed >= plan.shadowSeconds, o.shadowCompared + o.shadowErrors >= plan.minRequests else { return [] }
            return enter(.canary, share: plan.canary, now: o.now)
        case .canary, .step:
            guard elapsed >= plan.intervalSeconds, (o.window[plan.target]?.requests ?? 0) >= plan.minRequests else {
                return []
            }
            if record.share >= 1 {
                record.state = .done
                record.stage = .none
                record.stable = plan.target
                record.reason = "completed"
                return [.split([:]), note("rollout of \(plan.target) done: every worker serves it"), .persist]
            }
            return enter(.step, share: record.share + plan.step, now: o.now)
        case .none:
            return []
        }
    }

    private mutating func rollBack(_ reason: String, now: Double) -> [RolloutAction] {
        let target = record.plan?.target ?? "?"
        record.state = .rolledBack
        record.stage = .none
        record.share = 0
        record.reason = reason
        record.stageStartedAt = now
        return [.shadow(nil), .split(desiredSplit ?? [:]), note("rolled back \(target) to \(record.stable): \(reason)"), .persist]
    }

    /// No worker between versions.
    private func settled(_ o: PoolObservation) -> Bool {
        pendingLoad == nil && !o.workers.contains { $0.state != "ready" }
    }

    /// Notices when the load asked for is through (or failed).
    private mutating func followLoad(_ o: PoolObservation) -> [RolloutAction] {
        guard let p = pendingLoad else { return [] }
        guard let w = o.workers.first(where: { $0.id == p.worker }) else {
            pendingLoad = nil
            // Dying while loading the new version fails the rollout; otherwise the restart is reconciled.
            if isActive && p.version == record.plan?.target {
                return rollBack("worker \(p.worker) died while loading \(p.version)", now: o.now)
            }
            return []
        }
        if w.state == "ready" && w.version == p.version {
            pendingLoad = nil
            return [.log("worker \(w.name) now serves \(p.version)")]
        }
        let failed = (w.state == "ready" && o.now - p.since > 2) || o.now - p.since > loadTimeoutSeconds
        guard failed else { return [] }
        pendingLoad = nil
        let reason = "worker \(w.name) failed to load \(p.version) (still on \(w.version))"
        if isActive && p.version == record.plan?.target {
            return rollBack(reason, now: o.now)
        }
        return [.log(reason)]
    }

    /// Asks for one load when a worker runs the wrong version and none is between versions.
    private mutating func reconcile(_ o: PoolObservation) -> [RolloutAction] {
        guard settled(o), !o.workers.isEmpty else { return [] }
        let target = isActive ? record.plan?.target : nil
        let desired = desiredTargetWorkers(of: o.workers.count)
        let onTarget = target.map { t in o.workers.filter { $0.version == t } } ?? []
        var pick: (WorkerSnapshot, String)?
        if let target, onTarget.count < desired {
            if let w = o.workers.first(where: { $0.version != target && $0.version != record.stable })
                ?? o.workers.first(where: { $0.version != target })
            {
                pick = (w, target)
            }
        } else if onTarget.count > desired, let w = onTarget.last {
            pick = (w, record.stable)
        } else if let w = o.workers.first(where: { $0.version != record.stable && $0.version != target }) {
            pick = (w, record.stable)
        }
        guard let (w, version) = pick else { return [] }
        pendingLoad = (w.id, version, o.now)
        return [.load(worker: w.id, version: version), .log("moving worker \(w.name) from \(w.version) to \(version)")]
    }
}
