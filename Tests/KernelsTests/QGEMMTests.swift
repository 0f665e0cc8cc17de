import CKernels
import Kernels
import XCTest

/// Every int8 GEMM micro-kernel against nested-loop int32 math, bit for bit, over random shapes that hit every tile
/// edge (M not a multiple of MR, N not a multiple of 16, K not a multiple of 4) and the extreme values.
final class QGEMMTests: XCTestCase {
    enum Fill {
        case random
        case extremes  // A = 255, W = -128 / 127
        case zeros     // A = 0, W random
        case mixedExtremes  // A in {0, 255}, W in {-128, 127}
    }

    struct Case {
        var m: Int
        var n: Int
        var k: Int
        var fill: Fill
    }

    private func makeOperands(_ c: Case, _ rng: inout SeededGenerator) -> (a: [UInt8], w: [Int8]) {
        let kp = PackedWeights.paddedK(c.k)
        var a = [UInt8](repeating: 0, count: c.m * kp)
        var w = [Int8](repeating: 0, count: c.k * c.n)
        for i in 0..<c.m {
            for j in 0..<c.k {
                switch c.fill {
                case .random: a[i * kp + j] = UInt8.random(in: 0...255, using: &rng)
                case .extremes: a[i * kp + j] = 255
                case .zeros: a[i * kp + j] = 0
                case .mixedExtremes: a[i * kp + j] = Bool.random(using: &rng) ? 0 : 255
                }
            }
            // Padding bytes hold garbage: the kernels must not let it leak into results.
            for j in c.k..<kp {
                a[i * kp + j] = UInt8.random(in: 0...255, using: &rng)
            }
        }
        for idx in 0..<(c.k * c.n) {
            switch c.fill {
            case .random, .zeros: w[idx] = Int8.random(in: -128...127, using: &rng)
            case .extremes: w[idx] = idx % 2 == 0 ? -128 : 127
            case .mixedExtremes: w[idx] = Bool.random(using: &rng) ? -128 : 127
            }
        }
        return (a, w)
    }

    private func reference(_ c: Case, a: [UInt8], w: [Int8]) -> [Int32] {
        let kp = PackedWeights.paddedK(c.k)
        var out = [Int32](repeating: 0, count: c.m * c.n)
        for i in 0..<c.m {
            for j in 0..<c.n {
                var acc: Int32 = 0
                for kk in 0..<c.k {
                    acc += Int32(a[i * kp + kk]) * Int32(w[kk * c.n + j])
                }
                out[i * c.n + j] = acc
            }
        }
        return out
    }

    private func cases() -> [Case] {
        var rng = SeededGenerator(seed: 0x5EED)
        var all: [Case] = []
        // Exhaustive small edges: every M up to 17, N across one block, two blocks (the AVX-512 8x32 tile takes a
        // pair of blocks), a pair plus one and two pairs, four blocks with the last one short or whole (the AVX-512
        // short tile takes four), four plus one to three, and eight, K around multiples of 4.
        for m in 1...17 {
            for n in [1, 15, 16, 17, 31, 32, 33, 48, 49, 63, 64, 65, 97, 127, 128] {
                for k in [1, 3, 4, 5, 8, 13, 64, 67] {
                    all.append(Case(m: m, n: n, k: k, fill: .random))
                }
            }
        }
        for _ in 0..<60 {
            all.append(
                Case(
                    m: Int.random(in: 1...40, using: &rng), n: Int.random(in: 1...80, using: &rng),
                    k: Int.random(in: 1...300, using: &rng), fill: .random))
        }
        for fill in [Fill.extremes, .zeros, .mixedExtremes] {
            all.append(Case(m: 9, n: 35, k: 1536, fill: fill))
            all.append(Case(m: 4, n: 17, k: 385, fill: fill))
        }
        // Beyond one 64-row chunk, with and without short rows after the last full tile.
        for m in [64, 69, 71, 72, 133] {
            all.append(Case(m: m, n: 97, k: 36, fill: .random))
        }
        // The MiniLM shapes at a query-sized M.
        all.append(Case(m: 16, n: 384, k: 384, fill: .random))
        all.append(Case(m: 5, n: 1536, k: 384, fill: .random))
        all.append(Case(m: 7, n: 384, k: 1536, fill: .random))
        return all
    }

    /// Output rows are written with a stride of N + 3 values; the three values after each row (and a whole row
    /// after the last) must keep their guard value, so a kernel that writes past its columns or rows fails.
    private static let guardValue: UInt32 = 0xDEAD_BEEF

    private func runGEMM(
        _ set: KernelSet, _ c: Case, a: [UInt8], packed: [UInt8], raw: Bool, pool: OpaquePointer? = nil
    ) -> [UInt32] {
        let kp = PackedWeights.paddedK(c.k)
        let stride = c.n + 3
        var out = [UInt32](repeating: Self.guardValue, count: (c.m + 1) * stride)
        var scratch = [Int16](repeating: 0, count: c.m * kp)
        let aScale = (0..<c.m).map { Float($0 + 1) * 0.01 }
        let aZero = (0..<c.m).map { Int32(($0 * 37) % 256) }
        packed.withUnsafeBytes { panel in
            aScale.withUnsafeBufferPointer { s in
                aZero.withUnsafeBufferPointer { z in
                    var params = zrk_qgemm_params(
                        a_scale: raw ? nil : s.baseAddress, a_zero: raw ? nil : z.baseAddress,
                        activation: Int32(ZRK_ACTIVATION_NONE.rawValue), raw_int32: raw ? 1 : 0)
                    if let pool {
                        zrk_qgemm_parallel(
                            set.config, pool, c.m, c.n, c.k, a, kp, &scratch, panel.baseAddress, &out, stride * 4, &params)
                    } else {
                        zrk_qgemm(set.config, c.m, c.n, c.k, a, kp, &scratch, panel.baseAddress, &out, stride * 4, &params)
                    }
                }
            }
        }
        var result: [UInt32] = []
        result.reserveCapacity(c.m * c.n)
        for i in 0..<c.m {
            result += out[(i * stride)..<(i * stride + c.n)]
            XCTAssertEqual(
                Array(out[(i * stride + c.n)..<((i + 1) * stride)]), [UInt32](repeating: Self.guardValue, count: 3),
                "\(set.isa) m=\(c.m) n=\(c.n) k=\(c.k): a write past row \(i)'s columns")
        }
        XCTAssertEqual(
            Array(out[(c.m * stride)...]), [UInt32](repeating: Self.guardValue, count: stride),
            "\(set.isa) m=\(c.m) n=\(c.n) k=\(c.k): a write past the last row")
        return result
    }

    func testEveryGEMMKernel_equalsNestedLoopInt32Math_bitForBit() throws {
        let sets = InstructionSet.allCases.compactMap { KernelSet($0) }
        XCTAssertGreaterThanOrEqual(sets.count, 1)
        for isa in InstructionSet.allCases where !isa.isSupported {
            print("QGEMMTests: skipping \(isa): this CPU lacks it")
        }
        var rng = SeededGenerator(seed: 42)
        var checked = 0
        for c in cases() {
            let (a, w) = makeOperands(c, &rng)
            let expected = reference(c, a: a, w: w)
            let packed = PackedWeights.pack(
                k: c.k, n: c.n, weights: w, scales: [Float](repeating: 1, count: c.n), bias: nil)
            for set in sets {
                let got = runGEMM(set, c, a: a, packed: packed, raw: true).map { Int32(bitPattern: $0) }
                if got != expected {
                    let idx = got.indices.first { got[$0] != expected[$0] }!
                    XCTFail(
                        "\(set.isa) m=\(c.m) n=\(c.n) k=\(c.k) \(c.fill): first mismatch at row \(idx / c.n) "
                            + "col \(idx % c.n): got \(got[idx]) expected \(expected[idx])")
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, cases().count * sets.count)
    }

    /// The GEMM split across a thread pool (blocks of columns per task; for a query-sized M, whole groups of four
    /// blocks) equals the int32 reference bit for bit, for every M from 1 to 17 and a few longer ones, on 2 and 3
    /// threads.
    func testThreadedGEMM_equalsNestedLoopInt32Math_bitForBit() throws {
        var rng = SeededGenerator(seed: 99)
        let sets = InstructionSet.allCases.compactMap { KernelSet($0) }
        for threads in [2, 3] {
            let pool = try XCTUnwrap(zrk_threadpool_create(threads))
            defer { zrk_threadpool_destroy(pool) }
            for m in Array(1...17) + [29, 70] {
                for n in [33, 200, 384] {
                    let c = Case(m: m, n: n, k: 40, fill: .random)
                    let (a, w) = makeOperands(c, &rng)
                    let expected = reference(c, a: a, w: w)
                    let packed = PackedWeights.pack(
                        k: c.k, n: c.n, weights: w, scales: [Float](repeating: 1, count: c.n), bias: nil)
                    for set in sets {
                        let got = runGEMM(set, c, a: a, packed: packed, raw: true, pool: pool).map { Int32(bitPattern: $0) }
                        XCTAssertEqual(got, expected, "\(set.isa) \(threads) threads m=\(m) n=\(n)")
                    }
                }
            }
        }
    }

    /// The fused dequantise + bias (+ GELU) epilogue of each kernel against the formula in double precision, on
    /// full and short tiles over one, two and four blocks (each row with its own scale and zero point).
    func testFusedEpilogue_matchesDequantiseBiasGELU_withinTolerance() throws {
        var rng = SeededGenerator(seed: 7)
        let shapes = [(11, 37), (1, 64), (2, 50), (3, 70), (4, 64), (6, 64), (7, 81), (13, 130)]
        for activation in [ZRK_ACTIVATION_NONE, ZRK_ACTIVATION_GELU] {
            for (m, n) in shapes {
                let c = Case(m: m, n: n, k: 70, fill: .random)
                let (a, w) = makeOperands(c, &rng)
                let acc = reference(c, a: a, w: w)
                let scales = (0..<c.n).map { _ in Float.random(in: 1e-4...1e-2, using: &rng) }
                let bias = (0..<c.n).map { _ in Float.random(in: -1...1, using: &rng) }
                let aScale = (0..<c.m).map { _ in Float.random(in: 1e-3...5e-2, using: &rng) }
                let aZero = (0..<c.m).map { _ in Int32.random(in: 0...255, using: &rng) }
                let packed = PackedWeights.pack(k: c.k, n: c.n, weights: w, scales: scales, bias: bias)
                var colsum = [Int32](repeating: 0, count: c.n)
                for kk in 0..<c.k { for j in 0..<c.n { colsum[j] += Int32(w[kk * c.n + j]) } }
                for set in InstructionSet.allCases.compactMap({ KernelSet($0) }) {
                    var out = [Float](repeating: .nan, count: c.m * c.n)
                    var scratch = [Int16](repeating: 0, count: c.m * PackedWeights.paddedK(c.k))
                    packed.withUnsafeBytes { panel in
                        aScale.withUnsafeBufferPointer { s in
                            aZero.withUnsafeBufferPointer { z in
                                var params = zrk_qgemm_params(
                                    a_scale: s.baseAddress, a_zero: z.baseAddress,
                                    activation: Int32(activation.rawValue), raw_int32: 0)
                                zrk_qgemm(
                                    set.config, c.m, c.n, c.k, a, PackedWeights.paddedK(c.k), &scratch,
                                    panel.baseAddress, &out, c.n * 4, &params)
                            }
                        }
                    }
                    var worst = 0.0
                    for i in 0..<c.m {
                        for j in 0..<c.n {
                            let centred = Double(acc[i * c.n + j] - aZero[i] * colsum[j])
                            var v = Double(aScale[i]) * Double(scales[j]) * centred + Double(bias[j])
                            if activation == ZRK_ACTIVATION_GELU { v = 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }
                            let err = abs(Double(out[i * c.n + j]) - v) / max(1, abs(v))
                            worst = max(worst, err)
                        }
                    }
                    // Tolerance: fp32 rounding of the dequantisation (~1e-6 relative) plus the GELU's approximation
                    // (AVX2: rational erf, < 2e-7 absolute; AVX-512: the table, < 1e-7; scalar: libm's erff).
                    XCTAssertLessThan(worst, 2e-6, "\(set.isa) activation \(activation.rawValue) m=\(m) n=\(n)")
                }
            }
        }
    }
}
