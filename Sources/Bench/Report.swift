import Foundation
import Histogram

/// Latency summary in milliseconds.
public struct LatencySummary: Codable, Equatable {
    public var p50, p90, p99, p999, max, mean: Double

    public init(_ h: Histogram<UInt64>) {
        func ms(_ us: UInt64) -> Double { Double(us) / 1000 }
        if h.totalCount == 0 {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
            return
        }
        p50 = ms(h.valueAtPercentile(50))
        p90 = ms(h.valueAtPercentile(90))
        p99 = ms(h.valueAtPercentile(99))
        p999 = ms(h.valueAtPercentile(99.9))
        max = ms(h.max)
        mean = h.mean / 1000
    }
}

/// One point of the corrected-latency histogram: the value at a percentile and the answers at or below it.
public struct HistogramPoint: Codable, Equatable {
    public var valueMs: Double
    public var percentile: Double
    public var count: UInt64

    enum CodingKeys: String, CodingKey {
        case valueMs = "value_ms", percentile, count
    }
}

/// One second of a run in the report.
public struct TimelinePoint: Codable, Equatable {
    public var t: Int
    public var ok: Int
    public var errors: Int
    public var p50Ms: Double
    public var p99Ms: Double
    public var versions: [String: Int]

    enum CodingKeys: String, CodingKey {
        case t, ok, errors, versions
        case p50Ms = "p50_ms"
        case p99Ms = "p99_ms"
    }
}

/// The contract's JSON object for one phase; the run's top level carries the same fields (`RunReport`).
/// `requested_rate` is written as null in a closed loop; `connections` (open loop) and `concurrency` (closed loop)
/// only in their own mode.
public struct PhaseReport: Codable, Equatable {
    public var name: String
    public var mode: String
    public var requestedRate: Double?
    public var achievedRate: Double
    public var durationS: Double
    public var sent: Int
    public var ok: Int
    public var errors: [String: Int]
    public var clientTimeouts: Int
    public var unsent: Int
    public var latencyMs: LatencySummary
    public var uncorrectedLatencyMs: LatencySummary
    public var histogram: [HistogramPoint]
    public var versions: [String: Int]
    public var timeline: [TimelinePoint]
    public var connections: Int?
    public var concurrency: Int?

    enum CodingKeys: String, CodingKey {
        case name, mode, sent, ok, errors, unsent, histogram, versions, timeline, connections, concurrency
        case requestedRate = "requested_rate"
        case achievedRate = "achieved_rate"
        case durationS = "duration_s"
        case clientTimeouts = "client_timeouts"
        case latencyMs = "latency_ms"
        case uncorrectedLatencyMs = "uncorrected_latency_ms"
    }

    public init(_ r: PhaseResult) {
        name = r.name
        mode = r.requestedRate != nil ? "open" : "closed"
        requestedRate = r.requestedRate
        achievedRate = r.achievedRate
        durationS = r.durationS
        sent = r.sent
        ok = r.ok
        errors = r.errors
        clientTimeouts = r.clientTimeouts
        unsent = r.unsent
        latencyMs = LatencySummary(r.corrected)
        uncorrectedLatencyMs = LatencySummary(r.uncorrected)
        histogram = r.corrected.totalCount == 0 ? [] : r.corrected.percentiles(ticksPerHalfDistance: 5).map {
            HistogramPoint(valueMs: Double($0.value) / 1000, percentile: $0.percentile, count: $0.totalCountToThisValue)
        }
        versions = r.versions
        timeline = r.timeline.enumerated().map { i, t in
            TimelinePoint(t: i, ok: t.ok, errors: t.errors, p50Ms: t.percentile(50), p99Ms: t.percentile(99), versions: t.versions)
        }
        switch r.mode {
        case .open(_, let c): connections = c
        case .closed(let c): concurrency = c
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(mode, forKey: .mode)
        try c.encode(requestedRate, forKey: .requestedRate)  // null in a closed loop
        try c.encode(achievedRate, forKey: .achievedRate)
        try c.encode(durationS, forKey: .durationS)
        try c.encode(sent, forKey: .sent)
        try c.encode(ok, forKey: .ok)
        try c.encode(errors, forKey: .errors)
        try c.encode(clientTimeouts, forKey: .clientTimeouts)
        try c.encode(unsent, forKey: .unsent)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(uncorrectedLatencyMs, forKey: .uncorrectedLatencyMs)
        try c.encode(histogram, forKey: .histogram)
        try c.encode(versions, forKey: .versions)
        try c.encode(timeline, forKey: .timeline)
        try c.encodeIfPresent(connections, forKey: .connections)
        try c.encodeIfPresent(concurrency, forKey: .concurrency)
    }
}

/// A sweep step: the phase's fields plus the rate asked, the attempt (1, or 2 for the repeat of a failing rate)
/// and whether it met the objective.
public struct SweepStepReport: Codable, Equatable {
    public var phase: PhaseReport
    public var askedRate: Double
    public var attempt: Int
    public var meetsSLO: Bool

    enum CodingKeys: String, CodingKey {
        case askedRate = "asked_rate"
        case attempt
        case meetsSLO = "meets_slo"
    }

    public init(phase: PhaseReport, askedRate: Double, attempt: Int, meetsSLO: Bool) {
        self.phase = phase
        self.askedRate = askedRate
        self.attempt = attempt
        self.meetsSLO = meetsSLO
    }

    public init(from decoder: Decoder) throws {
        phase = try PhaseReport(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        askedRate = try c.decode(Double.self, forKey: .askedRate)
        attempt = try c.decode(Int.self, forKey: .attempt)
        meetsSLO = try c.decode(Bool.self, forKey: .meetsSLO)
    }

    public func encode(to encoder: Encoder) throws {
        try phase.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(askedRate, forKey: .askedRate)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(meetsSLO, forKey: .meetsSLO)
    }
}

/// zrank-bench's `--json` file. A run: where it ran, then the whole run's phase fields at the top level, the client's
/// failover counters and, for a scenario of several phases, each phase. A sweep (`mode` "sweep"): where it ran, the
/// objective, the best rate (null when none met it) and every step.
public struct RunReport: Codable, Equatable {
    public var endpoint: String
    public var modelVersion: String
    public var candidates: Int
    public var topK: Int
    /// A run's result (nil for a sweep).
    public var total: PhaseReport?
    public var failoverResends: Int?
    public var duplicatesDropped: Int?
    public var phases: [PhaseReport]?
    /// A sweep's result (nil for a run).
    public var sweep: Sweep?

    public struct Sweep: Codable, Equatable {
        public var sloP99Ms: Double
        public var bestRate: Double?
        public var bestAskedRate: Double?
        public var lowestFailingRate: Double?
        public var steps: [SweepStepReport]

        public init(sloP99Ms: Double, bestRate: Double?, bestAskedRate: Double?, lowestFailingRate: Double?, steps: [SweepStepReport]) {
            self.sloP99Ms = sloP99Ms
            self.bestRate = bestRate
            self.bestAskedRate = bestAskedRate
            self.lowestFailingRate = lowestFailingRate
            self.steps = steps
        }
    }

    enum CodingKeys: String, CodingKey {
        case endpoint, candidates, phases, mode, sweep
        case modelVersion = "model_version"
        case topK = "top_k"
        case failoverResends = "failover_resends"
        case duplicatesDropped = "duplicates_dropped"
        case sloP99Ms = "slo_p99_ms"
        case bestRate = "best_rate"
        case bestAskedRate = "best_asked_rate"
        case lowestFailingRate = "lowest_failing_rate"
    }

    public init(endpoint: String, modelVersion: String, candidates: Int, topK: Int) {
        self.endpoint = endpoint
        self.modelVersion = modelVersion
        self.candidates = candidates
        self.topK = topK
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try c.decode(String.self, forKey: .endpoint)
        modelVersion = try c.decode(String.self, forKey: .modelVersion)
        candidates = try c.decode(Int.self, forKey: .candidates)
        topK = try c.decode(Int.self, forKey: .topK)
        if try c.decodeIfPresent(String.self, forKey: .mode) == "sweep" {
            sweep = Sweep(
                sloP99Ms: try c.decode(Double.self, forKey: .sloP99Ms),
                bestRate: try c.decodeIfPresent(Double.self, forKey: .bestRate),
                bestAskedRate: try c.decodeIfPresent(Double.self, forKey: .bestAskedRate),
                lowestFailingRate: try c.decodeIfPresent(Double.self, forKey: .lowestFailingRate),
                steps: try c.decode([SweepStepReport].self, forKey: .sweep))
        } else {
            total = try PhaseReport(from: decoder)
            failoverResends = try c.decodeIfPresent(Int.self, forKey: .failoverResends)
            duplicatesDropped = try c.decodeIfPresent(Int.self, forKey: .duplicatesDropped)
            phases = try c.decodeIfPresent([PhaseReport].self, forKey: .phases)
        }
    }

    public func encode(to encoder: Encoder) throws {
        if let total { try total.encode(to: encoder) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(endpoint, forKey: .endpoint)
        try c.encode(modelVersion, forKey: .modelVersion)
        try c.encode(candidates, forKey: .candidates)
        try c.encode(topK, forKey: .topK)
        try c.encodeIfPresent(failoverResends, forKey: .failoverResends)
        try c.encodeIfPresent(duplicatesDropped, forKey: .duplicatesDropped)
        try c.encodeIfPresent(phases, forKey: .phases)
        if let sweep {
            try c.encode("sweep", forKey: .mode)
            try c.encode(sweep.sloP99Ms, forKey: .sloP99Ms)
            try c.encode(sweep.bestRate, forKey: .bestRate)  // null when no rate met the objective
            try c.encode(sweep.bestAskedRate, forKey: .bestAskedRate)
            try c.encode(sweep.lowestFailingRate, forKey: .lowestFailingRate)
            try c.encode(sweep.steps, forKey: .sweep)
        }
    }

    /// The file's bytes: pretty-printed, keys sorted.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// Text renderings of results.
public enum Report {
    /// A readable summary.
    public static func text(_ r: PhaseResult) -> String {
        let c = LatencySummary(r.corrected)
        let u = LatencySummary(r.uncorrected)
        let errs = r.errors.isEmpty ? "none" : r.errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        var lines: [String] = []
        let asked = r.requestedRate.map { String(format: "%.1f req/s asked, ", $0) } ?? "closed loop, "
        lines.append("phase \(r.name): \(asked)" + String(format: "%.1f req/s achieved over %.1f s", r.achievedRate, r.durationS))
        lines.append("  requests: sent \(r.sent), ok \(r.ok), errors \(errs), client timeouts \(r.clientTimeouts)" + (r.unsent > 0 ? ", unsent \(r.unsent)" : ""))
        lines.append(String(format: "  latency ms (corrected):   p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f", c.p50, c.p90, c.p99, c.p999, c.max, c.mean))
        lines.append(String(format: "  latency ms (uncorrected): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f", u.p50, u.p90, u.p99, u.p999, u.max, u.mean))
        return lines.joined(separator: "\n")
    }

    /// Merges phases into one whole-run result (counters summed, histograms added).
    public static func merge(_ phases: [PhaseResult]) -> PhaseResult {
        var total = PhaseResult(name: "all", mode: phases.first?.mode ?? .closed(concurrency: 1), durationS: 0)
        for p in phases {
            total.durationS += p.durationS
            total.sent += p.sent
            total.ok += p.ok
            total.clientTimeouts += p.clientTimeouts
            total.unsent += p.unsent
            for (k, v) in p.errors { total.errors[k, default: 0] += v }
            total.corrected.add(p.corrected)
            total.uncorrected.add(p.uncorrected)
            for (k, v) in p.versions { total.versions[k, default: 0] += v }
            total.timeline += p.timeline
        }
        return total
    }
}

/// Minimal SVG line charts: the latency percentile curve and the SLO sweep.
public enum Plot {
    struct Series {
        var label: String
        var color: String
        var points: [(x: Double, y: Double)]
    }

    static func chart(
        title: String, xLabel: String, yLabel: String, series: [Series], xTicks: [(Double, String)], hLine: (Double, String)? = nil,
        vLines: [(Double, String)] = []
    ) -> String {
        let w = 720.0, h = 440.0, left = 70.0, right = 20.0, top = 40.0, bottom = 60.0
        let xs = series.flatMap { $0.points.map(\.x) } + xTicks.map(\.0)
        let ys = series.flatMap { $0.points.map(\.y) } + (hLine.map { [$0.0] } ?? [])
        let xMin = xs.min() ?? 0, xMax = max(xs.max() ?? 1, xMin + 1e-9)
        let yMax = max(ys.max() ?? 1, 1e-9) * 1.1
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * (w - left - right) }
        func py(_ y: Double) -> Double { h - bottom - y / yMax * (h - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(w / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for i in 0...5 {
            let y = yMax * Double(i) / 5
            s += "<line x1=\"\(left - 4)\" y1=\"\(py(y))\" x2=\"\(w - right)\" y2=\"\(py(y))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(left - 8)\" y=\"\(py(y) + 4)\" text-anchor=\"end\">\(String(format: "%.2f", y))</text>\n"
        }
        for (x, label) in xTicks {
            s += "<line x1=\"\(px(x))\" y1=\"\(h - bottom)\" x2=\"\(px(x))\" y2=\"\(h - bottom + 4)\" stroke=\"black\"/>"
            s += "<text x=\"\(px(x))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(escape(label))</text>\n"
        }
        if let (y, label) = hLine {
            s += "<line x1=\"\(left)\" y1=\"\(py(y))\" x2=\"\(w - right)\" y2=\"\(py(y))\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>"
            s += "<text x=\"\(w - right - 4)\" y=\"\(py(y) - 5)\" text-anchor=\"end\" fill=\"#c00\">\(escape(label))</text>\n"
        }
        for (x, label) in vLines {
            s += "<line x1=\"\(px(x))\" y1=\"\(top)\" x2=\"\(px(x))\" y2=\"\(h - bottom)\" stroke=\"#555\" stroke-dasharray=\"4,4\"/>"
            s += "<text x=\"\(px(x) + 4)\" y=\"\(top + 12)\" fill=\"#555\">\(escape(label))</text>\n"
        }
        s += "<text x=\"\(w / 2)\" y=\"\(h - 15)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text x=\"16\" y=\"\(h / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(h / 2))\">\(escape(yLabel))</text>\n"
        for (i, ser) in series.enumerated() where !ser.points.isEmpty {
            let path = ser.points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(ser.color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            s += "<text x=\"\(left + 12)\" y=\"\(top + 16 + Double(i) * 16)\" fill=\"\(ser.color)\">\(escape(ser.label))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Latency by percentile (x: log scale of 1/(1-p)), corrected and uncorrected.
    public static func percentileCurve(_ r: PhaseResult, title: String, slo: Double?) -> String {
        func points(_ h: Histogram<UInt64>) -> [(x: Double, y: Double)] {
            guard h.totalCount > 0 else { return [] }
            return h.percentiles(ticksPerHalfDistance: 5).compactMap { v in
                guard v.percentile < 100 else { return nil }
                return (log10(1 / (1 - v.percentile / 100)), Double(v.value) / 1000)
            }
        }
        let ticks: [(Double, String)] = [(0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%")]
        return chart(
            title: title, xLabel: "percentile", yLabel: "latency (ms)",
            series: [Series(label: "corrected (from intended send time)", color: "#1f77b4", points: points(r.corrected)),
                     Series(label: "uncorrected (from actual send time)", color: "#ff7f0e", points: points(r.uncorrected))],
            xTicks: ticks, hLine: slo.map { ($0, "SLO p99 \(String(format: "%.1f", $0)) ms") })
    }

    /// Two charts over the run's seconds: p50/p99 latency, and the share of answers each model version gave (a
    /// rollout's switch from one version to the next).
    /// - Parameter marks: vertical lines (second, label), e.g. where each phase starts.
    public static func timeline(_ r: PhaseResult, title: String, marks: [(Double, String)] = []) -> String {
        let seconds = r.timeline.enumerated()
        let p99 = seconds.map { (x: Double($0.offset), y: $0.element.percentile(99)) }
        let p50 = seconds.map { (x: Double($0.offset), y: $0.element.percentile(50)) }
        let n = Double(max(1, r.timeline.count))
        let step = max(1, (n / 8).rounded(.up))
        let ticks = stride(from: 0.0, through: n, by: step).map { ($0, String(format: "%.0f", $0)) }
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
        let versions = r.versions.keys.sorted()
        let shares = versions.enumerated().map { i, v in
            Series(
                label: "% answered by \(v)", color: colors[i % colors.count],
                points: r.timeline.enumerated().map { s, t in (x: Double(s), y: t.ok > 0 ? 100 * Double(t.versions[v] ?? 0) / Double(t.ok) : 0) })
        }
        let top = chart(
            title: title, xLabel: "seconds", yLabel: "latency (ms)",
            series: [Series(label: "p99 per second", color: "#d62728", points: p99), Series(label: "p50 per second", color: "#2ca02c", points: p50)],
            xTicks: ticks, vLines: marks)
        let bottom = chart(
            title: "answers by model version", xLabel: "seconds", yLabel: "share of answers (%)", series: shares, xTicks: ticks,
            vLines: marks)
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"880\">\n"
            + top.replacingOccurrences(of: "<svg ", with: "<svg y=\"0\" ")
            + bottom.replacingOccurrences(of: "<svg ", with: "<svg y=\"440\" ")
            + "</svg>\n"
    }

    /// p50/p99 against achieved rate, one point per sweep step.
    public static func sweep(_ steps: [PhaseResult], title: String, slo: Double) -> String {
        let p99 = steps.map { (x: $0.achievedRate, y: LatencySummary($0.corrected).p99) }
        let p50 = steps.map { (x: $0.achievedRate, y: LatencySummary($0.corrected).p50) }
        let maxRate = steps.map(\.achievedRate).max() ?? 1
        let ticks = (0...5).map { (maxRate * Double($0) / 5, String(format: "%.0f", maxRate * Double($0) / 5)) }
        return chart(
            title: title, xLabel: "achieved rate (requests/s)", yLabel: "latency (ms)",
            series: [Series(label: "p99", color: "#d62728", points: p99), Series(label: "p50", color: "#2ca02c", points: p50)],
            xTicks: ticks, hLine: (slo, "SLO p99 \(String(format: "%.1f", slo)) ms"))
    }
}
