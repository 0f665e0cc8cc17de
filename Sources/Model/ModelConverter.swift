import Foundation
import Kernels
import Tokenizer

/// Converts a Hugging Face BERT checkpoint folder (config.json, model.safetensors, vocab.txt or tokenizer.json)
/// into one self-contained `*.zrm` model file with int8 weights packed for the GEMM kernels.
public enum ModelConverter {
    /// The weight quantisation this converter applies (recorded in the file).
    public static let quantizationScheme =
        "weights: symmetric int8 per output channel (scale = max|w|/127); activations: asymmetric u8 per token at run"
        + " time; embeddings: word fp16, position/type fp32; LayerNorm, biases, attention: fp32"

    /// Converts `directory` and writes `output`.
    /// - Parameter version: the version name; nil derives it from the content hash.
    /// - Returns: the metadata written.
    @discardableResult
    public static func convert(from directory: String, to output: String, version: String?) throws -> ModelMetadata {
        let dir = URL(fileURLWithPath: directory)
        let config = try readConfig(dir.appendingPathComponent("config.json").path)
        let tokenizer = try readTokenizer(dir)
        guard tokenizer.vocabulary.count == config.vocabSize else {
            throw ModelError.unsupportedModel(
                "vocabulary has \(tokenizer.vocabulary.count) tokens but config.json says \(config.vocabSize)")
        }
        // Building the tokenizer checks that the special tokens exist.
        _ = try WordPieceTokenizer(
            vocabulary: tokenizer.vocabulary, options: tokenizer.normalizer,
            maxInputCharsPerWord: tokenizer.maxInputCharsPerWord)
        let weightsPath = dir.appendingPathComponent("model.safetensors").path
        let st = try SafetensorsFile(path: weightsPath)
        let prefix = st.entries["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            let (values, got) = try st.floats(prefix + name)
            guard got == shape else { throw ModelError.badTensor(prefix + name, reason: "shape \(got), expected \(shape)") }
            return values
        }
        let h = config.hiddenSize
        let ffn = config.intermediateSize
        var writer = ModelFileWriter()
        writer.addF16(
            "embeddings.word", shape: [config.vocabSize, h],
            values: try load("embeddings.word_embeddings.weight", [config.vocabSize, h]))
        writer.addF32(
            "embeddings.position", shape: [config.maxPositions, h],
            values: try load("embeddings.position_embeddings.weight", [config.maxPositions, h]))
        writer.addF32(
            "embeddings.type", shape: [config.typeVocabSize, h],
            values: try load("embeddings.token_type_embeddings.weight", [config.typeVocabSize, h]))
        writer.addF32("embeddings.ln.gamma", shape: [h], values: try load("embeddings.LayerNorm.weight", [h]))
        writer.addF32("embeddings.ln.beta", shape: [h], values: try load("embeddings.LayerNorm.bias", [h]))
        for l in 0..<config.numLayers {
            let p = "encoder.layer.\(l)."
            // Q, K and V share their input, so they are one GEMM with N = 3H.
            let qkvW = try load(p + "attention.self.query.weight", [h, h])
                + load(p + "attention.self.key.weight", [h, h]) + load(p + "attention.self.value.weight", [h, h])
            let qkvB = try load(p + "attention.self.query.bias", [h]) + load(p + "attention.self.key.bias", [h])
                + load(p + "attention.self.value.bias", [h])
            try addLinear(&writer, "layer.\(l).qkv", out: 3 * h, in: h, weight: qkvW, bias: qkvB)
            try addLinear(
                &writer, "layer.\(l).attn_out", out: h, in: h, weight: load(p + "attention.output.dense.weight", [h, h]),
                bias: load(p + "attention.output.dense.bias", [h]))
            writer.addF32("layer.\(l).attn_ln.gamma", shape: [h], values: try load(p + "attention.output.LayerNorm.weight", [h]))
            writer.addF32("layer.\(l).attn_ln.beta", shape: [h], values: try load(p + "attention.output.LayerNorm.bias", [h]))
            try addLinear(
                &writer, "layer.\(l).ffn_in", out: ffn, in: h, weight: load(p + "intermediate.dense.weight", [ffn, h]),
                bias: load(p + "intermediate.dense.bias", [ffn]))
            try addLinear(
                &writer, "layer.\(l).ffn_out", out: h, in: ffn, weight: load(p + "output.dense.weight", [h, ffn]),
                bias: load(p + "output.dense.bias", [h]))
            writer.addF32("layer.\(l).ffn_ln.gamma", shape: [h], values: try load(p + "output.LayerNorm.weight", [h]))
            writer.addF32("layer.\(l).ffn_ln.beta", shape: [h], values: try load(p + "output.LayerNorm.bias", [h]))
        }
        let source = "Hugging Face BERT checkpoint \(dir.lastPathComponent) (model.safetensors)"
        return try writer.write(
            to: output, version: version, config: config, tokenizer: tokenizer, source: source,
            quantization: quantizationScheme)
    }

    /// Quantises a PyTorch Linear weight ([out][in], fp32) per output channel and packs it as a K = in, N = out
    /// panel.
    static func addLinear(
        _ writer: inout ModelFileWriter, _ name: String, out: Int, in k: Int, weight: [Float], bias: [Float]
    ) throws {
        let (q, scales) = quantizePerOutputChannel(out: out, in: k, weight: weight)
        writer.addPacked(name, k: k, n: out, packed: PackedWeights.pack(k: k, n: out, weights: q, scales: scales, bias: bias))
    }

    /// Symmetric int8 quantisation per output channel: q = round(w / s) in [-127, 127], s = max|w| / 127.
    /// - Returns: q as a K x N row-major matrix (transposed from PyTorch's [N][K]) and the N scales.
    public static func quantizePerOutputChannel(out n: Int, in k: Int, weight: [Float]) -> ([Int8], [Float]) {
        var q = [Int8](repeating: 0, count: k * n)
        var scales = [Float](repeating: 1, count: n)
        for o in 0..<n {
            var maxAbs: Float = 0
            for i in 0..<k { maxAbs = max(maxAbs, abs(weight[o * k + i])) }
            let s = maxAbs > 0 ? maxAbs / 127 : 1
            scales[o] = s
            for i in 0..<k {
                let v = (weight[o * k + i] / s).rounded(.toNearestOrEven)
                q[i * n + o] = Int8(max(-127, min(127, v)))
            }
        }
        return (q, scales)
    }

    static func readConfig(_ path: String) throws -> BertConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.io(path: path, reason: "cannot read config.json")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.corruptMetadata(path: path, reason: "config.json is not a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else { throw ModelError.unsupportedModel("config.json lacks \(key)") }
            return v
        }
        if let type = json["model_type"] as? String, type != "bert" {
            throw ModelError.unsupportedModel("model_type \(type); only bert is supported")
        }
        let act = json["hidden_act"] as? String ?? "gelu"
        guard act == "gelu" else { throw ModelError.unsupportedModel("hidden_act \(act); only gelu is supported") }
        if let pos = json["position_embedding_type"] as? String, pos != "absolute" {
            throw ModelError.unsupportedModel("position_embedding_type \(pos)")
        }
        let config = BertConfig(
            vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
            numLayers: try int("num_hidden_layers"), numHeads: try int("num_attention_heads"),
            intermediateSize: try int("intermediate_size"), maxPositions: try int("max_position_embeddings"),
            typeVocabSize: (json["type_vocab_size"] as? Int) ?? 2,
            layerNormEps: Float((json["layer_norm_eps"] as? Double) ?? 1e-12), hiddenAct: act)
        guard config.hiddenSize % config.numHeads == 0 else {
            throw ModelError.unsupportedModel("hidden_size is not a multiple of num_attention_heads")
        }
        guard config.hiddenSize <= PackedWeights.maxK, config.intermediateSize <= PackedWeights.maxK else {
            throw ModelError.unsupportedModel("hidden_size and intermediate_size above \(PackedWeights.maxK)")
        }
        return config
    }

    static func readTokenizer(_ dir: URL) throws -> TokenizerMetadata {
        var options = BertNormalizerOptions()
        var maxChars = 100
        var vocabulary: [String]?
        let tokenizerJSON = dir.appendingPathComponent("tokenizer.json")
        if let data = FileManager.default.contents(atPath: tokenizerJSON.path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            if let norm = json["normalizer"] as? [String: Any], norm["type"] as? String == "BertNormalizer" {
                options = BertNormalizerOptions(
                    cleanText: norm["clean_text"] as? Bool ?? true,
                    handleChineseChars: norm["handle_chinese_chars"] as? Bool ?? true,
                    lowercase: norm["lowercase"] as? Bool ?? true, stripAccents: norm["strip_accents"] as? Bool)
            }
            if let model = json["model"] as? [String: Any] {
                guard model["type"] as? String == nil || model["type"] as? String == "WordPiece" else {
                    throw ModelError.unsupportedModel("tokenizer model \(model["type"]!); only WordPiece is supported")
                }
                maxChars = model["max_input_chars_per_word"] as? Int ?? 100
                if let vocab = model["vocab"] as? [String: Int] {
                    var list = [String](repeating: "", count: vocab.count)
                    for (token, id) in vocab where id >= 0 && id < list.count { list[id] = token }
                    vocabulary = list
                }
            }
        } else if let data = FileManager.default.contents(
            atPath: dir.appendingPathComponent("tokenizer_config.json").path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            options.lowercase = json["do_lower_case"] as? Bool ?? true
            options.handleChineseChars = json["tokenize_chinese_chars"] as? Bool ?? true
            options.stripAccents = json["strip_accents"] as? Bool
        }
        let vocabTxt = dir.appendingPathComponent("vocab.txt").path
        if let text = try? String(contentsOfFile: vocabTxt, encoding: .utf8) {
            vocabulary = try WordPieceTokenizer(vocabFile: text, options: options).vocabulary
        }
        guard let vocabulary, !vocabulary.isEmpty else {
            throw ModelError.unsupportedModel("no vocabulary: neither vocab.txt nor tokenizer.json's model.vocab")
        }
        return TokenizerMetadata(vocabulary: vocabulary, normalizer: options, maxInputCharsPerWord: maxChars)
    }
}
