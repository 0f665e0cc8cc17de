import Crypto
import Foundation
import Model
import Tokenizer

/// One catalog line: `{"id": "...", "title": "...", "text": "..."?}` plus optional fields the ranking heads use.
public struct CatalogItem: Sendable, Equatable {
    public var id: String
    public var title: String
    public var text: String?

    /// The string that is indexed: the title, then a space and the text when present.
    public var indexedText: String { text.map { "\(title) \($0)" } ?? title }
}

/// Builds `*.zri` indexes from JSON-lines catalogs with the int8 encoder.
public enum CatalogIndexBuilder {
    /// Reads and validates a catalog file.
    /// - Throws: `IndexError` naming the first bad line (invalid JSON, missing id/title, id over 128 bytes,
    ///   duplicated id) or an empty catalog.
    public static func readCatalog(_ path: String, maxIDBytes: Int = 128) throws(IndexError) -> (items: [CatalogItem], hash: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IndexError("\(path): cannot read catalog")
        }
        let hash = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        var items: [CatalogItem] = []
        var seen = Set<String>()
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard String(validating: line, as: UTF8.self) != nil else {
                throw IndexError("\(path): line \(lineNumber): invalid UTF-8")
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw IndexError("\(path): line \(lineNumber): not a JSON object")
            }
            guard let id = object["id"] as? String, !id.isEmpty else {
                throw IndexError("\(path): line \(lineNumber): missing string \"id\"")
            }
            guard id.utf8.count <= maxIDBytes else {
                throw IndexError("\(path): line \(lineNumber): id of \(id.utf8.count) bytes exceeds \(maxIDBytes)")
            }
            guard let title = object["title"] as? String else {
                throw IndexError("\(path): line \(lineNumber): missing string \"title\"")
            }
            guard seen.insert(id).inserted else {
                throw IndexError("\(path): line \(lineNumber): duplicated id \"\(id)\"")
            }
            items.append(CatalogItem(id: id, title: title, text: object["text"] as? String))
        }
        guard !items.isEmpty else { throw IndexError("\(path): the catalog has no items") }
        return (items, hash)
    }

    /// Encodes every item and writes the index.
    /// - Parameter progress: called after each batch with (items done, total).
    /// - Returns: the number of items and the hex SHA-256 of the catalog file.
    public static func build(
        model: ModelFile, catalog: String, output: String, batch: Int = 64, maxLength: Int = 128,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> (count: Int, catalogHash: String) {
        let (items, hash) = try readCatalog(catalog)
        let encoder = try Encoder(model: model)
        let tokenizer = try model.makeTokenizer()
        let dim = encoder.dimension
        var vectors = [Float](repeating: 0, count: items.count * dim)
        let length = min(maxLength, model.config.maxPositions)
        var start = 0
        while start < items.count {
            let end = min(start + batch, items.count)
            let encodings = items[start..<end].map { tokenizer.encode($0.indexedText, maxLength: length) }
            try vectors.withUnsafeMutableBufferPointer { buffer in
                try encoder.embed(encodings, into: buffer.baseAddress! + start * dim)
            }
            start = end
            progress(start, items.count)
        }
        try CatalogIndex.write(
            to: output, ids: items.map(\.id), vectors: vectors, dimension: dim, model: model, catalogHash: hash)
        return (items.count, hash)
    }
}
