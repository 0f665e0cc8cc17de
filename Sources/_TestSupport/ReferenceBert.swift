import Foundation

/// A naive fp32 BERT forward pass (nested loops, libm erf/exp) over a `SyntheticCheckpoint`'s unquantised weights:
/// the oracle the int8 encoder is compared with in tests. Not API: tests only.
public struct ReferenceBert {
    public let checkpoint: SyntheticCheckpoint

    public init(_ checkpoint: SyntheticCheckpoint) {
        self.checkpoint = checkpoint
    }

    /// The L2-normalised mean-pooled embedding of one sequence.
    public func embed(ids: [Int32], types: [Int32]) -> [Float] {
        let c = checkpoint
        let h = c.hidden
        let l = ids.count
        let word = c.values("embeddings.word_embeddings.weight")
        let pos = c.values("embeddings.position_embeddings.weight")
        let typ = c.values("embeddings.token_type_embeddings.weight")
        var x = [[Float]](repeating: [Float](repeating: 0, count: h), count: l)
        for t in 0..<l {
            for j in 0..<h {
                // The converter stores word embeddings as fp16; round the same way so the oracle isolates int8.
                x[t][j] = Float(Float16(word[Int(ids[t]) * h + j])) + pos[t * h + j] + typ[Int(types[t]) * h + j]
            }
        }
        x = x.map { layerNorm($0, "embeddings.LayerNorm") }
        let d = h / c.heads
        for layer in 0..<c.layers {
            let p = "encoder.layer.\(layer)."
            let q = x.map { linear($0, p + "attention.self.query") }
            let k = x.map { linear($0, p + "attention.self.key") }
            let v = x.map { linear($0, p + "attention.self.value") }
            var ctx = [[Float]](repeating: [Float](repeating: 0, count: h), count: l)
            for head in 0..<c.heads {
                for i in 0..<l {
                    var scores = (0..<l).map { j -> Double in
                        var s = 0.0
                        for e in 0..<d { s += Double(q[i][head * d + e]) * Double(k[j][head * d + e]) }
                        return s / Double(d).squareRoot()
                    }
                    let mx = scores.max()!
                    scores = scores.map { Foundation.exp($0 - mx) }
                    let sum = scores.reduce(0, +)
                    for e in 0..<d {
                        var acc = 0.0
                        for j in 0..<l { acc += scores[j] / sum * Double(v[j][head * d + e]) }
                        ctx[i][head * d + e] = Float(acc)
                    }
                }
            }
            let attn = ctx.map { linear($0, p + "attention.output.dense") }
            x = (0..<l).map { t in layerNorm(zip(attn[t], x[t]).map { $0 + $1 }, p + "attention.output.LayerNorm") }
            let inner = x.map { row in
                linear(row, p + "intermediate.dense").map { v in Float(0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot()))) }
            }
            let out = inner.map { linear($0, p + "output.dense") }
            x = (0..<l).map { t in layerNorm(zip(out[t], x[t]).map { $0 + $1 }, p + "output.LayerNorm") }
        }
        var pooled = [Double](repeating: 0, count: h)
        for t in 0..<l { for j in 0..<h { pooled[j] += Double(x[t][j]) } }
        let norm = pooled.map { $0 * $0 }.reduce(0, +).squareRoot()
        return pooled.map { Float($0 / norm) }
    }

    private func linear(_ input: [Float], _ name: String) -> [Float] {
        let w = checkpoint.values(name + ".weight")
        let b = checkpoint.values(name + ".bias")
        let n = b.count
        let k = input.count
        return (0..<n).map { o in
            var acc = Double(b[o])
            for i in 0..<k { acc += Double(w[o * k + i]) * Double(input[i]) }
            return Float(acc)
        }
    }

    private func layerNorm(_ x: [Float], _ name: String) -> [Float] {
        let g = checkpoint.values(name + ".weight")
        let b = checkpoint.values(name + ".bias")
        let mean = x.map(Double.init).reduce(0, +) / Double(x.count)
        let variance = x.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(x.count)
        let rstd = 1 / (variance + 1e-12).squareRoot()
        return x.indices.map { Float((Double(x[$0]) - mean) * rstd) * g[$0] + b[$0] }
    }
}

/// Cosine similarity of two vectors.
public func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0
    var na = 0.0
    var nb = 0.0
    for i in a.indices {
        dot += Double(a[i]) * Double(b[i])
        na += Double(a[i]) * Double(a[i])
        nb += Double(b[i]) * Double(b[i])
    }
    return dot / (na * nb).squareRoot()
}
