import Dispatch
import Foundation
import Protocol
import SwiftProtobuf

/// How a shadow version's rankings agree with the live version's: the pure arithmetic, a value type.
public struct ShadowAgreement: Equatable, Sendable {
    /// Pairs compared.
    public private(set) var compared = 0
    private var overlapSum = 0.0
    private var correlationSum = 0.0
    private var correlationCount = 0

    public init() {}

    /// Mean share of the live top 10 that the shadow top 10 also holds (0-1).
    public var top10Overlap: Double { compared > 0 ? overlapSum / Double(compared) : 0 }
    /// Mean Spearman rank correlation over the items both top-10 lists hold (pairs sharing at least 2 items).
    public var rankCorrelation: Double { correlationCount > 0 ? correlationSum / Double(correlationCount) : 0 }

    /// Adds one pair of rankings (best first).
    public mutating func add(live: [String], shadow: [String]) {
        let a = Array(live.prefix(10))
        let b = Array(shadow.prefix(10))
        compared += 1
        let common = Set(a).intersection(b)
        let denominator = max(a.count, b.count)
        overlapSum += denominator > 0 ? Double(common.count) / Double(denominator) : 1
        guard common.count >= 2 else { return }
        let ra = a.filter(common.contains)
        let rb = Dictionary(b.filter(common.contains).enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let n = Double(common.count)
        var d2 = 0.0
        for (i, id) in ra.enumerated() {
            let d = Double(i - (rb[id] ?? i))
            d2 += d * d
        }
        correlationSum += 1 - 6 * d2 / (n * (n * n - 1))
        correlationCount += 1
    }
}

/// A live answer and its shadow copy's answer, as the router forwards them: raw RANK_RESPONSE bodies, decoded only
/// by the comparator, off the routing path.
public struct ShadowPair: Equatable, Sendable {
    /// Which shadow run the pair belongs to (a pair from a stopped run is ignored).
    public var generation: UInt64
    public var live: [UInt8]
    public var shadow: [UInt8]

    public init(generation: UInt64, live: [UInt8], shadow: [UInt8]) {
        self.generation = generation
        self.live = live
        self.shadow = shadow
    }
}

/// Compares shadow pairs on its own serial queue, so decoding rankings never delays routing. Pairs beyond
/// `maxPending` waiting are dropped (counted); figures are read under a lock.
public final class ShadowComparator: @unchecked Sendable {
    private let lock = NSLock()
    private let queue = DispatchQueue(label: "zrank.router.shadow")
    private var generation: UInt64 = 0
    private var agreement = ShadowAgreement()
    private var pending = 0
    private var dropped = 0
    /// Most pairs waiting to be compared.
    public let maxPending: Int

    public init(maxPending: Int = 1024) { self.maxPending = maxPending }

    /// Starts a new run (the router's shadow generation): figures start from zero.
    public func reset(generation: UInt64) {
        lock.lock()
        self.generation = generation
        agreement = ShadowAgreement()
        lock.unlock()
    }

    /// Queues a pair for comparison.
    public func submit(_ pair: ShadowPair) {
        lock.lock()
        guard pending < maxPending else {
            dropped += 1
            lock.unlock()
            return
        }
        pending += 1
        lock.unlock()
        queue.async { [self] in
            compare(pair)
            lock.lock()
            pending -= 1
            lock.unlock()
        }
    }

    /// Compares a pair now (the queue's work; tests call it directly).
    public func compare(_ pair: ShadowPair) {
        guard let live = Self.rankedIDs(pair.live), let shadow = Self.rankedIDs(pair.shadow) else { return }
        lock.lock()
        if pair.generation == generation { agreement.add(live: live, shadow: shadow) }
        lock.unlock()
    }

    /// Waits until every queued pair is compared (tests, shutdown).
    public func flush() { queue.sync {} }

    /// The figures of the current run.
    public var figures: ShadowAgreement {
        lock.lock()
        defer { lock.unlock() }
        return agreement
    }

    private static func rankedIDs(_ body: [UInt8]) -> [String]? {
        (try? Zrank_V1_RankResponse(serializedBytes: body)).map { $0.items.map(\.id) }
    }
}
