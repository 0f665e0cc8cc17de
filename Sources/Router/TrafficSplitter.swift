/// The share of unpinned traffic each version gets, kept by deficit scheduling: a request goes to the version
/// furthest below its share among those with a free worker, so shares hold as closely as the worker count allows
/// (work-conserving: a version with no free worker does not hold traffic back).
package struct TrafficSplitter: Equatable {
    /// Normalised shares (empty: no split, any worker).
    package private(set) var shares: [String: Double] = [:]
    /// Unpinned requests dispatched per version since the split was set.
    private var dispatched: [String: Int] = [:]

    package init() {}

    package var isEmpty: Bool { shares.isEmpty }

    /// Sets the weights (normalised; zero weights dropped; all zero: no split).
    package mutating func set(_ weights: [String: Double]) {
        let positive = weights.filter { $0.value > 0 && $0.value.isFinite }
        let total = positive.values.reduce(0, +)
        shares = total > 0 ? positive.mapValues { $0 / total } : [:]
        dispatched = [:]
    }

    /// The LRU position to send the next unpinned request to: the first free worker of the version furthest below
    /// its share, among the split's versions that have one. `firstFree(version)` gives that version's first free
    /// worker in LRU order (nil: none); ties between versions go to the earlier position. Nil when no version in the
    /// split has a free worker. Runs on every dispatch with a split set, so it allocates nothing.
    package func pick(firstFree: (String) -> Int?) -> Int? {
        let total = dispatched.values.reduce(0, +) + 1
        var best: (position: Int, deficit: Double)?
        for (version, share) in shares {
            guard let position = firstFree(version) else { continue }
            let deficit = share * Double(total) - Double(dispatched[version, default: 0])
            if let b = best, deficit < b.deficit || (deficit == b.deficit && position > b.position) { continue }
            best = (position, deficit)
        }
        return best?.position
    }

    /// Counts an unpinned request sent to `version`.
    package mutating func record(_ version: String) {
        if !shares.isEmpty { dispatched[version, default: 0] += 1 }
    }
}
