import Crypto
import Foundation
import Model
import Ranking
import XCTest
import _TestSupport

/// The index's id -> row lookup (`ItemIDTable`, an open-addressing table over the index's own id bytes): every
/// stored id finds its row, whatever its length (every length 1…40, across the 8-byte word boundaries the hash reads)
/// or script; ids that differ from a stored one by one byte, by a trailing zero byte, or by being a prefix of it find
/// nothing; the batched lookup of a request's candidates agrees with the single one, also when every id shares one
/// probe chain and one tag (so only the byte comparison tells them apart); ids match byte for byte everywhere (the
/// table, the candidates outside the catalog, the catalog reader); an index whose id table names one id twice, or
/// holds an id that is not UTF-8, is refused on load.
final class ItemIDTableTests: XCTestCase {
    private var fixture: PoolFixture { PoolFixture.shared }

    private func writeIndex(_ ids: [String], to path: String) throws -> ModelFile {
        let model = try ModelFile(path: fixture.model)
        let dim = model.config.hiddenSize
        var g = SystemRandomNumberGenerator()
        let vectors = (0..<(ids.count * dim)).map { _ in Float.random(in: -1...1, using: &g) }
        try CatalogIndex.write(
            to: path, ids: ids, vectors: vectors, dimension: dim, model: model, catalogHash: "test",
            facts: ids.map { _ in ItemFacts(popularity: nil, price: nil, titlePieces: []) })
        return model
    }

    /// Edits the stored bytes of `id` in the index file at `path` (the edit keeps their length) and makes the
    /// trailing SHA-256 right again, so that the loader's checks behind the checksum see the change.
    private func rewriteStoredID(_ id: String, in path: String, _ edit: (inout [UInt8]) -> Void) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let range = try XCTUnwrap(bytes.range(of: Data(id.utf8)))
        var stored = Array(bytes[range])
        edit(&stored)
        precondition(stored.count == range.count, "the edit keeps the id's length")
        bytes.replaceSubrange(range, with: stored)
        let body = bytes.count - 32
        bytes.replaceSubrange(body..<bytes.count, with: Data(SHA256.hash(data: bytes.prefix(body))))
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    private func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("zrank-idlookup-\(getpid())-\(name).zri").path
    }

    func testEveryStoredId_findsItsRow_andNearMissesFindNothing() throws {
        var ids: [String] = []
        for length in 1...40 {
            ids.append(String(repeating: "a", count: length))
            ids.append("SKU-" + String(repeating: "7", count: length))
        }
        ids += ["é", "商品-42", "🛋️ sofa", "a b", "A", "0", "00", "000000000", "SKU-000001", "SKU-000010"]
        ids += (0..<3000).map { "item-\($0)" }
        let path = temporary("many")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try writeIndex(ids, to: path)
        let index = try CatalogIndex(path: path, model: model)
        XCTAssertEqual(index.count, ids.count)
        for (r, id) in ids.enumerated() {
            XCTAssertEqual(index.row(of: id), UInt32(r), id)
            XCTAssertEqual(index.id(ofRow: r), id)
        }
        let stored = Set(ids)
        var misses = ["", "b", "SKU-", "item-3000", "item-", "Item-1", "é ", "a\u{0}", "SKU-000001\u{0}", "SKU-00000"]
        misses += ids.map { $0 + "x" } + ids.map { String($0.dropLast()) } + ids.map { "x" + $0 }
        // One byte changed in each position of a long id.
        let long = Array("SKU-" + String(repeating: "7", count: 40)).map(String.init)
        for i in long.indices {
            var copy = long
            copy[i] = "8"
            misses.append(copy.joined())
        }
        for id in misses where !stored.contains(id) {
            XCTAssertNil(index.row(of: id), "\"\(id)\" is not in the catalog")
        }
        // The batched lookup (a request's candidates) agrees with the single one, on ids in and out, repeated ones
        // included, in a shuffled order; and on an empty list.
        let mixed = (ids + misses.filter { !stored.contains($0) } + ids.prefix(100)).shuffled()
        let batched = index.rows(of: mixed)
        XCTAssertEqual(batched.count, mixed.count)
        for (id, row) in zip(mixed, batched) {
            XCTAssertEqual(row, stored.contains(id) ? UInt32(ids.firstIndex(of: id)!) : nil, id)
        }
        XCTAssertEqual(index.rows(of: []), [])
    }

    func testAnIndexNamingOneIdTwice_isRefusedOnLoad() throws {
        // The catalog reader refuses duplicated ids, so the file is made with two distinct ids of one length and the
        // second rewritten to equal the first, with its checksum made right again: only the lookup can notice.
        let path = temporary("dup")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try writeIndex(["dup-a", "dup-b", "other"], to: path)
        try rewriteStoredID("dup-b", in: path) { $0 = Array("dup-a".utf8) }
        XCTAssertThrowsError(try CatalogIndex(path: path, model: model)) { error in
            XCTAssertTrue("\(error)".contains("duplicated item id \"dup-a\""), "\(error)")
        }
    }

    /// Builds a table over `ids` laid out as the index lays them out (offsets, then the bytes).
    private func withTable<T>(_ ids: [String], hashMask: UInt64, _ body: (ItemIDTable) throws -> T) throws -> T {
        var offsets: [UInt32] = [0]
        var bytes: [UInt8] = []
        for id in ids {
            bytes += Array(id.utf8)
            offsets.append(UInt32(bytes.count))
        }
        bytes.append(0)
        return try offsets.withUnsafeBufferPointer { o in
            try bytes.withUnsafeBufferPointer { b in
                try body(try ItemIDTable(count: ids.count, offsets: o.baseAddress!, bytes: b.baseAddress!, hashMask: hashMask))
            }
        }
    }

    func testOneProbeChainForEveryId_onlyTheBytesTellThemApart() throws {
        // hashMask 0: every id hashes to 0, so all sit in one cluster from slot 0 and every slot's tag matches. A
        // lookup is right only if the byte comparison is, and every id but the first is found by walking past others
        // (the batched lookup's first tag match is always row 0, so it must fall back to the full probe).
        let ids = ["a", "ab", "abc", "b", "é", "e\u{301}", "x\u{0}y", "x", "SKU-000001", "SKU-000010", "a-much-longer-id-of-40-bytes-0123456789"]
        let misses = ["", "c", "abcd", "ba", "e", "\u{301}", "x\u{0}", "x\u{0}yz", "SKU-00000", "SKU-0000010"]
        for mask in [UInt64(0), .max] {
            try withTable(ids, hashMask: mask) { table in
                for (r, id) in ids.enumerated() {
                    XCTAssertEqual(table.row(of: id), UInt32(r), "\(id) mask \(mask)")
                }
                for id in misses {
                    XCTAssertNil(table.row(of: id), "\(id) mask \(mask)")
                }
                let mixed = (ids + misses + ids.reversed()).shuffled()
                XCTAssertEqual(table.rows(of: mixed), mixed.map { id in ids.firstIndex { $0.utf8.elementsEqual(id.utf8) }.map { UInt32($0) } }, "mask \(mask)")
            }
        }
        // "é" and "e" + combining acute are one String to Swift but two ids here: two rows, no duplicate. The same id
        // twice is a duplicate, found by its bytes even in the one chain.
        XCTAssertEqual("é", "e\u{301}")
        for mask in [UInt64(0), .max] {
            XCTAssertThrowsError(try withTable(["a", "b", "a"], hashMask: mask) { _ in }) { error in
                XCTAssertEqual(error as? ItemIDTable.BuildError, .duplicate("a"))
            }
        }
    }

    func testIdsMatchByteForByte_inTheCatalogReaderAndAmongCandidatesOutsideTheCatalog() throws {
        let catalog = temporary("nfc").replacingOccurrences(of: ".zri", with: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: catalog) }
        try "{\"id\": \"caf\u{e9}\", \"title\": \"one\"}\n{\"id\": \"cafe\u{301}\", \"title\": \"two\"}\n"
            .write(toFile: catalog, atomically: true, encoding: .utf8)
        XCTAssertEqual(try CatalogIndexBuilder.readCatalog(catalog).items.map(\.id), ["caf\u{e9}", "cafe\u{301}"])
        let model = try ModelFile(path: fixture.model)
        let ranker = try Ranker(model: model, index: try CatalogIndex(path: fixture.index, model: model))
        XCTAssertNoThrow(try ranker.validate(RankQuery(query: "chair", candidateIDs: ["gone-\u{e9}", "gone-e\u{301}"])))
        XCTAssertThrowsError(try ranker.validate(RankQuery(query: "chair", candidateIDs: ["gone-\u{e9}", "gone-\u{e9}"])))
    }

    func testAnIndexHoldingAnIdThatIsNotUTF8_isRefusedOnLoad() throws {
        let path = temporary("utf8")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try writeIndex(["good-1", "bad-22", "good-3"], to: path)
        try rewriteStoredID("bad-22", in: path) { $0[4] = 0xFF }
        XCTAssertThrowsError(try CatalogIndex(path: path, model: model)) { error in
            XCTAssertTrue("\(error)".contains("corrupt id table"), "\(error)")
        }
    }
}
