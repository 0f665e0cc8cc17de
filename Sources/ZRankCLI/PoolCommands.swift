import ArgumentParser
import CLISupport
import CSystem
import Foundation
import Logging
import Model
import Protocol
import Ranking
import Registry
import Router
import Worker

#if canImport(Glibc)
import Glibc
#endif

/// Options of the processes that rank: model, index and request limits.
struct RankingOptions: ParsableArguments {
    @Option(name: .long, help: "The model file (*.zrm).")
    var model: String?

    @Option(name: .long, help: "The catalog index built with that model (*.zri).")
    var index: String?

    @Option(name: .long, help: "Most candidates accepted per request.")
    var maxCandidates: Int = 10_000

    @Option(name: .long, help: "Query texts longer than this many UTF-8 bytes are rejected (shorter ones are truncated to the model's max length).")
    var maxQueryBytes: Int = 65_536

    @Option(name: .long, help: "Compute threads per worker (single-threaded by default).")
    var threads: Int = 1

    @Option(name: .long, parsing: .unconditional, help: "Query embeddings each worker keeps, keyed by the query's token ids (0 disables the cache).")
    var queryCache: Int = 10_000

    @Option(name: .long, parsing: .unconditional, help: "Rank requests a worker takes together when they are already waiting, encoding their queries as one batch (1: one at a time; it never waits for a batch to fill).")
    var maxBatch: Int = 8

    func validate() throws {
        guard maxCandidates >= 1 else { throw ValidationError("--max-candidates must be at least 1") }
        guard maxQueryBytes >= 1 else { throw ValidationError("--max-query-bytes must be at least 1") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        guard (1...64).contains(maxBatch) else {
            throw ValidationError("--max-batch must be between 1 and 64 (got \(maxBatch))")
        }
        guard (0...10_000_000).contains(queryCache) else {
            throw ValidationError("--query-cache must be between 0 (off) and 10000000 entries (got \(queryCache))")
        }
    }

    var limits: RankLimits {
        var l = RankLimits()
        l.queryCacheEntries = queryCache
        l.maxCandidates = maxCandidates
        l.maxQueryBytes = maxQueryBytes
        return l
    }
}

/// How an index is built: encoder threads (`zrank index`, `zrank registry add`).
struct IndexingOptions: ParsableArguments {
    @Option(name: .long, help: "Encoder threads for the index (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads { guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") } }
    }

    var resolvedThreads: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }
}

/// Options of the router.
struct RouterOptions: ParsableArguments {
    // Unconditional: a negative value reaches validation (a clear range message) instead of reading as a flag.
    @Option(name: .long, parsing: .unconditional, help: "Requests that may wait for a worker; beyond it new requests get OVERLOADED.")
    var queueBound: Int = 10_000

    @Option(name: .long, parsing: .unconditional, help: "Deadline for requests that set none (milliseconds, 1-86400000).")
    var deadlineMs: Int = 5000

    @Option(name: .long, parsing: .unconditional, help: "Bytes of request bodies the router may hold, queued and in flight; beyond it new requests get OVERLOADED (at least 16 MiB, the largest body).")
    var queueBytes: Int = 256 << 20

    /// The longest default deadline accepted: one day.
    static let maxDeadlineMs = 86_400_000

    func validate() throws {
        guard ((16 << 20)...(1 << 40)).contains(queueBytes) else {
            throw ValidationError("--queue-bytes must be between 16777216 (16 MiB, the largest body) and 2^40 (got \(queueBytes))")
        }
        guard (1...10_000_000).contains(queueBound) else {
            throw ValidationError("--queue-bound must be between 1 and 10000000 (got \(queueBound))")
        }
        guard (1...RouterOptions.maxDeadlineMs).contains(deadlineMs) else {
            throw ValidationError("--deadline-ms must be between 1 and \(RouterOptions.maxDeadlineMs) milliseconds (got \(deadlineMs))")
        }
    }

    var configuration: RouterConfiguration {
        var c = RouterConfiguration()
        c.queueBound = queueBound
        c.queueBytes = queueBytes
        c.defaultDeadlineMs = UInt32(deadlineMs)
        return c
    }
}

/// Fault injection flags (tests only; all off by default).
struct FaultOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Test fault: sleep N ms before answering each request (env ZRANK_FAULT_STALL_MS).", visibility: .hidden))
    var faultStallMs: Int?

    @Option(name: .long, help: ArgumentHelp("Test fault: answer every Nth request INTERNAL (env ZRANK_FAULT_FAIL_EVERY).", visibility: .hidden))
    var faultFailEvery: Int?

    @Option(name: .long, help: ArgumentHelp("Test fault: exit abruptly on the Nth request (env ZRANK_FAULT_CRASH_AFTER).", visibility: .hidden))
    var faultCrashAfter: Int?

    @Option(name: .long, help: ArgumentHelp("Test fault: stall once for N ms (env ZRANK_FAULT_PAUSE_MS)...", visibility: .hidden))
    var faultPauseMs: Int?

    @Option(name: .long, help: ArgumentHelp("...on the Nth request (env ZRANK_FAULT_PAUSE_AFTER).", visibility: .hidden))
    var faultPauseAfter: Int?

    @Option(name: .long, help: ArgumentHelp("Test fault: apply the faults only while serving this version (env ZRANK_FAULT_VERSION).", visibility: .hidden))
    var faultVersion: String?

    var faults: FaultInjection {
        let env = ProcessInfo.processInfo.environment
        func pick(_ flag: Int?, _ name: String) -> Int { flag ?? Int(env[name] ?? "") ?? 0 }
        return FaultInjection(
            stallMs: pick(faultStallMs, "ZRANK_FAULT_STALL_MS"), failEvery: pick(faultFailEvery, "ZRANK_FAULT_FAIL_EVERY"),
            crashAfter: pick(faultCrashAfter, "ZRANK_FAULT_CRASH_AFTER"), pauseMs: pick(faultPauseMs, "ZRANK_FAULT_PAUSE_MS"),
            pauseAfter: pick(faultPauseAfter, "ZRANK_FAULT_PAUSE_AFTER"),
            version: faultVersion ?? env["ZRANK_FAULT_VERSION"].flatMap { $0.isEmpty ? nil : $0 })
    }
}

func makeLogger(_ label: String) -> Logger {
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["ZRANK_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}

/// When started by `zrank serve`, die with the supervisor.
func followParent() {
    if let parent = ProcessInfo.processInfo.environment["ZRANK_PARENT_PID"].flatMap(Int32.init) {
        if CSystem_die_with_parent(SIGTERM, parent) == 0 { exit(0) }
    }
}

/// An ipc endpoint in this process's private runtime folder (`RuntimeFolder`: mode 0700, owner and mode checked).
/// - Throws: `CLIFailure` when the folder cannot be created or is not private.
func runtimeEndpoint(_ name: String) throws -> String {
    do {
        return try RuntimeFolder().endpoint(name)
    } catch {
        throw CLIFailure("zrank: \(error)")
    }
}

/// Default backend endpoint: an ipc socket in a private runtime folder.
func defaultBackendEndpoint() throws -> String { try runtimeEndpoint("backend") }

func validateEndpoint(_ endpoint: String, _ flag: String) throws {
    guard isSupportedEndpoint(endpoint) else {
        throw ValidationError("\(flag) \(endpoint): endpoints are tcp://HOST:PORT or ipc://PATH")
    }
}

/// Checks a comma-separated endpoint list.
func validateEndpoints(_ list: String, _ flag: String) throws {
    guard splitEndpoints(list) != nil else {
        throw ValidationError("\(flag) \(list): give one or more endpoints separated by commas, each tcp://HOST:PORT or ipc://PATH")
    }
}

extension ZRank {
    /// `zrank index --model FILE.zrm --catalog items.jsonl --out FILE.zri`
    struct Index: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode every catalog item ({\"id\", \"title\", \"text\"?} lines) into a catalog index.")

        @Option(name: .long, help: "The model file (*.zrm).")
        var model: String

        @Option(name: .long, help: "The catalog, JSON lines.")
        var catalog: String

        @Option(name: .long, help: "The index file to write (*.zri).")
        var out: String

        @Option(name: .long, help: "Items per encoder batch.")
        var batch: Int = 64

        @OptionGroup var encoding: IndexingOptions

        func validate() throws {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        }

        func run() throws {
            let file = try loadModel(model, command: "index")
            let start = Date()
            do {
                let meter = ProgressMeter(label: "indexing", total: 0, unit: "items")
                let (n, _) = try CatalogIndexBuilder.build(
                    model: file, catalog: catalog, output: out, batch: batch, threads: encoding.resolvedThreads
                ) { done, total in meter.update(done: done, total: total) }
                meter.finish("\(encoding.resolvedThreads) threads")
                print(String(format: "wrote %@: %d items, model %@, %.1f s", out, n, file.version, Date().timeIntervalSince(start)))
            } catch let error as IndexError {
                throw CLIFailure("zrank index: \(error)")
            }
        }
    }

    /// `zrank worker --model FILE.zrm --index FILE.zri --connect ENDPOINT`
    struct WorkerCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "worker", abstract: "Run one ranking worker connected to a router's backend.")

        @OptionGroup var ranking: RankingOptions

        @Option(name: .long, help: "The routers' backend endpoints, comma-separated (tcp:// or ipc://): the worker serves every one.")
        var connect: String

        @OptionGroup var curve: CurveClientOptions

        @Option(name: .long, help: "Version name to announce (default: the model's); with --registry, the version to serve unless the registry's rollout record names another live version.")
        var version: String?

        @Option(name: .long, help: "Serve from a model registry (with --version) instead of --model/--index.")
        var registry: String?

        @Option(name: .long, help: "Ranking heads to score with (default: cosine; in registry mode the version's heads.json).")
        var heads: String?

        @Option(name: .long, help: "Worker id for logs (default w-<pid>).")
        var id: String?

        @OptionGroup var faultOptions: FaultOptions

        func validate() throws {
            try validateEndpoints(connect, "--connect")
            if registry != nil {
                guard version != nil, ranking.model == nil, ranking.index == nil, heads == nil else {
                    throw ValidationError("--registry needs --version (and no --model/--index/--heads: the version's own files are used)")
                }
            } else {
                guard ranking.model != nil, ranking.index != nil else { throw ValidationError("--model and --index are required") }
            }
        }

        func run() throws {
            CSystem_install_stop_handlers()
            followParent()
            let logger = makeLogger("zrank.worker")
            var modelPath = ranking.model ?? ""
            var indexPath = ranking.index ?? ""
            var headsPath = heads
            var version = self.version
            if let registry, let asked = version {
                // A (re)started worker runs the version the rollout record says is live, not the one it was first
                // started with: after a finished rollout that is the new version.
                do {
                    let r = try Registry(path: registry)
                    // Sizes only: the model's checksum is verified below when it is mapped.
                    let live = try LiveVersion.resolve(in: r, asked: asked, quick: true).name
                    modelPath = r.modelPath(live)
                    indexPath = r.indexPath(live)
                    headsPath = r.headsPath(live)
                    version = live
                } catch {
                    throw CLIFailure("zrank worker: \(error)")
                }
            }
            // Private copies, read once: a file edited or truncated later cannot crash this worker (SIGBUS).
            let file: ModelFile
            do {
                file = try ModelFile(path: modelPath, loading: .privateCopy)
            } catch {
                throw CLIFailure("zrank worker: \(error)")
            }
            let ranker: Ranker
            do {
                let index = try CatalogIndex(path: indexPath, model: file, loading: .privateCopy)
                let loaded = try headsPath.map { path throws(HeadsError) in try RankingHeads.load(path) }
                ranker = try Ranker(
                    model: file, index: index, version: version, limits: ranking.limits, threads: max(1, ranking.threads),
                    heads: loaded)
            } catch {
                throw CLIFailure("zrank worker: \(error)")
            }
            var config = WorkerConfiguration(endpoint: connect, workerID: id)
            config.maxBatch = ranking.maxBatch
            config.curve = try curve.keys()
            config.faults = faultOptions.faults
            config.registry = try registry.map { path in
                do { return try Registry(path: path) } catch { throw CLIFailure("zrank worker: \(error)") }
            }
            if config.faults.isActive {
                logger.warning("fault injection active", metadata: ["faults": "\(config.faults)"])
            }
            // Warm-up: one encode so the first request doesn't pay for page faults.
            _ = try? ranker.embed("warm up")
            try WorkerService(ranker: ranker, configuration: config, logger: logger).run()
        }
    }

    /// `zrank router --bind ENDPOINT [--backend ENDPOINT]`
    struct RouterCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "router", abstract: "Run the load-balancing router between clients and workers.")

        @Option(name: .long, help: "Client endpoint to bind (tcp:// or ipc://).")
        var bind: String

        @Option(name: .long, help: "Worker endpoint to bind (default: an ipc socket in a private runtime folder).")
        var backend: String?

        @Option(name: .long, help: "Admin endpoint for zrankctl (default: none).")
        var control: String?

        @OptionGroup var routerOptions: RouterOptions

        @OptionGroup var curve: CurveServerOptions

        func validate() throws {
            try validateEndpoint(bind, "--bind")
            if let backend { try validateEndpoint(backend, "--backend") }
            if let control { try validateEndpoint(control, "--control") }
        }

        func run() throws {
            CSystem_install_stop_handlers()
            followParent()
            let logger = makeLogger("zrank.router")
            let service = RouterService(
                frontend: bind, backend: try backend ?? defaultBackendEndpoint(), control: control,
                configuration: routerOptions.configuration, logger: logger)
            if let (keys, warnings) = try curve.keys() {
                for warning in warnings { FileHandle.standardError.write(Data("zrank router: \(warning)\n".utf8)) }
                service.curve = keys
            }
            do {
                try service.run()
            } catch {
                throw CLIFailure("zrank router: \(error)")
            }
        }
    }
}
