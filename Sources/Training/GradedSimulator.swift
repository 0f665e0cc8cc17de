import Foundation

/// Click logs from a graded relevance truth (0–3) that a frozen bi-encoder gets wrong in the ways real shops see
/// (`zrank simulate-log --graded`). Nothing here looks at embeddings.
///
/// **Queries.** A pool of queries, most generated from a catalog item (its product noun plus some of its attributes:
/// colour, material, size, brand, style, feature such as "set of 2" or "with storage"), the rest real WANDS queries
/// whose attributes are read from the same vocabularies (the catalog's own colours, materials, sizes, brands, styles
/// and features).
///
/// **Grades** of an item for a query of product class C:
/// - 3, exact: the item is a C and matches every attribute the query names;
/// - 2, substitute: a C with exactly one named attribute wrong (a grey sofa for "navy blue sofa", a queen bed for
///   "king bed");
/// - 1, partial: a C with two or more named attributes wrong, or a related product (another category sharing C's
///   head noun that is not an accessory: "patio bar stools" for "bar stools");
/// - 0, irrelevant: accessories and parts of C ("bed accessories", "chair accessories", "vanity bases", "lighting
///   shades": the cover for a king bed is not a king bed, though it shares every word), and everything else.
///
/// What cosine gets wrong on it: accessories share the query's words; an attribute mismatch changes one word of a
/// title, so near-duplicate titles (same brand, noun and feature, another colour) sit at nearly the same cosine with
/// different grades.
///
/// **The logged ranking** (what a production system showed): the items with the most query words in their title and
/// category, topped up with random items of class C and random others, ordered by that word overlap plus noise, so
/// the same query is shown in different orders across sessions.
///
/// **Clicks and dwell.** Position-based model: P(click) = examination(position) · attraction(grade), examination
/// (1/position)^0.7, attraction 0.02 / 0.10 / 0.30 / 0.65 for grades 0–3; a click's dwell time is log-normal with
/// median 3 / 7 / 16 / 30 s by grade (σ 0.6).
public struct GradedSimulator: Sendable {
    /// A catalog item's attributes, as the truth reads them.
    public struct Item: Sendable {
        public var id: String
        public var title: String
        public var category: String
        public var attributes: [Attribute: String]
        /// Lower-cased words of the title and the category (the logged ranker's view).
        var words: Set<String>
    }

    /// The attributes a query can name.
    public enum Attribute: String, CaseIterable, Sendable, Codable {
        case color, material, size, brand, style, feature
    }

    /// A query with the product class and the attributes it names.
    public struct Query: Sendable {
        public var text: String
        public var cls: String
        public var attributes: [Attribute: String]

        public init(text: String, cls: String, attributes: [Attribute: String]) {
            self.text = text
            self.cls = cls
            self.attributes = attributes
        }
    }

    public struct Options: Sendable {
        public var sessions = 3000
        public var seed: UInt64 = 1
        /// Distinct queries in the pool sessions draw from.
        public var queryPool = 600
        /// Share of the pool that is generated from catalog items (the rest: real queries with a known class).
        public var generatedShare = 0.7
        /// Items shown per session.
        public var shown = 20

        public init() {}
    }

    /// One graded (query, item) pair that some session showed.
    public struct Judgement: Codable, Sendable, Equatable {
        public var query: String
        public var item: String
        public var grade: Int
    }

    public static let attraction = [0.02, 0.10, 0.30, 0.65]
    public static let dwellMedianSeconds = [3.0, 7.0, 16.0, 30.0]
    /// Words that make a category an accessory or part of the product its other words name.
    static let accessoryWords: Set<String> = [
        "accessories", "accessory", "covers", "cover", "hardware", "knobs", "pulls", "shades", "bases", "hooks",
        "toppers", "protectors", "pads", "cushions", "bulbs", "mats", "stands", "holders",
    ]

    public let items: [Item]
    private let realQueries: [(text: String, cls: String)]
    private let byCategory: [String: [Int]]
    private let vocabulary: [Attribute: [String]]

    /// Reads the catalog (JSON lines with id, title, category, and the attribute fields color, material, size, brand,
    /// style, feature; the demo catalog has them) and the real queries (WANDS `query.csv`).
    public init(catalog: String, queries queryFile: String) throws(TrainingError) {
        guard let data = FileManager.default.contents(atPath: catalog) else { throw TrainingError("\(catalog): cannot read") }
        var items: [Item] = []
        var vocabulary: [Attribute: Set<String>] = [:]
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw TrainingError("\(catalog): line \(n + 1): not a JSON object")
            }
            guard let id = o["id"] as? String, let title = o["title"] as? String, let category = o["category"] as? String else {
                throw TrainingError("\(catalog): line \(n + 1): the graded simulator needs id, title and category")
            }
            var attributes: [Attribute: String] = [:]
            for a in Attribute.allCases {
                if let v = o[a.rawValue] as? String, !v.isEmpty {
                    attributes[a] = v.lowercased()
                    vocabulary[a, default: []].insert(v.lowercased())
                }
            }
            guard attributes[.color] != nil || attributes[.material] != nil else {
                throw TrainingError("\(catalog): line \(n + 1): no color or material: the graded simulator needs the demo catalog's attribute fields")
            }
            items.append(Item(id: id, title: title, category: category, attributes: attributes,
                              words: Self.words(title + " " + category)))
        }
        guard !items.isEmpty else { throw TrainingError("\(catalog): no items") }
        if let duplicate = Dictionary(grouping: items, by: \.id).first(where: { $0.value.count > 1 })?.key {
            throw TrainingError("\(catalog): duplicated id \"\(duplicate)\"")
        }
        self.items = items
        self.byCategory = Dictionary(grouping: items.indices, by: { items[$0].category })
        self.vocabulary = vocabulary.mapValues { $0.sorted { $0.count > $1.count || ($0.count == $1.count && $0 < $1) } }
        self.realQueries = try LogSimulator.readQueries(queryFile, classes: Set(items.map(\.category)))
    }

    static func words(_ text: String) -> Set<String> {
        Set(text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init))
    }

    /// A category's words, singular (a trailing "s" dropped), lower-cased.
    static func singularWords(_ category: String) -> [String] {
        category.lowercased().split { !$0.isLetter }.map { w in
            if w.hasSuffix("ies") { return String(w.dropLast(3)) + "y" }
            if w.hasSuffix("ches") || w.hasSuffix("shes") || w.hasSuffix("sses") { return String(w.dropLast(2)) }
            if w.hasSuffix("s") && !w.hasSuffix("ss") { return String(w.dropLast()) }
            return String(w)
        }.filter { !["and", "or", "the", "of"].contains($0) }
    }

    /// The product noun of a category as a query says it ("Accent Chairs" → "accent chair").
    static func noun(_ category: String) -> String { singularWords(category).joined(separator: " ") }

    static func isAccessory(_ category: String) -> Bool {
        !accessoryWords.isDisjoint(with: category.lowercased().split { !$0.isLetter }.map(String.init))
    }

    /// The grade of `item` for `query` (see the type's documentation).
    public func grade(_ query: Query, _ item: Item) -> Int {
        if item.category == query.cls {
            let wrong = query.attributes.filter { item.attributes[$0.key] != $0.value }.count
            return wrong == 0 ? 3 : wrong == 1 ? 2 : 1
        }
        if Self.isAccessory(item.category) { return 0 }
        // A related product: shares the class's head noun ("stool" in "Bar Stools" and "Patio Bar Stools").
        guard let head = Self.singularWords(query.cls).last else { return 0 }
        return Self.singularWords(item.category).contains(head) ? 1 : 0
    }

    /// The attributes a real query names, read from the catalog's vocabularies (longest phrase first).
    func attributes(of text: String) -> [Attribute: String] {
        let padded = " " + text.lowercased().split { !$0.isLetter && !$0.isNumber }.joined(separator: " ") + " "
        var found: [Attribute: String] = [:]
        for a in Attribute.allCases {
            for v in vocabulary[a] ?? [] {
                let key = " " + v.split { !$0.isLetter && !$0.isNumber }.joined(separator: " ") + " "
                if padded.contains(key) { found[a] = v; break }
            }
        }
        return found
    }

    /// The query pool: generated queries (an item's noun and 1–3 of its attributes) and real ones.
    func queryPool(_ options: Options, rng: inout SplitMix64) -> [Query] {
        var pool: [Query] = []
        var seen = Set<String>()
        let generated = Int((Double(options.queryPool) * options.generatedShare).rounded())
        var attempts = 0
        while pool.count < generated && attempts < options.queryPool * 20 {
            attempts += 1
            let item = items[Int(rng.next() % UInt64(items.count))]
            guard !Self.isAccessory(item.category) else { continue }
            // Chances that a query names each attribute, then at least one.
            let chances: [(Attribute, Double)] = [(.color, 0.55), (.material, 0.35), (.size, 0.5), (.brand, 0.15), (.style, 0.2), (.feature, 0.15)]
            var named: [Attribute: String] = [:]
            for (a, p) in chances where item.attributes[a] != nil && rng.unit() < p { named[a] = item.attributes[a] }
            if named.isEmpty, let a = [Attribute.color, .material].first(where: { item.attributes[$0] != nil }) { named[a] = item.attributes[a] }
            let order: [Attribute] = [.brand, .style, .size, .color, .material]
            var parts = order.compactMap { named[$0] }
            parts.append(Self.noun(item.category))
            if let f = named[.feature] { parts.append(f) }
            let text = parts.joined(separator: " ")
            guard seen.insert(text).inserted else { continue }
            pool.append(Query(text: text, cls: item.category, attributes: named))
        }
        var real = realQueries
        rng.shuffle(&real)
        for q in real where pool.count < options.queryPool && seen.insert(q.text).inserted {
            pool.append(Query(text: q.text, cls: q.cls, attributes: attributes(of: q.text)))
        }
        return pool
    }

    /// Writes `options.sessions` sessions of impressions (the `train-heads` log format) to `out`; returns every
    /// shown (query, item) pair's grade, sorted.
    @discardableResult
    public func write(to out: String, options: Options) throws -> [Judgement] {
        var rng = SplitMix64(seed: options.seed)
        let pool = queryPool(options, rng: &rng)
        guard !pool.isEmpty else { throw TrainingError("no queries: neither generated nor real ones match the catalog") }
        // The logged ranker's candidates per query: word overlap with title and category.
        var overlap: [String: [(index: Int, score: Double)]] = [:]
        var lines: [String] = []
        var judged: [String: Judgement] = [:]
        lines.reserveCapacity(options.sessions * options.shown)
        for _ in 0..<options.sessions {
            let query = pool[Int(rng.next() % UInt64(pool.count))]
            let queryWords = Self.words(query.text)
            func lexical(_ i: Int) -> Double { Double(queryWords.intersection(items[i].words).count) }
            if overlap[query.text] == nil {
                overlap[query.text] = items.indices.map { ($0, lexical($0)) }
                    .filter { $0.1 > 0 }.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
            }
            let ranked = overlap[query.text]!
            let shownCount = min(options.shown, items.count)
            var shown: [Int: Double] = [:]
            // 60% of the list drawn from the best lexical matches (the top 3x the list), up to 4 of the class, the rest random.
            let top = Array(ranked.prefix(shownCount * 3))
            for c in rng.sample(top, min(top.count, shownCount * 6 / 10)) { shown[c.index] = c.score }
            for i in rng.sample(byCategory[query.cls] ?? [], min(byCategory[query.cls]?.count ?? 0, 4)) where shown.count < shownCount {
                shown[i] = lexical(i)
            }
            while shown.count < shownCount {
                let i = Int(rng.next() % UInt64(items.count))
                if shown[i] == nil { shown[i] = lexical(i) }
            }
            // Noise drawn in item order, so a seed gives the same log in every process.
            let order = shown.sorted { $0.key < $1.key }.map { ($0.key, $0.value + rng.normal()) }.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
            // One user id per session: the truth has no tastes, and a (user, query) pair then names one impression
            // list (the grouping train-heads and fine-tune use).
            let user = "s\(lines.count / max(1, options.shown) + 1)"
            for (p, (i, _)) in order.enumerated() {
                let item = items[i]
                let g = grade(query, item)
                judged[query.text + "\u{0}" + item.id] = Judgement(query: query.text, item: item.id, grade: g)
                let position = p + 1
                let clicked = rng.unit() < LogSimulator.examination(position) * Self.attraction[g]
                var line: [String: Any] = ["query": query.text, "item": item.id, "user": ["id": user], "position": position, "clicked": clicked]
                if clicked {
                    line["dwell_s"] = (Self.dwellMedianSeconds[g] * exp(0.6 * rng.normal()) * 10).rounded() / 10
                }
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                lines.append(String(decoding: data, as: UTF8.self))
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        return judged.values.sorted { ($0.query, $0.item) < ($1.query, $1.item) }
    }

    /// Writes judgements as JSON lines `{"query", "item", "grade"}`.
    public static func writeTruth(_ judgements: [Judgement], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var text = ""
        for j in judgements { text += String(decoding: try encoder.encode(j), as: UTF8.self) + "\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Reads judgements written by `writeTruth`: (query, item) → grade.
    public static func readTruth(_ path: String) throws(TrainingError) -> [String: [String: Int]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError("\(path): cannot read") }
        var truth: [String: [String: Int]] = [:]
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let j = try? JSONDecoder().decode(Judgement.self, from: Data(line)), (0...3).contains(j.grade) else {
                throw TrainingError("\(path): line \(n + 1): expected {\"query\", \"item\", \"grade\": 0-3}")
            }
            truth[j.query, default: [:]][j.item] = j.grade
        }
        return truth
    }
}
