import Crypto
import Foundation
import Model
import Tokenizer

/// One catalog line: `{"id": "...", "title": "...", "text": "..."?}` plus optional fields the ranking heads use.
public struct CatalogItem: Sendable, Equatable {
    public var id: String
    public var title: String
    public var text: String?
    /// Optional numeric priors (standardised at training time).
    public var popularity: Double?
    public var price: Double?

    public init(id: String, title: String, text: String? = nil, popularity: Double? = nil, price: Double? = nil) {
        self.id = id
        self.title = title
        self.text = text
        self.popularity = popularity
        self.price = price
    }

    /// The string that is indexed: the title, then a space and the text when present.
    public var indexedText: String { text.map { "\(title) \($0)" } ?? title }
}

/// Builds `*.zri` indexes from JSON-lines catalogs with the int8 encoder.
public enum CatalogIndexBuilder {
    /// Reads and validates a catalog file.
    /// - Throws: `IndexError` naming the first bad line (invalid JSON, missing id/title, id over 128 bytes,
    ///   duplicated id) or an empty catalog.
    public static func readCatalog(_ path: String, maxIDBytes: Int = 128) throws(IndexError) -> (items: [CatalogItem], hash: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IndexError("\(path): cannot read catalog")
        }
        let hash = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        var items: [CatalogItem] = []
        var seen = Set<ExactID>()
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard String(validating: line, as: UTF8.self) != nil else {
                throw IndexError("\(path): line \(lineNumber): invalid UTF-8")
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw IndexError("\(path): line \(lineNumber): not a JSON object")
            }
            guard let id = object["id"] as? String, !id.isEmpty else {
                throw IndexError("\(path): line \(lineNumber): missing string \"id\"")
            }
            guard id.utf8.count <= maxIDBytes else {
                throw IndexError("\(path): line \(lineNumber): id of \(id.utf8.count) bytes exceeds \(maxIDBytes)")
            }
            guard let title = object["title"] as? String else {
                throw IndexError("\(path): line \(lineNumber): missing string \"title\"")
            }
            guard seen.insert(ExactID(id: id)).inserted else {
                throw IndexError("\(path): line \(lineNumber): duplicated id \"\(id)\"")
            }
            func number(_ key: String) throws(IndexError) -> Double? {
                guard let v = object[key], !(v is NSNull) else { return nil }
                guard let n = (v as? Double) ?? (v as? Int).map(Double.init), n.isFinite else {
                    throw IndexError("\(path): line \(lineNumber): \"\(key)\" must be a number")
                }
                return n
            }
            items.append(CatalogItem(
                id: id, title: title, text: object["text"] as? String, popularity: try number("popularity"),
                price: try number("price")))
        }
        guard !items.isEmpty else { throw IndexError("\(path): the catalog has no items") }
        return (items, hash)
    }

    /// Encodes every item and writes the index.
    /// - Parameters:
    ///   - threads: encoder threads, each with its own single-threaded encoder over the shared mmapped model; batches
    ///     are handed out in order, and each item's vector is the same whatever the thread count.
    ///   - progress: called after each batch with (items done, total), one call at a time, from any thread.
    /// - Returns: the number of items and the hex SHA-256 of the catalog file.
    public static func build(
        model: ModelFile, catalog: String, output: String, batch: Int = 64, maxLength: Int = 128, threads: Int = 1,
        progress: @Sendable (Int, Int) -> Void = { _, _ in }
    ) throws -> (count: Int, catalogHash: String) {
        let (items, hash) = try readCatalog(catalog)
        let tokenizer = try model.makeTokenizer()
        let batch = max(1, batch)
        let batchCount = (items.count + batch - 1) / batch
        // Thread t uses only encoders[t]; each batch writes only its own rows of `vectors`.
        nonisolated(unsafe) let encoders = try (0..<max(1, min(threads, batchCount))).map { _ in try Encoder(model: model) }
        let dim = encoders[0].dimension
        var vectors = [Float](repeating: 0, count: items.count * dim)
        let length = min(maxLength, model.config.maxPositions)
        let work = BatchQueue(batches: batchCount)
        // The threads are joined before `build` returns, so `progress` does not outlive the call.
        withoutActuallyEscaping(progress) { progress in vectors.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let base = buffer.baseAddress!
            runOnThreads(encoders.count) { t in
                while let b = work.next() {
                    let start = b * batch
                    let end = min(start + batch, items.count)
                    let encodings = items[start..<end].map { tokenizer.encode($0.indexedText, maxLength: length) }
                    do {
                        try encoders[t].embed(encodings, into: base + start * dim)
                    } catch {
                        work.fail(error)
                        return
                    }
                    work.finished(end - start) { progress($0, items.count) }
                }
            }
        } }
        if let error = work.error { throw error }
        let facts = items.map {
            ItemFacts(popularity: $0.popularity, price: $0.price, titlePieces: wordPieces(tokenizer, $0.title))
        }
        try CatalogIndex.write(
            to: output, ids: items.map(\.id), vectors: vectors, dimension: dim, model: model, catalogHash: hash, facts: facts)
        return (items.count, hash)
    }
}

/// The distinct word-piece ids of a text (no special tokens), ascending: the lexical feature's unit.
public func wordPieces(_ tokenizer: WordPieceTokenizer, _ text: String, maxLength: Int = 128) -> [UInt32] {
    wordPieces(tokenizer, encoding: tokenizer.encode(text, maxLength: maxLength))
}

/// The same from an encoding already made (the query's, on the ranking path).
public func wordPieces(_ tokenizer: WordPieceTokenizer, encoding: TokenizerEncoding) -> [UInt32] {
    let special: Set<Int32> = [tokenizer.clsID, tokenizer.sepID, tokenizer.padID]
    return Array(Set(encoding.inputIDs.filter { !special.contains($0) }.map { UInt32($0) })).sorted()
}

/// Runs `body(0)` on the calling thread and `body(1)`…`body(count - 1)` on threads of their own, and returns when all
/// have exited: one dedicated thread per encoder, whatever Dispatch's pool is doing. The threads are joined
/// (`pthread_join`), so nothing of `body` is still held by a thread when this returns — callers may pass a closure
/// made with `withoutActuallyEscaping` (a semaphore signalled from inside the thread would let the thread keep its
/// closure a moment longer, which the runtime's escape check traps on).
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
    var threads: [pthread_t] = []
    for t in 1..<max(1, count) {
        let job = Unmanaged.passRetained(Job { body(t) })
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 8 << 20)
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            // Released here, before the thread exits and before pthread_join returns.
            Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, job.toOpaque())
        pthread_attr_destroy(&attributes)
        if rc == 0 {
            threads.append(thread)
        } else {
            job.takeRetainedValue().run()  // no thread to be had: do its share here
        }
    }
    body(0)
    for thread in threads { pthread_join(thread, nil) }
}

/// Batches handed out to encoder threads in order, the count of items done, and the first error (which stops the
/// other threads at their next batch).
private final class BatchQueue: @unchecked Sendable {
    private let lock = NSLock()
    private let batches: Int
    private var nextBatch = 0
    private var done = 0
    private(set) var error: Error?

    init(batches: Int) { self.batches = batches }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard error == nil, nextBatch < batches else { return nil }
        nextBatch += 1
        return nextBatch - 1
    }

    /// Adds `items` to the done count and reports the new count, under the lock (one report at a time, in order).
    func finished(_ items: Int, report: (Int) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        done += items
        report(done)
    }

    func fail(_ error: Error) {
        lock.lock()
        defer { lock.unlock() }
        if self.error == nil { self.error = error }
    }
}
