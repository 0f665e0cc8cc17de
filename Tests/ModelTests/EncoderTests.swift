import Foundation
import Kernels
import Model
import Tokenizer
import XCTest
import _TestSupport

/// The int8 encoder against a naive fp32 forward pass over the same (generated) weights, on every instruction set,
/// and the ragged-batch path against one-at-a-time encoding.
final class EncoderTests: XCTestCase {
    private struct Fixture: Sendable {
        let dir: URL
        let checkpoint: SyntheticCheckpoint
        let model: ModelFile

        init() throws {
            dir = try TestPaths.temporaryDirectory("encoder")
            checkpoint = SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary(), seed: 3)
            try checkpoint.write(to: dir.appendingPathComponent("ckpt"))
            let path = dir.appendingPathComponent("tiny.zrm").path
            try ModelConverter.convert(from: dir.appendingPathComponent("ckpt").path, to: path, version: "tiny")
            model = try ModelFile(path: path)
        }
    }

    private static let fixture: Fixture = {
        do { return try Fixture() } catch { fatalError("cannot build the synthetic model: \(error)") }
    }()

    private static var model: ModelFile { fixture.model }
    private static var checkpoint: SyntheticCheckpoint { fixture.checkpoint }

    override class func tearDown() {
        try? FileManager.default.removeItem(at: fixture.dir)
        super.tearDown()
    }

    private func sampleSequences() throws -> [TokenizerEncoding] {
        let tokenizer = try Self.model.makeTokenizer()
        let texts = [
            "", "sofa", "modern grey velvet accent chair with gold legs",
            String(repeating: "outdoor patio dining set with umbrella ", count: 6),
        ]
        var out = texts.map { tokenizer.encode($0, maxLength: 64) }
        out.append(tokenizer.encode("wood coffee table", pair: "solid walnut coffee table with drawer", maxLength: 64))
        return out
    }

    func testInt8Encoder_matchesFP32Reference_onEveryInstructionSet() throws {
        let reference = ReferenceBert(Self.checkpoint)
        let sequences = try sampleSequences()
        let expected = sequences.map { reference.embed(ids: $0.inputIDs, types: $0.tokenTypeIDs) }
        for isa in InstructionSet.allCases {
            guard let set = KernelSet(isa) else {
                print("EncoderTests: skipping \(isa): this CPU lacks it")
                continue
            }
            let encoder = try Encoder(model: Self.model, kernels: set)
            let got = try encoder.embed(sequences)
            for (i, (g, e)) in zip(got, expected).enumerated() {
                let c = cosine(g, e)
                // int8 weights and activations on a random 2-layer model: cosine to fp32 stays above 0.995.
                XCTAssertGreaterThan(c, 0.995, "\(isa) sequence \(i) (\(sequences[i].inputIDs.count) tokens)")
                XCTAssertEqual(sqrt(g.map { Double($0 * $0) }.reduce(0, +)), 1, accuracy: 1e-5)
            }
        }
    }

    func testRaggedBatch_equalsOneAtATime_bitForBit() throws {
        let encoder = try Encoder(model: Self.model)
        let sequences = try sampleSequences()
        let batched = try encoder.embed(sequences)
        for (i, s) in sequences.enumerated() {
            XCTAssertEqual(try encoder.embed([s])[0], batched[i], "sequence \(i)")
        }
        // Order does not matter either.
        let reversed = try encoder.embed(sequences.reversed())
        XCTAssertEqual(Array(reversed.reversed()), batched)
    }

    func testTwoThreads_giveBitIdenticalEmbeddings() throws {
        let sequences = try sampleSequences()
        let one = try Encoder(model: Self.model, threads: 1).embed(sequences)
        let two = try Encoder(model: Self.model, threads: 2)
        for _ in 0..<3 { XCTAssertEqual(try two.embed(sequences), one) }
        XCTAssertEqual(try two.embed(Array(sequences.prefix(1))), Array(one.prefix(1)))
    }

    /// A batch of many sequences runs as several groups of whole sequences (side by side on several threads), and a
    /// sequence longer than a group's row budget (128 rows on one or two threads) runs its row-wise ops in chunks:
    /// none of it may change any sequence's embedding. A model with 160 positions, so that single sequences pass one chunk and take two.
    func testManyGroups_andLongSequences_equalOneAtATime_bitForBit_onOneAndTwoThreads() throws {
        let checkpoint = SyntheticCheckpoint(vocabulary: try TestPaths.fixtureVocabulary(), seed: 5, positions: 160)
        let dir = try TestPaths.temporaryDirectory("encoder-groups")
        defer { try? FileManager.default.removeItem(at: dir) }
        try checkpoint.write(to: dir.appendingPathComponent("ckpt"))
        let path = dir.appendingPathComponent("long.zrm").path
        try ModelConverter.convert(from: dir.appendingPathComponent("ckpt").path, to: path, version: "long")
        let model = try ModelFile(path: path)
        var rng = SplitMix(seed: 17)
        var lengths = [160, 150, 129, 128, 127, 65, 64, 63, 2, 1]
        lengths += (0..<24).map { _ in Int.random(in: 1...40, using: &rng) }
        lengths.shuffle(using: &rng)
        let vocabulary = Int32(checkpoint.vocabulary.count)
        let sequences = lengths.map { n in
            TokenizerEncoding(
                inputIDs: (0..<n).map { _ in Int32.random(in: 0..<vocabulary, using: &rng) },
                tokenTypeIDs: (0..<n).map { _ in Int32.random(in: 0...1, using: &rng) })
        }
        let one = try Encoder(model: model, threads: 1)
        let batched = try one.embed(sequences)
        for (i, s) in sequences.enumerated() {
            XCTAssertEqual(try one.embed([s])[0], batched[i], "sequence \(i) of \(s.inputIDs.count) tokens")
        }
        // Several threads run the groups side by side, each on its own arena: a first batch, a smaller one and the
        // first again (arenas reused), and single sequences (one group: ops shared across the threads instead).
        for threads in [2, 3] {
            let parallel = try Encoder(model: model, threads: threads)
            XCTAssertEqual(try parallel.embed(sequences), batched, "\(threads) threads")
            XCTAssertEqual(try parallel.embed(Array(sequences.prefix(9))), Array(batched.prefix(9)), "\(threads) threads")
            XCTAssertEqual(try parallel.embed(sequences), batched, "\(threads) threads, again")
            XCTAssertEqual(try parallel.embed([sequences[0]]), [batched[0]], "\(threads) threads, one sequence")
        }
    }

    func testInstructionSets_agreeClosely() throws {
        let sequences = try sampleSequences()
        let scalar = try Encoder(model: Self.model, kernels: KernelSet(.scalar)!).embed(sequences)
        for set in InstructionSet.allCases.compactMap({ KernelSet($0) }) {
            let got = try Encoder(model: Self.model, kernels: set).embed(sequences)
            for (g, s) in zip(got, scalar) { XCTAssertGreaterThan(cosine(g, s), 0.9999, "\(set.isa)") }
        }
    }

    func testInvalidSequences_areRejectedWithReasons() throws {
        let encoder = try Encoder(model: Self.model)
        XCTAssertThrowsError(try encoder.embed([TokenizerEncoding(inputIDs: [], tokenTypeIDs: [])]))
        XCTAssertThrowsError(try encoder.embed([TokenizerEncoding(inputIDs: [101, 999_999, 102], tokenTypeIDs: [0, 0, 0])])) {
            XCTAssertTrue("\($0)".contains("outside the vocabulary"))
        }
        let long = [Int32](repeating: 1000, count: 65)
        XCTAssertThrowsError(try encoder.embed([TokenizerEncoding(inputIDs: long, tokenTypeIDs: long.map { _ in 0 })])) {
            XCTAssertTrue("\($0)".contains("exceeds the model's 64 positions"), "\($0)")
        }
        XCTAssertEqual(try encoder.embed([]).count, 0)
    }
}
