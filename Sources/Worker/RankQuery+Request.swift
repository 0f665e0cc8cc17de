import Protocol
import Ranking

extension RankQuery {
    /// The query a RANK_REQUEST body asks for: the mapping from the wire message the worker (and the fuzz target that
    /// drives the worker's path) uses. Unset `alpha`/`beta` stay nil, so the model version's defaults apply.
    public init(_ request: Zrank_V1_RankRequest) {
        self.init(
            query: request.query, candidateIDs: request.candidateIds,
            inlineCandidates: request.inlineCandidates.map { (id: $0.id, text: $0.text) }, topK: Int(request.topK),
            explain: request.explain, recentItemIDs: request.user.recentItemIds,
            alpha: request.hasAlpha ? request.alpha : nil, beta: request.hasBeta ? request.beta : nil)
    }
}
