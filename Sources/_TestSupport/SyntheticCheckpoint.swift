import Foundation

/// A small random BERT checkpoint in Hugging Face layout (config.json, model.safetensors, vocab.txt), generated from
/// a seed so tests have a real converter input without shipping weights. Not API: tests only.
public struct SyntheticCheckpoint: Sendable {
    public var hidden = 32
    public var heads = 4
    public var layers = 2
    public var intermediate = 64
    public var positions = 64
    public var typeVocab = 2
    public var vocabulary: [String]
    public var seed: UInt64 = 1

    /// Named fp32 tensors as PyTorch stores them ([out][in] for Linear weights).
    public private(set) var tensors: [(name: String, shape: [Int], values: [Float])] = []

    public init(vocabulary: [String], seed: UInt64 = 1, positions: Int = 64) {
        self.vocabulary = vocabulary
        self.seed = seed
        self.positions = positions
        generate()
    }

    private mutating func generate() {
        var rng = SplitMix(seed: seed)
        var out: [(String, [Int], [Float])] = []
        func rand(_ shape: [Int], _ scale: Float) -> [Float] {
            (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &rng) }
        }
        func around1(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: 0.8...1.2, using: &rng) } }
        let h = hidden
        out.append(("embeddings.word_embeddings.weight", [vocabulary.count, h], rand([vocabulary.count, h], 0.5)))
        out.append(("embeddings.position_embeddings.weight", [positions, h], rand([positions, h], 0.2)))
        out.append(("embeddings.token_type_embeddings.weight", [typeVocab, h], rand([typeVocab, h], 0.2)))
        out.append(("embeddings.LayerNorm.weight", [h], around1(h)))
        out.append(("embeddings.LayerNorm.bias", [h], rand([h], 0.1)))
        let ws = 1 / Float(h).squareRoot()
        for l in 0..<layers {
            let p = "encoder.layer.\(l)."
            for m in ["query", "key", "value"] {
                out.append((p + "attention.self.\(m).weight", [h, h], rand([h, h], ws * 1.5)))
                out.append((p + "attention.self.\(m).bias", [h], rand([h], 0.1)))
            }
            out.append((p + "attention.output.dense.weight", [h, h], rand([h, h], ws)))
            out.append((p + "attention.output.dense.bias", [h], rand([h], 0.1)))
            out.append((p + "attention.output.LayerNorm.weight", [h], around1(h)))
            out.append((p + "attention.output.LayerNorm.bias", [h], rand([h], 0.1)))
            out.append((p + "intermediate.dense.weight", [intermediate, h], rand([intermediate, h], ws * 1.5)))
            out.append((p + "intermediate.dense.bias", [intermediate], rand([intermediate], 0.1)))
            out.append(
                (p + "output.dense.weight", [h, intermediate], rand([h, intermediate], 1 / Float(intermediate).squareRoot())))
            out.append((p + "output.dense.bias", [h], rand([h], 0.1)))
            out.append((p + "output.LayerNorm.weight", [h], around1(h)))
            out.append((p + "output.LayerNorm.bias", [h], rand([h], 0.1)))
        }
        tensors = out.map { (name: $0.0, shape: $0.1, values: $0.2) }
    }

    /// The fp32 values of one tensor.
    public func values(_ name: String) -> [Float] { tensors.first { $0.name == name }!.values }

    /// Writes config.json, model.safetensors and vocab.txt into `directory` (created if missing).
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config: [String: Any] = [
            "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": hidden,
            "num_attention_heads": heads, "num_hidden_layers": layers, "intermediate_size": intermediate,
            "max_position_embeddings": positions, "type_vocab_size": typeVocab, "vocab_size": vocabulary.count,
            "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
            .write(to: directory.appendingPathComponent("config.json"))
        try (vocabulary.joined(separator: "\n") + "\n").write(
            to: directory.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var body = Data()
        for t in tensors {
            let begin = body.count
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { body.append(contentsOf: $0) } }
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [begin, body.count]]
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerData.count % 8 != 0 { headerData.append(UInt8(ascii: " ")) }
        var file = Data()
        withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(headerData)
        file.append(body)
        try file.write(to: directory.appendingPathComponent("model.safetensors"))
    }
}

/// Seeded SplitMix64 generator.
public struct SplitMix: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Paths of the repository's test fixtures and scratch folders.
public enum TestPaths {
    /// The package root (found from this source file's location).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }
    /// `Tests/Fixtures/minilm`.
    public static var minilmFixtures: URL { packageRoot.appendingPathComponent("Tests/Fixtures/minilm") }
    /// The built products folder holding the `zrank` executable (the release or debug build being tested).
    public static var productsDirectory: URL {
        // The test bundle runs from the products folder of the configuration under test.
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("zrank").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return exe.deletingLastPathComponent()
    }
    /// A fresh temporary folder.
    public static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zrank-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
    /// The fixture vocabulary (all-MiniLM-L6-v2's vocab.txt).
    public static func fixtureVocabulary() throws -> [String] {
        let text = try String(contentsOf: minilmFixtures.appendingPathComponent("vocab.txt"), encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
