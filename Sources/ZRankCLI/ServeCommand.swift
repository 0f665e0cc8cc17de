import ArgumentParser
import CSystem
import Foundation
import Logging
import Coordinator
import Model
import Ranking

#if canImport(Glibc)
import Glibc
#endif

extension ZRank {
    /// `zrank serve --model FILE.zrm --index FILE.zri --workers N --bind ENDPOINT [--backend ENDPOINT]`, or
    /// `zrank serve --registry DIR --version NAME ...`
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a router and N worker processes, restart crashed workers, drain on SIGTERM/SIGINT.",
            discussion: "Serve a model and index (--model, --index) or a registry version (--registry, --version).")

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

        @OptionGroup var routerOptions: RouterOptions
        @OptionGroup var faultOptions: FaultOptions

        func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
            if registry != nil {
                guard version != nil else { throw ValidationError("--registry needs --version NAME") }
                guard ranking.model == nil, ranking.index == nil else {
                    throw ValidationError("give either --registry/--version or --model/--index")
                }
            } else {
                guard ranking.model != nil, ranking.index != nil else {
                    throw ValidationError("give --model and --index (or --registry and --version)")
                }
            }
            try validateEndpoint(bind, "--bind")
            if let backend { try validateEndpoint(backend, "--backend") }
        }

        func run() throws {
            CSystem_install_stop_handlers()
            let logger = makeLogger("zrank.serve")
            var modelPath = ranking.model ?? ""
            var indexPath = ranking.index ?? ""
            if let registry, let version {
                do {
                    let r = try Registry(path: registry)
                    try r.verify(version)
                    modelPath = r.modelPath(version)
                    indexPath = r.indexPath(version)
                } catch {
                    throw CLIFailure("zrank serve: \(error)")
                }
            }
            // Fail fast, in the supervisor, on a bad model or index.
            let file = try loadModel(modelPath, command: "serve")
            do {
                _ = try CatalogIndex(path: indexPath, model: file)
            } catch {
                throw CLIFailure("zrank serve: \(error)")
            }
            let backendEndpoint = backend ?? defaultBackendEndpoint()
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            let adminEndpoint = admin ?? runtimeEndpoint("admin")
            let routerArgs = ["router", "--bind", bind, "--backend", backendEndpoint, "--control", adminEndpoint,
                              "--queue-bound", "\(routerOptions.queueBound)", "--deadline-ms", "\(routerOptions.deadlineMs)"]
            var workerArgs = ["worker", "--model", modelPath, "--index", indexPath, "--connect", backendEndpoint,
                              "--max-candidates", "\(ranking.maxCandidates)", "--max-query-bytes", "\(ranking.maxQueryBytes)",
                              "--threads", "\(ranking.threads)"]
            if let version { workerArgs += ["--version", version] }
            let faults = faultOptions.faults
            if faults.stallMs > 0 { workerArgs += ["--fault-stall-ms", "\(faults.stallMs)"] }
            if faults.failEvery > 0 { workerArgs += ["--fault-fail-every", "\(faults.failEvery)"] }
            if faults.crashAfter > 0 { workerArgs += ["--fault-crash-after", "\(faults.crashAfter)"] }
            if faults.pauseMs > 0 { workerArgs += ["--fault-pause-ms", "\(faults.pauseMs)", "--fault-pause-after", "\(faults.pauseAfter)"] }
            var supervisor = Supervisor(executable: executable, logger: logger)
            supervisor.add(name: "router", arguments: routerArgs)
            for i in 0..<workers {
                supervisor.add(name: "worker-\(i + 1)", arguments: workerArgs + ["--id", "w\(i + 1)"])
            }
            logger.info(
                "serving",
                metadata: ["bind": "\(bind)", "backend": "\(backendEndpoint)", "admin": "\(adminEndpoint)", "workers": "\(workers)",
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

    mutating func run() throws {
        for i in children.indices {
            children[i].process = try spawn(children[i])
        }
        while CSystem_stop_requested() == 0 {
            for i in children.indices {
                if let p = children[i].process, p.isRunning { continue }
                if let p = children[i].process {
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
        let deadline = Date().addingTimeInterval(4.5)
        if let router = children.first?.process, router.isRunning {
            router.terminate()
            while router.isRunning && Date() < deadline { usleep(10_000) }
            if router.isRunning { kill(router.processIdentifier, SIGKILL) }
        }
        for child in children.dropFirst() {
            if let p = child.process, p.isRunning { p.terminate() }
        }
        let hard = Date().addingTimeInterval(0.4)
        for child in children.dropFirst() {
            guard let p = child.process else { continue }
            while p.isRunning && Date() < hard { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        logger.info("stopped")
    }
}
