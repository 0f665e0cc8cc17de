import Protocol
import Registry

/// What the coordinator observed of the pool at one moment (read off the router's status).
public struct PoolObservation: Equatable, Sendable {
    /// The workers the router sees, by announced name.
    public var workers: [WorkerStatus]
    /// Per-version figures of the router's current judging window.
    public var window: [String: VersionFigures]
    /// That window's epoch.
    public var windowEpoch: UInt64
    /// Shadow answers compared and shadow errors, when shadow scoring runs.
    public var shadowCompared = 0
    public var shadowErrors = 0
    /// Seconds since 1970.
    public var now: Double

    public init(workers: [WorkerStatus], window: [String: VersionFigures], windowEpoch: UInt64, now: Double) {
        self.workers = workers
        self.window = window
        self.windowEpoch = windowEpoch
        self.now = now
    }

    /// What the router's status says.
    public init(_ status: PoolStatus, now: Double) {
        self.init(workers: status.workers, window: status.window, windowEpoch: status.windowEpoch, now: now)
        shadowCompared = status.shadow?.requests ?? 0
        shadowErrors = status.shadow?.errors ?? 0
    }
}

/// How loud a log line is.
public enum LogLevel: Sendable, Equatable {
    case info, warning, error
}

/// What the coordinator must do after a decision.
public enum RolloutAction: Equatable, Sendable {
    /// Set the router's traffic split (empty: by worker count).
    case split([String: Double])
    /// Start (version) or stop (nil) shadow scoring.
    case shadow(String?)
    /// Open a new judging window on the router and report its epoch back (`windowOpened`).
    case resetWindow
    /// Drain a worker (by its announced name) and load a version on it.
    case load(worker: String, version: String)
    /// Write the record.
    case persist
    /// Tell the operator.
    case log(LogLevel, String)
}

/// Why a rollout command was refused: a code to match on and the message for the operator.
public struct RolloutError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kinds of refusal.
    public enum Code: Sendable, Equatable {
        /// A rollout is active (or none is, for pause/resume/rollback): the command does not fit the state.
        case conflict
        /// The plan's options are out of range.
        case invalidPlan
        /// The target is already live.
        case alreadyLive
        /// Not enough live workers for the plan.
        case notEnoughWorkers
        /// The target is not registered or does not verify.
        case badVersion
    }

    public let code: Code
    public let description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// The rollout state machine: operator commands and pool observations in, actions out; no sockets, no clocks of
/// its own, so every rule (steps, thresholds, rollback, one worker at a time, restarts) is testable without I/O.
///
/// Workers move one at a time: the machine asks for a load only when no worker is draining, loading or warming.
/// The number of workers on the new version follows the share: at least one while the rollout runs, at least one
/// left on the live version until the share reaches 100%.
public struct RolloutMachine: Sendable {
    public private(set) var record: RolloutRecord
    /// A load asked for and not yet seen through: (worker name, its socket identity then, version, when).
    private var pendingLoad: (worker: String, id: String, version: String, since: Double)?
    /// Every worker name seen, with when it was last in view: one seen within the grace time and missing now is
    /// expected back (a reconnect, a router restart), so nothing moves until it is back or the grace time is over.
    private var lastInView: [String: Double] = [:]
    /// Workers (by announced name) seen serving the new version during this rollout, with when each went missing
    /// (nil: present). One gone for longer than `graceSeconds`, or back on another version, died on it.
    private var onTarget: [String: Double?] = [:]
    /// Seconds a load may take before it counts as failed.
    public var loadTimeoutSeconds = 120.0
    /// Seconds a worker may be missing from the router's view (a router restart, a reconnect after a stall) before
    /// it counts as dead.
    public var graceSeconds = 10.0
    /// Worker deaths with requests in flight in one step's window (`VersionFigures.lost`) at which the new version
    /// rolls back: one stall past the liveness timeout is not a failing release, workers that keep dying are.
    public var maxLostPerWindow = 3

    public init(record: RolloutRecord) {
        self.record = record
    }

    /// Whether a rollout is under way (running or paused).
    public var isActive: Bool { record.isActive }

    /// The judging window the current stage is judged on (nil: a reset is due).
    public var judgedEpoch: UInt64? { record.windowEpoch }

    /// The router opened the window asked for by `.resetWindow`: the stage is judged on it from now on.
    public mutating func windowOpened(_ epoch: UInt64) -> [RolloutAction] {
        guard record.windowEpoch != epoch else { return [] }
        record.windowEpoch = epoch
        return [.persist]
    }

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
            throw RolloutError(.conflict, "a rollout to \(record.plan?.target ?? "?") is \(record.state.rawValue); roll it back or let it finish first")
        }
        if let problem = plan.problem { throw RolloutError(.invalidPlan, problem) }
        if plan.target == record.stable { throw RolloutError(.alreadyLive, "\(plan.target) is already the live version") }
        if workerCount < 1 { throw RolloutError(.notEnoughWorkers, "no live worker to roll out to") }
        if plan.shadowSeconds > 0 && workerCount < 2 {
            throw RolloutError(.notEnoughWorkers, "shadow scoring needs at least 2 workers (one scores copies while the others answer)")
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
        guard record.state == .running else { throw RolloutError(.conflict, "no running rollout to pause (state: \(record.state.rawValue))") }
        record.state = .paused
        return [note("rollout paused at \(percent(record.share))"), .persist]
    }

    /// Resumes a paused rollout; the current step's interval starts again.
    public mutating func resume(now: Double) throws(RolloutError) -> [RolloutAction] {
        guard record.state == .paused else { throw RolloutError(.conflict, "no paused rollout to resume (state: \(record.state.rawValue))") }
        record.state = .running
        record.stageStartedAt = now
        record.windowEpoch = nil
        return [note("rollout resumed at \(percent(record.share))"), .resetWindow, .persist]
    }

    /// Rolls back: all traffic to the live version at once, then its workers move back one at a time.
    public mutating func rollback(reason: String, now: Double) throws(RolloutError) -> [RolloutAction] {
        guard isActive else { throw RolloutError(.conflict, "no rollout to roll back (state: \(record.state.rawValue))") }
        return rollBack(reason, now: now)
    }

    // MARK: - Observations

    /// Judges the new version, moves the rollout on, and moves workers towards where they should be.
    ///
    /// The window figures count only when they are of the window this stage opened (`judgedEpoch`); otherwise (a
    /// lost reset, a restarted router) a reset is asked for again and nothing is judged on them.
    public mutating func observe(_ o: PoolObservation) -> [RolloutAction] {
        var actions: [RolloutAction] = []
        actions += followLoad(o)
        if isActive, let target = record.plan?.target {
            actions += watchTargetWorkers(o, target: target)
        } else {
            onTarget = [:]
        }
        let windowValid = record.windowEpoch != nil && record.windowEpoch == o.windowEpoch
        if isActive && !windowValid {
            record.windowEpoch = nil
            actions.append(.resetWindow)
        }
        // Judged while running and while paused (a paused bad canary still rolls back); moved on only when running.
        if isActive, windowValid || record.stage == .shadow, let plan = record.plan {
            if let reason = verdict(o, plan) {
                actions += rollBack(reason, now: o.now)
            } else if record.state == .running {
                actions += advance(o, plan)
            }
        }
        if windowValid || !isActive, let p99 = liveP99(o) { record.baselineP99Ms = p99 }
        // While a worker seen within the grace time is out of view, nothing moves: the pool it would be judged
        // against is not all there (a reconnect, a router restart); one gone for longer has left the pool.
        for w in o.workers { lastInView[w.name] = o.now }
        lastInView = lastInView.filter { o.now - $0.value <= graceSeconds }
        let present = Set(o.workers.map(\.name))
        if lastInView.keys.allSatisfy(present.contains) { actions += reconcile(o) }
        return actions
    }

    /// A worker that served the new version and then stays gone past the grace time, or comes back on another
    /// version without being moved, died on it. Names, not socket identities: a reconnect is the same worker.
    private mutating func watchTargetWorkers(_ o: PoolObservation, target: String) -> [RolloutAction] {
        var byName: [String: WorkerStatus] = [:]
        for w in o.workers { byName[w.name] = w }
        for name in onTarget.keys.sorted() {
            if let w = byName[name] {
                onTarget[name] = .some(nil)
                if w.version != target && pendingLoad?.worker != name {
                    return rollBack("worker \(name) died while serving \(target) (it came back on \(w.version))", now: o.now)
                }
            } else {
                let since = onTarget[name].flatMap { $0 } ?? o.now
                onTarget[name] = .some(since)
                if o.now - since > graceSeconds {
                    return rollBack("worker \(name) died while serving \(target) (gone for \(Int(o.now - since)) s)", now: o.now)
                }
            }
        }
        for w in o.workers where w.version == target && onTarget[w.name] == nil { onTarget[w.name] = .some(nil) }
        return []
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

    private mutating func note(_ line: String, _ level: LogLevel = .info) -> RolloutAction {
        record.history.append(line)
        if record.history.count > 50 { record.history.removeFirst(record.history.count - 50) }
        return .log(level, line)
    }

    private mutating func enter(_ stage: RolloutStage, share: Double, now: Double) -> [RolloutAction] {
        guard let target = record.plan?.target else { return [] }
        record.stage = stage
        record.share = min(1, share)
        record.stageStartedAt = now
        record.windowEpoch = nil
        let line = stage == .shadow
            ? "shadow: \(target) scores copies of live requests" : "\(stage.rawValue): \(target) gets \(percent(record.share)) of traffic"
        // The split first, then the window: the new window counts only traffic under the new split.
        return [.split(desiredSplit ?? [:]), .shadow(desiredShadow), .resetWindow, note(line), .persist]
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
        if let w = o.window[plan.target], w.lost >= maxLostPerWindow {
            return "\(w.lost) \(plan.target) workers died with requests in flight in this step"
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
        let onTarget = o.workers.filter { $0.version == plan.target && $0.state == .ready }.count
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
                record.windowEpoch = nil
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
        record.windowEpoch = nil
        onTarget = [:]
        return [.shadow(nil), .split(desiredSplit ?? [:]), note("rolled back \(target) to \(record.stable): \(reason)", .error), .persist]
    }

    /// No worker between versions.
    private func settled(_ o: PoolObservation) -> Bool {
        pendingLoad == nil && !o.workers.contains { $0.state != .ready }
    }

    /// Notices when the load asked for is through (or failed). The worker is followed by name: a reconnect while
    /// it loads is the same worker; one gone past the grace time died.
    private mutating func followLoad(_ o: PoolObservation) -> [RolloutAction] {
        guard let p = pendingLoad else { return [] }
        let onNewVersion = isActive && p.version == record.plan?.target
        guard let w = o.workers.first(where: { $0.name == p.worker }) else {
            guard o.now - p.since > graceSeconds else { return [] }
            pendingLoad = nil
            // Dying while loading the new version fails the rollout; otherwise the restart is reconciled.
            if onNewVersion { return rollBack("worker \(p.worker) died while loading \(p.version)", now: o.now) }
            return [.log(.warning, "worker \(p.worker) vanished while loading \(p.version)")]
        }
        if w.state == .ready && w.version == p.version {
            pendingLoad = nil
            if p.version != record.plan?.target { onTarget[w.name] = nil }
            return [.log(.info, "worker \(w.name) now serves \(p.version)")]
        }
        if w.id != p.id && w.version != p.version {
            // It reconnected (a router restart, a stall) before the load went through: the router that had the order
            // may be gone, so the order is given again rather than judged failed.
            pendingLoad = (w.name, w.id, p.version, o.now)
            return [.load(worker: w.name, version: p.version), .log(.info, "worker \(w.name) reconnected before loading \(p.version); ordering the load again")]
        }
        let failed = (w.state == .ready && o.now - p.since > 2) || o.now - p.since > loadTimeoutSeconds
        guard failed else { return [] }
        pendingLoad = nil
        let reason = "worker \(w.name) failed to load \(p.version) (still on \(w.version))"
        if onNewVersion { return rollBack(reason, now: o.now) }
        return [.log(.warning, reason)]
    }

    /// The router refused the load order or did not answer: forget it (the next observation orders what is still
    /// needed) instead of judging it failed.
    public mutating func loadNotDelivered(worker: String) {
        if pendingLoad?.worker == worker { pendingLoad = nil }
    }

    /// Asks for one load when a worker runs the wrong version and none is between versions.
    private mutating func reconcile(_ o: PoolObservation) -> [RolloutAction] {
        guard settled(o), !o.workers.isEmpty else { return [] }
        let target = isActive ? record.plan?.target : nil
        let desired = desiredTargetWorkers(of: o.workers.count)
        let onTarget = target.map { t in o.workers.filter { $0.version == t } } ?? []
        var pick: (WorkerStatus, String)?
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
        pendingLoad = (w.name, w.id, version, o.now)
        return [.load(worker: w.name, version: version), .log(.info, "moving worker \(w.name) from \(w.version) to \(version)")]
    }
}
