import ArgumentParser
import Bench
import CLISupport
import Foundation
import Protocol
import Yams

#if canImport(Glibc)
import Glibc
#endif

typealias Duration = DurationArgument

extension DurationArgument {
    /// A scenario file's duration: a number of seconds or a duration string.
    static func parse(_ any: Any?, _ what: String) throws -> Double {
        if let n = any as? Double { return n }
        if let n = any as? Int { return Double(n) }
        guard let s = any as? String, let d = DurationArgument(argument: s) else {
            throw BenchError("\(what): expected a duration like 500ms, 10s or 2m")
        }
        return d.seconds
    }
}

/// `zrank-bench`: the load-test tool.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zrank-bench",
        abstract: "Load-test a zrank pool: open loop (--rate, coordinated omission corrected) or closed loop (--concurrency).",
        discussion: """
            Exit status: 0 when the run completed (whatever the latencies), 2 when the pool is unreachable or the \
            options are bad, 3 when --slo-p99 is given and the p99 is over it.
            Open loop: requests leave on schedule; at most --connections are in flight (as wrk2's connections); \
            latency is measured from the intended send time (the uncorrected figures from the actual send time).
            """,
        version: ZRankRelease.versionString("zrank-bench"))

    @Option(name: .long, help: "The pool's client endpoint (tcp:// or ipc://); several routers' endpoints separated by commas fail over to each other.")
    var endpoint: String

    @OptionGroup var curve: CurveClientOptions

    @Option(name: .long, help: "With several endpoints: how long one try may go unanswered before the request goes to another router.")
    var tryTimeout: Duration = Duration(argument: "500ms")!

    @Option(name: .long, help: "Open loop: requests per second.")
    var rate: Double?

    @Option(name: .long, help: "Closed loop: requests in flight.")
    var concurrency: Int?

    @Option(name: .long, help: "Measured duration, e.g. 30s.")
    var duration: Duration?

    @Option(name: .long, help: "Warm-up before measuring (not part of --duration or any figure).")
    var warmup: Duration = Duration(argument: "1s")!

    @Option(name: .long, help: "Per-request client timeout; in-flight requests at the end are awaited this long.")
    var timeout: Duration = Duration(argument: "5s")!

    @Option(name: .long, help: "Distinct candidate ids per request, drawn without replacement from the catalog.")
    var candidates: Int = 100

    @Option(name: .long, help: "Items asked for per request.")
    var topK: Int = 10

    @Option(name: .long, help: "Query workload: WANDS query.csv, JSON lines {\"query\"} or plain lines (default: bench/data/wands/query.csv).")
    var queries: String?

    @Option(name: .long, help: "Catalog JSON lines for candidate ids (default: the pool's Info sample).")
    var catalog: String?

    @Option(name: .long, help: "Zipf exponent over queries (0 = uniform).")
    var zipf: Double = 0

    @Option(name: .long, help: "Simulated users with recent-item histories (0 = none).")
    var users: Int = 0

    @Option(name: .long, help: "Open loop: most requests in flight at once.")
    var connections: Int = 256

    @Option(name: .long, help: "Write every figure and the histogram as JSON.")
    var json: String?

    @Option(name: .long, help: "Write the latency percentile curve (and the sweep) as SVG.")
    var plot: String?

    @Option(name: .long, help: "Write p50/p99 per second and the share of answers by model version over time as SVG.")
    var timelinePlot: String?

    @Option(name: .long, help: "p99 objective, e.g. 10ms: exit 3 when exceeded; the bar for --sweep.")
    var sloP99: Duration?

    @Flag(name: .long, help: "Search the highest rate whose p99 meets --slo-p99: grow from --rate by --sweep-factor, repeat a failing step once, then bisect.")
    var sweep = false

    @Option(name: .long, help: "Rate multiplier between sweep steps while they pass.")
    var sweepFactor: Double = 1.5

    @Option(name: .long, help: "Bisection ends when the lowest failing rate is within this share of the highest passing one.")
    var sweepTolerance: Double = 0.05

    @Option(name: .long, help: "Most sweep steps run (repeats included).")
    var sweepMaxSteps: Int = 20

    @Option(name: .long, help: "A sweep step lasts at least long enough for this many requests (at low rates a p99 of a few hundred requests is one outlier).")
    var sweepMinRequests: Int = 1000

    @Option(name: .long, help: "Stop the sweep at this rate.")
    var sweepMaxRate: Double = 100_000

    @Option(name: .long, help: "Scenario file (JSON or YAML): phases of rate/concurrency and duration, commands at times.")
    var scenario: String?

    @Option(name: .long, help: "Random seed for the workload.")
    var seed: UInt64 = 1

    func validate() throws {
        guard splitEndpoints(endpoint) != nil else {
            throw ValidationError("--endpoint \(endpoint): unknown scheme; use tcp://HOST:PORT or ipc://PATH (several routers separated by commas)")
        }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number of requests per second") }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if scenario == nil {
            if sweep {
                guard sloP99 != nil else { throw ValidationError("--sweep needs --slo-p99") }
                guard concurrency == nil else { throw ValidationError("--sweep steps an open-loop rate; drop --concurrency") }
            } else {
                guard (rate != nil) != (concurrency != nil) else { throw ValidationError("give exactly one of --rate and --concurrency") }
            }
            guard let duration, duration.seconds > 0 else { throw ValidationError("--duration is required (e.g. 30s)") }
        }
        guard candidates >= 0 else { throw ValidationError("--candidates must not be negative") }
        guard topK >= 0 else { throw ValidationError("--top-k must not be negative") }
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard zipf >= 0 else { throw ValidationError("--zipf must not be negative") }
        guard users >= 0 else { throw ValidationError("--users must not be negative") }
        guard sweepFactor > 1 else { throw ValidationError("--sweep-factor must be above 1") }
        guard sweepTolerance > 0 && sweepTolerance < 1 else { throw ValidationError("--sweep-tolerance must be between 0 and 1") }
        guard sweepMaxSteps >= 1 else { throw ValidationError("--sweep-max-steps must be at least 1") }
        guard sweepMinRequests >= 0 else { throw ValidationError("--sweep-min-requests must not be negative") }
    }

    func defaultQueries() -> String {
        if FileManager.default.fileExists(atPath: "bench/data/wands/query.csv") { return "bench/data/wands/query.csv" }
        // Next to the package the binary was built in (.build/<config>/zrank-bench).
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = dir.appendingPathComponent("bench/data/wands/query.csv").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return "bench/data/wands/query.csv"
    }

    func loadScenario(_ path: String) throws -> [PhaseSpec] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw BenchError("cannot read --scenario \(path)") }
        let object: Any?
        if path.hasSuffix(".json") {
            object = try? JSONSerialization.jsonObject(with: Data(text.utf8))
        } else {
            object = try? Yams.load(yaml: text)
        }
        guard let root = object as? [String: Any], let phases = root["phases"] as? [[String: Any]], !phases.isEmpty else {
            throw BenchError("\(path): a scenario is an object with a non-empty \"phases\" list")
        }
        var out: [PhaseSpec] = []
        for (i, p) in phases.enumerated() {
            let name = p["name"] as? String ?? "phase-\(i + 1)"
            let mode: LoadMode
            if let r = (p["rate"] as? Double) ?? (p["rate"] as? Int).map(Double.init) {
                guard r > 0 else { throw BenchError("\(path): phase \(name): rate must be positive") }
                mode = .open(rate: r, connections: p["connections"] as? Int ?? connections)
            } else if let c = p["concurrency"] as? Int, c >= 1 {
                mode = .closed(concurrency: c)
            } else {
                throw BenchError("\(path): phase \(name) needs a positive rate or concurrency")
            }
            let d = try Duration.parse(p["duration"], "\(path): phase \(name) duration")
            let w = i == 0 ? warmup.seconds : try Duration.parse(p["warmup"] ?? 0, "\(path): phase \(name) warmup")
            var commands: [(atS: Double, command: String)] = []
            for c in p["commands"] as? [[String: Any]] ?? [] {
                guard let run = c["run"] as? String else { throw BenchError("\(path): phase \(name): a command needs \"run\"") }
                commands.append((try Duration.parse(c["at"] ?? 0, "\(path): command at"), run))
            }
            out.append(PhaseSpec(name: name, mode: mode, durationS: d, warmupS: w, commands: commands))
        }
        return out
    }

    mutating func run() throws {
        let client = try PoolClient(endpoint: endpoint, curve: try curve.keys(), tryTimeoutMs: Int(tryTimeout.seconds * 1000))
        let queryList = try Workload.loadQueries(queries ?? defaultQueries())
        guard let info = try probePool(client, timeoutMs: 1000) else {
            throw BenchError("the pool at \(endpoint) is unreachable (no answer to Info within 1 s)"
                + (client.handshakeProblem.map { ": \($0)" } ?? (curve.curveServer == nil ? "; if it requires CURVE, give --curve-server FILE.pub --curve-key FILE.key" : "")))
        }
        let ids = try catalog.map(Workload.loadCatalogIDs) ?? info.sampleItemIds
        let workload = try Workload(
            queries: queryList, itemIDs: ids, candidates: candidates, topK: topK, zipf: zipf, users: users, seed: seed)
        let terminal = isatty(STDOUT_FILENO) == 1
        let runner = LoadRunner(client: client, workload: workload, timeoutS: timeout.seconds, progress: terminal)
        print("zrank-bench: \(endpoint), model \(info.modelVersion), \(info.catalogSize) items; \(queryList.count) queries, \(candidates) candidates/request")
        let slo = sloP99?.seconds
        var output = RunReport(endpoint: endpoint, modelVersion: info.modelVersion, candidates: candidates, topK: topK)

        if sweep, let slo {
            var search = SweepSearch(
                start: rate ?? 20, factor: sweepFactor, maxRate: sweepMaxRate, tolerance: sweepTolerance, maxSteps: sweepMaxSteps)
            var steps: [PhaseResult] = []
            var tried: [SweepStepReport] = []
            var achieved: [Double: Double] = [:]
            print("   asked/s achieved/s    p50 ms    p99 ms    max ms   errors  verdict")
            while let stepRate = search.next() {
                let seconds = max(duration!.seconds, Double(sweepMinRequests) / stepRate)
                let r = try runner.run(PhaseSpec(name: String(format: "rate-%.0f", stepRate), mode: .open(rate: stepRate, connections: connections), durationS: seconds, warmupS: warmup.seconds))
                let s = LatencySummary(r.corrected)
                let errs = r.errors.values.reduce(0, +) + r.clientTimeouts
                let meets = s.p99 <= slo * 1000 && errs == 0 && r.achievedRate >= 0.95 * stepRate
                search.record(passed: meets)
                let attempt = search.steps.last!.attempt
                steps.append(r)
                if meets { achieved[stepRate] = r.achievedRate }
                tried.append(SweepStepReport(phase: PhaseReport(r), askedRate: stepRate, attempt: attempt, meetsSLO: meets))
                let verdict = meets ? "meets" : (attempt == 1 ? "over; repeating once" : "over")
                print(String(format: "%10.1f %10.1f %9.2f %9.2f %9.2f %8d  %@", stepRate, r.achievedRate, s.p50, s.p99, s.max, errs, verdict))
            }
            let best = search.highestPassing.flatMap { achieved[$0] }
            if let best {
                print(String(format: "highest rate meeting p99 <= %.1f ms: %.1f requests/s (%d steps; lowest failing rate: %@)",
                             slo * 1000, best, search.steps.count, search.lowestFailing.map { String(format: "%.1f", $0) } ?? "none"))
            } else {
                print(String(format: "no rate met p99 <= %.1f ms", slo * 1000))
            }
            output.sweep = RunReport.Sweep(
                sloP99Ms: slo * 1000, bestRate: best, bestAskedRate: search.highestPassing,
                lowestFailingRate: search.lowestFailing, steps: tried)
            if let plot {
                try Plot.sweep(steps, title: "zrank sweep: \(candidates) candidates", slo: slo * 1000).write(toFile: plot, atomically: true, encoding: .utf8)
            }
            try writeJSON(output)
            return
        }

        let phases = try scenario.map(loadScenario) ?? [
            PhaseSpec(name: "main", mode: rate.map { .open(rate: $0, connections: connections) } ?? .closed(concurrency: concurrency!), durationS: duration!.seconds, warmupS: warmup.seconds),
        ]
        var results: [PhaseResult] = []
        for phase in phases {
            let r = try runner.run(phase)
            results.append(r)
            print(Report.text(r))
        }
        let total = results.count == 1 ? results[0] : Report.merge(results)
        if results.count > 1 { print(Report.text(total)) }
        output.total = PhaseReport(total)
        output.failoverResends = client.resends
        output.duplicatesDropped = client.duplicatesDropped
        if results.count > 1 { output.phases = results.map(PhaseReport.init) }
        try writeJSON(output)
        if let timelinePlot {
            // A dashed line where each phase starts.
            var marks: [(Double, String)] = []
            var at = 0.0
            for r in results {
                if results.count > 1 { marks.append((at, r.name)) }
                at += Double(r.timeline.count)
            }
            try Plot.timeline(total, title: "zrank latency over time (\(candidates) candidates)", marks: marks)
                .write(toFile: timelinePlot, atomically: true, encoding: .utf8)
        }
        if let plot {
            try Plot.percentileCurve(total, title: "zrank latency by percentile (\(candidates) candidates)", slo: slo.map { $0 * 1000 }).write(toFile: plot, atomically: true, encoding: .utf8)
        }
        if let slo, LatencySummary(total.corrected).p99 > slo * 1000 {
            print(String(format: "p99 %.2f ms is over the objective %.2f ms", LatencySummary(total.corrected).p99, slo * 1000))
            throw ExitCode(3)
        }
    }

    func writeJSON(_ report: RunReport) throws {
        guard let json else { return }
        try report.jsonData().write(to: URL(fileURLWithPath: json))
    }
}

@main
enum ZRankBenchMain {
    static func main() {
        do {
            // parse() (not parseAsRoot) returns a BenchCommand or throws: --help and --version arrive as errors whose
            // exit code is success and are printed below.
            var command = try BenchCommand.parse()
            try command.run()
            exit(0)
        } catch let error as BenchError {
            FileHandle.standardError.write(Data("zrank-bench: \(error)\n".utf8))
            exit(2)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let status = BenchCommand.exitCode(for: error)
            if status == .success {
                print(BenchCommand.fullMessage(for: error))
                exit(0)
            }
            FileHandle.standardError.write(Data("zrank-bench: \(BenchCommand.fullMessage(for: error))\n".utf8))
            exit(2)
        }
    }
}
