import Foundation
import Histogram
import Protocol
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// How requests are paced.
public enum LoadMode: Sendable, Equatable {
    /// Requests on a fixed schedule of `rate` per second, whatever the answers do; at most `connections` in flight
    /// (like wrk2's connections: when all are busy, sends are late and the lateness counts in the corrected latency).
    case open(rate: Double, connections: Int)
    /// `concurrency` requests in flight; each answer triggers the next request.
    case closed(concurrency: Int)
}

/// One phase of a run.
public struct PhaseSpec: Sendable {
    public var name: String
    public var mode: LoadMode
    public var durationS: Double
    public var warmupS: Double
    /// Shell commands to start at offsets (seconds from the start of the measured part of this phase).
    public var commands: [(atS: Double, command: String)]

    public init(name: String, mode: LoadMode, durationS: Double, warmupS: Double = 0, commands: [(atS: Double, command: String)] = []) {
        self.name = name
        self.mode = mode
        self.durationS = durationS
        self.warmupS = warmupS
        self.commands = commands
    }
}

/// What one phase measured. Every counter covers the same measured requests:
/// `sent == ok + errors.values.sum + clientTimeouts`.
public struct PhaseResult {
    public var name: String
    public var mode: LoadMode
    public var durationS: Double
    public var sent = 0
    public var ok = 0
    public var errors: [String: Int] = [:]
    public var clientTimeouts = 0
    /// Scheduled in the measured window but never sent (all connections busy until the end).
    public var unsent = 0
    /// Latency of ok answers from the intended send time, microseconds.
    public var corrected = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    /// Latency of ok answers from the actual send time, microseconds.
    public var uncorrected = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    /// Ok answers by the model version that answered.
    public var versions: [String: Int] = [:]
    /// Per second of the measured window (by intended send time): what happened in it.
    public var timeline: [Second] = []

    /// One second of a run.
    public struct Second: Sendable {
        public var ok = 0
        public var errors = 0
        /// Corrected latencies of the ok answers, microseconds.
        public var latencies: [UInt32] = []
        public var versions: [String: Int] = [:]

        public init() {}

        /// A percentile (0-100) of `latencies`, milliseconds (0 when empty).
        public func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            let sorted = latencies.sorted()
            return Double(sorted[min(sorted.count - 1, Int(p / 100 * Double(sorted.count)))]) / 1000
        }
    }

    /// An empty result for a phase (the runner fills it in; tests and merges build their own).
    public init(name: String, mode: LoadMode, durationS: Double) {
        self.name = name
        self.mode = mode
        self.durationS = durationS
    }

    public var requestedRate: Double? {
        if case .open(let rate, _) = mode { return rate }
        return nil
    }
    public var achievedRate: Double { durationS > 0 ? Double(ok) / durationS : 0 }
}

/// Sends requests to a pool and measures the answers, one phase at a time (single-threaded: one DEALER socket,
/// a poll loop that never sleeps past the next scheduled send).
public final class LoadRunner {
    private let client: PoolClient
    private var workload: Workload
    private let timeoutNs: UInt64
    private var nextID: UInt64 = 1
    private let progress: Bool

    public init(client: PoolClient, workload: Workload, timeoutS: Double, progress: Bool) {
        self.client = client
        self.workload = workload
        self.timeoutNs = UInt64(timeoutS * 1e9)
        self.progress = progress
    }

    private struct Pending {
        var intended: UInt64
        var actual: UInt64
        var measured: Bool
    }

    private func body() throws -> [UInt8] {
        let w = workload.next()
        var r = Zrank_V1_RankRequest()
        r.query = w.query
        r.candidateIds = w.candidates
        r.topK = UInt32(workload.topK)
        if let user = w.user {
            r.user.userID = user.id
            r.user.recentItemIds = user.recent
        }
        return try r.serializedBytes()
    }

    /// Runs one phase (warm-up first, not measured) and returns its figures.
    public func run(_ phase: PhaseSpec) throws -> PhaseResult {
        var result = PhaseResult(name: phase.name, mode: phase.mode, durationS: phase.durationS)
        result.timeline = Array(repeating: PhaseResult.Second(), count: max(1, Int(phase.durationS.rounded(.up))))
        var pending: [UInt64: Pending] = [:]
        let start = monotonicNanos()
        let measureStart = start + UInt64(phase.warmupS * 1e9)
        let end = measureStart + UInt64(phase.durationS * 1e9)
        var commands = phase.commands.sorted { $0.atS < $1.atS }
        var launched: [Process] = []
        var scheduled = 0
        var lastProgress = start
        let (interval, connections, concurrency): (Double, Int, Int) = {
            switch phase.mode {
            case .open(let rate, let conns): return (1e9 / rate, conns, 0)
            case .closed(let c): return (0, c, c)
            }
        }()
        func intended(_ i: Int) -> UInt64 { start + UInt64(Double(i) * interval) }

        func send(intendedAt: UInt64) throws {
            let id = nextID
            nextID += 1
            let now = monotonicNanos()
            try client.send(type: .rankRequest, requestID: id, body: try body(), deadlineMs: UInt32(min(timeoutNs / 1_000_000, UInt64(UInt32.max))))
            let measured = intendedAt >= measureStart && intendedAt < end
            pending[id] = Pending(intended: intendedAt, actual: now, measured: measured)
            if measured { result.sent += 1 }
        }

        while true {
            let now = monotonicNanos()
            while let c = commands.first, now >= measureStart + UInt64(c.atS * 1e9) {
                commands.removeFirst()
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/sh")
                p.arguments = ["-c", c.command]
                try? p.run()
                launched.append(p)
                FileHandle.standardError.write(Data("zrank-bench: [\(phase.name)] t=\(c.atS)s ran: \(c.command)\n".utf8))
            }
            // Send what is due.
            if case .open = phase.mode {
                while intended(scheduled) < end && intended(scheduled) <= now && pending.count < connections {
                    try send(intendedAt: intended(scheduled))
                    scheduled += 1
                }
                if now >= end + timeoutNs {  // backlog never sent within the timeout after the end
                    while intended(scheduled) < end {
                        if intended(scheduled) >= measureStart { result.unsent += 1 }
                        scheduled += 1
                    }
                }
            } else if now < end {
                // Closed loop: every answer (or timeout) frees a slot that is refilled here at once.
                while pending.count < concurrency { try send(intendedAt: monotonicNanos()) }
            }
            let scheduleDone: Bool = {
                if case .open = phase.mode { return intended(scheduled) >= end }
                return now >= end
            }()
            if scheduleDone && pending.isEmpty { break }
            // Client-side timeouts.
            for (id, p) in pending where now > p.actual && now - p.actual > timeoutNs {
                pending[id] = nil
                if p.measured { result.clientTimeouts += 1 }
            }
            // Wait for an answer, but not past the next send.
            var waitMs = 5
            if case .open = phase.mode, !scheduleDone, pending.count < connections {
                let due = intended(scheduled)
                waitMs = due > now ? Int((due - now) / 1_000_000) : 0
                waitMs = min(waitMs, 5)
            }
            if let answer = try client.receive(timeoutMs: waitMs) {
                let at = monotonicNanos()
                guard let p = pending.removeValue(forKey: answer.header.requestID) else { continue }
                if p.measured {
                    let slot = min(result.timeline.count - 1, Int((p.intended - measureStart) / 1_000_000_000))
                    switch answer.header.type {
                    case .rankResponse:
                        result.ok += 1
                        let micros = max(1, (at - p.intended) / 1000)
                        _ = result.corrected.record(micros)
                        _ = result.uncorrected.record(max(1, (at - p.actual) / 1000))
                        let version = (try? Zrank_V1_RankResponse(serializedBytes: answer.body))?.modelVersion ?? "?"
                        result.versions[version, default: 0] += 1
                        result.timeline[slot].ok += 1
                        result.timeline[slot].latencies.append(UInt32(min(micros, UInt64(UInt32.max))))
                        result.timeline[slot].versions[version, default: 0] += 1
                    case .error:
                        let e = (try? Zrank_V1_Error(serializedBytes: answer.body)) ?? Zrank_V1_Error()
                        result.errors[e.code.name, default: 0] += 1
                        result.timeline[slot].errors += 1
                    default:
                        result.errors["UNEXPECTED_ANSWER", default: 0] += 1
                        result.timeline[slot].errors += 1
                    }
                }
            }
            if progress && now - lastProgress > 1_000_000_000 {
                lastProgress = now
                let t = now > measureStart ? Double(now - measureStart) / 1e9 : -Double(measureStart - now) / 1e9
                let errs = result.errors.values.reduce(0, +)
                let p99 = Double(result.corrected.valueAtPercentile(99)) / 1000
                print(String(format: "\r[%@] t=%5.1fs sent=%d ok=%d errors=%d timeouts=%d p99=%.2fms   ", phase.name, t, result.sent, result.ok, errs, result.clientTimeouts, p99), terminator: "")
                fflush(nil)
            }
        }
        if progress { print("") }
        for p in launched { p.waitUntilExit() }
        return result
    }
}

/// Asks the pool for its Info within `timeoutMs`; nil when it does not answer (unreachable).
public func probePool(_ client: PoolClient, timeoutMs: Int) throws -> Zrank_V1_InfoResponse? {
    try client.send(type: .infoRequest, requestID: UInt64.max - 1, body: [], deadlineMs: UInt32(timeoutMs))
    let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
    while monotonicNanos() < deadline {
        guard let a = try client.receive(timeoutMs: 20) else { continue }
        guard a.header.requestID == UInt64.max - 1 else { continue }
        if a.header.type == .infoResponse { return try Zrank_V1_InfoResponse(serializedBytes: a.body) }
        let e = (try? Zrank_V1_Error(serializedBytes: a.body)) ?? Zrank_V1_Error()
        throw BenchError("the pool answered Info with \(e.code.name): \(e.message)")
    }
    return nil
}
