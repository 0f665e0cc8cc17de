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

    /// The candidate to send the next unpinned request to: the one whose version is furthest below its share.
    /// `candidates` are free workers in LRU order (their position and version); versions outside the split are
    /// skipped. Nil when no candidate's version is in the split.
    package func pick(_ candidates: [(position: Int, version: String)]) -> Int? {
        let total = dispatched.values.reduce(0, +) + 1
        var best: (position: Int, deficit: Double)?
        for c in candidates {
            guard let share = shares[c.version] else { continue }
            let deficit = share * Double(total) - Double(dispatched[c.version, default: 0])
            if best == nil || deficit > best!.deficit { best = (c.position, deficit) }
        }
        return best?.position
    }

    /// Counts an unpinned request sent to `version`.
    package mutating func record(_ version: String) {
        if !shares.isEmpty { dispatched[version, default: 0] += 1 }
    }
}
