import Foundation
import Model

/// The ranking features, written down once: names, order and normalisation are the heads file's contract
/// (`feature_set` names this version).
///
/// | # | name | raw value |
/// | --- | --- | --- |
/// | 0 | `cosine` | cosine(query, item) from the int8 encoder and the index |
/// | 1 | `lexical` | share of the query's distinct word pieces found in the item title's |
/// | 2 | `personal` | cosine(user profile, item); 0 without a profile |
/// | 3 | `has_profile` | 1 when the request's recent items gave a profile, else 0 |
/// | 4 | `log_popularity` | log(1 + popularity) from the catalog (missing: the training mean) |
/// | 5 | `log_price` | log(1 + price) from the catalog (missing: the training mean) |
/// | 6 | `position_bias` | 1 / log2(1 + position) of the logged impression; training only: serving uses position 1 |
/// | 7… | `qd_0` … `qd_{D-1}` | element-wise product of the query and item embeddings |
///
/// Every feature is standardised with the training rows' mean and standard deviation (stored in the heads file);
/// a missing value becomes the mean (0 after standardisation).
public enum FeatureSet {
    public static let name = "zrank-features-v1"
    public static let scalarNames = ["cosine", "lexical", "personal", "has_profile", "log_popularity", "log_price", "position_bias"]
    public static let scalarCount = 7
    public static let cosine = 0, lexical = 1, personal = 2, hasProfile = 3, popularity = 4, logPrice = 5, positionBias = 6
    /// The position the training-only position feature is set to when serving.
    public static let servingPosition = 1

    public static func names(dimension: Int) -> [String] { scalarNames + (0..<dimension).map { "qd_\($0)" } }

    public static func positionFeature(_ position: Int) -> Float { 1 / log2(1 + Float(max(1, position))) }

    /// Share of `query` pieces found in `title` pieces (both distinct). A 64-bit mask of the query pieces skips
    /// almost every title piece without a search (this runs once per candidate).
    @inline(__always)
    public static func lexical(query: [UInt32], title: UnsafeBufferPointer<UInt32>) -> Float {
        guard !query.isEmpty else { return 0 }
        var mask: UInt64 = 0
        for p in query { mask |= 1 << UInt64(p & 63) }
        var hits = 0
        for t in title where mask & (1 << UInt64(t & 63)) != 0 && query.contains(t) { hits += 1 }
        return Float(hits) / Float(query.count)
    }

    /// The user profile: the recency-weighted mean (weight 0.8^k for the k-th most recent) of the items' embeddings,
    /// L2-normalised; nil when no embedding is given.
    public static func profile(_ embeddings: [[Float]]) -> [Float]? {
        guard let first = embeddings.first else { return nil }
        var sum = [Float](repeating: 0, count: first.count)
        var w: Float = 1
        for e in embeddings {
            for i in 0..<sum.count { sum[i] += w * e[i] }
            w *= 0.8
        }
        let norm = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0 else { return nil }
        return sum.map { $0 / norm }
    }
}

/// One linear head: `bias + Σ weights[i] · z[i]` over the standardised features.
public struct LinearHead: Codable, Sendable, Equatable {
    public var bias: Float
    public var weights: [Float]

    public init(bias: Float, weights: [Float]) {
        self.bias = bias
        self.weights = weights
    }
}

/// Why a heads file was refused.
public struct HeadsError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The ranking heads (`heads.json`): a CTR head (logistic regression) and an engagement head (linear regression on
/// log(1 + dwell seconds) per impression, 0 when not clicked: the expected engagement of showing the item),
/// combined as `score = alpha · P(click) + beta · E[engagement]`.
public struct RankingHeads: Codable, Sendable, Equatable {
    public static let format = "zrank-heads"
    public static let formatVersion = 1

    public var format = RankingHeads.format
    public var formatVersion = RankingHeads.formatVersion
    /// What responses report as `heads_version`.
    public var headsVersion: String
    public var featureSet = FeatureSet.name
    public var features: [String]
    /// Per feature: training mean and standard deviation (standardisation).
    public var mean: [Float]
    public var std: [Float]
    public var ctr: LinearHead
    /// nil: the log had no engagement data; the heads are CTR-only (beta 0).
    public var engagement: LinearHead?
    public var alpha: Float = RankingHeads.defaultWeights.alpha
    public var beta: Float = RankingHeads.defaultWeights.beta

    /// The default weights of the combined score (overridable per request).
    public static let defaultWeights = (alpha: Float(1), beta: Float(0.1))
    /// The model the features were computed with (the embeddings must come from it).
    public var modelContentHash: String
    public var createdAt: String
    /// The training report (validation figures), for the record.
    public var report: [String: Double] = [:]

    public init(
        headsVersion: String, dimension: Int, mean: [Float], std: [Float], ctr: LinearHead, engagement: LinearHead?,
        modelContentHash: String
    ) {
        self.headsVersion = headsVersion
        self.features = FeatureSet.names(dimension: dimension)
        self.mean = mean
        self.std = std
        self.ctr = ctr
        self.engagement = engagement
        self.beta = engagement == nil ? 0 : RankingHeads.defaultWeights.beta
        self.modelContentHash = modelContentHash
        self.createdAt = ISO8601DateFormatter().string(from: Date())
    }

    enum CodingKeys: String, CodingKey {
        case format, features, mean, std, ctr, engagement, alpha, beta, report
        case formatVersion = "format_version"
        case headsVersion = "heads_version"
        case featureSet = "feature_set"
        case modelContentHash = "model_content_hash"
        case createdAt = "created_at"
    }

    /// Embedding dimension the heads expect.
    public var dimension: Int { features.count - FeatureSet.scalarCount }

    /// Reads and checks a heads file.
    /// The largest heads file read (a heads file is a few hundred KiB: 2 heads over ~400 features).
    public static let maxFileBytes = 16 << 20

    /// Reads and checks a heads file: a regular file (a FIFO or a device is refused without blocking) of at most
    /// `maxFileBytes`, read through one descriptor.
    public static func load(_ path: String) throws(HeadsError) -> RankingHeads {
        let fd: Int32
        let size: Int
        do {
            (fd, size) = try FileMapping.open(path, what: "heads file")
        } catch {
            throw HeadsError("\(path): \(error)")
        }
        defer { close(fd) }
        guard size <= maxFileBytes else {
            throw HeadsError("\(path): heads file of \(size) bytes is over the \(maxFileBytes >> 20) MiB limit")
        }
        guard let data = try? FileHandle(fileDescriptor: fd, closeOnDealloc: false).read(upToCount: maxFileBytes + 1),
            data.count <= maxFileBytes
        else { throw HeadsError("\(path): cannot read heads file") }
        let heads: RankingHeads
        do {
            heads = try JSONDecoder().decode(RankingHeads.self, from: data)
        } catch {
            throw HeadsError("\(path): not a heads file (\(error))")
        }
        try heads.check(path)
        return heads
    }

    /// Writes the heads as JSON.
    public func write(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    func check(_ path: String) throws(HeadsError) {
        guard format == Self.format, formatVersion == Self.formatVersion else {
            throw HeadsError("\(path): heads format \(format) \(formatVersion) is not supported (this build reads \(Self.format) \(Self.formatVersion))")
        }
        guard featureSet == FeatureSet.name else {
            throw HeadsError("\(path): feature set \(featureSet) is not \(FeatureSet.name)")
        }
        let n = features.count
        guard n > FeatureSet.scalarCount, features == FeatureSet.names(dimension: n - FeatureSet.scalarCount) else {
            throw HeadsError("\(path): the feature names are not \(FeatureSet.name)'s")
        }
        guard mean.count == n, std.count == n, ctr.weights.count == n, engagement.map({ $0.weights.count == n }) ?? true else {
            throw HeadsError("\(path): \(n) features but mismatched mean/std/weight counts")
        }
        let numbers = mean + std + ctr.weights + [ctr.bias, alpha, beta] + (engagement.map { $0.weights + [$0.bias] } ?? [])
        guard numbers.allSatisfy(\.isFinite), std.allSatisfy({ $0 > 0 }) else {
            throw HeadsError("\(path): non-finite numbers or non-positive standard deviations")
        }
    }
}

/// The heads folded for serving: scalar weights divided by the deviations, the interaction part as one vector per
/// head (so it costs one dot product per candidate: Σ w_i (q_i d_i − m_i) / s_i = d · u − c with u_i = w_i q_i / s_i).
public struct PreparedHeads: Sendable {
    public let heads: RankingHeads
    /// Per head: scalar weight / std, scalar mean, interaction weight / std, and the interaction's constant part.
    struct Folded: Sendable {
        var bias: Float
        var scalarWeights: [Float]
        var interactionWeights: [Float]
        var interactionConstant: Float
    }

    let ctr: Folded
    let engagement: Folded?
    /// The hot path's form of both heads: per scalar feature a slope (w/s) and, for features that may be missing,
    /// an offset (−w·m/s) added only when present; the always-present offsets and the serving position's term are
    /// folded into the intercept. Plain fields, no arrays: no reference counting per candidate.
    struct Linear: Sendable {
        var intercept: Float = 0
        var cosine: Float = 0, lexical: Float = 0, personal: Float = 0, hasProfile: Float = 0
        var popularity: Float = 0, popularityOffset: Float = 0, logPrice: Float = 0, logPriceOffset: Float = 0

    }

    let fastCTR: Linear
    let fastEngagement: Linear

    public init(_ heads: RankingHeads) {
        self.heads = heads
        func linear(_ h: LinearHead?, interactionConstant: Float) -> Linear {
            var l = Linear()
            guard let h else { return l }
            func slope(_ f: Int) -> Float { h.weights[f] / heads.std[f] }
            func offset(_ f: Int) -> Float { -h.weights[f] * heads.mean[f] / heads.std[f] }
            l.intercept = h.bias + interactionConstant + offset(FeatureSet.cosine) + offset(FeatureSet.lexical)
                + offset(FeatureSet.personal) + offset(FeatureSet.hasProfile)
                + slope(FeatureSet.positionBias) * FeatureSet.positionFeature(FeatureSet.servingPosition) + offset(FeatureSet.positionBias)
            l.cosine = slope(FeatureSet.cosine)
            l.lexical = slope(FeatureSet.lexical)
            l.personal = slope(FeatureSet.personal)
            l.hasProfile = slope(FeatureSet.hasProfile)
            l.popularity = slope(FeatureSet.popularity)
            l.popularityOffset = offset(FeatureSet.popularity)
            l.logPrice = slope(FeatureSet.logPrice)
            l.logPriceOffset = offset(FeatureSet.logPrice)
            return l
        }
        func fold(_ h: LinearHead) -> Folded {
            let s = FeatureSet.scalarCount
            let interaction = (s..<heads.features.count).map { h.weights[$0] / heads.std[$0] }
            var constant: Float = 0
            for i in s..<heads.features.count { constant -= h.weights[i] * heads.mean[i] / heads.std[i] }
            return Folded(bias: h.bias, scalarWeights: Array(h.weights[0..<s]), interactionWeights: interaction, interactionConstant: constant)
        }
        ctr = fold(heads.ctr)
        engagement = heads.engagement.map(fold)
        fastCTR = linear(heads.ctr, interactionConstant: ctr.interactionConstant)
        fastEngagement = linear(heads.engagement, interactionConstant: engagement?.interactionConstant ?? 0)
    }

    /// (CTR logit, engagement) of one candidate without allocating: the hot path of ranking. Equal to `score`'s
    /// up to float rounding. `popularity` and `logPrice` are NaN when missing.
    @inline(__always)
    func fast(
        cosine: Float, lexical: Float, personal: Float, hasProfile: Float, popularity: Float, logPrice: Float,
        interactionCTR: Float, interactionEngagement: Float
    ) -> (logit: Float, engagement: Float) {
        @inline(__always)
        func eval(_ l: Linear, _ interaction: Float) -> Float {
            var t = l.intercept + interaction
            t += l.cosine * cosine + l.lexical * lexical + l.personal * personal + l.hasProfile * hasProfile
            if !popularity.isNaN { t += l.popularity * popularity + l.popularityOffset }
            if !logPrice.isNaN { t += l.logPrice * logPrice + l.logPriceOffset }
            return t
        }
        return (eval(fastCTR, interactionCTR), engagement == nil ? 0 : eval(fastEngagement, interactionEngagement))
    }

    /// The standardised scalar features (NaN = missing → 0).
    func standardise(_ raw: [Float]) -> [Float] {
        (0..<FeatureSet.scalarCount).map { raw[$0].isNaN ? 0 : (raw[$0] - heads.mean[$0]) / heads.std[$0] }
    }

    /// The interaction vectors of one query (u = w ⊙ q / s) for the CTR and engagement heads.
    func interactionVectors(query: [Float]) -> (ctr: [Float], engagement: [Float]?) {
        (zip(ctr.interactionWeights, query).map { $0 * $1 }, engagement.map { zip($0.interactionWeights, query).map { $0 * $1 } })
    }
}

/// One feature's terms in a score: in the CTR logit and in the engagement prediction.
public struct FeatureTerm: Sendable, Equatable {
    public var feature: String
    public var ctrLogit: Float
    public var engagement: Float
}

/// One candidate's heads output, with the exact per-feature terms.
public struct HeadsScore: Sendable, Equatable {
    public var ctr: Float
    public var engagement: Float
    public var combined: Float
    /// "interaction" sums the qd_* features, "bias" holds the intercepts and the training-only position feature's
    /// term (the same constant for every item at serving time, so it is folded into the bias rather than listed:
    /// the listed terms are the ones that tell items apart). The CTR terms sum to the logit, the engagement terms to
    /// the prediction.
    public var contributions: [FeatureTerm]
    public var alpha: Float
    public var beta: Float
}

extension PreparedHeads {
    /// Scores one candidate from its raw scalar features and its two interaction dot products (d · u, per head).
    /// - Parameter explain: fill `contributions`.
    func score(raw: [Float], interactionCTR: Float, interactionEngagement: Float, alpha: Float, beta: Float, explain: Bool) -> HeadsScore {
        let z = standardise(raw)
        var logit = ctr.bias
        var eng = engagement?.bias ?? 0
        var terms: [FeatureTerm] = []
        if explain { terms.append(FeatureTerm(feature: "bias", ctrLogit: ctr.bias, engagement: engagement?.bias ?? 0)) }
        for s in 0..<FeatureSet.scalarCount {
            let tc = ctr.scalarWeights[s] * z[s]
            let te = (engagement?.scalarWeights[s] ?? 0) * z[s]
            logit += tc
            eng += te
            guard explain else { continue }
            if s == FeatureSet.positionBias {
                terms[0].ctrLogit += tc
                terms[0].engagement += te
            } else {
                terms.append(FeatureTerm(feature: FeatureSet.scalarNames[s], ctrLogit: tc, engagement: te))
            }
        }
        let ic = interactionCTR + ctr.interactionConstant
        let ie = engagement.map { interactionEngagement + $0.interactionConstant } ?? 0
        logit += ic
        eng += ie
        if explain { terms.append(FeatureTerm(feature: "interaction", ctrLogit: ic, engagement: ie)) }
        let p = 1 / (1 + exp(-logit))
        return HeadsScore(
            ctr: p, engagement: eng, combined: alpha * p + beta * eng, contributions: terms,
            alpha: alpha, beta: beta)
    }
}
