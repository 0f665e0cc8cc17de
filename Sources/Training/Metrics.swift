import Foundation

/// Evaluation figures for ranking heads: log-loss, AUC, RMSE and NDCG@10.
public enum RankingMetrics {
    /// Mean binary log-loss of probabilities `p` for labels `y`.
    public static func logLoss(_ p: [Double], _ y: [Bool]) -> Double {
        guard !p.isEmpty else { return .nan }
        var total = 0.0
        for (pi, yi) in zip(p, y) {
            let q = min(max(pi, 1e-12), 1 - 1e-12)
            total -= yi ? log(q) : log(1 - q)
        }
        return total / Double(p.count)
    }

    /// Area under the ROC curve of `score` for labels `y` (ties count half); nan with one class only.
    public static func auc(_ score: [Double], _ y: [Bool]) -> Double {
        let positives = y.filter { $0 }.count
        let negatives = y.count - positives
        guard positives > 0, negatives > 0 else { return .nan }
        let order = score.indices.sorted { score[$0] < score[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && score[order[j + 1]] == score[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j where y[order[k]] { rankSum += rank }
            i = j + 1
        }
        return (rankSum - Double(positives) * Double(positives + 1) / 2) / (Double(positives) * Double(negatives))
    }

    public static func rmse(_ prediction: [Double], _ truth: [Double]) -> Double {
        guard !prediction.isEmpty else { return .nan }
        return (zip(prediction, truth).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(prediction.count)).squareRoot()
    }

    /// Mean NDCG@k over groups (sessions): items ranked by `score`, gains `gain`; groups without any gain are skipped.
    public static func ndcg(groups: [[Int]], score: [Double], gain: [Double], k: Int = 10) -> Double {
        var total = 0.0
        var counted = 0
        for g in groups {
            let ideal = g.map { gain[$0] }.sorted(by: >)
            guard let best = ideal.first, best > 0 else { continue }
            // Ties broken by position in the group, so the figure is deterministic.
            let ranked = g.enumerated().sorted { a, b in
                score[a.element] != score[b.element] ? score[a.element] > score[b.element] : a.offset < b.offset
            }.map(\.element)
            func dcg(_ gains: [Double]) -> Double {
                gains.prefix(k).enumerated().reduce(0) { $0 + (pow(2, $1.element) - 1) / log2(Double($1.offset) + 2) }
            }
            total += dcg(ranked.map { gain[$0] }) / dcg(ideal)
            counted += 1
        }
        return counted > 0 ? total / Double(counted) : .nan
    }
}

/// NDCG@10 of validation sessions split into segments (e.g. users with and without strong taste).
public struct SegmentFigures: Codable, Sendable, Equatable {
    public var sessions: Int
    public var ndcg10: Double
    public var baselineNDCG10: Double
    public var auc: Double
    public var baselineAUC: Double

    enum CodingKeys: String, CodingKey {
        case sessions, auc
        case ndcg10 = "ndcg10"
        case baselineNDCG10 = "cosine_ndcg10"
        case baselineAUC = "cosine_auc"
    }
}

extension RankingMetrics {
    /// Per segment (named by `segment(userID)`; nil leaves a row out): NDCG@10 (gains from `gain`, e.g. the clicks or
    /// a simulator's true attraction) and AUC of the clicks, for the combined score and for cosine.
    public static func bySegment(
        _ rows: [ValidationRow], segment: (String?) -> String?, gain: (ValidationRow) -> Double = { $0.clicked ? 1 : 0 }
    ) -> [String: SegmentFigures] {
        var out: [String: SegmentFigures] = [:]
        let named = rows.indices.compactMap { i in segment(rows[i].userID).map { (i, $0) } }
        for name in Set(named.map(\.1)) {
            let members = named.filter { $0.1 == name }.map(\.0)
            var groupsBySession: [Int: [Int]] = [:]
            for (k, i) in members.enumerated() { groupsBySession[rows[i].session, default: []].append(k) }
            let groups = groupsBySession.keys.sorted().map { groupsBySession[$0]! }
            let combined = members.map { rows[$0].combined }
            let cosine = members.map { rows[$0].cosine }
            let clicked = members.map { rows[$0].clicked }
            let gains = members.map { gain(rows[$0]) }
            out[name] = SegmentFigures(
                sessions: groups.count, ndcg10: ndcg(groups: groups, score: combined, gain: gains),
                baselineNDCG10: ndcg(groups: groups, score: cosine, gain: gains), auc: auc(combined, clicked),
                baselineAUC: auc(cosine, clicked))
        }
        return out
    }
}
