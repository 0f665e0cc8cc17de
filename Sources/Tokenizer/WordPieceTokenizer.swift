/// The ids of one encoded text or text pair, ready for a BERT-style model (no padding).
public struct TokenizerEncoding: Sendable, Equatable {
    /// Token ids, starting with `[CLS]` and ending with `[SEP]`.
    public var inputIDs: [Int32]
    /// Segment ids: 0 for `[CLS]`, the first text and its `[SEP]`; 1 for the pair text and its `[SEP]`.
    public var tokenTypeIDs: [Int32]

    /// Creates an encoding from its two id sequences.
    public init(inputIDs: [Int32], tokenTypeIDs: [Int32]) {
        self.inputIDs = inputIDs
        self.tokenTypeIDs = tokenTypeIDs
    }
}

/// A BERT WordPiece tokenizer that reproduces Hugging Face `tokenizers` (BertNormalizer, BertPreTokenizer,
/// WordPiece, `[CLS] A [SEP] B [SEP]` template, longest-first truncation) id for id.
///
/// The special tokens `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` and `[MASK]` that are in the vocabulary are also
/// matched literally (case-sensitively) in the raw text before normalisation, as Hugging Face's added tokens are.
public struct WordPieceTokenizer: Sendable {
    /// The special tokens matched literally in the raw text, in the order they are looked up.
    private static let specialTokenNames = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    private struct SpecialToken: Sendable {
        var scalars: [Unicode.Scalar]
        var id: Int32
    }

    /// `vocabulary[i]` is the token with id `i`.
    public let vocabulary: [String]
    /// The normaliser settings.
    public var options: BertNormalizerOptions {
        self.normalizer.options
    }
    /// The id of `[CLS]`.
    public let clsID: Int32
    /// The id of `[SEP]`.
    public let sepID: Int32
    /// The id of `[PAD]` (0 when the vocabulary has no `[PAD]`).
    public let padID: Int32
    /// The id of `[UNK]`.
    public let unkID: Int32
    /// Words longer than this many Unicode scalars become a single `[UNK]`.
    public let maxInputCharsPerWord: Int

    private let normalizer: BertNormalizer
    private let preTokenizer = BertPreTokenizer()
    /// Tokens that may start a word.
    private let wordStarts: VocabularyTable
    /// Tokens that continue a word, without their `##` prefix.
    private let continuations: VocabularyTable
    private let specialTokens: [SpecialToken]

    /// Creates a tokenizer from a vocabulary.
    ///
    /// - Parameters:
    ///   - vocabulary: `vocabulary[i]` is the token with id `i` (vocab.txt order).
    ///   - options: Normaliser settings.
    ///   - maxInputCharsPerWord: Words longer than this (in Unicode scalars) become `[UNK]`.
    /// - Throws: ``TokenizerError`` when the vocabulary is empty or lacks `[UNK]`, `[CLS]` or `[SEP]`.
    public init(
        vocabulary: [String],
        options: BertNormalizerOptions = .init(),
        maxInputCharsPerWord: Int = 100
    ) throws {
        guard !vocabulary.isEmpty else {
            throw TokenizerError.emptyVocabulary
        }
        guard maxInputCharsPerWord >= 1 else {
            throw TokenizerError.invalidMaxInputCharsPerWord(maxInputCharsPerWord)
        }
        var wordStarts = VocabularyTable(capacity: vocabulary.count)
        var continuations = VocabularyTable(capacity: vocabulary.count / 4 + 1)
        var idsByToken: [String: Int32] = [:]
        idsByToken.reserveCapacity(vocabulary.count)
        for (index, token) in vocabulary.enumerated() {
            let id = Int32(index)
            let scalars = token.unicodeScalars
            wordStarts.insert(scalars, id: id)
            if token.hasPrefix("##") {
                continuations.insert(scalars.dropFirst(2), id: id)
            }
            idsByToken[token] = id
        }
        func require(_ name: String) throws -> Int32 {
            guard let id = idsByToken[name] else {
                throw TokenizerError.missingSpecialToken(name)
            }
            return id
        }
        self.unkID = try require("[UNK]")
        self.clsID = try require("[CLS]")
        self.sepID = try require("[SEP]")
        self.padID = idsByToken["[PAD]"] ?? 0
        self.specialTokens = Self.specialTokenNames.compactMap { name in
            idsByToken[name].map { SpecialToken(scalars: Array(name.unicodeScalars), id: $0) }
        }
        self.vocabulary = vocabulary
        self.normalizer = BertNormalizer(options: options)
        self.wordStarts = wordStarts
        self.continuations = continuations
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// Creates a tokenizer from the contents of a `vocab.txt` file.
    ///
    /// - Parameters:
    ///   - contents: One token per line; only the line terminator (`\n` or `\r\n`) is removed, and a final
    ///     terminator is optional.
    ///   - options: Normaliser settings.
    /// - Throws: ``TokenizerError`` when the vocabulary is empty or lacks `[UNK]`, `[CLS]` or `[SEP]`.
    public init(vocabFile contents: String, options: BertNormalizerOptions = .init()) throws {
        var tokens: [String] = []
        tokens.reserveCapacity(32_768)
        let utf8 = contents.utf8
        var lineStart = utf8.startIndex
        var index = utf8.startIndex
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "\n") {
                var lineEnd = index
                if lineEnd != lineStart {
                    let previous = utf8.index(before: lineEnd)
                    if utf8[previous] == UInt8(ascii: "\r") {
                        lineEnd = previous
                    }
                }
                tokens.append(String(contents[lineStart..<lineEnd]))
                lineStart = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        if lineStart != utf8.endIndex {
            var lineEnd = utf8.endIndex
            let previous = utf8.index(before: lineEnd)
            if utf8[previous] == UInt8(ascii: "\r") {
                lineEnd = previous
            }
            tokens.append(String(contents[lineStart..<lineEnd]))
        }
        try self.init(vocabulary: tokens, options: options)
    }

    /// Encodes a text, or a text pair, with `[CLS]` and `[SEP]`.
    ///
    /// A single text becomes `[CLS] A [SEP]`; a pair becomes `[CLS] A [SEP] B [SEP]` with token type 0 up to
    /// and including the first `[SEP]` and 1 after it.
    ///
    /// - Parameters:
    ///   - text: The (first) text.
    ///   - pair: The optional second text.
    ///   - maxLength: The maximum number of ids, special tokens included; 0 disables truncation. Single texts
    ///     keep their first `maxLength - 2` word pieces; pairs are truncated longest-first like Hugging Face's
    ///     `TruncationStrategy::LongestFirst`. A `maxLength` below the number of special tokens truncates all
    ///     word pieces (the special tokens are always emitted).
    /// - Returns: The ids and token type ids.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int = 128) -> TokenizerEncoding {
        var scratch = Scratch()
        guard let pair else {
            var ids: [Int32] = []
            ids.reserveCapacity(text.utf8.count / 2 + 8)
            ids.append(self.clsID)
            self.appendWordPieceIDs(text, to: &ids, scratch: &scratch)
            if maxLength > 0 {
                let limit = max(0, maxLength - 2) + 1
                if ids.count > limit {
                    ids.removeSubrange(limit...)
                }
            }
            ids.append(self.sepID)
            return TokenizerEncoding(inputIDs: ids, tokenTypeIDs: Array(repeating: 0, count: ids.count))
        }

        var first: [Int32] = []
        self.appendWordPieceIDs(text, to: &first, scratch: &scratch)
        var second: [Int32] = []
        self.appendWordPieceIDs(pair, to: &second, scratch: &scratch)
        if maxLength > 0 {
            let (firstLength, secondLength) = Self.longestFirstLengths(
                first.count,
                second.count,
                maxLength: max(0, maxLength - 3)
            )
            if first.count > firstLength {
                first.removeSubrange(firstLength...)
            }
            if second.count > secondLength {
                second.removeSubrange(secondLength...)
            }
        }
        var ids: [Int32] = []
        ids.reserveCapacity(first.count + second.count + 3)
        ids.append(self.clsID)
        ids.append(contentsOf: first)
        ids.append(self.sepID)
        let firstSegmentLength = ids.count
        ids.append(contentsOf: second)
        ids.append(self.sepID)
        var types = [Int32](repeating: 0, count: ids.count)
        for index in firstSegmentLength..<types.count {
            types[index] = 1
        }
        return TokenizerEncoding(inputIDs: ids, tokenTypeIDs: types)
    }

    /// The word-piece ids of a text, without `[CLS]`/`[SEP]` and without truncation.
    ///
    /// Special tokens written literally in the text (e.g. `"[SEP]"`) still map to their ids, as in
    /// ``encode(_:pair:maxLength:)``.
    public func wordPieceIDs(_ text: String) -> [Int32] {
        var scratch = Scratch()
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 2 + 4)
        self.appendWordPieceIDs(text, to: &ids, scratch: &scratch)
        return ids
    }

    /// The lengths both sequences are truncated to by Hugging Face's longest-first strategy.
    ///
    /// - Parameters:
    ///   - firstCount: Number of word pieces of the first text.
    ///   - secondCount: Number of word pieces of the second text.
    ///   - maxLength: The budget for word pieces (special tokens already subtracted).
    /// - Returns: The lengths to keep (they may exceed the counts, in which case nothing is removed).
    static func longestFirstLengths(_ firstCount: Int, _ secondCount: Int, maxLength: Int) -> (Int, Int) {
        guard firstCount + secondCount > maxLength else {
            return (firstCount, secondCount)
        }
        var shorter = firstCount
        var longer = secondCount
        let swapped = shorter > longer
        if swapped {
            swap(&shorter, &longer)
        }
        if shorter > maxLength {
            longer = shorter
        } else {
            longer = max(shorter, maxLength - shorter)
        }
        if shorter + longer > maxLength {
            shorter = maxLength / 2
            longer = shorter + maxLength % 2
        }
        return swapped ? (longer, shorter) : (shorter, longer)
    }

    // MARK: - Implementation

    /// Buffers reused across the pieces of one call.
    private struct Scratch {
        var normalized: [Unicode.Scalar] = []
    }

    /// Splits out literal special tokens, normalises and word-pieces the rest, appending ids to `ids`.
    private func appendWordPieceIDs(_ text: String, to ids: inout [Int32], scratch: inout Scratch) {
        let scalars = Array(text.unicodeScalars)
        var pieceStart = 0
        var index = 0
        let count = scalars.count
        while index < count {
            if scalars[index] == "[", let special = self.specialToken(in: scalars, at: index) {
                if pieceStart < index {
                    self.appendPieceIDs(scalars[pieceStart..<index], to: &ids, scratch: &scratch)
                }
                ids.append(special.id)
                index += special.scalars.count
                pieceStart = index
            } else {
                index += 1
            }
        }
        if pieceStart < count {
            self.appendPieceIDs(scalars[pieceStart..<count], to: &ids, scratch: &scratch)
        }
    }

    /// The longest special token starting at `index` (leftmost-longest, as Hugging Face's matcher).
    private func specialToken(in scalars: [Unicode.Scalar], at index: Int) -> SpecialToken? {
        var best: SpecialToken?
        for token in self.specialTokens where token.scalars.count <= scalars.count - index {
            if let current = best, current.scalars.count >= token.scalars.count {
                continue
            }
            var matches = true
            for offset in 0..<token.scalars.count where scalars[index + offset] != token.scalars[offset] {
                matches = false
                break
            }
            if matches {
                best = token
            }
        }
        return best
    }

    /// Normalises, pre-tokenises and word-pieces one piece of raw text.
    private func appendPieceIDs(_ piece: ArraySlice<Unicode.Scalar>, to ids: inout [Int32], scratch: inout Scratch) {
        scratch.normalized.removeAll(keepingCapacity: true)
        self.normalizer.normalize(piece, into: &scratch.normalized)
        let normalized = scratch.normalized
        normalized.withUnsafeBufferPointer { buffer in
            self.preTokenizer.forEachWord(in: buffer) { word in
                self.appendWordIDs(buffer, word, to: &ids)
            }
        }
    }

    /// Greedy longest-match-first WordPiece of one word; the whole word becomes `[UNK]` if any part fails.
    @inline(__always)
    private func appendWordIDs(_ text: UnsafeBufferPointer<Unicode.Scalar>, _ word: Range<Int>, to ids: inout [Int32]) {
        if word.count > self.maxInputCharsPerWord {
            ids.append(self.unkID)
            return
        }
        let rollback = ids.count
        let maxTokenLength = max(self.wordStarts.maxTokenLength, self.continuations.maxTokenLength, 1)
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: min(word.count, maxTokenLength)) { states in
            var start = word.lowerBound
            while start < word.upperBound {
                let table = start == word.lowerBound ? self.wordStarts : self.continuations
                let longest = min(word.upperBound - start, table.maxTokenLength)
                var hasher = VocabularyTable.Hasher()
                for offset in 0..<longest {
                    hasher.combine(text[start + offset].value)
                    states[offset] = hasher.state
                }
                var length = longest
                var found: Int32?
                while length > 0 {
                    if let id = table.lookup(text, start..<(start + length), state: states[length - 1]) {
                        found = id
                        break
                    }
                    length -= 1
                }
                guard let id = found else {
                    ids.removeSubrange(rollback...)
                    ids.append(self.unkID)
                    return
                }
                ids.append(id)
                start += length
            }
        }
    }
}
