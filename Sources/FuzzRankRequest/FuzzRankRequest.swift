import Foundation
import FuzzSupport
import Kernels
import Model
import Protocol
import Ranking
import SwiftProtobuf
import Worker

// A RANK_REQUEST body as the worker handles it: `Zrank_V1_RankRequest(serializedBytes:)`, the request turned into a
// `RankQuery` by the worker's own mapping (`RankQuery(request)`, as `WorkerService.prepare` does),
// then `Ranker.rank(batch:)`, which validates the query (`Ranker.validate`: the limits) and ranks it: tokenizer,
// encoder, candidate lookup, scoring, top-k. Two rankers over the committed tiny model and index (fuzz/fixtures):
// one by cosine without a query cache, one with ranking heads and the default caches, given the request twice in
// one batch (the batch's de-duplication of equal queries). The other bodies peers decode (WorkerReady, Error,
// RankResponse, InfoResponse) are decoded from the same bytes.

private let model: ModelFile = Fixtures.require("tiny.zrm") {
    try ModelFile(path: Fixtures.path("tiny.zrm"), loading: .privateCopy)
}
private let index: CatalogIndex = Fixtures.require("tiny.zri") {
    try CatalogIndex(path: Fixtures.path("tiny.zri"), model: model, loading: .privateCopy)
}
nonisolated(unsafe) private let cosineRanker: Ranker = Fixtures.require("a ranker") {
    var limits = RankLimits()
    limits.queryCacheEntries = 0
    return try Ranker(model: model, index: index, version: "fuzz-cosine", limits: limits)
}
nonisolated(unsafe) private let headsRanker: Ranker = Fixtures.require("a ranker with heads.json") {
    try Ranker(
        model: model, index: index, version: "fuzz-heads", heads: try RankingHeads.load(Fixtures.path("heads.json")))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = inputBytes(data, size)
    _ = try? Zrank_V1_WorkerReady(serializedBytes: body)
    _ = try? Zrank_V1_Error(serializedBytes: body)
    _ = try? Zrank_V1_RankResponse(serializedBytes: body)
    _ = try? Zrank_V1_InfoResponse(serializedBytes: body)
    let request: Zrank_V1_RankRequest
    do {
        request = try Zrank_V1_RankRequest(serializedBytes: body)
    } catch {
        return 0  // the worker answers INVALID_REQUEST
    }
    // The worker's own mapping (WorkerService.prepare).
    let query = RankQuery(request)
    for (ranker, batch) in [(cosineRanker, [query]), (headsRanker, [query, query])] {
        for result in ranker.rank(batch: batch) {
            switch result {
            case .success(let outcome):
                let ids = outcome.items.map(\.id)
                precondition(Set(ids).count == ids.count, "an item ranked twice")
            case .failure(let error):
                _ = error.description
            }
        }
    }
    return 0
}
