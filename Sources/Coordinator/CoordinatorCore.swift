import Protocol
import Registry

/// What the coordinator must do outside itself after a decision (router calls are made through the `RouterCall`
/// it is handed).
public enum CoordinatorEffect: Equatable, Sendable {
    /// Write the rollout record.
    case persist(RolloutRecord)
    /// Tell the operator.
    case log(LogLevel, String)
}

/// The coordinator's decisions without sockets or clocks: operator requests and the router's status in, router
/// calls, answers and effects out. `CoordinatorService` is the socket loop around it; tests drive it with an
/// in-memory router.
///
/// Which admin operations pass when: `split`, `shadow`, `window_reset`, `drain` and `load` go through to the router
/// only while no rollout is active (a rollout owns the traffic split, the judging window and worker loads); `pin`
/// and `unpin` likewise; `load` never with a registry (workers run its live version); `rollout`, `pause`, `resume`
/// and `rollback` drive the `RolloutMachine`. Outside a rollout the split and the shadow are the operator's: a tick
/// puts back only what an active rollout (or a rollback still moving workers) wants.
public struct CoordinatorCore {
    /// One call to the router's control socket: the answer's bytes, or nil when it did not answer.
    public typealias RouterCall = (AdminRequest) -> [UInt8]?

    public private(set) var machine: RolloutMachine
    /// Where versions are loaded from (nil: status and pins only).
    public let registry: Registry?
    /// Worker names the supervisor runs (`w1`...), so status can say `starting` or `dead` for missing ones.
    public let expectedWorkers: [String]
    /// Worker names seen live at least once (a missing one is then `dead`, not `starting`).
    private var seenNames: Set<String> = []
    /// The last shadow figures the router reported (kept after the shadow stage ends, for status).
    private var lastShadow: ShadowFigures?

    public init(record: RolloutRecord, registry: Registry?, expectedWorkers: [String] = []) {
        machine = RolloutMachine(record: record)
        self.registry = registry
        self.expectedWorkers = expectedWorkers
    }

    // MARK: - Observing

    /// One observation of the pool: ask the router's status, judge and move the rollout, put back what a restarted
    /// router lost (split, shadow, window).
    public mutating func tick(now: Double, router: RouterCall) -> [CoordinatorEffect] {
        guard let status = routerStatus(router) else { return [] }
        for w in status.workers { seenNames.insert(w.name) }
        if let shadow = status.shadow { lastShadow = shadow }
        // Without a registry there is nothing to load versions from: status and pins only.
        guard registry != nil else { return [] }
        var effects = perform(machine.observe(PoolObservation(status, now: now)), router: router)
        // The router may have restarted (it then has no split and no shadow): put back what the rollout says, while
        // a rollout owns them (after a rollback, until every worker is back on the live version); otherwise they are
        // the operator's (pin, split, shadow).
        let stable = machine.record.stable
        let rollingBack = machine.record.state == .rolledBack && status.workers.contains { $0.version != stable }
        guard machine.isActive || rollingBack else { return effects }
        if let split = machine.desiredSplit {
            let same = status.split.count == split.count
                && split.allSatisfy { abs((status.split[$0.key] ?? -1) - $0.value) < 1e-9 }
            if !same {
                effects.append(.log(.info, "restoring the traffic split \(split.sorted { $0.key < $1.key })"))
                effects += perform([.split(split)], router: router)
            }
        }
        if status.shadow?.version != machine.desiredShadow {
            effects += perform([.shadow(machine.desiredShadow)], router: router)
        }
        return effects
    }

    private func routerStatus(_ router: RouterCall) -> PoolStatus? {
        guard let bytes = router(.status) else { return nil }
        return try? AdminJSON.answer(PoolStatus.self, bytes)
    }

    /// Carries out the machine's actions: router calls here, persistence and logs as effects.
    private mutating func perform(_ actions: [RolloutAction], router: RouterCall) -> [CoordinatorEffect] {
        var effects: [CoordinatorEffect] = []
        var persist = false
        for action in actions {
            switch action {
            case .split(let weights):
                if let error = refusal(router(.split(weights: weights))) {
                    effects.append(.log(.warning, "split refused by the router: \(error)"))
                }
            case .shadow(let version):
                if let error = refusal(router(.shadow(version: version))) {
                    effects.append(.log(.warning, "shadow refused by the router: \(error)"))
                }
            case .resetWindow:
                // The stage is judged only on the window this opens; when the call is lost the next tick asks again.
                guard let bytes = router(.windowReset), let reply = try? AdminJSON.answer(AdminReply.self, bytes),
                    let epoch = reply.epoch
                else {
                    effects.append(.log(.warning, "the router did not open a judging window; asking again next tick"))
                    continue
                }
                persist = !machine.windowOpened(epoch).isEmpty || persist
            case .load(let worker, let version):
                // A version name only: the worker resolves it in its registry folder.
                if let error = refusal(router(.load(worker: worker, LoadOrder(version: version)))) {
                    machine.loadNotDelivered(worker: worker)
                    effects.append(.log(.warning, "load of \(version) on \(worker) not delivered: \(error)"))
                }
            case .persist:
                persist = true
            case .log(let level, let line):
                effects.append(.log(level, line))
            }
        }
        if persist { effects.append(.persist(machine.record)) }
        return effects
    }

    /// The refusal an answer carries (or "no answer"), nil when it is not one.
    private func refusal(_ bytes: [UInt8]?) -> String? {
        guard let bytes else { return "no answer" }
        do {
            _ = try AdminJSON.answer(AdminReply.self, bytes)
            return nil
        } catch {
            return error.description
        }
    }

    // MARK: - Operator requests

    /// Answers one admin request body (JSON). A `metrics` request is the caller's to answer (it owns the Prometheus
    /// registry): the answer is then nil.
    public mutating func admin(
        _ body: [UInt8], now: Double, router: RouterCall
    ) -> (answer: [UInt8]?, effects: [CoordinatorEffect]) {
        let request: AdminRequest
        do {
            request = try AdminJSON.request(body)
        } catch {
            return (AdminJSON.encode(AdminReply.refusal(error.code, error.description)), [])
        }
        switch request {
        case .status:
            guard let status = status(router: router) else { return (unavailable, []) }
            return (AdminJSON.encode(status), [])
        case .metrics:
            return (nil, [])
        case .rollout(let r):
            return rollout(r, now: now, router: router)
        case .pause:
            return command(router: router) { m throws(RolloutError) in try m.pause(now: now) }
        case .resume:
            return command(router: router) { m throws(RolloutError) in try m.resume(now: now) }
        case .rollback:
            return command(router: router) { m throws(RolloutError) in try m.rollback(reason: "operator rollback", now: now) }
        case .pin, .unpin, .split, .shadow, .windowReset, .drain, .load:
            if machine.isActive {
                let what = request.op == .pin || request.op == .unpin ? "pinning" : "\(request.op.rawValue)"
                return (refuse(.conflict, "a rollout is \(machine.record.state.rawValue) and owns the traffic split, the judging window and worker loads; roll it back or let it finish before \(what)"), [])
            }
            if case .load = request {
                // Loads are the rollouts': with a registry, workers run its live version (rollout.json); without one
                // they serve the files they were started with.
                return registry != nil
                    ? (refuse(.conflict, "workers run the live version of the registry (rollout.json); change it with zrankctl rollout"), [])
                    : (refuse(.unavailable, "loads name registry versions; start the pool with --registry DIR --version NAME"), [])
            }
            // Version names were checked when the request was decoded (`VersionName`).
            var forward = request
            if case .pin(let version) = request { forward = .split(weights: [version: 1]) }
            if case .unpin = request { forward = .split(weights: [:]) }
            guard let answer = router(forward) else { return (unavailable, []) }
            return (answer, [])
        }
    }

    private var unavailable: [UInt8] { refuse(.unavailable, "the router does not answer") }

    private func refuse(_ code: AdminErrorCode, _ message: String) -> [UInt8] {
        AdminJSON.encode(AdminReply.refusal(code, message))
    }

    private mutating func rollout(_ r: RolloutRequest, now: Double, router: RouterCall) -> ([UInt8], [CoordinatorEffect]) {
        guard let registry else {
            return (refuse(.unavailable, "rollouts need a registry (zrank serve --registry DIR --version NAME)"), [])
        }
        let plan: RolloutPlan
        do {
            plan = try r.plan()
            // Cheap here (sizes against the manifest written when it was registered and verified); workers verify
            // checksums when they load it, and a failed load rolls back.
            try registry.quickCheck(plan.target)
        } catch let error as AdminMessageError {
            return (refuse(.invalidRequest, error.description), [])
        } catch let error as RegistryError {
            let code: AdminErrorCode = error.code == .notRegistered ? .notFound : error.code == .invalidName ? .invalidRequest : .conflict
            return (refuse(code, "cannot roll out \(r.version): \(error)"), [])
        } catch {
            return (refuse(.invalidRequest, "\(error)"), [])
        }
        guard let status = routerStatus(router) else { return (unavailable, []) }
        return command(router: router) { m throws(RolloutError) in try m.start(plan, workerCount: status.workers.count, now: now) }
    }

    /// Runs a machine command; answers the rollout after it, or its refusal.
    private mutating func command(
        router: RouterCall, _ body: (inout RolloutMachine) throws(RolloutError) -> [RolloutAction]
    ) -> ([UInt8], [CoordinatorEffect]) {
        let actions: [RolloutAction]
        do {
            actions = try body(&machine)
        } catch {
            let code: AdminErrorCode = error.code == .invalidPlan ? .invalidRequest : .conflict
            return (refuse(code, error.description), [])
        }
        let effects = perform(actions, router: router)
        var reply = AdminReply.ok
        reply.rollout = rolloutStatus
        return (AdminJSON.encode(reply), effects)
    }

    // MARK: - Status

    /// The rollout as status shows it.
    public var rolloutStatus: RolloutStatus {
        let r = machine.record
        return RolloutStatus(
            state: r.state, target: r.plan?.target ?? "", reason: r.reason, stable: r.stable, stage: r.stage, share: r.share,
            history: r.history, plan: r.plan)
    }

    /// The router's view, with workers the router does not see (starting, dead) and the rollout added.
    public mutating func status(router: RouterCall) -> PoolStatus? {
        guard var status = routerStatus(router) else { return nil }
        for w in status.workers { seenNames.insert(w.name) }
        let live = Set(status.workers.map(\.name))
        for name in expectedWorkers where !live.contains(name) {
            status.workers.append(
                WorkerStatus(id: "", name: name, version: "", state: seenNames.contains(name) ? .dead : .starting, inFlight: 0))
        }
        status.rollout = rolloutStatus
        if status.shadow == nil, machine.record.plan?.shadowSeconds ?? 0 > 0, let lastShadow,
            lastShadow.version == machine.record.plan?.target
        {
            status.shadow = lastShadow
        }
        status.coordinator = CoordinatorInfo(
            registry: registry?.root.path ?? "", expectedWorkers: expectedWorkers, judgedEpoch: machine.judgedEpoch ?? 0)
        return status
    }
}
