import ArgumentParser
import Foundation
import Model
import Tokenizer

/// Options shared by the commands that read `{"id", "text", "text_pair"?}` lines.
struct TextInputOptions: ParsableArguments {
    @Option(name: .long, help: "The model file (*.zrm).")
    var model: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Maximum tokens per input, special tokens included; 0 = no truncation (default: 128, or the model's "
                + "position limit when smaller)."))
    var maxLength: Int?

    /// The explicit --max-length after checking it against the model, or the default.
    func effectiveMaxLength(_ model: ModelFile) throws -> Int {
        guard let maxLength else { return min(128, model.config.maxPositions) }
        guard maxLength >= 0 else { throw ValidationError("--max-length must be 0 or positive") }
        guard maxLength <= model.config.maxPositions else {
            throw ValidationError(
                "--max-length \(maxLength) exceeds the model's position limit (\(model.config.maxPositions))")
        }
        return maxLength
    }
}

/// One parsed input line.
struct TextLine {
    var lineNumber: Int
    /// The `id` value re-encoded as JSON (any JSON value is echoed back as given), or nil when absent.
    var idJSON: String?
    var text: String
    var pair: String?
}

/// Reads JSON lines from standard input, one result per line, keeping input order; bad lines become error records.
enum JSONLines {
    /// One compact JSON line for scripts to read: keys sorted and in snake_case (`p50Us` -> `p50_us`).
    static func line<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Splits stdin into lines and parses each; `handle` gets either a parsed line or an error record to print.
    static func read(_ handle: (Result<TextLine, LineError>) throws -> Void) rethrows {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        var lineNumber = 0
        var start = input.startIndex
        while start < input.endIndex {
            let end = input[start...].firstIndex(of: UInt8(ascii: "\n")) ?? input.endIndex
            lineNumber += 1
            var bytes = input[start..<end]
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
            start = end < input.endIndex ? input.index(after: end) : end
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }  // blank lines are skipped
            try handle(parse(Data(bytes), lineNumber: lineNumber))
        }
    }

    static func parse(_ bytes: Data, lineNumber: Int) -> Result<TextLine, LineError> {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            return .failure(LineError(line: lineNumber, idJSON: nil, message: "invalid UTF-8"))
        }
        guard let object = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) else {
            return .failure(LineError(line: lineNumber, idJSON: nil, message: "invalid JSON"))
        }
        guard let dict = object as? [String: Any] else {
            return .failure(LineError(line: lineNumber, idJSON: nil, message: "a line must be a JSON object"))
        }
        let idJSON = dict["id"].flatMap(jsonFragment)
        guard let text = dict["text"] as? String else {
            let message = dict["text"] == nil ? "missing \"text\" field" : "\"text\" must be a string"
            return .failure(LineError(line: lineNumber, idJSON: idJSON, message: message))
        }
        var pair: String?
        if let p = dict["text_pair"], !(p is NSNull) {
            guard let s = p as? String else {
                return .failure(LineError(line: lineNumber, idJSON: idJSON, message: "\"text_pair\" must be a string"))
            }
            pair = s
        }
        return .success(TextLine(lineNumber: lineNumber, idJSON: idJSON, text: text, pair: pair))
    }

    /// A JSON value re-encoded as a compact fragment.
    static func jsonFragment(_ value: Any) -> String? {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) else {
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func quote(_ s: String) -> String { jsonFragment(s) ?? "\"\"" }
}

/// A bad input line, printed as `{"line": N, "id": ...?, "error": "..."}`.
struct LineError: Error {
    var line: Int
    var idJSON: String?
    var message: String

    var json: String {
        var s = "{\"line\": \(line)"
        if let idJSON { s += ", \"id\": \(idJSON)" }
        return s + ", \"error\": \(JSONLines.quote(message))}"
    }
}

/// Buffered standard output for line-oriented results.
struct LineWriter {
    private var buffer = Data()

    mutating func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count > 1 << 16 { flush() }
    }

    mutating func flush() {
        FileHandle.standardOutput.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

func loadModel(_ path: String, command: String) throws -> ModelFile {
    do {
        return try ModelFile(path: path)
    } catch let error as ModelError {
        throw CLIFailure("zrank \(command): \(error)")
    }
}

func idPrefix(_ idJSON: String?) -> String { "{\"id\": \(idJSON ?? "null")" }

extension ZRank {
    /// `zrank tokenize --model FILE [--max-length N]`
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tokenise JSON lines {\"id\", \"text\", \"text_pair\"?} from stdin into "
                + "{\"id\", \"input_ids\", \"token_type_ids\"} lines.")

        @OptionGroup var options: TextInputOptions

        func run() throws {
            let model = try loadModel(options.model, command: "tokenize")
            let maxLength = try options.effectiveMaxLength(model)
            let tokenizer = try model.makeTokenizer()
            var out = LineWriter()
            var failed = false
            JSONLines.read { result in
                switch result {
                case .failure(let error):
                    failed = true
                    out.write(error.json)
                case .success(let line):
                    let e = tokenizer.encode(line.text, pair: line.pair, maxLength: maxLength)
                    let ids = e.inputIDs.map(String.init).joined(separator: ", ")
                    let types = e.tokenTypeIDs.map(String.init).joined(separator: ", ")
                    out.write("\(idPrefix(line.idJSON)), \"input_ids\": [\(ids)], \"token_type_ids\": [\(types)]}")
                }
            }
            out.flush()
            if failed { throw ExitCode(1) }
        }
    }

    /// `zrank embed --model FILE [--max-length N] [--batch N]`
    struct Embed: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Embed JSON lines {\"id\", \"text\", \"text_pair\"?} from stdin into {\"id\", \"embedding\"} "
                + "lines (L2-normalised mean-pooled sentence embeddings).",
            discussion: "--max-length 0 means the model's position limit (512 for MiniLM).")

        @OptionGroup var options: TextInputOptions

        @Option(name: .long, help: "Sequences per encoder batch.")
        var batch: Int = 32

        func validate() throws {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        }

        func run() throws {
            let model = try loadModel(options.model, command: "embed")
            let requested = try options.effectiveMaxLength(model)
            let maxLength = requested == 0 ? model.config.maxPositions : requested
            let tokenizer = try model.makeTokenizer()
            let encoder = try Encoder(model: model)
            var out = LineWriter()
            var failed = false
            // Pending results in input order: an error record, or a slot in the current batch.
            var pending: [(error: String?, id: String?)] = []
            var batchEncodings: [TokenizerEncoding] = []
            var vectors = [Float](repeating: 0, count: batch * encoder.dimension)

            func flushBatch() throws {
                if !batchEncodings.isEmpty {
                    try vectors.withUnsafeMutableBufferPointer {
                        try encoder.embed(batchEncodings, into: $0.baseAddress!)
                    }
                }
                var slot = 0
                for p in pending {
                    if let error = p.error {
                        out.write(error)
                        continue
                    }
                    let v = vectors[(slot * encoder.dimension)..<((slot + 1) * encoder.dimension)]
                    out.write("\(idPrefix(p.id)), \"embedding\": [\(v.map { "\($0)" }.joined(separator: ", "))]}")
                    slot += 1
                }
                pending.removeAll(keepingCapacity: true)
                batchEncodings.removeAll(keepingCapacity: true)
            }

            try JSONLines.read { result in
                switch result {
                case .failure(let error):
                    failed = true
                    pending.append((error.json, nil))
                case .success(let line):
                    batchEncodings.append(tokenizer.encode(line.text, pair: line.pair, maxLength: maxLength))
                    pending.append((nil, line.idJSON))
                    if batchEncodings.count == batch { try flushBatch() }
                }
            }
            try flushBatch()
            out.flush()
            if failed { throw ExitCode(1) }
        }
    }
}
