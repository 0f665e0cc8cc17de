import CKernels
import Crypto
import Foundation
import HeapModule
import Kernels
import Model
import Tokenizer

/// Request limits a ranker enforces (the router's defaults; all configurable).
public struct RankLimits: Sendable {
    public var maxCandidates = 10_000
    /// Query texts longer than this (in UTF-8 bytes) are rejected; shorter ones are truncated to the model's
    /// max length by the tokenizer.
    public var maxQueryBytes = 64 * 1024
    public var maxIDBytes = 128
    public var maxTokens = 128
    /// Inline candidates (encoded on the fly) per request: they cost an encoder pass each, so they are capped
    /// well below `maxCandidates` to keep a request within the worker's heartbeat budget.
    public var maxInlineCandidates = 256
    /// Inline candidate embeddings kept (keyed by model version + id + text).
    public var inlineCacheEntries = 10_000
    /// Query embeddings kept, keyed by the query's token ids (the normalised query: texts that tokenize alike share an
    /// entry); 0 disables the cache. A ranker serves one model version, so a new version starts with an empty cache.
    public var queryCacheEntries = 10_000
    /// Recent item ids accepted in a user context (more is an invalid request).
    public var maxRecentItems = 100

    public init() {}
}

/// What a ranker's query-embedding cache did: hits and misses since the ranker was made, and what it holds.
public struct QueryCacheStats: Sendable, Equatable, Codable {
    public var hits = 0
    public var misses = 0
    public var entries = 0
    /// Approximate bytes held (vectors plus per-entry overhead).
    public var bytes = 0

    public init() {}
}

/// One ranking request, decoded.
public struct RankQuery: Sendable {
    public var query: String
    public var candidateIDs: [String]
    public var inlineCandidates: [(id: String, text: String)]
    /// 0 = every candidate (10 for a whole-catalog request).
    public var topK: Int
    public var explain: Bool
    /// The user's recent item ids, most recent first (personalisation with heads).
    public var recentItemIDs: [String]
    /// Overrides of the heads' alpha and beta.
    public var alpha: Float?
    public var beta: Float?

    public init(
        query: String, candidateIDs: [String] = [], inlineCandidates: [(id: String, text: String)] = [], topK: Int = 0,
        explain: Bool = false, recentItemIDs: [String] = [], alpha: Float? = nil, beta: Float? = nil
    ) {
        self.query = query
        self.candidateIDs = candidateIDs
        self.inlineCandidates = inlineCandidates
        self.topK = topK
        self.explain = explain
        self.recentItemIDs = recentItemIDs
        self.alpha = alpha
        self.beta = beta
    }
}

/// One ranked item.
public struct ScoredItem: Sendable, Equatable {
    public var id: String
    public var score: Float
    public var cosine: Float
    /// With heads: the predictions (and, when explaining, each feature's terms).
    public var heads: HeadsScore?

    public init(id: String, score: Float, cosine: Float, heads: HeadsScore? = nil) {
        self.id = id
        self.score = score
        self.cosine = cosine
        self.heads = heads
    }
}

/// A ranking answer.
public struct RankOutcome: Sendable {
    public var items: [ScoredItem]
    public var notFound: [String]
    public var encodeNanos: UInt64
    public var scoreNanos: UInt64
    /// Recent item ids that are not in the catalog (skipped for the profile).
    public var unknownRecent: [String] = []
    /// Whether the user context shaped the scores (heads with a profile).
    public var userContextUsed = false
}

/// A request the ranker refuses, with the reason for the caller.
public struct RankError: Error, Equatable, CustomStringConvertible {
    public let description: String
    /// The server failed (INTERNAL), rather than the request being invalid (INVALID_REQUEST).
    public let isInternal: Bool
    public init(_ description: String, internal: Bool = false) {
        self.description = description
        self.isInternal = `internal`
    }
}

/// Encodes queries and scores candidates against the catalog index: the worker's hot path.
///
/// Not thread-safe: one per worker thread (it owns an encoder and its scratch).
public final class Ranker {
    public let model: ModelFile
    public let index: CatalogIndex
    public let limits: RankLimits
    /// The version name answers report.
    public let version: String
    /// Intra-op threads of its encoder.
    public var threads: Int { encoder.threads }
    /// The ranking heads, when this version has them (nil: rank by cosine).
    public let heads: PreparedHeads?
    private let encoder: Encoder
    private let tokenizer: WordPieceTokenizer
    private let kernels: KernelSet
    private var inlineCache: LRUCache<String, [Float]>
    private var queryCache: LRUCache<[Int32], [Float]>?
    /// What the query cache did since this ranker was made.
    public private(set) var queryCacheStats = QueryCacheStats()
    private var scratchScores: [Int32] = []
    private var scratchRows: [UInt32] = []
    /// Per catalog row, the validation pass that last named it (duplicate candidates without hashing ids twice).
    private var rowStamps: [UInt32] = []
    private var stampPass: UInt32 = 0

    public init(
        model: ModelFile, index: CatalogIndex, version: String? = nil, limits: RankLimits = RankLimits(),
        kernels: KernelSet = .best, threads: Int = 1, heads: RankingHeads? = nil
    ) throws {
        if let heads {
            guard heads.modelContentHash == model.contentHash else {
                throw HeadsError("heads \(heads.headsVersion) were trained with another model (content hash \(heads.modelContentHash.prefix(12)))")
            }
            guard heads.dimension == index.dimension else {
                throw HeadsError("heads \(heads.headsVersion) expect dimension \(heads.dimension), the index has \(index.dimension)")
            }
        }
        self.heads = heads.map(PreparedHeads.init)
        guard index.modelContentHash == model.contentHash else {
            throw IndexError(
                "\(index.path): index was built with a different model (content hash "
                    + "\(index.modelContentHash.prefix(12)), model \(model.contentHash.prefix(12)))")
        }
        self.model = model
        self.index = index
        self.limits = limits
        self.version = version ?? model.version
        self.kernels = kernels
        self.encoder = try Encoder(model: model, kernels: kernels, threads: threads)
        self.tokenizer = try model.makeTokenizer()
        self.inlineCache = LRUCache(capacity: max(1, limits.inlineCacheEntries))
        self.queryCache = limits.queryCacheEntries > 0 ? LRUCache(capacity: limits.queryCacheEntries) : nil
    }

    /// Puts a freshly encoded query in the cache (when on) and counts the miss.
    private func remember(_ ids: [Int32], _ vector: [Float]) {
        guard queryCache != nil else { return }
        queryCache!.set(vector, for: ids)
        queryCacheStats.misses += 1
        queryCacheStats.entries = queryCache!.count
        queryCacheStats.bytes = queryCache!.count * (vector.count * MemoryLayout<Float>.size + 128)
    }

    /// The L2-normalised embedding of one text (truncated to the max length).
    public func embed(_ text: String) throws -> [Float] {
        try encoder.embed([tokenize(text)])[0]
    }

    /// Word pieces of a text as the encoder sees it (truncated to the max length).
    private func tokenize(_ text: String) -> TokenizerEncoding {
        tokenizer.encode(text, maxLength: min(limits.maxTokens, model.config.maxPositions))
    }

    /// Checks a request against the limits.
    public func validate(_ q: RankQuery) throws(RankError) {
        _ = try validated(q)
    }

    /// Checks a request against the limits; returns the catalog row of each of its `candidateIDs` (nil: not in the
    /// catalog), for scoring to use without looking the ids up again.
    private func validated(_ q: RankQuery) throws(RankError) -> [UInt32?] {
        if q.query.utf8.count > limits.maxQueryBytes {
            throw RankError("query text of \(q.query.utf8.count) bytes exceeds the \(limits.maxQueryBytes)-byte limit")
        }
        if q.query.allSatisfy(\.isWhitespace) { throw RankError("no query text") }
        let total = q.candidateIDs.count + q.inlineCandidates.count
        if total > limits.maxCandidates {
            throw RankError("\(total) candidates exceed the maximum of \(limits.maxCandidates)")
        }
        if q.topK < 0 { throw RankError("top_k must not be negative") }
        if q.inlineCandidates.count > limits.maxInlineCandidates {
            throw RankError("\(q.inlineCandidates.count) inline candidates exceed the maximum of \(limits.maxInlineCandidates)")
        }
        let rows = try resolveCandidates(q)
        for c in q.inlineCandidates where c.text.utf8.count > limits.maxQueryBytes {
            throw RankError("inline text of \"\(c.id)\" exceeds the \(limits.maxQueryBytes)-byte limit")
        }
        if q.recentItemIDs.count > limits.maxRecentItems {
            throw RankError("\(q.recentItemIDs.count) recent item ids exceed the maximum of \(limits.maxRecentItems)")
        }
        for id in q.recentItemIDs where id.isEmpty || id.utf8.count > limits.maxIDBytes {
            throw RankError("recent item id of \(id.utf8.count) bytes is empty or exceeds \(limits.maxIDBytes) bytes")
        }
        for v in [q.alpha, q.beta].compactMap({ $0 }) where !v.isFinite {
            throw RankError("alpha and beta must be finite numbers")
        }
        return rows
    }

    /// Checks the candidate ids (none empty, none too long, no id twice among the catalog and inline candidates;
    /// ids are the same when their UTF-8 bytes are) and returns the catalog row of each of `candidateIDs` (nil: not
    /// in the catalog), each id looked up once. Every id's spelling is checked before any duplicate is looked for.
    /// A catalog id seen twice is found by its row's stamp for this pass; ids outside the catalog go through a set.
    private func resolveCandidates(_ q: RankQuery) throws(RankError) -> [UInt32?] {
        stampPass &+= 1
        if stampPass == 0 || rowStamps.count != index.count {
            rowStamps = [UInt32](repeating: 0, count: index.count)
            stampPass = 1
        }
        let maxIDBytes = limits.maxIDBytes
        func checkSpelling(_ id: String) throws(RankError) {
            if id.isEmpty { throw RankError("empty candidate id") }
            if id.utf8.count > maxIDBytes {
                throw RankError("candidate id of \(id.utf8.count) bytes exceeds \(maxIDBytes) bytes")
            }
        }
        for id in q.candidateIDs { try checkSpelling(id) }
        for c in q.inlineCandidates { try checkSpelling(c.id) }
        // All of the request's catalog lookups in one call, which overlaps their cache misses.
        let rows = index.rows(of: q.candidateIDs)
        // The stamps are taken out of `self` for the loop: a stored property of a class touched per id costs a
        // dynamic exclusivity check each time.
        var stamps = rowStamps
        rowStamps = []
        defer { rowStamps = stamps }
        let pass = stampPass
        var others = Set<ExactID>()
        func claim(_ id: String, _ row: UInt32?) throws(RankError) {
            if let row {
                if stamps[Int(row)] == pass { throw RankError("duplicated candidate id \"\(id)\"") }
                stamps[Int(row)] = pass
            } else if !others.insert(ExactID(id: id)).inserted {
                throw RankError("duplicated candidate id \"\(id)\"")
            }
        }
        for (id, row) in zip(q.candidateIDs, rows) { try claim(id, row) }
        for c in q.inlineCandidates { try claim(c.id, index.row(of: c.id)) }
        return rows
    }

    /// Ranks one request (a batch of one: the same path as `rank(batch:)`).
    public func rank(_ q: RankQuery) throws(RankError) -> RankOutcome {
        try rank(batch: [q])[0].get()
    }

    /// Ranks several requests at once: their queries (those the cache does not hold, each distinct one once) are
    /// encoded as one ragged batch, then each request is scored on its own. Every answer equals what `rank` gives
    /// for that request alone (bit-equal scores: a sequence's embedding does not depend on the others in its
    /// batch); a request's failure is its own. `encodeNanos` of each is the batch's encoding time.
    public func rank(batch queries: [RankQuery]) -> [Result<RankOutcome, RankError>] {
        var results = [Result<RankOutcome, RankError>?](repeating: nil, count: queries.count)
        var encodings = [TokenizerEncoding?](repeating: nil, count: queries.count)
        var vectors = [[Float]?](repeating: nil, count: queries.count)
        let t0 = monotonic()
        var rows = [[UInt32?]](repeating: [], count: queries.count)
        var pending: [[Int32]: [Int]] = [:]
        var order: [[Int32]] = []
        for (i, q) in queries.enumerated() {
            do {
                rows[i] = try validated(q)
            } catch {
                results[i] = .failure(error)
                continue
            }
            let encoding = tokenize(q.query)
            encodings[i] = encoding
            if queryCache != nil, let hit = queryCache!.value(for: encoding.inputIDs) {
                queryCacheStats.hits += 1
                vectors[i] = hit
            } else if pending[encoding.inputIDs] != nil {
                pending[encoding.inputIDs]!.append(i)
                if queryCache != nil { queryCacheStats.hits += 1 }
            } else {
                pending[encoding.inputIDs] = [i]
                order.append(encoding.inputIDs)
            }
        }
        if !order.isEmpty {
            do {
                let fresh = try encoder.embed(order.map { encodings[pending[$0]![0]]! })
                for (ids, vector) in zip(order, fresh) {
                    for i in pending[ids]! { vectors[i] = vector }
                    remember(ids, vector)
                }
            } catch {
                for ids in order {
                    for i in pending[ids]! { results[i] = .failure(RankError("cannot encode the query: \(error)", internal: true)) }
                }
            }
        }
        let t1 = monotonic()
        return queries.indices.map { i in
            if let done = results[i] { return done }
            return Result { () throws(RankError) in
                try score(
                    queries[i], rows: rows[i], queryEncoding: encodings[i]!, queryVector: vectors[i]!, encodeNanos: t1 - t0,
                    started: monotonic())
            }
        }
    }

    /// Scores one validated request whose query is encoded; `rows` are its candidates' catalog rows (nil: not in
    /// the catalog), as validation resolved them.
    private func score(
        _ q: RankQuery, rows: [UInt32?], queryEncoding: TokenizerEncoding, queryVector: [Float], encodeNanos: UInt64,
        started t1: UInt64
    ) throws(RankError) -> RankOutcome {
        if let heads {
            // The lexical feature's query pieces come from the encoding already made.
            return try rankWithHeads(
                q, heads, rows: rows, queryVector: queryVector, queryPieces: wordPieces(tokenizer, encoding: queryEncoding),
                encodeNanos: encodeNanos, started: t1)
        }
        let (q8, qScale) = quantizeSymmetric(queryVector)
        let wholeCatalog = q.candidateIDs.isEmpty && q.inlineCandidates.isEmpty
        var notFound: [String] = []
        var top = TopK(k: 0)
        if wholeCatalog {
            let k = min(q.topK == 0 ? 10 : q.topK, index.count)
            top = TopK(k: k)
            let chunk = 4096
            if scratchScores.count < chunk { scratchScores = [Int32](repeating: 0, count: chunk) }
            var start = 0
            while start < index.count {
                let n = min(chunk, index.count - start)
                scratchScores.withUnsafeMutableBufferPointer { out in
                    kernels.config.pointee.dot_rows(
                        n, index.dimension, index.embeddings + start * index.rowStride, index.rowStride, nil, q8,
                        out.baseAddress!)
                }
                for i in 0..<n {
                    let row = start + i
                    top.insert(score: qScale * index.scales[row] * Float(scratchScores[i]), position: row)
                }
                start += n
            }
            let items = top.sorted().map { e in
                ScoredItem(id: index.id(ofRow: e.position), score: e.score, cosine: e.score)
            }
            return RankOutcome(items: items, notFound: [], encodeNanos: encodeNanos, scoreNanos: monotonic() - t1)
        }
        // Catalog candidates: gather rows, one kernel call.
        let positions: [Int]
        (positions, notFound) = Self.gather(q.candidateIDs, rows: rows, into: &scratchRows)
        let present = positions.count + q.inlineCandidates.count
        let k = min(q.topK == 0 ? present : q.topK, present)
        top = TopK(k: k)
        if scratchScores.count < scratchRows.count { scratchScores = [Int32](repeating: 0, count: scratchRows.count) }
        if !scratchRows.isEmpty {
            scratchRows.withUnsafeBufferPointer { rows in
                scratchScores.withUnsafeMutableBufferPointer { out in
                    kernels.config.pointee.dot_rows(
                        rows.count, index.dimension, index.embeddings, index.rowStride, rows.baseAddress, q8,
                        out.baseAddress!)
                }
            }
        }
        for (i, row) in scratchRows.enumerated() {
            top.insert(score: qScale * index.scales[Int(row)] * Float(scratchScores[i]), position: positions[i])
        }
        // Inline candidates: encoded on the fly (cached), scored in fp32.
        var inlineVectors: [[Float]] = []
        do {
            inlineVectors = try embedInline(q.inlineCandidates)
        } catch {
            throw RankError("cannot encode inline candidates: \(error)", internal: true)
        }
        for (j, v) in inlineVectors.enumerated() {
            let s = zip(v, queryVector).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            top.insert(score: s, position: q.candidateIDs.count + j)
        }
        let items = top.sorted().map { e -> ScoredItem in
            let id = e.position < q.candidateIDs.count
                ? q.candidateIDs[e.position] : q.inlineCandidates[e.position - q.candidateIDs.count].id
            return ScoredItem(id: id, score: e.score, cosine: e.score)
        }
        return RankOutcome(items: items, notFound: notFound, encodeNanos: encodeNanos, scoreNanos: monotonic() - t1)
    }

    /// One kernel pass of int8 row dots: `rows` of the index against `vector` (quantised here), as floats.
    private func dots(_ rows: [UInt32], _ vector: [Float]) -> [Float] {
        let (v8, vScale) = quantizeSymmetric(vector)
        var out = [Int32](repeating: 0, count: rows.count)
        rows.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o in
                kernels.config.pointee.dot_rows(r.count, index.dimension, index.embeddings, index.rowStride, r.baseAddress, v8, o.baseAddress!)
            }
        }
        return rows.indices.map { vScale * index.scales[Int(rows[$0])] * Float(out[$0]) }
    }

    /// One kernel pass of int8 row dots against two vectors (each quantised here), as floats.
    private func dots2(_ rows: [UInt32], _ a: [Float], _ b: [Float]) -> ([Float], [Float]) {
        let (a8, aScale) = quantizeSymmetric(a)
        let (b8, bScale) = quantizeSymmetric(b)
        var outA = [Int32](repeating: 0, count: rows.count)
        var outB = [Int32](repeating: 0, count: rows.count)
        rows.withUnsafeBufferPointer { r in
            kernels.config.pointee.dot2_rows(
                r.count, index.dimension, index.embeddings, index.rowStride, r.baseAddress, a8, b8, &outA, &outB)
        }
        var fa = [Float](repeating: 0, count: rows.count)
        var fb = [Float](repeating: 0, count: rows.count)
        for i in rows.indices {
            let scale = index.scales[Int(rows[i])]
            fa[i] = aScale * scale * Float(outA[i])
            fb[i] = bScale * scale * Float(outB[i])
        }
        return (fa, fb)
    }

    /// Splits a request's candidates by the rows validation resolved: the catalog rows (into `present`, emptied
    /// first, so a scratch buffer keeps its capacity), each one's position in `ids`, and the ids outside the catalog.
    private static func gather(
        _ ids: [String], rows: [UInt32?], into present: inout [UInt32]
    ) -> (positions: [Int], notFound: [String]) {
        present.removeAll(keepingCapacity: true)
        var positions: [Int] = []
        positions.reserveCapacity(ids.count)
        var notFound: [String] = []
        for (p, row) in rows.enumerated() {
            if let row {
                present.append(row)
                positions.append(p)
            } else {
                notFound.append(ids[p])
            }
        }
        return (positions, notFound)
    }

    /// Ranks with the heads: features per candidate, both heads, combined score, top k by it.
    private func rankWithHeads(
        _ q: RankQuery, _ h: PreparedHeads, rows resolved: [UInt32?], queryVector: [Float], queryPieces: [UInt32],
        encodeNanos: UInt64, started: UInt64
    ) throws(RankError) -> RankOutcome {
        let alpha = q.alpha ?? h.heads.alpha
        let beta = q.beta ?? h.heads.beta
        // The user's profile from the recent items the catalog knows.
        var unknown: [String] = []
        var recent: [[Float]] = []
        for id in q.recentItemIDs {
            if let r = index.row(of: id) { recent.append(index.embedding(ofRow: Int(r))) } else { unknown.append(id) }
        }
        let profile = FeatureSet.profile(recent)
        let (uCTR, uEngagement) = h.interactionVectors(query: queryVector)
        // Catalog rows: the candidates given, or the whole catalog.
        let wholeCatalog = q.candidateIDs.isEmpty && q.inlineCandidates.isEmpty
        var rows: [UInt32] = []
        var positions: [Int] = []
        var notFound: [String] = []
        if wholeCatalog {
            rows = (0..<UInt32(index.count)).map { $0 }
            positions = Array(0..<index.count)
        } else {
            (positions, notFound) = Self.gather(q.candidateIDs, rows: resolved, into: &rows)
        }
        let position = FeatureSet.positionFeature(FeatureSet.servingPosition)
        let hasProfile: Float = profile == nil ? 0 : 1
        let present = rows.count + q.inlineCandidates.count
        let k = min(q.topK == 0 ? (wholeCatalog ? 10 : present) : q.topK, present)
        // Pass 1, every candidate: cosine and personal enter both heads linearly, so they are folded into each head's
        // interaction vector and two int8 row passes score all candidates. The best k + 16 go on to pass 2.
        var keep = Array(rows.indices)
        if rows.count > k + 16 {
            let dim = index.dimension
            let (c, e) = (h.fastCTR, h.fastEngagement)
            var vC = uCTR
            var vE = uEngagement ?? [Float](repeating: 0, count: dim)
            for d in 0..<dim {
                let p = profile?[d] ?? 0
                vC[d] += c.cosine * queryVector[d] + c.personal * p
                vE[d] += e.cosine * queryVector[d] + e.personal * p
            }
            let (a, b): ([Float], [Float]?) = uEngagement == nil ? (dots(rows, vC), nil) : dots2(rows, vC, vE)
            var pre = TopK(k: k + 16)
            for i in rows.indices {
                let r = Int(rows[i])
                let v = h.fast(
                    cosine: 0, lexical: FeatureSet.lexical(query: queryPieces, title: index.titlePieces(ofRow: r)), personal: 0,
                    hasProfile: hasProfile, popularity: index.logPopularity(ofRow: r),
                    logPrice: index.logPrice(ofRow: r), interactionCTR: a[i], interactionEngagement: b?[i] ?? 0)
                pre.insert(score: alpha / (1 + exp(-v.logit)) + beta * v.engagement, position: i)
            }
            keep = pre.sorted().map(\.position).sorted()
        }
        // Pass 2, the candidates kept: each feature on its own (what explanations show), both heads, the combined
        // score. TopK positions are indexes into `keep` (inline candidates follow).
        let kept = keep.map { rows[$0] }
        let cosine = dots(kept, queryVector)
        let interactionCTR = dots(kept, uCTR)
        let interactionEngagement = uEngagement.map { dots(kept, $0) } ?? [Float](repeating: 0, count: kept.count)
        let personal = profile.map { dots(kept, $0) }
        func raw(_ j: Int) -> [Float] {
            let r = Int(kept[j])
            return [
                cosine[j], FeatureSet.lexical(query: queryPieces, title: index.titlePieces(ofRow: r)), personal?[j] ?? 0, hasProfile,
                index.logPopularity(ofRow: r), index.logPrice(ofRow: r), position,
            ]
        }
        var top = TopK(k: k)
        var values = [(logit: Float, engagement: Float)](repeating: (0, 0), count: kept.count)
        for j in kept.indices {
            let x = raw(j)
            let v = h.fast(
                cosine: x[0], lexical: x[1], personal: x[2], hasProfile: hasProfile, popularity: x[4], logPrice: x[5],
                interactionCTR: interactionCTR[j], interactionEngagement: interactionEngagement[j])
            values[j] = v
            top.insert(score: alpha / (1 + exp(-v.logit)) + beta * v.engagement, position: j)
        }
        // Inline candidates: fp32 from their on-the-fly embeddings; no catalog priors.
        var inlineVectors: [[Float]] = []
        do {
            inlineVectors = try embedInline(q.inlineCandidates)
        } catch {
            throw RankError("cannot encode inline candidates: \(error)", internal: true)
        }
        func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        var inlineRaw: [[Float]] = []
        var inlineInteraction: [(Float, Float)] = []
        for (j, v) in inlineVectors.enumerated() {
            let pieces = wordPieces(tokenizer, encoding: tokenize(q.inlineCandidates[j].text))
            let lexical = pieces.withUnsafeBufferPointer { FeatureSet.lexical(query: queryPieces, title: $0) }
            let raw = [dot(v, queryVector), lexical, profile.map { dot($0, v) } ?? 0, hasProfile, Float.nan, Float.nan, position]
            let ic = dot(v, uCTR), ie = uEngagement.map { dot(v, $0) } ?? 0
            inlineRaw.append(raw)
            inlineInteraction.append((ic, ie))
            let t = h.fast(
                cosine: raw[0], lexical: raw[1], personal: raw[2], hasProfile: raw[3], popularity: .nan, logPrice: .nan,
                interactionCTR: ic, interactionEngagement: ie)
            values.append(t)
            top.insert(score: alpha / (1 + exp(-t.logit)) + beta * t.engagement, position: kept.count + j)
        }
        // The k kept: the same numbers, plus each feature's terms when explaining.
        let items = top.sorted().map { e -> ScoredItem in
            let v = values[e.position]
            let p = 1 / (1 + exp(-v.logit))
            var s = HeadsScore(ctr: p, engagement: v.engagement, combined: e.score, contributions: [], alpha: alpha, beta: beta)
            let id: String
            let cos: Float
            if e.position < kept.count {
                let i = e.position
                id = wholeCatalog ? index.id(ofRow: Int(kept[i])) : q.candidateIDs[positions[keep[i]]]
                cos = cosine[i]
                if q.explain {
                    s.contributions = h.score(
                        raw: raw(i), interactionCTR: interactionCTR[i], interactionEngagement: interactionEngagement[i], alpha: alpha,
                        beta: beta, explain: true
                    ).contributions
                }
            } else {
                let j = e.position - kept.count
                id = q.inlineCandidates[j].id
                cos = inlineRaw[j][0]
                if q.explain {
                    s.contributions = h.score(
                        raw: inlineRaw[j], interactionCTR: inlineInteraction[j].0, interactionEngagement: inlineInteraction[j].1,
                        alpha: alpha, beta: beta, explain: true
                    ).contributions
                }
            }
            return ScoredItem(id: id, score: e.score, cosine: cos, heads: s)
        }
        var outcome = RankOutcome(items: items, notFound: notFound, encodeNanos: encodeNanos, scoreNanos: monotonic() - started)
        outcome.unknownRecent = unknown
        outcome.userContextUsed = profile != nil
        return outcome
    }

    private func embedInline(_ candidates: [(id: String, text: String)]) throws -> [[Float]] {
        var out = [[Float]](repeating: [], count: candidates.count)
        var missing: [Int] = []
        for (j, c) in candidates.enumerated() {
            if let v = inlineCache.value(for: cacheKey(c)) { out[j] = v } else { missing.append(j) }
        }
        var start = 0
        while start < missing.count {
            let batch = Array(missing[start..<min(start + 32, missing.count)])
            let vectors = try encoder.embed(batch.map { tokenize(candidates[$0].text) })
            for (j, v) in zip(batch, vectors) {
                out[j] = v
                inlineCache.set(v, for: cacheKey(candidates[j]))
            }
            start += 32
        }
        return out
    }

    /// Model version + item id + SHA-256 of the text (so a 64 KiB text is not kept as a key).
    private func cacheKey(_ c: (id: String, text: String)) -> String {
        let digest = SHA256.hash(data: Data(c.text.utf8)).map { String(format: "%02x", $0) }.joined()
        return "\(version)\u{0}\(c.id)\u{0}\(digest)"
    }

    private func monotonic() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}

/// Keeps the k best (score, position) pairs; ties go to the lower position, so results are deterministic.
struct TopK {
    struct Entry: Comparable {
        var score: Float
        var position: Int
        /// Heap order: the "smallest" entry is the one to evict first.
        static func < (a: Entry, b: Entry) -> Bool {
            a.score < b.score || (a.score == b.score && a.position > b.position)
        }
    }

    let k: Int
    private var heap = Heap<Entry>()

    init(k: Int) {
        self.k = k
    }

    mutating func insert(score: Float, position: Int) {
        guard k > 0 else { return }
        let e = Entry(score: score, position: position)
        if heap.count < k {
            heap.insert(e)
        } else if let worst = heap.min, worst < e {
            _ = heap.replaceMin(with: e)
        }
    }

    /// Best first.
    func sorted() -> [Entry] { heap.unordered.sorted { $1 < $0 } }
}
