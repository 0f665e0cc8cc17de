import Foundation
import Tokenizer
import XCTest

final class WordPieceTokenizerTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/minilm", isDirectory: true)

    private static func fixture(_ name: String) throws -> String {
        try String(contentsOf: self.fixtures.appendingPathComponent(name), encoding: .utf8)
    }

    private static func jsonLines(_ name: String) throws -> [[String: Any]] {
        try self.fixture(name).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try XCTUnwrap(object as? [String: Any], "not a JSON object in \(name)")
        }
    }

    private func makeTokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabFile: Self.fixture("vocab.txt"))
    }

    private func ids(_ tokenizer: WordPieceTokenizer, _ tokens: [String]) -> [Int32] {
        tokens.map { token in Int32(tokenizer.vocabulary.firstIndex(of: token) ?? -1) }
    }

    // MARK: - Reference fixtures

    func testMatchesHuggingFaceFixturesExactly() throws {
        let tokenizer = try self.makeTokenizer()
        var texts: [String: String] = [:]
        for record in try Self.jsonLines("texts.jsonl") {
            texts[try XCTUnwrap(record["id"] as? String)] = try XCTUnwrap(record["text"] as? String)
        }
        var pairs: [String: (String, String)] = [:]
        for record in try Self.jsonLines("pairs.jsonl") {
            pairs[try XCTUnwrap(record["id"] as? String)] = (
                try XCTUnwrap(record["text"] as? String), try XCTUnwrap(record["text_pair"] as? String)
            )
        }
        let lineCount = try Self.fixture("tokens.jsonl").split(separator: "\n").count
        var checked: [String: Int] = [:]
        var mismatches: [String] = []
        for record in try Self.jsonLines("tokens.jsonl") {
            let id = try XCTUnwrap(record["id"] as? String)
            let kind = try XCTUnwrap(record["kind"] as? String)
            let variant = try XCTUnwrap(record["variant"] as? String)
            let expected = TokenizerEncoding(
                inputIDs: try XCTUnwrap(record["input_ids"] as? [Int]).map { Int32($0) },
                tokenTypeIDs: try XCTUnwrap(record["token_type_ids"] as? [Int]).map { Int32($0) }
            )
            let maxLength: Int
            switch variant {
            case "trunc128": maxLength = 128
            case "full": maxLength = 0
            default: return XCTFail("unknown variant \(variant) in record \(id)")
            }
            let got: TokenizerEncoding
            let input: String
            switch kind {
            case "single":
                let text = try XCTUnwrap(texts[id], "no text \(id)")
                got = tokenizer.encode(text, maxLength: maxLength)
                input = text.debugDescription
            case "pair":
                let (text, pair) = try XCTUnwrap(pairs[id], "no pair \(id)")
                got = tokenizer.encode(text, pair: pair, maxLength: maxLength)
                input = "\(text.debugDescription) / \(pair.debugDescription)"
            default:
                return XCTFail("unknown kind \(kind) in record \(id)")
            }
            checked["\(kind)/\(variant)", default: 0] += 1
            if got != expected {
                mismatches.append(
                    """
                    \(id) \(kind)/\(variant): \(input.prefix(300))
                      expected \(expected.inputIDs) types \(expected.tokenTypeIDs)
                      got      \(got.inputIDs) types \(got.tokenTypeIDs)
                    """
                )
            }
        }
        XCTAssertEqual(checked.values.reduce(0, +), lineCount, "every record must be checked")
        XCTAssertEqual(checked["single/trunc128"], 390)
        XCTAssertEqual(checked["single/full"], 390)
        XCTAssertEqual(checked["pair/trunc128"], 100)
        XCTAssertEqual(checked["pair/full"], 100)
        XCTAssertTrue(
            mismatches.isEmpty,
            "\(mismatches.count) of \(lineCount) records differ; first ones:\n"
                + mismatches.prefix(5).joined(separator: "\n")
        )
    }

    // MARK: - Edge cases

    func testEmptyAndWhitespaceOnlyTextsGiveClsSep() throws {
        let tokenizer = try self.makeTokenizer()
        for text in ["", " ", "   \t\n\r  ", "\u{3000}\u{00A0}\u{2029}", "\u{200B}\u{FEFF}\u{0}"] {
            let encoding = tokenizer.encode(text)
            XCTAssertEqual(encoding.inputIDs, [tokenizer.clsID, tokenizer.sepID], text.debugDescription)
            XCTAssertEqual(encoding.tokenTypeIDs, [0, 0], text.debugDescription)
            XCTAssertEqual(tokenizer.wordPieceIDs(text), [], text.debugDescription)
        }
        let pair = tokenizer.encode("", pair: " ")
        XCTAssertEqual(pair.inputIDs, [tokenizer.clsID, tokenizer.sepID, tokenizer.sepID])
        XCTAssertEqual(pair.tokenTypeIDs, [0, 0, 1])
    }

    func testSpecialTokenIDs() throws {
        let tokenizer = try self.makeTokenizer()
        XCTAssertEqual(tokenizer.padID, 0)
        XCTAssertEqual(tokenizer.unkID, 100)
        XCTAssertEqual(tokenizer.clsID, 101)
        XCTAssertEqual(tokenizer.sepID, 102)
        XCTAssertEqual(tokenizer.vocabulary.count, 30_522)
        XCTAssertEqual(tokenizer.options, BertNormalizerOptions())
    }

    func testWordOverMaxCharsIsOneUnknown() throws {
        let tokenizer = try self.makeTokenizer()
        let long = String(repeating: "a", count: 101)
        XCTAssertEqual(tokenizer.wordPieceIDs(long), [tokenizer.unkID])
        XCTAssertEqual(tokenizer.wordPieceIDs("chair \(long) table"), self.ids(tokenizer, ["chair", "[UNK]", "table"]))
        let limit = String(repeating: "a", count: 100)
        XCTAssertFalse(tokenizer.wordPieceIDs(limit).contains(tokenizer.unkID))
        // Accents are stripped before counting: 101 scalars after normalisation.
        XCTAssertEqual(tokenizer.wordPieceIDs(String(repeating: "é", count: 101)), [tokenizer.unkID])
    }

    func testUnknownWordPieceMakesWholeWordUnknown() throws {
        let tokenizer = try self.makeTokenizer()
        // The emoji has no word piece, so "chair😀" is one [UNK] rather than "chair" + [UNK].
        XCTAssertEqual(tokenizer.wordPieceIDs("chair\u{1F600}"), [tokenizer.unkID])
        XCTAssertEqual(tokenizer.wordPieceIDs("unaffable"), self.ids(tokenizer, ["una", "##ffa", "##ble"]))
        // Scalars newer than Unicode 8.0 (U+1FA91, Unicode 13) are not "control" for Hugging Face (its Cn table is
        // empty), so they are kept and become [UNK]; an unassigned scalar likewise.
        XCTAssertEqual(tokenizer.wordPieceIDs("\u{1FA91}"), [tokenizer.unkID])
        XCTAssertEqual(tokenizer.wordPieceIDs("\u{0378}"), [tokenizer.unkID])
        // Private-use scalars are deleted.
        XCTAssertEqual(tokenizer.wordPieceIDs("\u{E000}"), [])
    }

    func testControlCharactersAreDeleted() throws {
        let tokenizer = try self.makeTokenizer()
        let plain = tokenizer.wordPieceIDs("wooden chair")
        XCTAssertEqual(tokenizer.wordPieceIDs("wo\u{0}od\u{7}en\u{200B} ch\u{FEFF}a\u{FFFD}ir\u{AD}"), plain)
        XCTAssertEqual(tokenizer.wordPieceIDs("wooden\u{85}chair"), tokenizer.wordPieceIDs("woodenchair"))
        XCTAssertEqual(tokenizer.wordPieceIDs("wooden\tchair"), plain)
        XCTAssertEqual(tokenizer.wordPieceIDs("wooden\r\nchair"), plain)
        XCTAssertEqual(tokenizer.wordPieceIDs("wooden\u{3000}chair"), plain)
    }

    func testNormalisation() throws {
        let tokenizer = try self.makeTokenizer()
        XCTAssertEqual(tokenizer.wordPieceIDs("CAFÉ Crème"), tokenizer.wordPieceIDs("cafe creme"))
        XCTAssertEqual(tokenizer.wordPieceIDs("Cafe\u{301}"), tokenizer.wordPieceIDs("cafe"))
        // Punctuation is isolated; CJK ideographs become single words.
        XCTAssertEqual(tokenizer.wordPieceIDs("chair,table"), self.ids(tokenizer, ["chair", ",", "table"]))
        XCTAssertEqual(tokenizer.wordPieceIDs("a人b"), self.ids(tokenizer, ["a", "人", "b"]))
    }

    func testLiteralSpecialTokensAreMatched() throws {
        let tokenizer = try self.makeTokenizer()
        XCTAssertEqual(
            tokenizer.encode("chair [SEP] table").inputIDs,
            self.ids(tokenizer, ["[CLS]", "chair", "[SEP]", "table", "[SEP]"])
        )
        XCTAssertEqual(
            tokenizer.wordPieceIDs("x[MASK]y[PAD][UNK][CLS]"),
            self.ids(tokenizer, ["x", "[MASK]", "y", "[PAD]", "[UNK]", "[CLS]"])
        )
        // Matching is case-sensitive and happens before lowercasing.
        XCTAssertEqual(tokenizer.wordPieceIDs("[sep]"), self.ids(tokenizer, ["[", "sep", "]"]))
        XCTAssertEqual(tokenizer.wordPieceIDs("[SEP"), self.ids(tokenizer, ["[", "sep"]))
    }

    // MARK: - Truncation

    /// A text of `count` word pieces ("chair" is one piece).
    private func words(_ count: Int) -> String {
        Array(repeating: "chair", count: count).joined(separator: " ")
    }

    /// The number of word pieces kept from the first and the second text of a pair encoding.
    private func pairLengths(_ encoding: TokenizerEncoding) -> (Int, Int) {
        let firstSegment = encoding.tokenTypeIDs.filter { $0 == 0 }.count
        return (firstSegment - 2, encoding.tokenTypeIDs.count - firstSegment - 1)
    }

    func testPairTruncationLongestFirst() throws {
        let tokenizer = try self.makeTokenizer()
        let cases: [(first: Int, second: Int, maxLength: Int, expected: (Int, Int))] = [
            (5, 200, 128, (5, 120)),  // short + long: only the long one is cut
            (200, 5, 128, (120, 5)),
            (100, 200, 128, (62, 63)),  // both long: split, the odd piece goes to the longer text
            (200, 100, 128, (63, 62)),
            (10, 10, 12, (4, 5)),  // odd budget (9) with equal lengths: the second text gets the extra piece
            (20, 10, 12, (5, 4)),
            (10, 10, 5, (1, 1)),  // both longer than the budget (2)
            (60, 65, 128, (60, 65)),  // fits exactly: nothing cut
            (60, 66, 128, (60, 65)),
            (70, 70, 128, (62, 63)),
        ]
        for testCase in cases {
            let encoding = tokenizer.encode(
                self.words(testCase.first),
                pair: self.words(testCase.second),
                maxLength: testCase.maxLength
            )
            let (first, second) = self.pairLengths(encoding)
            let label = "\(testCase.first)+\(testCase.second) max \(testCase.maxLength)"
            XCTAssertEqual(first, testCase.expected.0, label)
            XCTAssertEqual(second, testCase.expected.1, label)
            XCTAssertLessThanOrEqual(encoding.inputIDs.count, testCase.maxLength, label)
            XCTAssertEqual(encoding.inputIDs.count, encoding.tokenTypeIDs.count, label)
            XCTAssertEqual(encoding.inputIDs.first, tokenizer.clsID, label)
            XCTAssertEqual(encoding.inputIDs.last, tokenizer.sepID, label)
            XCTAssertEqual(encoding.inputIDs[first + 1], tokenizer.sepID, label)
        }
    }

    func testMaxLengthZeroDoesNotTruncate() throws {
        let tokenizer = try self.makeTokenizer()
        XCTAssertEqual(tokenizer.encode(self.words(300), maxLength: 0).inputIDs.count, 302)
        let pair = tokenizer.encode(self.words(300), pair: self.words(200), maxLength: 0)
        XCTAssertEqual(self.pairLengths(pair).0, 300)
        XCTAssertEqual(self.pairLengths(pair).1, 200)
        XCTAssertEqual(tokenizer.wordPieceIDs(self.words(300)).count, 300)
    }

    func testSingleTextTruncationEndsWithSep() throws {
        let tokenizer = try self.makeTokenizer()
        let encoding = tokenizer.encode(self.words(300) + " table", maxLength: 128)
        XCTAssertEqual(encoding.inputIDs.count, 128)
        XCTAssertEqual(encoding.tokenTypeIDs, Array(repeating: 0, count: 128))
        XCTAssertEqual(encoding.inputIDs.first, tokenizer.clsID)
        XCTAssertEqual(encoding.inputIDs.last, tokenizer.sepID)
        let chair = self.ids(tokenizer, ["chair"])[0]
        XCTAssertEqual(Array(encoding.inputIDs[1..<127]), Array(repeating: chair, count: 126))
        // Short texts are untouched; a budget below the special tokens keeps only [CLS] [SEP].
        XCTAssertEqual(tokenizer.encode(self.words(126), maxLength: 128).inputIDs.count, 128)
        XCTAssertEqual(tokenizer.encode(self.words(3), maxLength: 1).inputIDs, [tokenizer.clsID, tokenizer.sepID])
    }

    // MARK: - Construction

    func testVocabFileParsing() throws {
        let tokenizer = try WordPieceTokenizer(vocabFile: "[PAD]\r\n[UNK]\r\n[CLS]\n[SEP]\nchair\n##s\n a \n")
        XCTAssertEqual(tokenizer.vocabulary, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "chair", "##s", " a "])
        XCTAssertEqual(tokenizer.encode("Chairs chairx").inputIDs, [2, 4, 5, 1, 3])
        let noTrailingNewline = try WordPieceTokenizer(vocabFile: "[UNK]\n[CLS]\n[SEP]")
        XCTAssertEqual(noTrailingNewline.vocabulary, ["[UNK]", "[CLS]", "[SEP]"])
        XCTAssertEqual(noTrailingNewline.padID, 0)
    }

    func testConstructionErrors() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: [])) { error in
            XCTAssertEqual(error as? TokenizerError, .emptyVocabulary)
        }
        XCTAssertThrowsError(try WordPieceTokenizer(vocabFile: "")) { error in
            XCTAssertEqual(error as? TokenizerError, .emptyVocabulary)
        }
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: ["[UNK]", "[CLS]", "a"])) { error in
            XCTAssertEqual(error as? TokenizerError, .missingSpecialToken("[SEP]"))
            XCTAssertTrue(String(describing: error).contains("[SEP]"))
        }
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: ["[CLS]", "[SEP]"])) { error in
            XCTAssertEqual(error as? TokenizerError, .missingSpecialToken("[UNK]"))
        }
    }

    func testOptionsCodableDefaults() throws {
        let decoded = try JSONDecoder().decode(BertNormalizerOptions.self, from: Data("{}".utf8))
        XCTAssertEqual(decoded, BertNormalizerOptions())
        let options = BertNormalizerOptions(cleanText: false, lowercase: false, stripAccents: true)
        let roundTrip = try JSONDecoder().decode(BertNormalizerOptions.self, from: JSONEncoder().encode(options))
        XCTAssertEqual(roundTrip, options)
    }

    func testCasedOptionsKeepCaseAndAccents() throws {
        let tokenizer = try WordPieceTokenizer(
            vocabulary: ["[UNK]", "[CLS]", "[SEP]", "Café", "café", "cafe"],
            options: BertNormalizerOptions(lowercase: false)
        )
        XCTAssertEqual(tokenizer.wordPieceIDs("Café"), [3])
        let lowercaseOnly = try WordPieceTokenizer(
            vocabulary: ["[UNK]", "[CLS]", "[SEP]", "Café", "café", "cafe"],
            options: BertNormalizerOptions(lowercase: true, stripAccents: false)
        )
        XCTAssertEqual(lowercaseOnly.wordPieceIDs("CAFÉ"), [4])
    }
}
