import ArgumentParser
import Foundation
import Model

extension ZRank {
    /// `zrank convert --from DIR --out FILE.zrm [--version NAME]`
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a Hugging Face BERT folder (config.json, model.safetensors, vocab.txt / tokenizer.json) "
                + "into a zrank model file.")

        @Option(name: .long, help: "The checkpoint folder.")
        var from: String

        @Option(name: .long, help: "The model file to write (*.zrm).")
        var out: String

        @Option(name: .long, help: "Model version name (default: derived from the content hash).")
        var version: String?

        func run() throws {
            do {
                let meta = try ModelConverter.convert(from: from, to: out, version: version)
                print("wrote \(out): version \(meta.version), content hash \(meta.contentHash.prefix(16))…")
            } catch let error as ModelError {
                throw CLIFailure("zrank convert: \(error)")
            }
        }
    }

    /// `zrank inspect FILE.zrm`
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a model file (checksum, layout) and describe it.")

        @Argument(help: "The model file.")
        var file: String

        @Flag(name: .long, help: "Print the description as JSON.")
        var json = false

        func run() throws {
            let model: ModelFile
            do {
                model = try ModelFile(path: file)
            } catch let error as ModelError {
                throw CLIFailure("zrank inspect: \(error)")
            }
            let m = model.metadata
            let c = m.config
            if json {
                let report = InspectReport(
                    file: file, valid: true, formatVersion: Int(ModelFileFormat.version), version: m.version,
                    contentHash: m.contentHash, bytes: model.fileSize, layers: c.numLayers, hiddenSize: c.hiddenSize,
                    heads: c.numHeads, intermediateSize: c.intermediateSize, vocabSize: c.vocabSize,
                    maxPositions: c.maxPositions, tensors: m.tensors.count)
                print(try JSONLines.line(report))
                return
            }
            print("file:            \(file) (\(model.fileSize) bytes, checksum OK)")
            print("format version:  \(ModelFileFormat.version)")
            print("model version:   \(m.version)")
            print("content hash:    \(m.contentHash)")
            print("source:          \(m.source)")
            print(
                "architecture:    BERT, \(c.numLayers) layers, hidden \(c.hiddenSize), \(c.numHeads) heads, "
                    + "ffn \(c.intermediateSize) (\(c.hiddenAct)), \(c.maxPositions) positions, "
                    + "\(c.typeVocabSize) token types, LayerNorm eps \(c.layerNormEps)")
            let n = m.tokenizer.normalizer
            print(
                "tokenizer:       WordPiece, \(m.tokenizer.vocabulary.count) tokens; lowercase \(n.lowercase), "
                    + "strip accents \(n.stripAccents.map(String.init) ?? "follows lowercase"), clean text "
                    + "\(n.cleanText), CJK split \(n.handleChineseChars), max chars/word \(m.tokenizer.maxInputCharsPerWord)")
            print("quantisation:    \(m.quantization)")
            print("tensors:         \(m.tensors.count)")
            for t in m.tensors {
                let shape = t.shape.map(String.init).joined(separator: "x")
                print("  \(t.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(t.kind.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \(shape.padding(toLength: 11, withPad: " ", startingAt: 0)) \(t.byteCount) bytes @ \(t.offset)")
            }
        }
    }
}

/// A failure already explained to the user: printed to stderr, exit status 1.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `zrank inspect --json`'s one line (snake_case keys: `JSONLines.line`).
struct InspectReport: Encodable {
    var file: String
    var valid: Bool
    var formatVersion: Int
    var version: String
    var contentHash: String
    var bytes: Int
    var layers: Int
    var hiddenSize: Int
    var heads: Int
    var intermediateSize: Int
    var vocabSize: Int
    var maxPositions: Int
    var tensors: Int
}
