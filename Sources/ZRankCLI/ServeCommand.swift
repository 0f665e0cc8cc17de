import ArgumentParser
import CLISupport
import CSystem
import Foundation
import Logging
import Coordinator
import Model
import Protocol
import Ranking
import Registry

#if canImport(Glibc)
import Glibc
#endif

extension ZRank {
    /// `zrank serve --model FILE.zrm --index FILE.zri --workers N --bind ENDPOINT [--backend ENDPOINT]`, or
    /// `zrank serve --registry DIR --version NAME --workers N --bind ENDPOINT [--admin ENDPOINT] [--metrics HOST:PORT]`
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a router, N worker processes and the coordinator; restart crashed ones, drain on SIGTERM/SIGINT.",
            discussion: """
                Serve a model and index (--model, --index) or a registry version (--registry, --version). In registry \
                mode the coordinator runs rollouts (zrankctl rollout) and keeps its state in DIR/rollout.json; a \
                finished rollout's version is what a later `serve` starts.
                """)

        @OptionGroup var ranking: RankingOptions

        @Option(name: .long, help: "A model registry folder (with --version: the registry name to serve).")
        var registry: String?

        @Option(name: .long, help: "Worker processes.")
        var workers: Int = 2

        @Option(name: .long, help: "Client endpoint to bind (tcp:// or ipc://).")
        var bind: String

        @Option(name: .long, help: "Worker endpoint (default: an ipc socket in a private runtime folder).")
        var backend: String?

        @Option(name: .long, help: "Admin endpoint for zrankctl (default: an ipc socket in the runtime folder, printed at start).")
        var admin: String?

        @Option(name: .long, help: "Version name workers announce (default: the model's); with --registry, the version to serve.")
        var version: String?

        @Option(name: .long, help: "Serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (default: off).")
        var metrics: String?

        @Option(name: .long, help: "Ranking heads (zrank train-heads) with --model/--index; in registry mode a version's heads.json is used.")
        var heads: String?

        @OptionGroup var routerOptions: RouterOptions
        @OptionGroup var curve: CurveServerOptions
        @OptionGroup var faultOptions: FaultOptions

        func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
            if registry != nil {
                guard version != nil else { throw ValidationError("--registry needs --version NAME") }
                guard ranking.model == nil, ranking.index == nil, heads == nil else {
                    throw ValidationError("give either --registry/--version or --model/--index [--heads]")
                }
            } else {
                guard ranking.model != nil, ranking.index != nil else {
                    throw ValidationError("give --model and --index (or --registry and --version)")
                }
            }
            try validateEndpoint(bind, "--bind")
            if let backend { try validateEndpoint(backend, "--backend") }
            if let admin { try validateEndpoint(admin, "--admin") }
            if let metrics { try validateHostPort(metrics, "--metrics") }
        }

        func run() throws {
            CSystem_install_stop_handlers()
            let logger = makeLogger("zrank.serve")
            var modelPath = ranking.model ?? ""
            var indexPath = ranking.index ?? ""
            var version = self.version
            if let registry, let asked = version {
                do {
                    let r = try Registry(path: registry)
                    // A finished (or rolled back) rollout says which version is live now.
                    let live = try LiveVersion.resolve(in: r, asked: asked)
                    if let overridden = live.overrides {
                        logger.warning(
                            "the rollout record names another live version; serving it",
                            metadata: ["asked": "\(overridden)", "serving": "\(live.name)",
                                       "rollout.state": "\(live.rolloutState?.rawValue ?? "-")"])
                    }
                    modelPath = r.modelPath(live.name)
                    indexPath = r.indexPath(live.name)
                    version = live.name
                } catch {
                    throw CLIFailure("zrank serve: \(error)")
                }
            }
            // Fail fast, in the supervisor, on a bad model, index or heads.
            let file = try loadModel(modelPath, command: "serve")
            do {
                let index = try CatalogIndex(path: indexPath, model: file)
                if let heads { _ = try Ranker(model: file, index: index, heads: try RankingHeads.load(heads)) }
            } catch {
                throw CLIFailure("zrank serve: \(error)")
            }
            let backendEndpoint = try backend ?? defaultBackendEndpoint()
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            let adminEndpoint = try admin ?? runtimeEndpoint("admin")
            let routerControl = try runtimeEndpoint("router-control")
            // Children get every option as --name=value, so a value that starts with "-" stays a value.
            let routerArgs = ["router"] + childOptions([
                ("bind", bind), ("backend", backendEndpoint), ("control", routerControl),
                ("queue-bound", "\(routerOptions.queueBound)"), ("deadline-ms", "\(routerOptions.deadlineMs)"),
                ("queue-bytes", "\(routerOptions.queueBytes)"),
                ("curve-key", curve.curveKey), ("curve-clients", curve.curveClients), ("curve-workers", curve.curveWorkers),
                ("curve-admins", curve.curveAdmins),
            ])
            // CURVE: the children use the server's own key where they connect over tcp (the router admits it
            // everywhere); its public half goes to the runtime folder for them.
            var serverPublic: String?
            if let (keys, _) = try curve.keys(), backendEndpoint.hasPrefix("tcp://") {
                let path = try RuntimeFolder().path + "/server.pub"
                try? FileManager.default.removeItem(atPath: path)
                guard FileManager.default.createFile(atPath: path, contents: Data("\(keys.own.publicKey.z85)\n".utf8)) else {
                    throw CLIFailure("zrank serve: cannot write \(path)")
                }
                serverPublic = path
            }
            // In registry mode workers read the rollout record when they (re)start, so a restarted worker comes back
            // on the live version rather than the one `serve` was started with.
            var workerOptions: [(String, String?)] = registry.map { [("registry", $0)] }
                ?? [("model", modelPath), ("index", indexPath), ("heads", heads)]
            workerOptions += [
                ("connect", backendEndpoint), ("max-candidates", "\(ranking.maxCandidates)"),
                ("max-query-bytes", "\(ranking.maxQueryBytes)"), ("threads", "\(ranking.threads)"), ("version", version),
                ("query-cache", "\(ranking.queryCache)"), ("max-batch", "\(ranking.maxBatch)"),
                ("curve-server", serverPublic), ("curve-key", serverPublic == nil ? nil : curve.curveKey),
            ]
            let faults = faultOptions.faults
            workerOptions += [
                ("fault-stall-ms", faults.stallMs > 0 ? "\(faults.stallMs)" : nil),
                ("fault-fail-every", faults.failEvery > 0 ? "\(faults.failEvery)" : nil),
                ("fault-crash-after", faults.crashAfter > 0 ? "\(faults.crashAfter)" : nil),
                ("fault-version", faults.version),
                ("fault-pause-ms", faults.pauseMs > 0 ? "\(faults.pauseMs)" : nil),
                ("fault-pause-after", faults.pauseMs > 0 ? "\(faults.pauseAfter)" : nil),
            ]
            let workerArgs = ["worker"] + childOptions(workerOptions)
            let coordinatorArgs = ["coordinator"] + childOptions([
                ("admin", adminEndpoint), ("router-control", routerControl), ("version", version ?? file.version),
                ("expect-workers", "\(workers)"), ("registry", registry), ("metrics", metrics),
                ("curve-key", curve.curveKey), ("curve-admins", curve.curveKey == nil ? nil : curve.curveAdmins ?? curve.curveClients),
            ])
            var supervisor = Supervisor(executable: executable, logger: logger)
            supervisor.add(name: "router", arguments: routerArgs)
            for i in 0..<workers {
                supervisor.add(name: "worker-\(i + 1)", arguments: workerArgs + childOptions([("id", "w\(i + 1)")]))
            }
            supervisor.add(name: "coordinator", arguments: coordinatorArgs)
            // Parse every child's arguments here first: a bad option stops `serve` with its message at once instead
            // of a child that fails to start being restarted forever.
            do {
                _ = try ZRank.parseAsRoot(routerArgs)
                _ = try ZRank.parseAsRoot(workerArgs + ["--id=w1"])
                _ = try ZRank.parseAsRoot(coordinatorArgs)
            } catch {
                throw CLIFailure("zrank serve: \(ZRank.message(for: error))")
            }
            logger.info(
                "serving",
                metadata: ["bind": "\(bind)", "backend": "\(backendEndpoint)", "admin": "\(adminEndpoint)", "workers": "\(workers)",
                           "metrics": "\(metrics.map { "http://\($0)/metrics" } ?? "off")",
                           "model.version": "\(version ?? file.version)"])
            try supervisor.run()
        }
    }
}

/// Starts child processes, restarts the ones that die, and on SIGTERM/SIGINT stops the router first (it drains),
/// then the workers. Children also die with the supervisor (parent-death signal, `ZRANK_PARENT_PID`).
struct Supervisor {
    struct Child {
        var name: String
        var arguments: [String]
        var process: Process?
        var restarts = 0
        var nextStart: Date = .distantPast
    }

    let executable: String
    let logger: Logger
    private var children: [Child] = []

    init(executable: String, logger: Logger) {
        self.executable = executable
        self.logger = logger
    }

    mutating func add(name: String, arguments: [String]) {
        children.append(Child(name: name, arguments: arguments))
    }

    private func spawn(_ child: Child) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = child.arguments
        var env = ProcessInfo.processInfo.environment
        env["ZRANK_PARENT_PID"] = "\(getpid())"
        p.environment = env
        try p.run()
        return p
    }

    /// A child's exit status that says it cannot start as asked (ArgumentParser's validation errors, sysexits
    /// EX_USAGE): restarting it would fail the same way.
    static let usageExitStatus: Int32 = 64

    mutating func run() throws {
        for i in children.indices {
            children[i].process = try spawn(children[i])
        }
        var failure: String?
        supervise: while CSystem_stop_requested() == 0 {
            for i in children.indices {
                if let p = children[i].process, p.isRunning { continue }
                if let p = children[i].process {
                    if p.terminationReason == .exit && p.terminationStatus == Supervisor.usageExitStatus {
                        failure = "the \(children[i].name) cannot start with the options it was given (exit "
                            + "\(p.terminationStatus), its message is above): \(children[i].arguments.joined(separator: " "))"
                        children[i].process = nil
                        break supervise
                    }
                    logger.warning(
                        "child exited; restarting",
                        metadata: ["child": "\(children[i].name)", "status": "\(p.terminationStatus)",
                                   "restarts": "\(children[i].restarts)"])
                    children[i].process = nil
                    let delay = min(5.0, 0.1 * pow(2.0, Double(min(children[i].restarts, 6))))
                    children[i].nextStart = Date().addingTimeInterval(delay)
                    children[i].restarts += 1
                }
                if Date() >= children[i].nextStart {
                    children[i].process = try? spawn(children[i])
                }
            }
            usleep(50_000)
        }
        logger.info("stopping: draining the router, then the workers")
        defer { logger.info("stopped") }
        stopChildren()
        if let failure { throw CLIFailure("zrank serve: \(failure)") }
    }

    /// The router first (it drains), then the rest; SIGKILL for whoever outstays the grace time.
    private func stopChildren() {
        let deadline = Date().addingTimeInterval(4.5)
        if let router = children.first?.process, router.isRunning {
            router.terminate()
            while router.isRunning && Date() < deadline { usleep(10_000) }
            if router.isRunning {
                kill(router.processIdentifier, SIGKILL)
                router.waitUntilExit()
            }
        }
        for child in children.dropFirst() {
            if let p = child.process, p.isRunning { p.terminate() }
        }
        let hard = Date().addingTimeInterval(0.4)
        for child in children.dropFirst() {
            guard let p = child.process else { continue }
            while p.isRunning && Date() < hard { usleep(10_000) }
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()  // reaped here, so no zombie outlives the supervisor
            }
        }
    }
}

/// `--name=value` for each option that has a value (nil: left out), the form a supervisor passes to its children so
/// that a value starting with "-" is never read as another option.
func childOptions(_ options: [(String, String?)]) -> [String] {
    options.compactMap { name, value in value.map { "--\(name)=\($0)" } }
}

func validateHostPort(_ value: String, _ flag: String) throws {
    guard let colon = value.lastIndex(of: ":"), !value[..<colon].isEmpty, let port = Int(value[value.index(after: colon)...]),
        (0...65535).contains(port)
    else {
        throw ValidationError("\(flag) \(value): give HOST:PORT, e.g. 127.0.0.1:9464")
    }
}

extension ZRank {
    /// `zrank coordinator --admin ENDPOINT --router-control ENDPOINT --version NAME [--registry DIR] [--metrics HOST:PORT]`
    struct CoordinatorCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coordinator",
            abstract: "Run the coordinator: operator commands (zrankctl), rollouts with automatic rollback, metrics.",
            discussion: "Started by `zrank serve`; run it alone against a router started with `zrank router --control`.")

        @Option(name: .long, help: "Admin endpoint to bind for zrankctl (tcp:// or ipc://).")
        var admin: String

        @Option(name: .long, help: "The routers' control endpoints, comma-separated (zrank router --control): one coordinator drives them all.")
        var routerControl: String

        @Option(name: .long, help: "This coordinator's CURVE secret key: its tcp admin endpoint requires CURVE, and it uses the key to reach tcp router control endpoints.")
        var curveKey: String?

        @Option(name: .long, help: "Folder of *.pub keys allowed on the admin endpoint (with --curve-key).")
        var curveAdmins: String?

        @Option(name: .long, help: "The routers' CURVE public key (default: the public half of --curve-key, for routers that share the key pair).")
        var curveServer: String?

        @Option(name: .long, help: "The model registry versions are loaded from (without it: status and pins only).")
        var registry: String?

        @Option(name: .long, help: "The live version when no rollout record exists.")
        var version: String

        @Option(name: .long, help: "Workers the supervisor runs (ids w1...wN), so status shows missing ones as starting or dead.")
        var expectWorkers: Int = 0

        @Option(name: .long, help: "Serve Prometheus metrics over HTTP at http://HOST:PORT/metrics.")
        var metrics: String?

        func validate() throws {
            try validateEndpoint(admin, "--admin")
            try validateEndpoints(routerControl, "--router-control")
            if let metrics { try validateHostPort(metrics, "--metrics") }
            if curveKey == nil && (curveAdmins != nil || curveServer != nil) {
                throw ValidationError("--curve-admins and --curve-server need --curve-key")
            }
            if curveKey != nil && curveAdmins == nil && admin.hasPrefix("tcp://") {
                throw ValidationError("--curve-key needs --curve-admins DIR (the operators' *.pub keys) for a tcp --admin")
            }
        }

        /// The admin socket's CURVE keys and those to reach the routers (nil: plain).
        private func curveKeys() throws -> (CurveServerKeys?, CurveClientKeys?) {
            guard let curveKey else { return (nil, nil) }
            do {
                let own = try CurveKeyPair.load(curveKey)
                var allow = CurveAllowList(keys: [.admins: [own.publicKey: "self"]])
                if let curveAdmins { try allow.add(folder: curveAdmins, to: .admins) }
                let server = try curveServer.map { path throws(CurveKeyError) in try CurvePublicKey.load(path) } ?? own.publicKey
                return (CurveServerKeys(own: own, allow: allow), CurveClientKeys(server: server, own: own))
            } catch {
                throw ValidationError("\(error)")
            }
        }

        func run() throws {
            CSystem_install_stop_handlers()
            followParent()
            let logger = makeLogger("zrank.coordinator")
            do {
                let opened = try registry.map { try Registry(path: $0) }
                var stable = version
                if let opened {
                    // The same resolver as `serve` and `worker` (sizes only here: the workers verify checksums when they
                    // map the files). A version that does not check is logged, not fatal: status and rollback must work.
                    do {
                        stable = try LiveVersion.resolve(in: opened, asked: version, quick: true).name
                    } catch {
                        logger.error("the live version does not check", metadata: ["asked": "\(version)", "error": "\(error)"])
                    }
                }
                var config = CoordinatorConfiguration(
                    adminEndpoint: admin, routerControl: routerControl, registry: opened, stableVersion: stable)
                (config.curve, config.routerCurve) = try curveKeys()
                config.expectedWorkers = (0..<max(0, expectWorkers)).map { "w\($0 + 1)" }
                config.metrics = metrics
                try CoordinatorService(configuration: config, logger: logger).run { CSystem_stop_requested() != 0 }
            } catch {
                throw CLIFailure("zrank coordinator: \(error)")
            }
        }
    }
}
