import Crypto
import Foundation
import Kernels
import Tokenizer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hyper-parameters of a BERT encoder.
public struct BertConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    public var hiddenAct: String

    public init(
        vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int, maxPositions: Int,
        typeVocabSize: Int, layerNormEps: Float, hiddenAct: String = "gelu"
    ) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenAct = hiddenAct
    }

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / numHeads }
}

/// The tokenizer settings a model file carries.
public struct TokenizerMetadata: Codable, Sendable, Equatable {
    public var vocabulary: [String]
    public var normalizer: BertNormalizerOptions
    public var maxInputCharsPerWord: Int
}

/// How a tensor is stored in the data section.
public enum TensorKind: String, Codable, Sendable {
    /// Little-endian fp32, row-major.
    case f32
    /// Little-endian IEEE half, row-major.
    case f16
    /// An int8 weight panel packed for the qu8s8 GEMM kernels (see CKernels.h), with per-column scales, column
    /// sums and biases inside each block. `shape` is [K, N].
    case qu8s8Packed = "qu8s8-packed"
}

/// One tensor's place in the data section.
public struct TensorEntry: Codable, Sendable, Equatable {
    public var name: String
    public var kind: TensorKind
    public var shape: [Int]
    /// Byte offset from the start of the data section (64-byte aligned).
    public var offset: Int
    public var byteCount: Int
}

/// Everything in a model file except the tensor bytes.
public struct ModelMetadata: Codable, Sendable, Equatable {
    /// The model version name: what workers announce and responses report.
    public var version: String
    /// Hex SHA-256 over the config, tokenizer and tensor data (independent of the version name).
    public var contentHash: String
    public var config: BertConfig
    public var tokenizer: TokenizerMetadata
    public var tensors: [TensorEntry]
    /// Where the weights came from (free text).
    public var source: String
    /// Weight quantisation scheme (free text for `zrank inspect`).
    public var quantization: String
}

/// The on-disk layout of a `*.zrm` model file.
///
/// ```
/// offset 0   magic "ZRKMODL\0" (8 bytes)
///        8   format version, u32 little-endian
///       12   reserved u32 (0)
///       16   metadata length in bytes, u64
///       24   data section offset, u64 (64-byte aligned)
///       32   data section length, u64
///       40   reserved (24 zero bytes)
///       64   metadata: UTF-8 JSON (ModelMetadata)
///  data offset: tensors, each 64-byte aligned
///  end - 32: SHA-256 of every preceding byte
/// ```
public enum ModelFileFormat {
    public static let magic: [UInt8] = Array("ZRKMODL".utf8) + [0]
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let checksumSize = 32
    public static let alignment = 64
}

/// A model file mapped read-only into memory, validated, with typed access to its tensors.
public final class ModelFile: @unchecked Sendable {
    public let path: String
    public let metadata: ModelMetadata
    /// Size of the file in bytes.
    public let fileSize: Int
    private let mapping: UnsafeRawPointer
    private let dataOffset: Int
    private let tensorsByName: [String: TensorEntry]

    /// Maps (or copies) and validates `path`.
    /// - Parameters:
    ///   - verifyChecksum: check the SHA-256 trailer over the whole file (on by default).
    ///   - loading: `.mapped` (shared pages) or `.privateCopy` (later changes to the file cannot reach this reader).
    /// - Throws: `ModelError` naming the problem: not a regular file, truncated, bad magic, other format version,
    ///   checksum mismatch, corrupt metadata or tensors out of bounds.
    public init(path: String, verifyChecksum: Bool = true, loading: FileLoading = .mapped) throws {
        self.path = path
        let fd: Int32
        let size: Int
        do {
            (fd, size) = try FileMapping.open(path, what: "model file")
        } catch {
            throw ModelError.io(path: path, reason: "\(error)")
        }
        defer { close(fd) }
        guard size >= ModelFileFormat.headerSize else {
            throw ModelError.truncated(path: path, expected: ModelFileFormat.headerSize, actual: size)
        }
        let raw: UnsafeMutableRawPointer
        do {
            raw = try FileMapping.load(fd: fd, size: size, loading)
        } catch {
            throw ModelError.io(path: path, reason: "\(error)")
        }
        let base = UnsafeRawPointer(raw)
        var ok = false
        defer {
            if !ok { munmap(raw, size) }
        }
        guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == ModelFileFormat.magic else {
            throw ModelError.badMagic(path: path)
        }
        let formatVersion = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard formatVersion == ModelFileFormat.version else {
            throw ModelError.unsupportedFormatVersion(path: path, found: formatVersion, supported: ModelFileFormat.version)
        }
        // Every length is bounded (1 TiB) before any arithmetic, so a hostile header cannot overflow.
        func field(_ offset: Int) -> Int {
            let v = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            return v < 1 << 40 ? Int(v) : -1
        }
        let metaLength = field(16)
        let dataOffset = field(24)
        let dataLength = field(32)
        guard metaLength >= 0, dataOffset >= 0, dataOffset >= ModelFileFormat.headerSize + metaLength,
            dataOffset % ModelFileFormat.alignment == 0, dataLength >= 0, dataLength < 1 << 40
        else {
            throw ModelError.corruptMetadata(path: path, reason: "header fields out of range")
        }
        let expected = dataOffset + dataLength + ModelFileFormat.checksumSize
        guard size >= expected else { throw ModelError.truncated(path: path, expected: expected, actual: size) }
        guard size == expected else {
            throw ModelError.corruptMetadata(path: path, reason: "\(size - expected) unexpected trailing bytes")
        }
        if verifyChecksum {
            let digest = SHA256.hash(data: UnsafeRawBufferPointer(start: base, count: size - ModelFileFormat.checksumSize))
            let stored = Array(UnsafeRawBufferPointer(start: base + size - 32, count: 32))
            guard Array(digest) == stored else { throw ModelError.checksumMismatch(path: path) }
        }
        let metaBytes = Data(bytes: base + ModelFileFormat.headerSize, count: metaLength)
        let metadata: ModelMetadata
        do {
            metadata = try JSONDecoder().decode(ModelMetadata.self, from: metaBytes)
        } catch {
            throw ModelError.corruptMetadata(path: path, reason: "metadata JSON does not decode: \(error)")
        }
        var byName: [String: TensorEntry] = [:]
        for t in metadata.tensors {
            guard t.offset >= 0, t.byteCount >= 0, t.offset < 1 << 40, t.byteCount < 1 << 40,
                t.offset + t.byteCount <= dataLength, t.offset % ModelFileFormat.alignment == 0
            else {
                throw ModelError.corruptMetadata(path: path, reason: "tensor \(t.name) lies outside the data section")
            }
            guard !t.shape.isEmpty, t.shape.count <= 4, t.shape.allSatisfy({ $0 >= 1 && $0 <= 1 << 24 }) else {
                throw ModelError.corruptMetadata(path: path, reason: "tensor \(t.name) has an invalid shape \(t.shape)")
            }
            var elements = 1
            for d in t.shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product < 1 << 40 else {
                    throw ModelError.corruptMetadata(path: path, reason: "tensor \(t.name) is too large")
                }
                elements = product
            }
            let expectedBytes: Int
            switch t.kind {
            case .f32: expectedBytes = elements * 4
            case .f16: expectedBytes = elements * 2
            case .qu8s8Packed:
                guard t.shape.count == 2 else {
                    throw ModelError.corruptMetadata(path: path, reason: "packed tensor \(t.name) is not 2-D")
                }
                // Shapes are capped at 2^24 per side above, so this product fits comfortably.
                expectedBytes = PackedWeights.byteCount(k: t.shape[0], n: t.shape[1])
            }
            guard expectedBytes == t.byteCount else {
                throw ModelError.corruptMetadata(path: path, reason: "tensor \(t.name) size does not match its shape")
            }
            byName[t.name] = t
        }
        let c = metadata.config
        // Hidden and intermediate sizes are the GEMMs' K.
        guard (1...PackedWeights.maxK).contains(c.hiddenSize), (1...1024).contains(c.numHeads),
            c.hiddenSize % c.numHeads == 0, (1...1024).contains(c.numLayers),
            (1...PackedWeights.maxK).contains(c.intermediateSize),
            (1...65_536).contains(c.maxPositions), (1...1024).contains(c.typeVocabSize),
            (1...1 << 24).contains(c.vocabSize), c.layerNormEps.isFinite, c.layerNormEps >= 0,
            c.vocabSize == metadata.tokenizer.vocabulary.count
        else {
            throw ModelError.corruptMetadata(path: path, reason: "inconsistent model config")
        }
        self.metadata = metadata
        self.fileSize = size
        self.mapping = base
        self.dataOffset = dataOffset
        self.tensorsByName = byName
        ok = true
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping), fileSize)
    }

    /// The model version name.
    public var version: String { metadata.version }
    /// The content hash (hex SHA-256) that indexes built with this model record.
    public var contentHash: String { metadata.contentHash }
    public var config: BertConfig { metadata.config }

    /// The tokenizer stored in the file.
    public func makeTokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(
            vocabulary: metadata.tokenizer.vocabulary, options: metadata.tokenizer.normalizer,
            maxInputCharsPerWord: metadata.tokenizer.maxInputCharsPerWord)
    }

    /// The bytes of tensor `name`, checked for kind and shape.
    public func tensor(_ name: String, kind: TensorKind, shape: [Int]) throws -> UnsafeRawPointer {
        guard let t = tensorsByName[name] else { throw ModelError.missingTensor(name) }
        guard t.kind == kind, t.shape == shape else {
            throw ModelError.badTensor(name, reason: "expected \(kind.rawValue) \(shape), found \(t.kind.rawValue) \(t.shape)")
        }
        return mapping + dataOffset + t.offset
    }
}

/// Writes model files: collects tensors, then lays out header, metadata, aligned data and checksum.
public struct ModelFileWriter {
    private var entries: [TensorEntry] = []
    private var data = Data()

    public init() {}

    private mutating func append(_ name: String, kind: TensorKind, shape: [Int], bytes: UnsafeRawBufferPointer) {
        let pad = (ModelFileFormat.alignment - data.count % ModelFileFormat.alignment) % ModelFileFormat.alignment
        data.append(Data(count: pad))
        entries.append(TensorEntry(name: name, kind: kind, shape: shape, offset: data.count, byteCount: bytes.count))
        data.append(contentsOf: bytes)
    }

    /// Adds an fp32 tensor.
    public mutating func addF32(_ name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *))
        let le = values.map { $0.bitPattern.littleEndian }
        le.withUnsafeBytes { append(name, kind: .f32, shape: shape, bytes: $0) }
    }

    /// Adds a tensor stored as IEEE half.
    public mutating func addF16(_ name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *))
        let le = values.map { Float16($0).bitPattern.littleEndian }
        le.withUnsafeBytes { append(name, kind: .f16, shape: shape, bytes: $0) }
    }

    /// Adds a packed int8 GEMM panel for a K x N weight.
    public mutating func addPacked(_ name: String, k: Int, n: Int, packed: [UInt8]) {
        precondition(packed.count == PackedWeights.byteCount(k: k, n: n))
        packed.withUnsafeBytes { append(name, kind: .qu8s8Packed, shape: [k, n], bytes: $0) }
    }

    /// The content hash of these tensors with `config` and `tokenizer`.
    public func contentHash(config: BertConfig, tokenizer: TokenizerMetadata) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var hasher = SHA256()
        hasher.update(data: try encoder.encode(config))
        hasher.update(data: try encoder.encode(tokenizer))
        hasher.update(data: try encoder.encode(entries))
        hasher.update(data: data)
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Writes the file atomically (to a temporary name, then renamed).
    /// - Returns: the metadata written.
    @discardableResult
    public func write(
        to path: String, version: String?, config: BertConfig, tokenizer: TokenizerMetadata, source: String,
        quantization: String
    ) throws -> ModelMetadata {
        let hash = try contentHash(config: config, tokenizer: tokenizer)
        let metadata = ModelMetadata(
            version: version ?? "minilm-\(hash.prefix(12))", contentHash: hash, config: config, tokenizer: tokenizer,
            tensors: entries, source: source, quantization: quantization)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let meta = try encoder.encode(metadata)
        let a = ModelFileFormat.alignment
        let dataOffset = (ModelFileFormat.headerSize + meta.count + a - 1) / a * a
        var file = Data()
        file.append(contentsOf: ModelFileFormat.magic)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { file.append(contentsOf: $0) } }
        put(ModelFileFormat.version)
        put(UInt32(0))
        put(UInt64(meta.count))
        put(UInt64(dataOffset))
        put(UInt64(data.count))
        file.append(Data(count: ModelFileFormat.headerSize - file.count))
        file.append(meta)
        file.append(Data(count: dataOffset - file.count))
        file.append(data)
        file.append(contentsOf: Array(SHA256.hash(data: file)))
        let tmp = path + ".tmp-\(getpid())"
        do {
            try file.write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw ModelError.io(path: path, reason: "cannot write model file: \(error.localizedDescription)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ModelError.io(path: path, reason: "cannot rename into place: \(String(cString: strerror(errno)))")
        }
        return metadata
    }
}
