import Crypto
import Foundation
import Kernels
import Model

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The on-disk layout of a `*.zri` catalog index.
///
/// ```
/// offset 0    magic "ZRKINDX\0"
///        8    format version u32 (2; version 1 files, without item facts, are still read)
///        12   embedding dimension u32
///        16   item count u64
///        24   model content hash (32 raw bytes): the model the embeddings were made with
///        56   id table offset u64, 64 its length u64
///        72   embeddings offset u64 (64-aligned; rows of `dimension` int8 padded to a multiple of 64 bytes)
///        80   scales offset u64 (count fp32: per-row scale, value = scale * int8)
///        88   metadata offset u64, 96 its length u64 (UTF-8 JSON: model version, catalog hash, created at)
///        104  item facts offset u64, 112 its length u64 (version 2; 0 when absent)
///        120  reserved up to 128
///  id table: (count + 1) u32 byte offsets, then the UTF-8 ids
///  item facts: count x (popularity f32, price f32; NaN when the catalog has none), then (count + 1) u32 offsets
///        into the title pieces, then the pieces: each item's distinct title word-piece ids (u32, ascending), the
///        ranking heads' lexical feature
///  end - 32: SHA-256 of everything before it
/// ```
public enum CatalogIndexFormat {
    public static let magic: [UInt8] = Array("ZRKINDX".utf8) + [0]
    public static let version: UInt32 = 2
    public static let headerSize = 128
    /// Row stride of the int8 embeddings for a dimension.
    public static func rowStride(_ dimension: Int) -> Int { (dimension + 63) / 64 * 64 }
}

/// Why an index could not be built or loaded.
public struct IndexError: Error, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Free-text facts recorded with an index.
public struct IndexMetadata: Codable, Sendable, Equatable {
    public var modelVersion: String
    public var modelContentHash: String
    /// Hex SHA-256 of the catalog file the index was built from.
    public var catalogHash: String
    public var createdAt: String
}

/// A catalog index mapped read-only: item ids, int8 embeddings with per-row scales, id lookup.
public final class CatalogIndex: @unchecked Sendable {
    public let path: String
    public let dimension: Int
    public let count: Int
    public let rowStride: Int
    /// Hex SHA-256 content hash of the model that built it.
    public let modelContentHash: String
    public let metadata: IndexMetadata
    /// Row r's int8 embedding starts at `embeddings + r * rowStride`.
    public let embeddings: UnsafePointer<Int8>
    public let scales: UnsafePointer<Float>
    private let idOffsets: UnsafePointer<UInt32>
    private let idBytes: UnsafePointer<UInt8>
    private let rowByID: ItemIDTable
    /// Item facts (nil for version 1 indexes).
    private let pieceOffsets: UnsafePointer<UInt32>?
    private let pieces: UnsafePointer<UInt32>?
    /// log(1 + price) and log(1 + popularity) per row (NaN when missing), computed once at load: the heads'
    /// `log_price` and `log_popularity` features.
    private let logPrices: [Float]
    private let logPopularities: [Float]
    private let mapping: UnsafeMutableRawPointer
    private let size: Int

    /// Maps (or copies) and validates `path`.
    /// - Parameters:
    ///   - model: when given, the index must have been built by this model (same content hash).
    ///   - loading: `.mapped` (shared pages) or `.privateCopy` (later changes to the file cannot reach this reader).
    public init(path: String, model: ModelFile? = nil, loading: FileLoading = .mapped) throws(IndexError) {
        self.path = path
        let fd: Int32
        let size: Int
        do {
            (fd, size) = try FileMapping.open(path, what: "index")
        } catch {
            throw IndexError("\(path): \(error)")
        }
        defer { close(fd) }
        guard size >= CatalogIndexFormat.headerSize + 32 else {
            throw IndexError("\(path): truncated index file (\(size) bytes)")
        }
        let raw: UnsafeMutableRawPointer
        do {
            raw = try FileMapping.load(fd: fd, size: size, loading)
        } catch {
            throw IndexError("\(path): \(error)")
        }
        var ok = false
        defer { if !ok { munmap(raw, size) } }
        let base = UnsafeRawPointer(raw)
        guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == CatalogIndexFormat.magic else {
            throw IndexError("\(path): not a zrank catalog index (bad magic)")
        }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        // Bounded (1 TiB) before any arithmetic, so a crafted header cannot overflow.
        func u64(_ o: Int) -> Int {
            let v = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self))
            return v < 1 << 40 ? Int(v) : Int(1 << 41)
        }
        let formatVersion = u32(8)
        guard formatVersion == 1 || formatVersion == Int(CatalogIndexFormat.version) else {
            throw IndexError("\(path): index format version \(formatVersion) is not supported (this build reads 1 and 2); rebuild it")
        }
        let digest = SHA256.hash(data: UnsafeRawBufferPointer(start: base, count: size - 32))
        guard Array(digest) == Array(UnsafeRawBufferPointer(start: base + size - 32, count: 32)) else {
            throw IndexError("\(path): checksum mismatch: the index file is corrupted or truncated")
        }
        let dimension = u32(12)
        let count = u64(16)
        let stride = CatalogIndexFormat.rowStride(dimension)
        let hash = UnsafeRawBufferPointer(start: base + 24, count: 32).map { String(format: "%02x", $0) }.joined()
        let (idsAt, idsLength, embAt, scalesAt, metaAt, metaLength) = (u64(56), u64(64), u64(72), u64(80), u64(88), u64(96))
        let body = size - 32
        let (factsAt, factsLength) = formatVersion >= 2 ? (u64(104), u64(112)) : (0, 0)
        guard dimension > 0, dimension <= 65_536, count < 1 << 32, idsAt + idsLength <= body, embAt % 64 == 0,
            idsAt % 4 == 0, scalesAt % 4 == 0, embAt + count * stride <= body, scalesAt + count * 4 <= body,
            metaAt + metaLength <= body, idsLength >= (count + 1) * 4, factsAt % 4 == 0, factsAt + factsLength <= body,
            factsLength == 0 || factsLength >= count * 8 + (count + 1) * 4
        else {
            throw IndexError("\(path): corrupt index header")
        }
        guard let meta = try? JSONDecoder().decode(IndexMetadata.self, from: Data(bytes: base + metaAt, count: metaLength))
        else {
            throw IndexError("\(path): corrupt index metadata")
        }
        if let model {
            guard model.contentHash == hash else {
                throw IndexError(
                    "\(path): index was built with model \(meta.modelVersion) (content hash \(hash.prefix(12))), not "
                        + "with \(model.version) (\(model.contentHash.prefix(12))); rebuild it with `zrank index`")
            }
            guard model.config.hiddenSize == dimension else {
                throw IndexError("\(path): index dimension \(dimension) does not match the model's \(model.config.hiddenSize)")
            }
        }
        let offsets = (base + idsAt).assumingMemoryBound(to: UInt32.self)
        let bytes = (base + idsAt + (count + 1) * 4).assumingMemoryBound(to: UInt8.self)
        let textLength = idsLength - (count + 1) * 4
        for r in 0..<count {
            let a = Int(UInt32(littleEndian: offsets[r]))
            let b = Int(UInt32(littleEndian: offsets[r + 1]))
            guard a <= b, b <= textLength,
                String(validating: UnsafeBufferPointer(start: bytes + a, count: b - a), as: UTF8.self) != nil
            else { throw IndexError("\(path): corrupt id table") }
        }
        let lookup: ItemIDTable
        do {
            lookup = try ItemIDTable(count: count, offsets: offsets, bytes: bytes)
        } catch {
            switch error {
            case .duplicate(let id): throw IndexError("\(path): duplicated item id \"\(id)\"")
            }
        }
        self.dimension = dimension
        self.count = count
        self.rowStride = stride
        self.modelContentHash = hash
        self.metadata = meta
        self.embeddings = (base + embAt).assumingMemoryBound(to: Int8.self)
        self.scales = (base + scalesAt).assumingMemoryBound(to: Float.self)
        self.idOffsets = offsets
        self.idBytes = bytes
        self.rowByID = lookup
        if factsLength > 0 {
            let offsets = (base + factsAt + count * 8).assumingMemoryBound(to: UInt32.self)
            let piecesCount = (factsLength - count * 8 - (count + 1) * 4) / 4
            for r in 0..<count {
                let a = Int(UInt32(littleEndian: offsets[r]))
                let b = Int(UInt32(littleEndian: offsets[r + 1]))
                guard a <= b, b <= piecesCount else { throw IndexError("\(path): corrupt item facts") }
            }
            // The priors are only ever used as log(1 + value): transformed once here (field 0 popularity, 1 price).
            func logPrior(_ field: Int) -> [Float] {
                (0..<count).map { r in
                    let raw = UInt32(littleEndian: (base + factsAt + 8 * r + 4 * field).loadUnaligned(as: UInt32.self))
                    let v = Float(bitPattern: raw)
                    return v.isNaN ? .nan : log1p(max(0, v))
                }
            }
            self.logPopularities = logPrior(0)
            self.logPrices = logPrior(1)
            self.pieceOffsets = offsets
            self.pieces = (base + factsAt + count * 8 + (count + 1) * 4).assumingMemoryBound(to: UInt32.self)
        } else {
            self.logPrices = []
            self.logPopularities = []
            self.pieceOffsets = nil
            self.pieces = nil
        }
        self.mapping = raw
        self.size = size
        ok = true
    }

    deinit {
        munmap(mapping, size)
    }

    /// The row of an item id, or nil when it is not in the catalog. Ids match byte for byte (their UTF-8).
    @inlinable
    public func row(of id: String) -> UInt32? { lookupRow(id) }

    @usableFromInline
    func lookupRow(_ id: String) -> UInt32? { rowByID.row(of: id) }

    /// The rows of many item ids at once (nil: not in the catalog), each the same as `row(of:)` gives, found with
    /// the lookups' cache misses overlapped: the lookup for a request's candidates.
    public func rows(of ids: [String]) -> [UInt32?] { rowByID.rows(of: ids) }

    /// The item id of a row.
    public func id(ofRow r: Int) -> String {
        let a = Int(UInt32(littleEndian: idOffsets[r]))
        let b = Int(UInt32(littleEndian: idOffsets[r + 1]))
        return String(decoding: UnsafeBufferPointer(start: idBytes + a, count: b - a), as: UTF8.self)
    }

    /// Whether the index carries item facts (priors and title pieces; format version 2).
    public var hasItemFacts: Bool { pieces != nil }

    /// log(1 + price) of a row, NaN when the catalog has no price for it (the heads' `log_price` feature).
    @inline(__always)
    public func logPrice(ofRow r: Int) -> Float { logPrices.isEmpty ? .nan : logPrices[r] }

    /// log(1 + popularity) of a row, NaN when the catalog has none (the heads' `log_popularity` feature).
    @inline(__always)
    public func logPopularity(ofRow r: Int) -> Float { logPopularities.isEmpty ? .nan : logPopularities[r] }

    /// The distinct word-piece ids of a row's title, ascending (empty without item facts).
    public func titlePieces(ofRow r: Int) -> UnsafeBufferPointer<UInt32> {
        guard let pieceOffsets, let pieces else { return UnsafeBufferPointer(start: nil, count: 0) }
        let a = Int(UInt32(littleEndian: pieceOffsets[r]))
        let b = Int(UInt32(littleEndian: pieceOffsets[r + 1]))
        return UnsafeBufferPointer(start: pieces + a, count: b - a)
    }

    /// The dequantised embedding of a row.
    public func embedding(ofRow r: Int) -> [Float] {
        let row = embeddings + r * rowStride
        let scale = scales[r]
        return (0..<dimension).map { scale * Float(row[$0]) }
    }

    /// Writes an index file atomically.
    /// - Parameters:
    ///   - ids: item ids, in row order (distinct).
    ///   - vectors: count x dimension fp32 embeddings (L2-normalised), row-major.
    ///   - facts: per row: popularity, price (nil when absent) and the title's distinct word-piece ids.
    public static func write(
        to path: String, ids: [String], vectors: [Float], dimension: Int, model: ModelFile, catalogHash: String,
        facts: [ItemFacts]
    ) throws(IndexError) {
        precondition(facts.count == ids.count)
        let count = ids.count
        precondition(vectors.count == count * dimension)
        let stride = CatalogIndexFormat.rowStride(dimension)
        var idTable = Data()
        var offsets: [UInt32] = [0]
        var blob = Data()
        for id in ids {
            blob.append(contentsOf: Array(id.utf8))
            offsets.append(UInt32(blob.count))
        }
        for o in offsets { withUnsafeBytes(of: o.littleEndian) { idTable.append(contentsOf: $0) } }
        idTable.append(blob)
        let meta = IndexMetadata(
            modelVersion: model.version, modelContentHash: model.contentHash, catalogHash: catalogHash,
            createdAt: ISO8601DateFormatter().string(from: Date()))
        // Sorted keys: the same catalog and model give the same bytes.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metaData = (try? encoder.encode(meta)) ?? Data("{}".utf8)
        func align(_ x: Int) -> Int { (x + 63) / 64 * 64 }
        let idsAt = CatalogIndexFormat.headerSize
        let embAt = align(idsAt + idTable.count)
        let scalesAt = embAt + count * stride
        let metaAt = scalesAt + count * 4
        var factsTable = Data()
        for f in facts {
            for v in [f.popularity.map(Float.init) ?? .nan, f.price.map(Float.init) ?? .nan] {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { factsTable.append(contentsOf: $0) }
            }
        }
        var pieceCount: UInt32 = 0
        for f in [ItemFacts(titlePieces: [])] + facts {
            pieceCount += UInt32(f.titlePieces.count)
            withUnsafeBytes(of: pieceCount.littleEndian) { factsTable.append(contentsOf: $0) }
        }
        for f in facts {
            for piece in f.titlePieces { withUnsafeBytes(of: piece.littleEndian) { factsTable.append(contentsOf: $0) } }
        }
        let factsAt = (metaAt + metaData.count + 3) / 4 * 4
        var file = Data(count: factsAt + factsTable.count)
        file.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
            let p = out.baseAddress!
            for (i, b) in CatalogIndexFormat.magic.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
            func put32(_ v: Int, _ o: Int) { p.storeBytes(of: UInt32(v).littleEndian, toByteOffset: o, as: UInt32.self) }
            func put64(_ v: Int, _ o: Int) { p.storeBytes(of: UInt64(v).littleEndian, toByteOffset: o, as: UInt64.self) }
            put32(Int(CatalogIndexFormat.version), 8)
            put32(dimension, 12)
            put64(count, 16)
            var hashBytes: [UInt8] = []
            var chars = Array(model.contentHash.utf8)
            while chars.count >= 2 {
                hashBytes.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) ?? 0)
                chars.removeFirst(2)
            }
            for (i, b) in hashBytes.prefix(32).enumerated() { p.storeBytes(of: b, toByteOffset: 24 + i, as: UInt8.self) }
            put64(idsAt, 56)
            put64(idTable.count, 64)
            put64(embAt, 72)
            put64(scalesAt, 80)
            put64(metaAt, 88)
            put64(metaData.count, 96)
            put64(factsAt, 104)
            put64(factsTable.count, 112)
            factsTable.withUnsafeBytes { (p + factsAt).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            idTable.withUnsafeBytes { (p + idsAt).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            for r in 0..<count {
                let (q, scale) = quantizeSymmetric(vectors[(r * dimension)..<((r + 1) * dimension)])
                let row = (p + embAt + r * stride).assumingMemoryBound(to: Int8.self)
                for i in 0..<dimension { row[i] = q[i] }
                p.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: scalesAt + 4 * r, as: UInt32.self)
            }
            metaData.withUnsafeBytes { (p + metaAt).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        file.append(contentsOf: Array(SHA256.hash(data: file)))
        let tmp = path + ".tmp-\(getpid())"
        do {
            try file.write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw IndexError("\(path): cannot write index: \(error.localizedDescription)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw IndexError("\(path): cannot rename index into place: \(String(cString: strerror(errno)))")
        }
    }
}

/// Symmetric int8 quantisation of one vector: q = round(v / s), s = max|v| / 127.
public func quantizeSymmetric<C: Collection>(_ v: C) -> ([Int8], Float) where C.Element == Float {
    var maxAbs: Float = 0
    for x in v { maxAbs = max(maxAbs, abs(x)) }
    let scale = maxAbs > 0 ? maxAbs / 127 : 1
    let inv = 1 / scale
    return (v.map { Int8(max(-127, min(127, ($0 * inv).rounded(.toNearestOrEven)))) }, scale)
}

/// What the ranking heads know of a catalog item besides its embedding.
public struct ItemFacts: Sendable, Equatable {
    public var popularity: Double?
    public var price: Double?
    /// Distinct word-piece ids of the title, ascending.
    public var titlePieces: [UInt32]

    public init(popularity: Double? = nil, price: Double? = nil, titlePieces: [UInt32]) {
        self.popularity = popularity
        self.price = price
        self.titlePieces = titlePieces
    }
}
