import Foundation

/// A reader for the safetensors format: an 8-byte little-endian header length, a JSON header mapping tensor names
/// to dtype, shape and byte offsets, then the raw little-endian tensor data.
public struct SafetensorsFile {
    /// One tensor's entry in the header.
    public struct Entry: Sendable {
        public var dtype: String
        public var shape: [Int]
        public var range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    private let data: Data
    private let dataStart: Int

    /// Reads and validates the header of `path` (the data is memory-mapped by Foundation).
    public init(path: String) throws {
        self.path = path
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw ModelError.io(path: path, reason: "cannot read safetensors file: \(error.localizedDescription)")
        }
        guard data.count >= 8 else { throw ModelError.truncated(path: path, expected: 8, actual: data.count) }
        // Compared as read (u64) before any conversion: a length of 2^63 or more must be refused, not trap.
        let rawLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard rawLength > 0, rawLength <= UInt64(data.count - 8) else {
            throw ModelError.corruptMetadata(path: path, reason: "safetensors header length \(rawLength) out of range")
        }
        let headerLength = Int(rawLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength)))
        } catch {
            throw ModelError.corruptMetadata(path: path, reason: "safetensors header is not JSON")
        }
        guard let object = json as? [String: Any] else {
            throw ModelError.corruptMetadata(path: path, reason: "safetensors header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        var entries: [String: Entry] = [:]
        for (name, value) in object where name != "__metadata__" {
            // Offsets inside the data section (compared without overflow), dimensions non-negative with a product
            // that fits an Int: a hostile header is refused here, never trapped on or read outside the file.
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int],
                offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= data.count - dataStart,
                Self.elementCount(shape) != nil
            else {
                throw ModelError.corruptMetadata(path: path, reason: "bad safetensors entry for \(name)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.data = data
        self.dataStart = dataStart
    }

    /// The number of elements of `shape`: nil when a dimension is negative or the product overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// The tensor `name` converted to fp32 (F32, F16 and BF16 are accepted), with its shape.
    public func floats(_ name: String) throws -> (values: [Float], shape: [Int]) {
        guard let entry = entries[name] else { throw ModelError.missingTensor(name) }
        let width: Int
        switch entry.dtype {
        case "F32": width = 4
        case "F16", "BF16": width = 2
        default: throw ModelError.badTensor(name, reason: "unsupported dtype \(entry.dtype)")
        }
        // The element count is checked against the bytes before it is multiplied, so `count * width` cannot overflow.
        guard let count = Self.elementCount(entry.shape), count <= entry.range.count / width,
            entry.range.count == count * width
        else {
            throw ModelError.badTensor(name, reason: "byte size \(entry.range.count) does not match shape \(entry.shape)")
        }
        var out = [Float](repeating: 0, count: count)
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart + entry.range.lowerBound
            for i in 0..<count {
                switch entry.dtype {
                case "F32":
                    out[i] = Float(bitPattern: UInt32(littleEndian: (base + 4 * i).loadUnaligned(as: UInt32.self)))
                case "F16":
                    out[i] = Float(Float16(bitPattern: UInt16(littleEndian: (base + 2 * i).loadUnaligned(as: UInt16.self))))
                default:
                    let bits = UInt32(UInt16(littleEndian: (base + 2 * i).loadUnaligned(as: UInt16.self))) << 16
                    out[i] = Float(bitPattern: bits)
                }
            }
        }
        return (out, entry.shape)
    }
}
