import ArgumentParser
import Bench
import Foundation
import Model
import Ranking

extension ZRank {
    /// `zrank bench-rank --model FILE --index FILE --heads FILE [--candidates 1000] [--seconds 3] [--rounds 3]`
    struct BenchRank: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-rank",
            abstract: "Time ranking with heads against cosine-only ranking, alternating rounds in one process (JSON lines).",
            discussion: """
                Both rankers map the same model and index; each request is a real WANDS query (cycled) with the same
                candidates. Heads requests also carry 8 recent items (the personal features). One JSON line per
                round and mode, then a summary line with the ratios of the medians. Requests alternate one by one.
                """)

        @Option(name: .long, help: "The model file (*.zrm).")
        var model: String

        @Option(name: .long, help: "The catalog index (*.zri).")
        var index: String

        @Option(name: .long, help: "The heads file.")
        var heads: String

        @Option(name: .long, help: "Candidates per request (drawn from the index).")
        var candidates: Int = 1000

        @Option(name: .long, help: "Measured seconds per round.")
        var seconds: Double = 3

        @Option(name: .long, help: "Rounds (requests alternate cosine / heads within each).")
        var rounds: Int = 3

        @Option(name: .long, help: "Query file (WANDS query.csv, JSON lines {\"query\"} or plain lines).")
        var queries: String = "bench/data/wands/query.csv"

        func validate() throws {
            guard candidates >= 1, seconds > 0, rounds >= 1 else { throw ValidationError("need --candidates >= 1, --seconds > 0, --rounds >= 1") }
        }

        func run() throws {
            let file = try loadModel(model, command: "bench-rank")
            let idx: CatalogIndex
            let loaded: RankingHeads
            do {
                idx = try CatalogIndex(path: index, model: file)
                loaded = try RankingHeads.load(heads)
            } catch {
                throw CLIFailure("zrank bench-rank: \(error)")
            }
            let plain = try Ranker(model: file, index: idx)
            let withHeads = try Ranker(model: file, index: idx, heads: loaded)
            let qs: [String]
            do {
                qs = try Workload.loadQueries(queries)  // the same reader zrank-bench uses
            } catch {
                throw CLIFailure("zrank bench-rank: \(error)")
            }
            let n = min(candidates, idx.count)
            let stride = max(1, idx.count / n)
            let ids = (0..<n).map { idx.id(ofRow: ($0 * stride) % idx.count) }
            let recent = (0..<8).map { idx.id(ofRow: ($0 * 97 + 13) % idx.count) }
            // Requests alternate cosine / heads one by one (same query for both), so drift on a shared machine
            // hits both modes alike.
            func round(_ seconds: Double) throws -> [String: (totals: [Double], scores: [Double], encodes: [Double])] {
                var out: [String: (totals: [Double], scores: [Double], encodes: [Double])] = ["cosine": ([], [], []), "heads": ([], [], [])]
                var i = 0
                let end = Date().addingTimeInterval(seconds)
                while Date() < end {
                    let text = qs[i % qs.count]
                    i += 1
                    for (ranker, mode) in [(plain, "cosine"), (withHeads, "heads")] {
                        let q = RankQuery(query: text, candidateIDs: ids, topK: 10, recentItemIDs: mode == "heads" ? recent : [])
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let outcome = try ranker.rank(q)
                        out[mode]!.totals.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
                        out[mode]!.scores.append(Double(outcome.scoreNanos) / 1000)
                        out[mode]!.encodes.append(Double(outcome.encodeNanos) / 1000)
                    }
                }
                return out
            }
            func pct(_ v: [Double], _ p: Double) -> Double { v.sorted()[min(v.count - 1, Int(p * Double(v.count)))] }
            _ = try round(min(1, seconds))  // warm-up
            var p50: [String: [Double]] = [:]
            var scoreP50: [String: [Double]] = [:]
            for r in 1...rounds {
                let result = try round(seconds)
                for mode in ["cosine", "heads"] {
                    let m = result[mode]!
                    let line = BenchRankRound(
                        mode: mode, round: r, candidates: n, requests: m.totals.count, p50Us: pct(m.totals, 0.5),
                        p99Us: pct(m.totals, 0.99), meanUs: m.totals.reduce(0, +) / Double(m.totals.count),
                        scoreP50Us: pct(m.scores, 0.5), encodeP50Us: pct(m.encodes, 0.5))
                    p50[mode, default: []].append(line.p50Us)
                    scoreP50[mode, default: []].append(line.scoreP50Us)
                    print(try JSONLines.line(line))
                }
            }
            func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
            let summary = BenchRankSummary(
                candidates: n, rounds: rounds, cosineP50Us: median(p50["cosine"]!), headsP50Us: median(p50["heads"]!),
                headsOverCosine: median(p50["heads"]!) / median(p50["cosine"]!),
                scoreOnlyHeadsOverCosine: median(scoreP50["heads"]!) / median(scoreP50["cosine"]!))
            print(try JSONLines.line(summary))
        }
    }
}

/// One round of one mode, as `zrank bench-rank` prints it (microseconds).
struct BenchRankRound: Encodable {
    var mode: String
    var round: Int
    var candidates: Int
    var requests: Int
    var p50Us: Double
    var p99Us: Double
    var meanUs: Double
    var scoreP50Us: Double
    var encodeP50Us: Double
}

/// `zrank bench-rank`'s last line: medians over the rounds and the heads/cosine ratios.
struct BenchRankSummary: Encodable {
    var summary = true
    var candidates: Int
    var rounds: Int
    var cosineP50Us: Double
    var headsP50Us: Double
    var headsOverCosine: Double
    var scoreOnlyHeadsOverCosine: Double
}
