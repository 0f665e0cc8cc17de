import Bench
import Foundation
import FuzzSupport
import Model
import Ranking
import Tokenizer
import Training

// The text files the CLIs read (JSON, JSON lines, tab-separated): the first input byte picks the reader (% 10), the
// rest is the file (written to a scratch file: the readers take paths). Two-file readers get the part before the
// first NUL as the catalog and the rest as the queries.
//   0 heads.json            RankingHeads.load, PreparedHeads; heads made for the fixture model also rank with it
//   1 catalog (zrank index) CatalogIndexBuilder.readCatalog, then word pieces of the first titles (the index's facts)
//   2 impression log        ImpressionLog.read (zrank train-heads)
//   3 queries (text/JSONL)  Workload.loadQueries (zrank-bench, zrank bench-rank)
//   4 queries (query.csv)   Workload.loadQueries on a .csv path
//   5 catalog ids           Workload.loadCatalogIDs (zrank-bench)
//   6 graded judgements     GradedSimulator.readTruth (zrank train-heads --truth)
//   7 simulation truth      SimulationTruth as zrank train-heads --truth decodes it, then the attraction it computes
//   8 simulate-log inputs   LogSimulator(catalog:queries:)
//   9 graded simulator      GradedSimulator(catalog:queries:)

private let model: ModelFile = Fixtures.require("tiny.zrm") {
    try ModelFile(path: Fixtures.path("tiny.zrm"), loading: .privateCopy)
}
private let index: CatalogIndex = Fixtures.require("tiny.zri") {
    try CatalogIndex(path: Fixtures.path("tiny.zri"), model: model, loading: .privateCopy)
}
private let tokenizer: WordPieceTokenizer = Fixtures.require("the tiny model's tokenizer") { try model.makeTokenizer() }
private let fileA = ScratchFile("input.jsonl")
private let fileB = ScratchFile("queries.txt")
private let fileCSV = ScratchFile("queries.csv")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var reader = ByteReader(inputBytes(data, size))
    let mode = reader.u8() % 10
    let file = reader.rest()
    switch mode {
    case 0:
        guard let heads = try? RankingHeads.load(fileA.write(file)) else { return 0 }
        _ = PreparedHeads(heads)
        if heads.modelContentHash == model.contentHash, heads.dimension == index.dimension,
            let ranker = try? Ranker(model: model, index: index, version: "fuzz", heads: heads)
        {
            let ids = (0..<4).map { index.id(ofRow: $0) }
            _ = ranker.rank(batch: [
                RankQuery(query: "coffee table", explain: true),
                RankQuery(query: "accent chair", candidateIDs: ids, explain: true, recentItemIDs: [ids[0]], alpha: 0.5, beta: 2),
            ])
        }
    case 1:
        guard let (items, _) = try? CatalogIndexBuilder.readCatalog(fileA.write(file)) else { return 0 }
        for item in items.prefix(4) {
            _ = wordPieces(tokenizer, item.title)
            _ = tokenizer.encode(item.indexedText, maxLength: model.config.maxPositions)
        }
    case 2:
        _ = try? ImpressionLog.read(fileA.write(file))
    case 3:
        _ = try? Workload.loadQueries(fileB.write(file))
    case 4:
        _ = try? Workload.loadQueries(fileCSV.write(file))
    case 5:
        _ = try? Workload.loadCatalogIDs(fileA.write(file))
    case 6:
        _ = try? GradedSimulator.readTruth(fileA.write(file))
    case 7:
        guard let truth = try? JSONDecoder().decode(SimulationTruth.self, from: Data(file)) else { return 0 }
        for user in truth.tastes.keys.sorted().prefix(3) {
            for query in truth.queryClasses.keys.sorted().prefix(3) {
                for item in truth.items.keys.sorted().prefix(3) {
                    _ = truth.attraction(user: user, query: query, item: item)
                }
            }
        }
    case 8:
        let (catalog, queries) = splitAtNUL(file)
        _ = try? LogSimulator(catalog: fileA.write(catalog), queries: fileB.write(queries))
    default:
        let (catalog, queries) = splitAtNUL(file)
        _ = try? GradedSimulator(catalog: fileA.write(catalog), queries: fileB.write(queries))
    }
    return 0
}
