import CKernels

/// An instruction-set level the kernels are built for.
public enum InstructionSet: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case scalar = 0
    case avx2 = 1
    case avx512vnni = 2
    case neon = 3

    /// The name used in logs, `ZRANK_ISA` and benchmark output.
    public var description: String {
        switch self {
        case .scalar: return "scalar"
        case .avx2: return "avx2"
        case .avx512vnni: return "avx512vnni"
        case .neon: return "neon"
        }
    }

    /// Whether this CPU and OS can run kernels of this level.
    public var isSupported: Bool { zrk_cpu_supports(rawValue) != 0 }
}

/// The whole set of kernels chosen for one CPU: GEMM micro-kernel plus the fp32 vector kernels.
///
/// The set is detected once per process (`KernelSet.best`); tests and benchmarks may ask for a specific level.
public struct KernelSet: @unchecked Sendable {
    /// The C configuration (a static table; never freed).
    public let config: UnsafePointer<zrk_kernel_config>

    /// The best set for this CPU, honouring the `ZRANK_ISA` cap.
    public static var best: KernelSet { KernelSet(config: zrk_kernel_config_get()) }

    /// The set for `isa`, or nil when this CPU lacks it.
    public init?(_ isa: InstructionSet) {
        guard let config = zrk_kernel_config_for(isa.rawValue) else { return nil }
        self.config = config
    }

    init(config: UnsafePointer<zrk_kernel_config>) {
        self.config = config
    }

    /// The instruction-set level of this set.
    public var isa: InstructionSet { InstructionSet(rawValue: config.pointee.isa) ?? .scalar }

    /// Rows the GEMM micro-kernel handles per call.
    public var gemmRows: Int { Int(config.pointee.gemm_mr) }

    /// Whether the GEMM needs an int16 scratch copy of A (`QGEMM.scratchElements`).
    public var gemmNeedsWideA: Bool { config.pointee.gemm_a_int16 != 0 }
}

/// Shapes and sizes of the packed int8 weight panels the GEMM kernels read.
public enum PackedWeights {
    /// Output columns per packed block.
    public static let blockColumns = Int(ZRK_NR)
    /// K is padded to a multiple of this.
    public static let kAlignment = Int(ZRK_KR)
    /// The largest K (input width) the GEMMs take.
    public static let maxK = Int(ZRK_MAX_K)

    /// K padded to the kernels' multiple.
    @inlinable
    public static func paddedK(_ k: Int) -> Int { (k + 3) & ~3 }

    /// Bytes of a packed K x N panel.
    public static func byteCount(k: Int, n: Int) -> Int { zrk_qu8s8_packed_bytes(k, n) }

    /// Packs a row-major K x N s8 matrix with per-column scales and biases.
    /// - Parameters:
    ///   - weights: K * N values, row-major (row = input k, column = output n).
    ///   - scales: N per-column scales.
    ///   - bias: N biases, or nil for zero.
    /// - Returns: the packed bytes (`byteCount(k:n:)` of them).
    public static func pack(k: Int, n: Int, weights: [Int8], scales: [Float], bias: [Float]?) -> [UInt8] {
        precondition(weights.count == k * n && scales.count == n && (bias?.count ?? n) == n && k <= maxK)
        var out = [UInt8](repeating: 0, count: byteCount(k: k, n: n))
        weights.withUnsafeBufferPointer { w in
            scales.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBytes { o in
                    if let bias {
                        bias.withUnsafeBufferPointer { b in
                            zrk_qu8s8_pack_weights(k, n, w.baseAddress, n, s.baseAddress, b.baseAddress, o.baseAddress)
                        }
                    } else {
                        zrk_qu8s8_pack_weights(k, n, w.baseAddress, n, s.baseAddress, nil, o.baseAddress)
                    }
                }
            }
        }
        return out
    }
}

