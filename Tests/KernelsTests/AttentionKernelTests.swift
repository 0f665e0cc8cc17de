import CKernels
import Kernels
import XCTest

/// The attention kernel of every instruction set against nested-loop fp32 math (scores, softmax, weighted sum of V),
/// over every sequence length from 1 to 40 and longer ones, head sizes on and off the vector width, and a query
/// stride wider than the head (heads interleaved in one row, as the encoder lays them out).
final class AttentionKernelTests: XCTestCase {
    private func reference(l: Int, d: Int, q: [Float], k: [Float], v: [Float], stride: Int, scale: Float) -> [Float] {
        var out = [Float](repeating: 0, count: l * d)
        for i in 0..<l {
            var scores = (0..<l).map { j in
                Double((0..<d).reduce(Float(0)) { $0 + q[i * stride + $1] * k[j * stride + $1] }) * Double(scale)
            }
            let top = scores.max()!
            scores = scores.map { exp($0 - top) }
            let total = scores.reduce(0, +)
            for c in 0..<d {
                out[i * d + c] = Float((0..<l).reduce(0.0) { $0 + scores[$1] / total * Double(v[$1 * stride + c]) })
            }
        }
        return out
    }

    func testEveryAttentionKernel_matchesTheReference_forEveryLengthAndOddHeadSizes() throws {
        let sets = InstructionSet.allCases.compactMap { KernelSet($0) }
        for isa in InstructionSet.allCases where !isa.isSupported {
            print("AttentionKernelTests: skipping \(isa): this CPU lacks it")
        }
        var rng = SeededGenerator(seed: 0xA77E)
        var checked = 0
        for l in Array(1...40) + [64, 127] {
            for d in [1, 7, 8, 9, 32, 33] {
                let stride = d * 3 + 5
                let count = l * stride
                let scale = 1 / Float(d).squareRoot()
                // Values up to +-4: scores up to 16 * d * scale, far enough apart that softmax saturates sometimes.
                let q = (0..<count).map { _ in Float.random(in: -4...4, using: &rng) }
                let k = (0..<count).map { _ in Float.random(in: -4...4, using: &rng) }
                let v = (0..<count).map { _ in Float.random(in: -4...4, using: &rng) }
                let expected = reference(l: l, d: d, q: q, k: k, v: v, stride: stride, scale: scale)
                for set in sets {
                    var out = [Float](repeating: .nan, count: l * d)
                    var scratch = [Float](repeating: .nan, count: zrk_attention_scratch_floats(l, d))
                    set.config.pointee.attention(l, d, q, k, v, stride, scale, &out, d, &scratch)
                    for idx in 0..<(l * d) {
                        let tolerance = 2e-5 * max(1, abs(expected[idx]))
                        if !(abs(out[idx] - expected[idx]) <= tolerance) {
                            XCTFail("\(set.isa) l=\(l) d=\(d): row \(idx / d) col \(idx % d): \(out[idx]) vs \(expected[idx])")
                            return
                        }
                    }
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, 42 * 6 * sets.count)
    }
}
