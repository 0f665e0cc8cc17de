import CKernels
import Kernels
import Tokenizer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The int8 BERT encoder: embeddings, transformer layers with int8 GEMMs and fused epilogues, fp32 attention and
/// LayerNorm, then mean pooling over real tokens and L2 normalisation (the sentence-transformers recipe of
/// all-MiniLM-L6-v2).
///
/// A batch is run without padding: the tokens of every sequence are stacked into one matrix, so the GEMMs see only
/// real tokens and attention runs per sequence over exactly its own tokens.
///
/// Not thread-safe: each thread (worker) owns an `Encoder`; its scratch arenas are reused across calls and only grow
/// when a batch holds more tokens than any before it.
///
/// With several threads, a batch of several groups of sequences runs the groups side by side, one thread each
/// through every layer with no synchronisation between ops; a single group (one query, a small batch) shares each op
/// out across the threads instead.
public final class Encoder {
    /// The model this encoder runs.
    public let model: ModelFile
    /// The kernels it runs with.
    public let kernels: KernelSet
    /// Width of the embeddings it returns.
    public var dimension: Int { config.hiddenSize }

    /// Threads the encoder runs on (1 = the calling thread only).
    public let threads: Int

    private let config: BertConfig
    private let weights: Weights
    /// Rows one thread runs through the layers on its own, as a group of sequences or a chunk of the row-wise part of
    /// a layer (attention output, FFN, LayerNorms) of a longer sequence: 128 (measured: 2% more sequences/s than 64
    /// at batch 32 x 16 on one thread; 128 rows of FFN activations are 768 KiB in fp32 for MiniLM, within L2).
    private static let threadRows = 128
    /// The same when every op is shared across the threads (a single group): 64 rows per thread beyond two threads,
    /// so each thread's share of a GEMM keeps its size.
    private var sharedRows: Int { max(Self.threadRows, 64 * threads) }
    /// One scratch arena per thread: arena 0 serves a forward whose ops are shared across the threads, arena t the
    /// groups thread t runs when groups run side by side.
    private let arenas: UnsafeMutablePointer<Arena>
    private let pool: OpaquePointer?
    /// Per-op time, accumulated while `profiling` is on (`zrank bench-encoder --profile`); off, nothing is timed.
    public var profiling = false
    public private(set) var profile = EncoderProfile()

    private struct Layer {
        var qkv: UnsafeRawPointer
        var attnOut: UnsafeRawPointer
        var attnGamma: UnsafePointer<Float>
        var attnBeta: UnsafePointer<Float>
        var ffnIn: UnsafeRawPointer
        var ffnOut: UnsafeRawPointer
        var ffnGamma: UnsafePointer<Float>
        var ffnBeta: UnsafePointer<Float>
    }

    private struct Weights {
        var word: UnsafePointer<UInt16>
        var position: UnsafePointer<Float>
        var type: UnsafePointer<Float>
        var embGamma: UnsafePointer<Float>
        var embBeta: UnsafePointer<Float>
        var layers: [Layer]
    }

    /// Scratch buffers for a capacity of `tokens` stacked tokens.
    private struct Arena {
        var tokens = 0
        var maxSequence = 0
        var hidden: UnsafeMutablePointer<Float>? = nil  // T x H
        var qkv: UnsafeMutablePointer<Float>? = nil  // T x 3H
        var context: UnsafeMutablePointer<Float>? = nil  // T x H
        var projected: UnsafeMutablePointer<Float>? = nil  // T x H
        var ffn: UnsafeMutablePointer<Float>? = nil  // T x I
        var quantized: UnsafeMutablePointer<UInt8>? = nil  // T x max(Hp, Ip)
        var wide: UnsafeMutablePointer<Int16>? = nil  // T x max(Hp, Ip)
        var rowScale: UnsafeMutablePointer<Float>? = nil  // T
        var rowZero: UnsafeMutablePointer<Int32>? = nil  // T
        var attention: UnsafeMutablePointer<Float>? = nil  // attention scratch for the longest sequence
        var offsets: [Int] = []  // the group's sequences: first row of each
        var lengths: [Int] = []  // and token count

        mutating func release() {
            hidden?.deallocate()
            qkv?.deallocate()
            context?.deallocate()
            projected?.deallocate()
            ffn?.deallocate()
            quantized?.deallocate()
            wide?.deallocate()
            rowScale?.deallocate()
            rowZero?.deallocate()
            attention?.deallocate()
            self = Arena(offsets: offsets, lengths: lengths)
        }
    }

    /// Prepares an encoder over `model`'s mapped weights.
    /// - Parameter threads: intra-op threads (GEMM column blocks and attention heads are shared out); 1 runs
    ///   everything on the calling thread.
    /// - Throws: `ModelError` when a tensor is missing or has the wrong shape.
    public init(model: ModelFile, kernels: KernelSet = .best, threads: Int = 1) throws {
        self.model = model
        self.kernels = kernels
        self.threads = max(1, threads)
        let c = model.config
        self.config = c
        let h = c.hiddenSize
        let i = c.intermediateSize
        func f32(_ name: String, _ shape: [Int]) throws -> UnsafePointer<Float> {
            try model.tensor(name, kind: .f32, shape: shape).assumingMemoryBound(to: Float.self)
        }
        func panel(_ name: String, _ k: Int, _ n: Int) throws -> UnsafeRawPointer {
            try model.tensor(name, kind: .qu8s8Packed, shape: [k, n])
        }
        var layers: [Layer] = []
        for l in 0..<c.numLayers {
            layers.append(
                Layer(
                    qkv: try panel("layer.\(l).qkv", h, 3 * h),
                    attnOut: try panel("layer.\(l).attn_out", h, h),
                    attnGamma: try f32("layer.\(l).attn_ln.gamma", [h]),
                    attnBeta: try f32("layer.\(l).attn_ln.beta", [h]),
                    ffnIn: try panel("layer.\(l).ffn_in", h, i),
                    ffnOut: try panel("layer.\(l).ffn_out", i, h),
                    ffnGamma: try f32("layer.\(l).ffn_ln.gamma", [h]),
                    ffnBeta: try f32("layer.\(l).ffn_ln.beta", [h])))
        }
        self.weights = Weights(
            word: try model.tensor("embeddings.word", kind: .f16, shape: [c.vocabSize, h])
                .assumingMemoryBound(to: UInt16.self),
            position: try f32("embeddings.position", [c.maxPositions, h]),
            type: try f32("embeddings.type", [c.typeVocabSize, h]),
            embGamma: try f32("embeddings.ln.gamma", [h]),
            embBeta: try f32("embeddings.ln.beta", [h]),
            layers: layers)
        // Last, once nothing can throw: a failed init runs no deinit to release them.
        self.pool = self.threads > 1 ? zrk_threadpool_create(self.threads) : nil
        self.arenas = .allocate(capacity: self.threads)
        self.arenas.initialize(repeating: Arena(), count: self.threads)
    }

    deinit {
        for t in 0..<threads { arenas[t].release() }
        arenas.deinitialize(count: threads)
        arenas.deallocate()
        if let pool { zrk_threadpool_destroy(pool) }
    }

    /// Embeds a batch of tokenised sequences.
    /// - Returns: one L2-normalised embedding of `dimension` floats per sequence, in order.
    /// - Throws: `ModelError.invalidArgument` for an empty sequence, one longer than the model's positions, or a
    ///   token id outside the vocabulary.
    public func embed(_ sequences: [TokenizerEncoding]) throws -> [[Float]] {
        var flat = [Float](repeating: 0, count: sequences.count * dimension)
        try flat.withUnsafeMutableBufferPointer { try embed(sequences, into: $0.baseAddress!) }
        return (0..<sequences.count).map { Array(flat[($0 * dimension)..<(($0 + 1) * dimension)]) }
    }

    /// Embeds a batch into `output` (sequences.count x dimension floats, row-major).
    public func embed(_ sequences: [TokenizerEncoding], into output: UnsafeMutablePointer<Float>) throws {
        var total = 0
        var longest = 0
        for s in sequences {
            guard !s.inputIDs.isEmpty, s.inputIDs.count == s.tokenTypeIDs.count else {
                throw ModelError.invalidArgument("a sequence must hold at least one token, with one type id per token")
            }
            guard s.inputIDs.count <= config.maxPositions else {
                throw ModelError.invalidArgument(
                    "sequence of \(s.inputIDs.count) tokens exceeds the model's \(config.maxPositions) positions")
            }
            for (id, type) in zip(s.inputIDs, s.tokenTypeIDs) {
                guard id >= 0, Int(id) < config.vocabSize, type >= 0, Int(type) < config.typeVocabSize else {
                    throw ModelError.invalidArgument("token id \(id) or type \(type) outside the vocabulary")
                }
            }
            total += s.inputIDs.count
            longest = max(longest, s.inputIDs.count)
        }
        guard total > 0 else { return }
        // The batch runs as groups of whole sequences of at most `budget` rows (a longer sequence alone), each through
        // every layer before the next: a group's activations (hidden, QKV, context, FFN) then stay in L2 from layer to
        // layer instead of streaming a whole batch's through L3 at every op. A group never overshoots the budget, so
        // the row-wise chunks inside `forward` split only a single long sequence, never leave a few-row tail chunk
        // behind a full one. Each sequence's arithmetic is the same in any grouping.
        //
        // With several threads (and no profile being taken), a batch of more than one group's rows runs its groups
        // side by side, one thread each, at most threadRows rows a group: the budget is the even share that makes
        // the groups a multiple of the threads in number where the sequences allow (512 rows on 2 threads: 4 groups
        // of 128; 384 rows: 4 of 96), so no thread idles through a last group. Otherwise one group at a time shares
        // each op across the threads.
        let sideBySide = threads > 1 && !profiling && total > Self.threadRows / 2
        var budget = sharedRows
        if sideBySide {
            let rounds = (total + threads * Self.threadRows - 1) / (threads * Self.threadRows)
            budget = max(16, (total + threads * rounds - 1) / (threads * rounds))
        }
        var groups: [Group] = []
        var start = 0
        while start < sequences.count {
            var end = start + 1
            var rows = sequences[start].inputIDs.count
            while end < sequences.count && rows + sequences[end].inputIDs.count <= budget {
                rows += sequences[end].inputIDs.count
                end += 1
            }
            groups.append(Group(sequences: start..<end, rows: rows))
            start = end
        }
        let widest = groups.map(\.rows).max()!
        if sideBySide && groups.count > 1 {
            for t in 0..<threads { reserve(arenas + t, tokens: widest, longest: longest) }
            let job = GroupJob(encoder: self, sequences: sequences, groups: groups, output: output)
            withExtendedLifetime(job) {
                zrk_threadpool_run(pool, groups.count, { context, index, thread in
                    Unmanaged<GroupJob>.fromOpaque(context!).takeUnretainedValue().run(index, thread: thread)
                }, Unmanaged.passUnretained(job).toOpaque())
            }
            return
        }
        reserve(arenas, tokens: widest, longest: longest)
        for group in groups {
            forward(
                sequences[group.sequences], tokens: group.rows, output: output + group.sequences.lowerBound * dimension,
                arena: arenas, pool: pool)
        }
        if profiling { profile.forwards += 1 }  // one per batch embedded, whatever its grouping
    }

    /// Sequences run through the layers together, `rows` tokens in all.
    private struct Group {
        var sequences: Range<Int>
        var rows: Int
    }

    /// The groups of one batch, handed to the thread pool: task i runs group i on the calling thread's arena, every
    /// op on that thread alone.
    private final class GroupJob {
        unowned let encoder: Encoder
        let sequences: [TokenizerEncoding]
        let groups: [Group]
        let output: UnsafeMutablePointer<Float>

        init(encoder: Encoder, sequences: [TokenizerEncoding], groups: [Group], output: UnsafeMutablePointer<Float>) {
            self.encoder = encoder
            self.sequences = sequences
            self.groups = groups
            self.output = output
        }

        func run(_ index: Int, thread: Int) {
            let group = groups[index]
            encoder.forward(
                sequences[group.sequences], tokens: group.rows,
                output: output + group.sequences.lowerBound * encoder.dimension, arena: encoder.arenas + thread,
                pool: nil)
        }
    }

    private func reserve(_ arena: UnsafeMutablePointer<Arena>, tokens: Int, longest: Int) {
        guard tokens > arena.pointee.tokens || longest > arena.pointee.maxSequence else { return }
        let t = max(tokens, arena.pointee.tokens)
        let l = max(longest, arena.pointee.maxSequence)
        arena.pointee.release()
        let h = config.hiddenSize
        let i = config.intermediateSize
        let widest = max(PackedWeights.paddedK(h), PackedWeights.paddedK(i))
        arena.pointee.tokens = t
        arena.pointee.maxSequence = l
        arena.pointee.hidden = .allocate(capacity: t * h)
        arena.pointee.qkv = .allocate(capacity: t * 3 * h)
        arena.pointee.context = .allocate(capacity: t * h)
        arena.pointee.projected = .allocate(capacity: t * h)
        arena.pointee.ffn = .allocate(capacity: min(t, sharedRows) * i)
        arena.pointee.quantized = .allocate(capacity: t * widest)
        arena.pointee.wide = .allocate(capacity: t * widest)
        arena.pointee.rowScale = .allocate(capacity: t)
        arena.pointee.rowZero = .allocate(capacity: t)
        arena.pointee.attention = .allocate(capacity: threads * zrk_attention_scratch_floats(l, config.headSize))
    }

    /// C = act(quantise(A) x W + b): quantises `m` rows of `a` (k wide) per token, then runs the GEMM.
    private func linear(
        _ op: EncoderProfile.Op, m: Int, k: Int, n: Int, a: UnsafePointer<Float>, weights: UnsafeRawPointer,
        activation: zrk_activation, c: UnsafeMutablePointer<Float>, arena: UnsafeMutablePointer<Arena>,
        pool: OpaquePointer?
    ) {
        let kp = PackedWeights.paddedK(k)
        let cfg = kernels.config
        let scratch = arena.pointee
        var t0 = profiling ? EncoderProfile.now() : 0
        zrk_quantize_rows_parallel(cfg, pool, m, k, kp, a, k, scratch.quantized, kp, scratch.rowScale, scratch.rowZero)
        if profiling { profile.add(.quantize, since: &t0) }
        var params = zrk_qgemm_params(
            a_scale: scratch.rowScale, a_zero: scratch.rowZero, activation: Int32(activation.rawValue), raw_int32: 0)
        zrk_qgemm_parallel(cfg, pool, m, n, k, scratch.quantized, kp, scratch.wide, weights, c, n * 4, &params)
        if profiling {
            profile.add(op, since: &t0)
            profile.ops[op, default: 0] += 2 * m * n * k
        }
    }

    /// Runs one group through every layer on `arena`, sharing each op across `pool` (nil: this thread alone).
    private func forward(
        _ sequences: ArraySlice<TokenizerEncoding>, tokens t: Int, output: UnsafeMutablePointer<Float>,
        arena: UnsafeMutablePointer<Arena>, pool: OpaquePointer?
    ) {
        let h = config.hiddenSize
        let inner = config.intermediateSize
        let d = config.headSize
        let cfg = kernels.config.pointee
        let hidden = arena.pointee.hidden!
        let qkv = arena.pointee.qkv!
        let context = arena.pointee.context!
        let projected = arena.pointee.projected!
        let ffn = arena.pointee.ffn!

        var t0 = profiling ? EncoderProfile.now() : 0
        arena.pointee.offsets.removeAll(keepingCapacity: true)
        arena.pointee.lengths.removeAll(keepingCapacity: true)
        var start = 0
        for s in sequences {
            arena.pointee.offsets.append(start)
            arena.pointee.lengths.append(s.inputIDs.count)
            start += s.inputIDs.count
        }

        // Embeddings: word (fp16) + position + token type, then LayerNorm.
        var row = 0
        for s in sequences {
            for (pos, (id, type)) in zip(s.inputIDs, s.tokenTypeIDs).enumerated() {
                cfg.embed_add(
                    h, weights.word + Int(id) * h, weights.position + pos * h, weights.type + Int(type) * h,
                    hidden + row * h)
                row += 1
            }
        }
        if profiling { profile.add(.embeddings, since: &t0) }
        cfg.add_layernorm(t, h, hidden, h, nil, 0, weights.embGamma, weights.embBeta, config.layerNormEps, hidden, h)
        if profiling { profile.add(.layerNorm, since: &t0) }

        let scale = 1 / Float(d).squareRoot()
        let chunk = pool == nil ? Self.threadRows : sharedRows  // row-wise chunks of a longer sequence
        for layer in weights.layers {
            linear(
                .gemmQKV, m: t, k: h, n: 3 * h, a: hidden, weights: layer.qkv, activation: ZRK_ACTIVATION_NONE, c: qkv,
                arena: arena, pool: pool)
            if profiling { t0 = EncoderProfile.now() }
            arena.pointee.offsets.withUnsafeBufferPointer { o in
                arena.pointee.lengths.withUnsafeBufferPointer { l in
                    zrk_attention_ragged(
                        kernels.config, pool, sequences.count, o.baseAddress,
                        l.baseAddress, config.numHeads, d, qkv, scale, context, arena.pointee.attention,
                        zrk_attention_scratch_floats(arena.pointee.maxSequence, d))
                }
            }
            if profiling { profile.add(.attention, since: &t0) }
            // The rest of the layer is row-wise: it runs on chunks of rows, so that a chunk's FFN activations
            // (rows x intermediate floats, then their u8 copy) stay in L2 between the GEMM that writes them and the
            // quantisation and GEMM that read them. Each row's arithmetic is the same in any chunking.
            for c0 in stride(from: 0, to: t, by: chunk) {
                let rows = min(chunk, t - c0)
                let hid = hidden + c0 * h
                let proj = projected + c0 * h
                linear(
                    .gemmAttentionOut, m: rows, k: h, n: h, a: context + c0 * h, weights: layer.attnOut,
                    activation: ZRK_ACTIVATION_NONE, c: proj, arena: arena, pool: pool)
                if profiling { t0 = EncoderProfile.now() }
                zrk_add_layernorm_parallel(
                    kernels.config, pool, rows, h, proj, h, hid, h, layer.attnGamma, layer.attnBeta,
                    config.layerNormEps, hid, h)
                if profiling { profile.add(.layerNorm, since: &t0) }
                linear(
                    .gemmGELU, m: rows, k: h, n: inner, a: hid, weights: layer.ffnIn, activation: ZRK_ACTIVATION_GELU,
                    c: ffn, arena: arena, pool: pool)
                linear(
                    .gemmFFNOut, m: rows, k: inner, n: h, a: ffn, weights: layer.ffnOut,
                    activation: ZRK_ACTIVATION_NONE, c: proj, arena: arena, pool: pool)
                if profiling { t0 = EncoderProfile.now() }
                zrk_add_layernorm_parallel(
                    kernels.config, pool, rows, h, proj, h, hid, h, layer.ffnGamma, layer.ffnBeta,
                    config.layerNormEps, hid, h)
                if profiling { profile.add(.layerNorm, since: &t0) }
            }
        }

        // Mean pooling over each sequence's tokens, then L2 normalisation.
        var offset = 0
        for (index, s) in sequences.enumerated() {
            let l = s.inputIDs.count
            let out = output + index * h
            out.initialize(repeating: 0, count: h)
            for r in 0..<l {
                cfg.axpy(h, 1, hidden + (offset + r) * h, out)
            }
            let norm = cfg.dot(h, out, out).squareRoot()
            let inv: Float = norm > 0 ? 1 / norm : 0
            for j in 0..<h { out[j] *= inv }
            offset += l
        }
        if profiling { profile.add(.pooling, since: &t0) }
    }

    /// Starts the profile afresh.
    public func resetProfile() { profile = EncoderProfile() }
}

/// Where an encoder's time goes, per op (nanoseconds summed over the forwards profiled).
public struct EncoderProfile: Sendable, Equatable {
    /// The ops timed.
    public enum Op: String, CaseIterable, Sendable {
        case embeddings = "embeddings (lookup + position + type)"
        case quantize = "quantise activations (per-token u8)"
        case gemmQKV = "int8 GEMM, QKV"
        case gemmAttentionOut = "int8 GEMM, attention out"
        case gemmGELU = "int8 GEMM + GELU epilogue (FFN in)"
        case gemmFFNOut = "int8 GEMM, FFN out"
        case attention = "attention (scores, softmax, context)"
        case layerNorm = "residual add + LayerNorm"
        case pooling = "mean pooling + L2 norm"
    }

    public private(set) var nanos: [Op: UInt64] = [:]
    /// Multiply-adds x 2 timed per GEMM op.
    public var ops: [Op: Int] = [:]
    public var forwards = 0

    /// The GEMM ops.
    public static let gemms: [Op] = [.gemmQKV, .gemmAttentionOut, .gemmGELU, .gemmFFNOut]
    /// Multiply-adds x 2 of all the GEMMs timed.
    public var gemmOps: Int { Self.gemms.reduce(0) { $0 + (ops[$1] ?? 0) } }
    /// Nanoseconds of all the GEMMs timed.
    public var gemmNanos: UInt64 { Self.gemms.reduce(0) { $0 + (nanos[$1] ?? 0) } }

    public init() {}

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    mutating func add(_ op: Op, since t0: inout UInt64) {
        let t = Self.now()
        nanos[op, default: 0] += t - t0
        t0 = t
    }

    /// Total time over the ops.
    public var total: UInt64 { nanos.values.reduce(0, +) }
}
