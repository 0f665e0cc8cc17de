import ArgumentParser
import Foundation
import Model
import Tokenizer

extension ZRank {
    /// `zrank bench-encoder --model FILE --batch B --seq S --threads T --seconds N`
    struct BenchEncoder: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-encoder",
            abstract: "Time the encoder on token ids of exactly one shape; the last line is a JSON summary.")

        @Option(name: .long, help: "The model file (*.zrm).")
        var model: String

        @Option(name: .long, help: "Sequences per batch.")
        var batch: Int = 1

        @Option(name: .long, help: "Tokens per sequence ([CLS] and [SEP] included).")
        var seq: Int = 16

        @Option(name: .long, help: "Intra-op compute threads.")
        var threads: Int = 1

        @Option(name: .long, help: "Measured seconds (after a warm-up).")
        var seconds: Double = 3

        @Flag(name: .long, help: "After the summary line, time each op for another --seconds and print a per-op table.")
        var profile = false

        func validate() throws {
            guard batch >= 1, seq >= 2, seq <= 512, threads >= 1, seconds > 0 else {
                throw ValidationError("need --batch >= 1, 2 <= --seq <= 512, --threads >= 1, --seconds > 0")
            }
        }

        func run() throws {
            let file = try loadModel(model, command: "bench-encoder")
            let encoder = try Encoder(model: file, threads: threads)
            let tokenizer = try file.makeTokenizer()
            // Real-looking ids: word pieces of product text, cycled to the exact length.
            let words = tokenizer.wordPieceIDs(
                "modern solid wood coffee table with storage drawer walnut finish mid century living room "
                    + "furniture outdoor patio chair cushion set grey velvet accent armchair kitchen bar stool")
            var sequences: [TokenizerEncoding] = []
            for b in 0..<batch {
                var ids: [Int32] = [tokenizer.clsID]
                for i in 0..<(seq - 2) { ids.append(words[(i + b) % words.count]) }
                ids.append(tokenizer.sepID)
                sequences.append(TokenizerEncoding(inputIDs: ids, tokenTypeIDs: [Int32](repeating: 0, count: seq)))
            }
            var out = [Float](repeating: 0, count: batch * encoder.dimension)
            let warmupEnd = Date().addingTimeInterval(min(1, seconds / 3))
            while Date() < warmupEnd {
                try out.withUnsafeMutableBufferPointer { try encoder.embed(sequences, into: $0.baseAddress!) }
            }
            var latencies: [Double] = []
            let start = DispatchTime.now().uptimeNanoseconds
            let deadline = start + UInt64(seconds * 1e9)
            var now = start
            while now < deadline {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try out.withUnsafeMutableBufferPointer { try encoder.embed(sequences, into: $0.baseAddress!) }
                now = DispatchTime.now().uptimeNanoseconds
                latencies.append(Double(now - t0) / 1e6)
            }
            let elapsed = Double(now - start) / 1e9
            latencies.sort()
            func pct(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(p * Double(latencies.count)))] }
            let sps = Double(latencies.count * batch) / elapsed
            print(
                "encoder \(encoder.kernels.isa): \(latencies.count) batches of \(batch)x\(seq) in "
                    + String(format: "%.2f s", elapsed))
            print(
                String(
                    format: "{\"batch\": %d, \"seq\": %d, \"threads\": %d, \"sequences_per_s\": %.1f, "
                        + "\"p50_ms\": %.4f, \"p99_ms\": %.4f}", batch, seq, threads, sps, pct(0.5), pct(0.99)))
            guard profile else { return }
            // Profiled separately, so the timers never touch the figures above.
            encoder.profiling = true
            encoder.resetProfile()
            let profileEnd = Date().addingTimeInterval(seconds)
            while Date() < profileEnd {
                try out.withUnsafeMutableBufferPointer { try encoder.embed(sequences, into: $0.baseAddress!) }
            }
            let p = encoder.profile
            let forwards = Double(max(1, p.forwards))
            print("")
            print("| op (batch \(batch) x \(seq) tokens, \(threads) thread\(threads == 1 ? "" : "s"), \(encoder.kernels.isa)) | ms per batch | share | GOP/s |")
            print("| --- | --- | --- | --- |")
            for op in EncoderProfile.Op.allCases {
                let ns = Double(p.nanos[op] ?? 0)
                let rate = p.ops[op].map { String(format: "%.1f", Double($0) / max(1, ns)) } ?? ""
                print(String(format: "| %@ | %.3f | %.1f%% | %@ |", op.rawValue, ns / forwards / 1e6, 100 * ns / Double(max(1, p.total)), rate))
            }
            let gemmNanos = Double(p.gemmNanos)
            print(String(format: "| total (%d batches profiled) | %.3f | 100%% | |", p.forwards, Double(p.total) / forwards / 1e6))
            print(String(format: "GEMM: %.1f GOP/s over its own time; everything else: %.1f%% of the forward", Double(p.gemmOps) / max(1, gemmNanos), 100 * (1 - gemmNanos / Double(max(1, p.total)))))
        }
    }
}
