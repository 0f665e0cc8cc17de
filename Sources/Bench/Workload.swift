import Foundation

/// Why a workload could not be built (bad options or files); the CLI exits 2 with this message.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What requests to send: queries (optionally Zipf-skewed), candidate lists drawn without replacement from the
/// catalog ids, optional user histories.
public struct Workload {
    public let queries: [String]
    public let itemIDs: [String]
    public let candidates: Int
    public let topK: Int
    public let users: Int
    private let zipfCDF: [Double]?
    private var rng: SeededRandom
    private var scratch: [Int]

    public init(queries: [String], itemIDs: [String], candidates: Int, topK: Int, zipf: Double, users: Int, seed: UInt64) throws {
        guard !queries.isEmpty else { throw BenchError("the query workload is empty") }
        guard candidates >= 0 else { throw BenchError("--candidates must not be negative") }
        guard candidates <= itemIDs.count else {
            throw BenchError("--candidates \(candidates) exceeds the \(itemIDs.count) distinct catalog ids available")
        }
        guard zipf >= 0 else { throw BenchError("--zipf must not be negative") }
        self.queries = queries
        self.itemIDs = itemIDs
        self.candidates = candidates
        self.topK = topK
        self.users = users
        if zipf > 0 {
            var weights = (1...queries.count).map { 1 / pow(Double($0), zipf) }
            let total = weights.reduce(0, +)
            var acc = 0.0
            for i in weights.indices {
                acc += weights[i] / total
                weights[i] = acc
            }
            zipfCDF = weights
        } else {
            zipfCDF = nil
        }
        rng = SeededRandom(seed: seed)
        scratch = Array(0..<itemIDs.count)
    }

    /// The next request: query, candidate ids and (when users are simulated) a user with recent items.
    public mutating func next() -> (query: String, candidates: [String], user: (id: String, recent: [String])?) {
        let q: String
        if let cdf = zipfCDF {
            let u = Double.random(in: 0..<1, using: &rng)
            var lo = 0
            var hi = cdf.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
            }
            q = queries[lo]
        } else {
            q = queries[Int.random(in: 0..<queries.count, using: &rng)]
        }
        // Partial Fisher-Yates: `candidates` distinct ids.
        var picked: [String] = []
        picked.reserveCapacity(candidates)
        for i in 0..<candidates {
            let j = Int.random(in: i..<scratch.count, using: &rng)
            scratch.swapAt(i, j)
            picked.append(itemIDs[scratch[i]])
        }
        var user: (String, [String])?
        if users > 0 {
            let u = Int.random(in: 0..<users, using: &rng)
            let recent = (0..<min(5, itemIDs.count)).map { _ in itemIDs[Int.random(in: 0..<itemIDs.count, using: &rng)] }
            user = ("user-\(u)", recent)
        }
        return (q, picked, user)
    }

    /// Reads queries: WANDS `query.csv` (tab-separated with a `query` column), JSON lines with a `query` or `text`
    /// field, or plain text (one query per line).
    public static func loadQueries(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw BenchError("cannot read the query workload \(path)")
        }
        var lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        guard let first = lines.first else { throw BenchError("\(path) holds no queries") }
        var out: [String] = []
        if path.hasSuffix(".csv") || first.contains("\t") {
            let columns = first.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard let qi = columns.firstIndex(of: "query") else { throw BenchError("\(path): no \"query\" column") }
            lines.removeFirst()
            for line in lines {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard qi < fields.count else { continue }
                var q = fields[qi]
                if q.hasPrefix("\"") && q.hasSuffix("\"") && q.count >= 2 {
                    q = String(q.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
                }
                if !q.trimmingCharacters(in: .whitespaces).isEmpty { out.append(q) }
            }
        } else if first.hasPrefix("{") {
            for (n, line) in lines.enumerated() {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let q = (o["query"] ?? o["text"]) as? String
                else { throw BenchError("\(path): line \(n + 1) is not {\"query\": ...}") }
                out.append(q)
            }
        } else {
            out = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        }
        guard !out.isEmpty else { throw BenchError("\(path) holds no queries") }
        return out
    }

    /// Distinct item ids of a catalog (JSON lines with an "id").
    public static func loadCatalogIDs(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read the catalog \(path)") }
        var seen = Set<String>()
        var ids: [String] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let id = o["id"] as? String else {
                throw BenchError("\(path): line \(n + 1) has no string \"id\"")
            }
            if seen.insert(id).inserted { ids.append(id) }
        }
        return ids
    }
}

/// SplitMix64, seeded, so runs are repeatable.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
