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

    public init(
        query: String, candidateIDs: [String] = [], inlineCandidates: [(id: String, text: String)] = [], topK: Int = 0,
        explain: Bool = false
    ) {
        self.query = query
        self.candidateIDs = candidateIDs
        self.inlineCandidates = inlineCandidates
        self.topK = topK
        self.explain = explain
    }
}

/// One ranked item.
public struct ScoredItem: Sendable, Equatable {
    public var id: String
    public var score: Float
    public var cosine: Float
}

/// A ranking answer.
public struct RankOutcome: Sendable {
    public var items: [ScoredItem]
    public var notFound: [String]
    public var encodeNanos: UInt64
    public var scoreNanos: UInt64
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
    private let encoder: Encoder
    private let tokenizer: WordPieceTokenizer
    private let kernels: KernelSet
    private var inlineCache: LRUCache<String, [Float]>
    private var scratchScores: [Int32] = []
    private var scratchRows: [UInt32] = []

    public init(
        model: ModelFile, index: CatalogIndex, version: String? = nil, limits: RankLimits = RankLimits(),
        kernels: KernelSet = .best, threads: Int = 1
    ) throws {
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
    }

    /// The L2-normalised embedding of one text (truncated to the max length).
    public func embed(_ text: String) throws -> [Float] {
        try encoder.embed([tokenizer.encode(text, maxLength: min(limits.maxTokens, model.config.maxPositions))])[0]
    }

    /// Checks a request against the limits.
    public func validate(_ q: RankQuery) throws(RankError) {
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
        var seen = Set<String>(minimumCapacity: total)
        for id in q.candidateIDs + q.inlineCandidates.map(\.id) {
            if id.isEmpty { throw RankError("empty candidate id") }
            if id.utf8.count > limits.maxIDBytes {
                throw RankError("candidate id of \(id.utf8.count) bytes exceeds \(limits.maxIDBytes) bytes")
            }
            if !seen.insert(id).inserted { throw RankError("duplicated candidate id \"\(id)\"") }
        }
        for c in q.inlineCandidates where c.text.utf8.count > limits.maxQueryBytes {
            throw RankError("inline text of \"\(c.id)\" exceeds the \(limits.maxQueryBytes)-byte limit")
        }
    }

    /// Ranks one request.
    public func rank(_ q: RankQuery) throws(RankError) -> RankOutcome {
        try validate(q)
        let t0 = monotonic()
        let queryVector: [Float]
        do {
            queryVector = try embed(q.query)
        } catch {
            throw RankError("cannot encode the query: \(error)", internal: true)
        }
        let t1 = monotonic()
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
            return RankOutcome(items: items, notFound: [], encodeNanos: t1 - t0, scoreNanos: monotonic() - t1)
        }
        // Catalog candidates: gather rows, one kernel call.
        scratchRows.removeAll(keepingCapacity: true)
        var positions: [Int] = []
        positions.reserveCapacity(q.candidateIDs.count)
        for (p, id) in q.candidateIDs.enumerated() {
            if let row = index.row(of: id) {
                scratchRows.append(row)
                positions.append(p)
            } else {
                notFound.append(id)
            }
        }
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
        return RankOutcome(items: items, notFound: notFound, encodeNanos: t1 - t0, scoreNanos: monotonic() - t1)
    }

    private func embedInline(_ candidates: [(id: String, text: String)]) throws -> [[Float]] {
        var out = [[Float]](repeating: [], count: candidates.count)
        var missing: [Int] = []
        for (j, c) in candidates.enumerated() {
            if let v = inlineCache.value(for: cacheKey(c)) { out[j] = v } else { missing.append(j) }
        }
        var start = 0
        let maxLength = min(limits.maxTokens, model.config.maxPositions)
        while start < missing.count {
            let batch = Array(missing[start..<min(start + 32, missing.count)])
            let vectors = try encoder.embed(batch.map { tokenizer.encode(candidates[$0].text, maxLength: maxLength) })
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
