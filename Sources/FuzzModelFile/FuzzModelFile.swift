import Foundation
import FuzzSupport
import Kernels
import Model
import Ranking
import Tokenizer

// The binary files a worker and the CLI open, all three readers on every input (each refuses the others' magic):
// - `*.zrm`: `ModelFile(path:)` (the worker's private copy), then what loading a model does with it: the tokenizer it
//   carries (`makeTokenizer`, then encoding two texts), an `Encoder` over its tensors, and one embedding;
// - `*.zri`: `CatalogIndex(path:)` (mapped), then every row through the accessors ranking uses (id, row lookup,
//   embedding, title pieces, priors); when it was built by the fixture model (the seeds were), it is also opened
//   against that model and ranked with heads: a whole-catalog query and one naming its first ids;
// - `model.safetensors` (the `zrank convert` input): `SafetensorsFile(path:)` and every tensor's `floats`.
// Both zrank formats end with a SHA-256 of the rest; the input's last 32 bytes are replaced by the digest of the bytes
// before them, so mutations reach the parsing behind the checksum (a wrong checksum is refused first, without
// looking further). The safetensors reader gets the input as it is.

private let fixtureModel: ModelFile = Fixtures.require("tiny.zrm") {
    try ModelFile(path: Fixtures.path("tiny.zrm"), loading: .privateCopy)
}
private let fixtureHeads: RankingHeads = Fixtures.require("heads.json") {
    try RankingHeads.load(Fixtures.path("heads.json"))
}
private let zrankFile = ScratchFile("file.zr")
private let safetensorsFile = ScratchFile("model.safetensors")
private let texts = ["smart coffee table", "Ünïcödé \u{1F600} 漢字 walnut-lift top,chair's ##ing [SEP] [UNK]"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    let path = zrankFile.write(withSHA256Trailer(input))
    if let model = try? ModelFile(path: path, loading: .privateCopy) {
        _ = model.version
        if let tokenizer = try? model.makeTokenizer() {
            let encodings = texts.map { tokenizer.encode($0, maxLength: min(128, model.config.maxPositions)) }
            if let encoder = try? Encoder(model: model) {
                _ = try? encoder.embed(encodings)
            }
        }
    }
    if let index = try? CatalogIndex(path: path) {
        for r in 0..<index.count {
            let id = index.id(ofRow: r)
            precondition(index.row(of: id) == UInt32(r), "row lookup disagrees with the id table")
            _ = index.embedding(ofRow: r)
            _ = index.titlePieces(ofRow: r).reduce(0, &+)
            _ = index.logPrice(ofRow: r) + index.logPopularity(ofRow: r)
        }
        if index.modelContentHash == fixtureModel.contentHash,
            let index = try? CatalogIndex(path: path, model: fixtureModel, loading: .privateCopy),
            let ranker = try? Ranker(model: fixtureModel, index: index, version: "fuzz", heads: fixtureHeads)
        {
            let ids = (0..<min(index.count, 8)).map { index.id(ofRow: $0) }
            _ = ranker.rank(batch: [
                RankQuery(query: texts[0], explain: true),
                RankQuery(query: texts[1], candidateIDs: ids, topK: 3, explain: true, recentItemIDs: Array(ids.prefix(2))),
            ])
        }
    }
    if let weights = try? SafetensorsFile(path: safetensorsFile.write(input)) {
        for name in weights.entries.keys.sorted() { _ = try? weights.floats(name) }
    }
    return 0
}
