import Foundation
import Model
import Ranking
import Tokenizer

/// Why training could not run.
public struct TrainingError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One logged impression: `{"query", "item", "user": {"id", "recent"}?, "position"?, "clicked", "dwell_s"?}`.
public struct Impression: Sendable, Equatable {
    public var query: String
    public var item: String
    public var userID: String?
    public var recent: [String]
    public var position: Int?
    public var clicked: Bool
    public var dwellSeconds: Double?

    public init(
        query: String, item: String, userID: String? = nil, recent: [String] = [], position: Int? = nil, clicked: Bool,
        dwellSeconds: Double? = nil
    ) {
        self.query = query
        self.item = item
        self.userID = userID
        self.recent = recent
        self.position = position
        self.clicked = clicked
        self.dwellSeconds = dwellSeconds
    }
}

/// A log line that could not be used, with its number (1-based) and why.
public struct LogProblem: Codable, Sendable, Equatable {
    public var line: Int
    public var reason: String
}

/// Reads an impression log (JSON lines). Malformed lines are collected, not fatal.
public enum ImpressionLog {
    public static func read(_ path: String) throws(TrainingError) -> (rows: [Impression], problems: [LogProblem]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError("\(path): cannot read the log") }
        var rows: [Impression] = []
        var problems: [LogProblem] = []
        var number = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            switch parse(Data(line)) {
            case .success(let r): rows.append(r)
            case .failure(let reason): problems.append(LogProblem(line: number, reason: reason.description))
            }
        }
        return (rows, problems)
    }

    static func parse(_ line: Data) -> Result<Impression, TrainingError> {
        guard String(data: line, encoding: .utf8) != nil else { return .failure(TrainingError("invalid UTF-8")) }
        guard let o = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else {
            return .failure(TrainingError("not a JSON object"))
        }
        guard let query = o["query"] as? String, !query.allSatisfy(\.isWhitespace) else {
            return .failure(TrainingError("missing or empty string \"query\""))
        }
        guard let item = o["item"] as? String, !item.isEmpty else { return .failure(TrainingError("missing string \"item\"")) }
        guard let clicked = o["clicked"] as? Bool else { return .failure(TrainingError("missing boolean \"clicked\"")) }
        var r = Impression(query: query, item: item, userID: nil, recent: [], position: nil, clicked: clicked, dwellSeconds: nil)
        if let user = o["user"], !(user is NSNull) {
            guard let u = user as? [String: Any] else { return .failure(TrainingError("\"user\" must be an object")) }
            r.userID = u["id"] as? String
            if let recent = u["recent"] {
                guard let list = recent as? [String] else { return .failure(TrainingError("\"user.recent\" must be a list of ids")) }
                r.recent = list
            }
        }
        if let p = o["position"], !(p is NSNull) {
            guard let n = p as? Int, n >= 1 else { return .failure(TrainingError("\"position\" must be an integer >= 1")) }
            r.position = n
        }
        if let d = o["dwell_s"], !(d is NSNull) {
            guard let v = (d as? Double) ?? (d as? Int).map(Double.init), v >= 0, v.isFinite else {
                return .failure(TrainingError("\"dwell_s\" must be a non-negative number"))
            }
            r.dwellSeconds = v
        }
        return .success(r)
    }
}

/// How to train.
public struct TrainingOptions: Sendable {
    /// Share of sessions (user, query) held out for validation.
    public var validation = 0.2
    /// L2 regularisation strength for every feature (on the standardised features; the intercepts are not
    /// penalised). nil: chosen on the validation split from `l2Grid` × `interactionL2Grid`.
    public var l2: Double? = nil
    /// The scalar features' L2 strengths tried when `l2` is nil.
    public var l2Grid: [Double] = [0.001, 0.01, 0.1]
    /// The 384 interaction features' L2 strengths tried when `l2` is nil: each carries about 1/384 of the query-item
    /// signal, so the strength that suits a scalar feature pins them near zero.
    public var interactionL2Grid: [Double] = [0.001, 0.01, 0.1, 1]
    /// The held-out queries, when given (e.g. the ones `zrank fine-tune` held out, so heads and the fine-tuned model
    /// are judged on the same queries): every impression of these queries is validation, every other one training.
    public var validationQueries: Set<String>?
    public var seed: UInt64 = 1
    public var headsVersion = "heads"
    /// Use the personal features (off: trained as if no request had a user profile).
    public var usePersonal = true
    public var maxIterations = 200
    /// Iterations without a better validation loss before stopping.
    public var patience = 15

    public init() {}
}

/// What training measured on the validation split, next to the cosine-only baseline on the same split.
public struct TrainingReport: Codable, Sendable {
    public var rows = 0
    public var trainRows = 0
    public var validationRows = 0
    public var validationSessions = 0
    public var malformedLines = 0
    /// The first malformed lines (line number, reason).
    public var problems: [LogProblem] = []
    /// Impressions whose item is not in the index (skipped).
    public var unknownItems = 0
    /// Recent item ids not in the index (skipped when building profiles).
    public var unknownRecentItems = 0
    public var clicks = 0
    public var ctrLogLoss = 0.0
    public var ctrAUC = 0.0
    public var baselineLogLoss = 0.0
    public var baselineAUC = 0.0
    public var engagementRows = 0
    public var engagementRMSE: Double?
    public var baselineEngagementRMSE: Double?
    public var ndcg10 = 0.0
    public var baselineNDCG10 = 0.0
    public var ctrIterations = 0
    public var engagementIterations = 0
    public var usedPersonal = true
    /// The L2 strengths used (scalar features, interaction features), per head.
    public var ctrL2: L2Choice?
    public var engagementL2: L2Choice?
    /// With a simulator truth file: figures per user segment ("strong_taste", "no_taste").
    public var segments: [String: SegmentFigures]?

    enum CodingKeys: String, CodingKey {
        case segments
        case rows, clicks, problems
        case trainRows = "train_rows"
        case validationRows = "validation_rows"
        case validationSessions = "validation_sessions"
        case malformedLines = "malformed_lines"
        case unknownItems = "unknown_items"
        case unknownRecentItems = "unknown_recent_items"
        case ctrLogLoss = "ctr_log_loss"
        case ctrAUC = "ctr_auc"
        case baselineLogLoss = "cosine_log_loss"
        case baselineAUC = "cosine_auc"
        case engagementRows = "engagement_rows"
        case engagementRMSE = "engagement_rmse"
        case baselineEngagementRMSE = "mean_engagement_rmse"
        case ndcg10 = "ndcg10"
        case baselineNDCG10 = "cosine_ndcg10"
        case ctrIterations = "ctr_iterations"
        case engagementIterations = "engagement_iterations"
        case usedPersonal = "used_personal"
        case ctrL2 = "ctr_l2"
        case engagementL2 = "engagement_l2"
    }
}

/// Which L2 strengths a head was fitted with, and every pair tried with its validation loss (without the penalty).
public struct L2Choice: Codable, Sendable, Equatable {
    public struct Trial: Codable, Sendable, Equatable {
        public var scalar: Double
        public var interaction: Double
        public var validationLoss: Double
        /// The ranking figure the choice maximises (NDCG@10 of the validation clicks as served), when used.
        public var validationRank: Double?
        /// A fixed candidate's name ("cosine_only") instead of a fitted L2 pair.
        public var candidate: String?

        enum CodingKeys: String, CodingKey {
            case scalar, interaction, candidate
            case validationLoss = "validation_loss"
            case validationRank = "validation_ndcg10"
        }
    }

    public var scalar: Double
    public var interaction: Double
    /// "fixed" (--l2 given), "validation_ndcg10" or "validation_loss" (chosen on the validation split).
    public var chosenBy: String
    /// Set when a fixed candidate won ("cosine_only": the heads rank by cosine, as nothing fitted ranked better).
    public var candidate: String?
    public var trials: [Trial]

    enum CodingKeys: String, CodingKey {
        case scalar, interaction, trials, candidate
        case chosenBy = "chosen_by"
    }
}

/// One validation impression with both scores (for per-segment evaluation).
public struct ValidationRow: Sendable {
    public var userID: String?
    public var query: String
    public var item: String
    public var clicked: Bool
    /// Session number (rows of one (user, query) share it).
    public var session: Int
    public var combined: Double
    public var cosine: Double
}

/// Fits the ranking heads on an impression log: features from the int8 encoder and the index, L-BFGS with L2 and
/// early stopping on a held-out split of sessions, a report next to the cosine-only baseline.
public enum HeadsTrainer {
    /// Where training is, for a progress display.
    public enum Progress: Sendable, Equatable {
        /// Queries encoded so far.
        case encodingQueries(done: Int, total: Int)
        /// A head's optimiser iteration (at most `maxIterations`; early stopping may end it sooner).
        case fitting(head: String, iteration: Int, maxIterations: Int, validationLoss: Double)
    }

    public struct Result {
        public var heads: RankingHeads
        public var report: TrainingReport
        public var validation: [ValidationRow]
    }

    public static func train(
        model: ModelFile, index: CatalogIndex, log: String, options: TrainingOptions = TrainingOptions(),
        progress: (Progress) -> Void = { _ in }
    ) throws -> Result {
        let (all, problems) = try ImpressionLog.read(log)
        var report = TrainingReport()
        report.malformedLines = problems.count
        report.problems = Array(problems.prefix(20))
        report.usedPersonal = options.usePersonal
        let rows = all.filter { index.row(of: $0.item) != nil }
        report.unknownItems = all.count - rows.count
        guard !rows.isEmpty else {
            throw TrainingError("\(log): no usable impressions (\(problems.count) malformed lines, \(report.unknownItems) unknown items)")
        }
        let clicks = rows.filter(\.clicked).count
        guard clicks > 0 else { throw TrainingError("\(log): no clicks among \(rows.count) impressions: nothing to learn a click model from") }
        guard clicks < rows.count else { throw TrainingError("\(log): every impression is a click: one class only") }
        report.rows = rows.count
        report.clicks = clicks

        // Features.
        let ranker = try Ranker(model: model, index: index)
        let tokenizer = try model.makeTokenizer()
        let dim = index.dimension
        let width = FeatureSet.scalarCount + dim
        var queryVectors: [String: [Float]] = [:]
        var queryPieces: [String: [UInt32]] = [:]
        let queries = Array(Set(rows.map(\.query))).sorted()
        for (i, q) in queries.enumerated() {
            queryVectors[q] = try ranker.embed(q)
            queryPieces[q] = wordPieces(tokenizer, q)
            progress(.encodingQueries(done: i + 1, total: queries.count))
        }
        var profiles: [String: [Float]?] = [:]
        var unknownRecent = Set<String>()
        var x = [Float](repeating: 0, count: rows.count * width)
        for (n, r) in rows.enumerated() {
            let row = Int(index.row(of: r.item)!)
            let q = queryVectors[r.query]!
            let d = index.embedding(ofRow: row)
            var profile: [Float]?
            if options.usePersonal && !r.recent.isEmpty {
                let key = r.recent.joined(separator: "\u{0}")
                if let cached = profiles[key] {
                    profile = cached
                } else {
                    var embeddings: [[Float]] = []
                    for id in r.recent {
                        if let rr = index.row(of: id) { embeddings.append(index.embedding(ofRow: Int(rr))) } else { unknownRecent.insert(id) }
                    }
                    profile = FeatureSet.profile(embeddings)
                    profiles[key] = profile
                }
            }
            let base = n * width
            var cos: Float = 0
            for i in 0..<dim { cos += q[i] * d[i] }
            x[base + FeatureSet.cosine] = cos
            x[base + FeatureSet.lexical] = FeatureSet.lexical(query: queryPieces[r.query]!, title: index.titlePieces(ofRow: row))
            if let profile {
                var p: Float = 0
                for i in 0..<dim { p += profile[i] * d[i] }
                x[base + FeatureSet.personal] = p
                x[base + FeatureSet.hasProfile] = 1
            }
            x[base + FeatureSet.popularity] = index.logPopularity(ofRow: row)
            x[base + FeatureSet.logPrice] = index.logPrice(ofRow: row)
            x[base + FeatureSet.positionBias] = FeatureSet.positionFeature(r.position ?? FeatureSet.servingPosition)
            for i in 0..<dim { x[base + FeatureSet.scalarCount + i] = q[i] * d[i] }
        }
        report.unknownRecentItems = unknownRecent.count

        // Split by session (user, query), deterministic for a seed; or by the given validation queries.
        func sessionKey(_ r: Impression) -> String { (r.userID ?? "") + "\u{0}" + r.query }
        var isValidation = [Bool](repeating: false, count: rows.count)
        for (n, r) in rows.enumerated() {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ options.seed
            for b in sessionKey(r).utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h ^= h >> 33
            h = h &* 0xff51_afd7_ed55_8ccd
            h ^= h >> 33
            isValidation[n] = options.validationQueries.map { $0.contains(r.query) }
                ?? (Double(h % 1_000_000) / 1_000_000 < options.validation)
        }
        let train = rows.indices.filter { !isValidation[$0] }
        let valid = rows.indices.filter { isValidation[$0] }
        guard !train.isEmpty else { throw TrainingError("\(log): no training rows left after the validation split") }
        guard train.contains(where: { rows[$0].clicked }), train.contains(where: { !rows[$0].clicked }) else {
            throw TrainingError("\(log): the training split has one class only")
        }
        report.trainRows = train.count
        report.validationRows = valid.count

        // Standardisation from the training rows (missing values → the mean).
        var mean = [Float](repeating: 0, count: width)
        var std = [Float](repeating: 1, count: width)
        for f in 0..<width {
            var sum = 0.0, sq = 0.0, count = 0.0
            for n in train {
                let v = x[n * width + f]
                if v.isNaN { continue }
                sum += Double(v)
                sq += Double(v) * Double(v)
                count += 1
            }
            guard count > 0 else { continue }
            let m = sum / count
            let variance = max(0, sq / count - m * m)
            mean[f] = Float(m)
            std[f] = variance > 1e-12 ? Float(variance.squareRoot()) : 1
        }
        var z = x
        for n in rows.indices {
            for f in 0..<width {
                let v = x[n * width + f]
                z[n * width + f] = v.isNaN ? 0 : (v - mean[f]) / std[f]
            }
        }
        let labels = rows.map { $0.clicked ? 1.0 : 0.0 }

        // Training-only position indicators, one per logged position 2...slots+1 (deeper ones share the last; position
        // 1 and unknown positions are the reference, the serving position): the heads learn the examination curve's
        // own shape, instead of leaning on features that merely go with the logged rank (the word overlap of a
        // lexical logged ranker, say). Served heads keep only the first `width` weights.
        let slots = Self.positionSlots
        let trainWidth = width + slots
        var zt = [Float](repeating: 0, count: rows.count * trainWidth)
        for n in rows.indices {
            for f in 0..<width { zt[n * trainWidth + f] = z[n * width + f] }
            if let p = rows[n].position, p >= 2 { zt[n * trainWidth + width + min(p, slots + 1) - 2] = 1 }
        }
        func positionTerm(_ w: [Double], _ n: Int) -> Double {
            guard let p = rows[n].position, p >= 2 else { return 0 }
            return w[width + min(p, slots + 1) - 2]
        }

        // CTR head: logistic regression, L2 fixed or chosen on the validation split by what the heads are for: the
        // order of each validation session's items as served (NDCG@10 of its clicks). Cosine alone is a candidate
        // too, so heads never rank the validation sessions worse than the encoder does by itself.
        let validGroups = Dictionary(grouping: valid.indices, by: { sessionKey(rows[valid[$0]]) }).values.sorted { $0[0] < $1[0] }
        let validClicks = valid.map { labels[$0] }
        func servedNDCG(_ w: [Double]) -> Double {
            let scores = valid.map { n in
                (0..<width).reduce(0.0) { t, f in f == FeatureSet.positionBias ? t : t + w[f] * Double(zt[n * trainWidth + f]) }
            }
            return RankingMetrics.ndcg(groups: validGroups, score: scores, gain: validClicks)
        }
        let cosineOnly: [Double] = {
            let c = fitOneFeature(train.map { Double(x[$0 * width + FeatureSet.cosine]) }, train.map { labels[$0] })
            // (intercept, slope) on raw cosine, moved onto the standardised feature.
            var w = [Double](repeating: 0, count: trainWidth + 1)
            w[FeatureSet.cosine] = c.1 * Double(std[FeatureSet.cosine])
            w[trainWidth] = c.0 + c.1 * Double(mean[FeatureSet.cosine])
            return w
        }()
        var ctrIterations = 0
        let (ctrWeights, ctrChoice) = fitChoosingL2(
            z: zt, width: trainWidth, interactionEnd: width, train: train, valid: valid, target: labels, logistic: true,
            options: options, candidates: [Candidate(name: "cosine_only", weights: cosineOnly)], rank: servedNDCG,
            iterations: &ctrIterations) { i, loss in
            progress(.fitting(head: "ctr", iteration: i, maxIterations: options.maxIterations, validationLoss: loss))
        }
        report.ctrIterations = ctrIterations
        report.ctrL2 = ctrChoice
        let ctr = LinearHead(bias: Float(ctrWeights[trainWidth]), weights: ctrWeights[0..<width].map { Float($0) })

        // Engagement head: linear regression on log(1 + dwell seconds) per impression (0 when not clicked), so the
        // prediction is the expected engagement of showing the item; clicks without a dwell time are left out.
        let engaged = rows.indices.filter { !rows[$0].clicked || rows[$0].dwellSeconds != nil }
        report.engagementRows = rows.filter { $0.clicked && $0.dwellSeconds != nil }.count
        var engagement: LinearHead?
        var engagementPositions: [Double] = []
        let engagementTarget = rows.map { log1p($0.dwellSeconds ?? 0) }
        let engagedTrain = engaged.filter { !isValidation[$0] }
        let engagedValid = engaged.filter { isValidation[$0] }
        if report.engagementRows >= 20 {
            // Chosen like the CTR head, by the order of the validation sessions, now of the combined score as served
            // (alpha · P(click) + beta · E[engagement] with the default weights); a constant engagement head (the
            // training mean) is a candidate, so the engagement term never makes that order worse than CTR alone.
            let served = RankingHeads.defaultWeights
            let ctrServed = valid.map { n in
                1 / (1 + exp(-(0..<width).reduce(ctrWeights[trainWidth]) { t, f in
                    f == FeatureSet.positionBias ? t : t + ctrWeights[f] * Double(zt[n * trainWidth + f])
                }))
            }
            func combinedNDCG(_ w: [Double]) -> Double {
                let scores = valid.indices.map { k in
                    Double(served.alpha) * ctrServed[k] + Double(served.beta) * (0..<width).reduce(w[trainWidth]) { t, f in
                        f == FeatureSet.positionBias ? t : t + w[f] * Double(zt[valid[k] * trainWidth + f])
                    }
                }
                return RankingMetrics.ndcg(groups: validGroups, score: scores, gain: validClicks)
            }
            var constant = [Double](repeating: 0, count: trainWidth + 1)
            constant[trainWidth] = engagedTrain.map { engagementTarget[$0] }.reduce(0, +) / Double(max(1, engagedTrain.count))
            var iterations = 0
            let (w, choice) = fitChoosingL2(
                z: zt, width: trainWidth, interactionEnd: width, train: engagedTrain, valid: engagedValid,
                target: engagementTarget, logistic: false, options: options,
                candidates: [Candidate(name: "constant", weights: constant)], rank: combinedNDCG, iterations: &iterations) { i, loss in
                progress(.fitting(head: "engagement", iteration: i, maxIterations: options.maxIterations, validationLoss: loss))
            }
            report.engagementIterations = iterations
            report.engagementL2 = choice
            engagement = LinearHead(bias: Float(w[trainWidth]), weights: w[0..<width].map { Float($0) })
            engagementPositions = w
        }
        var heads = RankingHeads(
            headsVersion: options.headsVersion, dimension: dim, mean: mean, std: std, ctr: ctr, engagement: engagement,
            modelContentHash: model.contentHash)

        // Validation figures, as served: position set to the serving constant.
        let servingPosition = (FeatureSet.positionFeature(FeatureSet.servingPosition) - mean[FeatureSet.positionBias]) / std[FeatureSet.positionBias]
        /// A head's output for impression n: as served (position 1), or as logged (with its position's terms).
        func predict(_ head: LinearHead, _ n: Int, serving: Bool, positions: [Double] = []) -> Double {
            var t = Double(head.bias)
            for f in 0..<width {
                let v = serving && f == FeatureSet.positionBias ? servingPosition : z[n * width + f]
                t += Double(head.weights[f]) * Double(v)
            }
            return serving || positions.isEmpty ? t : t + positionTerm(positions, n)
        }
        func sigmoid(_ t: Double) -> Double { 1 / (1 + exp(-t)) }
        let validLabels = valid.map { rows[$0].clicked }
        // Log-loss of the logged clicks (with their positions); AUC as served (position constant), like cosine's.
        report.ctrLogLoss = RankingMetrics.logLoss(valid.map { sigmoid(predict(ctr, $0, serving: false, positions: ctrWeights)) }, validLabels)
        report.ctrAUC = RankingMetrics.auc(valid.map { predict(ctr, $0, serving: true) }, validLabels)
        let cosine = valid.map { Double(x[$0 * width + FeatureSet.cosine]) }
        report.baselineAUC = RankingMetrics.auc(cosine, validLabels)
        // Cosine-only baseline log-loss: a one-feature logistic regression on the same training rows.
        let c = fitOneFeature(train.map { Double(x[$0 * width]) }, train.map { labels[$0] })
        report.baselineLogLoss = RankingMetrics.logLoss(cosine.map { sigmoid(c.0 + c.1 * $0) }, validLabels)
        if let engagement, !engagedValid.isEmpty {
            let truth = engagedValid.map { engagementTarget[$0] }
            report.engagementRMSE = RankingMetrics.rmse(
                engagedValid.map { predict(engagement, $0, serving: false, positions: engagementPositions) }, truth)
            let trainMean = engagedTrain.map { engagementTarget[$0] }.reduce(0, +) / Double(engagedTrain.count)
            report.baselineEngagementRMSE = RankingMetrics.rmse(truth.map { _ in trainMean }, truth)
        }
        // NDCG@10 per validation session, combined score as served vs cosine; gain: a click.
        var sessionOf: [String: Int] = [:]
        var groups: [[Int]] = []
        var combined: [Double] = []
        var validation: [ValidationRow] = []
        for (k, n) in valid.enumerated() {
            let key = sessionKey(rows[n])
            let s = sessionOf[key] ?? {
                sessionOf[key] = groups.count
                groups.append([])
                return groups.count - 1
            }()
            groups[s].append(k)
            let p = sigmoid(predict(ctr, n, serving: true))
            let e = engagement.map { predict($0, n, serving: true) } ?? 0
            let score = Double(heads.alpha) * p + Double(heads.beta) * e
            combined.append(score)
            validation.append(ValidationRow(
                userID: rows[n].userID, query: rows[n].query, item: rows[n].item, clicked: rows[n].clicked, session: s, combined: score,
                cosine: cosine[k]))
        }
        let gains = validLabels.map { $0 ? 1.0 : 0.0 }
        report.validationSessions = groups.count
        report.ndcg10 = RankingMetrics.ndcg(groups: groups, score: combined, gain: gains)
        report.baselineNDCG10 = RankingMetrics.ndcg(groups: groups, score: cosine, gain: gains)
        heads.report = [
            "ctr_log_loss": report.ctrLogLoss, "ctr_auc": report.ctrAUC, "cosine_log_loss": report.baselineLogLoss,
            "cosine_auc": report.baselineAUC, "ndcg10": report.ndcg10, "cosine_ndcg10": report.baselineNDCG10,
            "train_rows": Double(report.trainRows), "validation_rows": Double(report.validationRows),
        ].filter { $0.value.isFinite }
        if let e = report.engagementRMSE { heads.report["engagement_rmse"] = e }
        return Result(heads: heads, report: report, validation: validation)
    }

    /// Logged positions with an indicator of their own in training (deeper ones share the last).
    static let positionSlots = 19

    /// A candidate the grid search may also keep: fixed weights (e.g. cosine alone).
    struct Candidate {
        var name: String
        var weights: [Double]
    }

    /// `fit` for each L2 pair of the grid (or the fixed one), plus fixed candidates; keeps the best on the validation
    /// split: the highest `rank` (e.g. NDCG@10 of the clicks as served) when given, else the lowest validation loss
    /// (ties: the lower loss). Columns: scalar features, then the interaction block up to `interactionEnd`, then
    /// training-only columns (regularised like the scalar features).
    static func fitChoosingL2(
        z: [Float], width: Int, interactionEnd: Int, train: [Int], valid: [Int], target: [Double], logistic: Bool,
        options: TrainingOptions, candidates: [Candidate] = [], rank: (([Double]) -> Double)? = nil,
        iterations: inout Int, report: (Int, Double) -> Void
    ) -> ([Double], L2Choice) {
        let pairs: [(Double, Double)] = options.l2.map { [($0, $0)] }
            ?? options.l2Grid.flatMap { s in options.interactionL2Grid.map { (s, $0) } }
        var best: (weights: [Double], trial: L2Choice.Trial, iterations: Int)?
        var trials: [L2Choice.Trial] = []
        func consider(_ w: [Double], _ trial: L2Choice.Trial, _ n: Int) {
            trials.append(trial)
            guard let b = best else { best = (w, trial, n); return }
            let better = (trial.validationRank ?? 0) > (b.trial.validationRank ?? 0) + 1e-12
                || (abs((trial.validationRank ?? 0) - (b.trial.validationRank ?? 0)) <= 1e-12 && trial.validationLoss < b.trial.validationLoss - 1e-12)
            if better { best = (w, trial, n) }
        }
        let scoreSet = valid.isEmpty ? train : valid
        for (scalar, interaction) in pairs {
            var n = 0
            let w = fit(
                z: z, width: width, interactionEnd: interactionEnd, train: train, valid: valid, target: target,
                logistic: logistic, l2: scalar, interactionL2: interaction, options: options, iterations: &n, report: report)
            // The loss of the weights kept (early stopping keeps the best iteration).
            let loss = unpenalisedLoss(w, z: z, width: width, set: scoreSet, target: target, logistic: logistic)
            consider(w, L2Choice.Trial(scalar: scalar, interaction: interaction, validationLoss: loss, validationRank: rank?(w)), n)
        }
        if options.l2 == nil {
            for c in candidates {
                let loss = unpenalisedLoss(c.weights, z: z, width: width, set: scoreSet, target: target, logistic: logistic)
                consider(c.weights, L2Choice.Trial(
                    scalar: 0, interaction: 0, validationLoss: loss, validationRank: rank?(c.weights), candidate: c.name), 0)
            }
        }
        iterations = best!.iterations
        return (best!.weights, L2Choice(
            scalar: best!.trial.scalar, interaction: best!.trial.interaction,
            chosenBy: options.l2 == nil ? (rank == nil ? "validation_loss" : "validation_ndcg10") : "fixed",
            candidate: best!.trial.candidate, trials: trials))
    }

    /// Mean log-loss or half mean squared error of weights on a set.
    static func unpenalisedLoss(_ w: [Double], z: [Float], width: Int, set: [Int], target: [Double], logistic: Bool) -> Double {
        var total = 0.0
        for n in set {
            var t = w[width]
            for f in 0..<width { t += w[f] * Double(z[n * width + f]) }
            if logistic {
                let q = min(max(1 / (1 + exp(-t)), 1e-12), 1 - 1e-12)
                total -= target[n] > 0.5 ? log(q) : log(1 - q)
            } else {
                total += 0.5 * (t - target[n]) * (t - target[n])
            }
        }
        return total / Double(max(1, set.count))
    }

    /// L-BFGS on mean log-loss (logistic) or mean squared error, plus l2/2·|w|² (bias excluded); keeps the weights
    /// with the best validation loss and stops after `patience` iterations without improvement.
    /// - Returns: width weights then the bias.

    static func fit(
        z: [Float], width: Int, interactionEnd: Int, train: [Int], valid: [Int], target: [Double], logistic: Bool, l2: Double,
        interactionL2: Double, options: TrainingOptions, iterations: inout Int, report: (Int, Double) -> Void
    ) -> [Double] {
        // The scalar features come first, then the interaction block, then training-only columns.
        func strength(_ f: Int) -> Double { f >= FeatureSet.scalarCount && f < interactionEnd ? interactionL2 : l2 }
        func loss(_ w: [Double], _ set: [Int], gradient: Bool) -> (Double, [Double]) {
            var total = 0.0
            var g = [Double](repeating: 0, count: gradient ? width + 1 : 0)
            z.withUnsafeBufferPointer { zp in
                for n in set {
                    let base = n * width
                    var t = w[width]
                    for f in 0..<width { t += w[f] * Double(zp[base + f]) }
                    let residual: Double
                    if logistic {
                        let p = 1 / (1 + exp(-t))
                        let q = min(max(p, 1e-12), 1 - 1e-12)
                        total -= target[n] > 0.5 ? log(q) : log(1 - q)
                        residual = p - target[n]
                    } else {
                        residual = t - target[n]
                        total += 0.5 * residual * residual
                    }
                    if gradient {
                        for f in 0..<width { g[f] += residual * Double(zp[base + f]) }
                        g[width] += residual
                    }
                }
            }
            let count = Double(max(1, set.count))
            total /= count
            if gradient { for f in 0...width { g[f] /= count } }
            var penalty = 0.0
            for f in 0..<width {
                penalty += 0.5 * strength(f) * w[f] * w[f]
                if gradient { g[f] += strength(f) * w[f] }
            }
            return (total + penalty, g)
        }
        var optimiser = LBFGS()
        optimiser.maxIterations = options.maxIterations
        var start = [Double](repeating: 0, count: width + 1)
        if logistic {
            let rate = train.reduce(0) { $0 + target[$1] } / Double(train.count)
            start[width] = log(max(rate, 1e-6) / max(1 - rate, 1e-6))
        } else {
            start[width] = train.reduce(0) { $0 + target[$1] } / Double(train.count)
        }
        var best = start
        var bestLoss = Double.infinity
        var since = 0
        let scoreSet = valid.isEmpty ? train : valid
        _ = optimiser.minimise(start, evaluate: { loss($0, train, gradient: true) }) { i, w, _ in
            iterations = i
            let v = loss(w, scoreSet, gradient: false).0 - (0..<width).reduce(0) { $0 + 0.5 * strength($1) * w[$1] * w[$1] }
            report(i, v)
            if v < bestLoss - 1e-9 {
                bestLoss = v
                best = w
                since = 0
            } else {
                since += 1
            }
            return since < options.patience
        }
        return best
    }

    /// (intercept, slope) of a one-feature logistic regression (standardised inside).
    static func fitOneFeature(_ v: [Double], _ y: [Double]) -> (Double, Double) {
        let m = v.reduce(0, +) / Double(v.count)
        let s = max((v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count)).squareRoot(), 1e-12)
        var optimiser = LBFGS()
        optimiser.maxIterations = 100
        let w = optimiser.minimise([0, 0]) { w in
            var total = 0.0, g0 = 0.0, g1 = 0.0
            for (vi, yi) in zip(v, y) {
                let zi = (vi - m) / s
                let p = 1 / (1 + exp(-(w[0] + w[1] * zi)))
                let q = min(max(p, 1e-12), 1 - 1e-12)
                total -= yi > 0.5 ? log(q) : log(1 - q)
                g0 += p - yi
                g1 += (p - yi) * zi
            }
            let n = Double(v.count)
            return (total / n, [g0 / n, g1 / n])
        }
        return (w[0] - w[1] * m / s, w[1] / s)
    }
}
