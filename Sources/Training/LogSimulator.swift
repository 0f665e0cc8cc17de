import Foundation

/// Writes realistic impression logs from a ground truth the ranking model does not see: item relevance from the
/// catalog's own structure (the item's category against the query's product class), user taste (preferred colours,
/// styles and price band; strong for some users, none for others), item popularity, position-biased examination,
/// clicks and dwell times drawn from those. Nothing here looks at embeddings, so a test can ask whether training
/// recovers the truth.
public struct LogSimulator {
    /// A catalog item with the attributes the truth uses.
    public struct Item: Codable, Sendable {
        public var id: String
        public var category: String
        public var brand: String
        public var color: String
        public var style: String
        public var price: Double
        public var popularity: Double
    }

    /// One user's hidden taste.
    public struct Taste: Codable, Sendable, Equatable {
        public var strong: Bool
        public var brands: [String]
        public var colors: [String]
        public var styles: [String]
        /// 0 cheap, 1 mid, 2 expensive (terciles of the catalog's prices).
        public var priceBand: Int

        enum CodingKeys: String, CodingKey {
            case strong, brands, colors, styles
            case priceBand = "price_band"
        }
    }

    public struct Options: Sendable {
        public var users = 200
        public var sessions = 2000
        public var seed: UInt64 = 1
        /// Impressions per session (the logged ranking's length).
        public var shown = 20
        /// Share of users with strong taste.
        public var strongShare = 0.5
        /// Recent items per user (their history: what the request's user context carries).
        public var history = 12

        public init() {}
    }

    public let items: [Item]
    /// (query text, product class), only classes the catalog has.
    public let queries: [(text: String, cls: String)]
    private let byCategory: [String: [Int]]
    /// The truth without users yet: query classes, items, price bands, popularity statistics.
    private let truthModel: SimulationTruth

    /// Reads the catalog (`{"id", "category", "color", "style", "price", "popularity"}` lines; the project's demo
    /// catalog) and the queries (WANDS `query.csv`: tab-separated with `query` and `query_class` columns).
    public init(catalog: String, queries queryFile: String) throws(TrainingError) {
        guard let data = FileManager.default.contents(atPath: catalog) else { throw TrainingError("\(catalog): cannot read") }
        var items: [Item] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw TrainingError("\(catalog): line \(n + 1): not a JSON object")
            }
            guard let id = o["id"] as? String, let category = o["category"] as? String, let brand = o["brand"] as? String,
                let color = o["color"] as? String,
                let style = o["style"] as? String, let price = (o["price"] as? Double) ?? (o["price"] as? Int).map(Double.init),
                let popularity = (o["popularity"] as? Double) ?? (o["popularity"] as? Int).map(Double.init)
            else {
                throw TrainingError("\(catalog): line \(n + 1): the simulator needs id, category, brand, color, style, price and popularity (the demo catalog has them)")
            }
            items.append(Item(id: id, category: category, brand: brand, color: color, style: style, price: price, popularity: popularity))
        }
        guard !items.isEmpty else { throw TrainingError("\(catalog): no items") }
        if let duplicate = Dictionary(grouping: items, by: \.id).first(where: { $0.value.count > 1 })?.key {
            throw TrainingError("\(catalog): duplicated id \"\(duplicate)\"")
        }
        let qs = try Self.readQueries(queryFile, classes: Set(items.map(\.category)))
        self.items = items
        self.queries = qs
        byCategory = Dictionary(grouping: items.indices, by: { items[$0].category })
        let prices = items.map(\.price).sorted()
        // Popularity is heavy-tailed (Pareto): the truth uses its logarithm.
        let logs = items.map { log1p(max(0, $0.popularity)) }
        let m = logs.reduce(0, +) / Double(items.count)
        truthModel = SimulationTruth(
            tastes: [:], queryClasses: Dictionary(qs.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a }),
            items: Dictionary(uniqueKeysWithValues: items.map { ($0.id, $0) }),
            priceCuts: [prices[prices.count / 3], prices[2 * prices.count / 3]], popularityMean: m,
            popularityStd: max(1e-9, (logs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(items.count)).squareRoot()))
    }

    /// The queries of a WANDS `query.csv` (tab-separated, `query` and `query_class` columns) whose class is in
    /// `classes`.
    static func readQueries(_ queryFile: String, classes: Set<String>) throws(TrainingError) -> [(text: String, cls: String)] {
        guard let text = try? String(contentsOfFile: queryFile, encoding: .utf8) else { throw TrainingError("\(queryFile): cannot read") }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first?.split(separator: "\t", omittingEmptySubsequences: false).map(String.init),
            let qi = header.firstIndex(of: "query"), let ci = header.firstIndex(of: "query_class")
        else {
            throw TrainingError("\(queryFile): expected a tab-separated header with \"query\" and \"query_class\" columns")
        }
        lines.removeFirst()
        var qs: [(text: String, cls: String)] = []
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count > max(qi, ci), !f[qi].isEmpty, classes.contains(f[ci]) else { continue }
            qs.append((unquoted(f[qi]), f[ci]))
        }
        guard !qs.isEmpty else { throw TrainingError("\(queryFile): no query whose class the catalog has") }
        return qs
    }

    /// A CSV field without its quotes (`"a ""b"""` → `a "b"`).
    static func unquoted(_ field: String) -> String {
        guard field.count >= 2, field.hasPrefix("\""), field.hasSuffix("\"") else { return field }
        return String(field.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
    }

    /// Probability that position `k` (1-based) is looked at.
    public static func examination(_ k: Int) -> Double { pow(1 / Double(k), 0.7) }

    /// Writes `options.sessions` sessions of impressions as JSON lines to `out`; returns the truth (users' tastes,
    /// query classes, item attributes).
    @discardableResult
    public func write(to out: String, options: Options) throws -> SimulationTruth {
        var truth = truthModel
        var rng = SplitMix64(seed: options.seed)
        let brands = Array(Set(items.map(\.brand))).sorted()
        let colors = Array(Set(items.map(\.color))).sorted()
        let styles = Array(Set(items.map(\.style))).sorted()
        var histories: [String: [String]] = [:]
        for u in 0..<options.users {
            let id = "u\(u + 1)"
            let taste = Taste(
                strong: rng.unit() < options.strongShare, brands: rng.sample(brands, 2).sorted(), colors: rng.sample(colors, 3).sorted(), styles: rng.sample(styles, 2).sorted(),
                priceBand: Int(rng.next() % 3))
            truth.tastes[id] = taste
            // History: items the user engaged with before, drawn by how much they match the user's taste (any
            // category), so a strong taste shows in what the items share.
            var recent: [String] = []
            for _ in 0..<options.history {
                let pool = (0..<200).map { _ in items[Int(rng.next() % UInt64(items.count))] }
                let weights = pool.map { exp((taste.strong ? 3.0 : 0) * truth.tasteScore(taste, $0)) }
                recent.append(pool[rng.weighted(weights)].id)
            }
            histories[id] = recent
        }
        var lines: [String] = []
        lines.reserveCapacity(options.sessions * options.shown)
        for _ in 0..<options.sessions {
            let user = "u\(Int(rng.next() % UInt64(options.users)) + 1)"
            let taste = truth.tastes[user]!
            let (query, cls) = queries[Int(rng.next() % UInt64(queries.count))]
            // What the logged ranker showed: some items of the class, the rest from elsewhere, in random order.
            let inClass = rng.sample(byCategory[cls] ?? [], min(8, byCategory[cls]?.count ?? 0))
            var shown = Set(inClass)
            while shown.count < min(options.shown, items.count) { shown.insert(Int(rng.next() % UInt64(items.count))) }
            var order = Array(shown).sorted()
            rng.shuffle(&order)
            for (p, i) in order.enumerated() {
                let item = items[i]
                let position = p + 1
                let clicked = rng.unit() < Self.examination(position) * truth.attraction(item, cls: cls, taste: taste)
                var line: [String: Any] = [
                    "query": query, "item": item.id, "user": ["id": user, "recent": histories[user]!], "position": position,
                    "clicked": clicked,
                ]
                if clicked {
                    let relevant = item.category == cls ? 1.0 : 0.0
                    let mu = 2.0 + 1.0 * relevant + (taste.strong ? 0.35 * truth.tasteScore(taste, item) : 0)
                    line["dwell_s"] = ((exp(mu + 0.5 * rng.normal()) - 1) * 10).rounded() / 10
                }
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                lines.append(String(decoding: data, as: UTF8.self))
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        return truth
    }
}

/// The simulator's hidden truth, for evaluation only (`zrank simulate-log --truth FILE`): who likes what, each
/// query's product class, the items' attributes, and the click model built from them.
public struct SimulationTruth: Codable, Sendable {
    public var tastes: [String: LogSimulator.Taste]
    public var queryClasses: [String: String]
    public var items: [String: LogSimulator.Item]
    public var priceCuts: [Double]
    /// Mean and deviation of log(1 + popularity) over the catalog.
    public var popularityMean: Double
    public var popularityStd: Double

    enum CodingKeys: String, CodingKey {
        case tastes, items
        case queryClasses = "query_classes"
        case priceCuts = "price_cuts"
        case popularityMean = "popularity_mean"
        case popularityStd = "popularity_std"
    }

    /// 0 cheap, 1 mid, 2 expensive: `price` against the two tercile cuts (a decoded truth always has both).
    public func priceBand(_ price: Double) -> Int { price < priceCuts[0] ? 0 : price < priceCuts[1] ? 1 : 2 }

    /// How well an item matches a user's taste: brand 1.2, colour 1.0, style 0.8, price band 0.5.
    public func tasteScore(_ taste: LogSimulator.Taste, _ item: LogSimulator.Item) -> Double {
        (taste.brands.contains(item.brand) ? 1.2 : 0) + (taste.colors.contains(item.color) ? 1.0 : 0)
            + (taste.styles.contains(item.style) ? 0.8 : 0) + (priceBand(item.price) == taste.priceBand ? 0.5 : 0)
    }

    /// The click probability of an item once examined, for a user and a query's class.
    public func attraction(_ item: LogSimulator.Item, cls: String, taste: LogSimulator.Taste) -> Double {
        let relevant = item.category == cls ? 1.0 : 0.0
        let logit = -3.0 + 3.2 * relevant + (taste.strong ? 1.3 * tasteScore(taste, item) - 1.0 : 0)
            + 0.35 * (log1p(max(0, item.popularity)) - popularityMean) / popularityStd
        return 1 / (1 + exp(-logit))
    }

    /// The true attraction of an impression (nil when the user, query or item is unknown to the truth).
    public func attraction(user: String?, query: String, item: String) -> Double? {
        guard let user, let taste = tastes[user], let cls = queryClasses[query], let it = items[item] else { return nil }
        return attraction(it, cls: cls, taste: taste)
    }
}

extension SimulationTruth {
    /// Decodes a truth file (`zrank simulate-log --truth`, read back by `zrank train-heads --truth`), refusing one the
    /// click model cannot use: `price_cuts` must hold the two tercile cuts (`priceBand` reads both; a shorter list
    /// trapped there: found with the FuzzHeads fuzz target, fuzz/README.md), the popularity deviation must be positive.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tastes = try c.decode([String: LogSimulator.Taste].self, forKey: .tastes)
        queryClasses = try c.decode([String: String].self, forKey: .queryClasses)
        items = try c.decode([String: LogSimulator.Item].self, forKey: .items)
        priceCuts = try c.decode([Double].self, forKey: .priceCuts)
        popularityMean = try c.decode(Double.self, forKey: .popularityMean)
        popularityStd = try c.decode(Double.self, forKey: .popularityStd)
        guard priceCuts.count == 2 else {
            throw DecodingError.dataCorruptedError(
                forKey: .priceCuts, in: c, debugDescription: "expected the two price tercile cuts, found \(priceCuts.count)")
        }
        guard popularityStd > 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .popularityStd, in: c, debugDescription: "the popularity deviation must be positive")
        }
    }
}

/// SplitMix64: small, fast, deterministic for a seed.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func normal() -> Double {
        let u = max(unit(), 1e-12)
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * unit())
    }

    mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(next() % UInt64(i + 1))) }
    }

    mutating func sample<T>(_ a: [T], _ k: Int) -> [T] {
        var copy = a
        shuffle(&copy)
        return Array(copy.prefix(k))
    }

    mutating func weighted(_ w: [Double]) -> Int {
        let total = w.reduce(0, +)
        var r = unit() * total
        for (i, x) in w.enumerated() {
            r -= x
            if r <= 0 { return i }
        }
        return w.count - 1
    }
}
