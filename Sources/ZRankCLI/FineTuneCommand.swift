import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension ZRank {
    /// `zrank fine-tune --base DIR --catalog items.jsonl --log LOG.jsonl --out DIR [...]`: the seed's method, run by
    /// the project's training package (`train/`, JAX + optax on CPU) in its own virtual environment.
    struct FineTune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fine-tune",
            abstract: "Fine-tune the bi-encoder (fp32, Hugging Face folder) on a click/engagement log; writes a folder `zrank convert` reads.",
            discussion: """
                Runs `python -m zrank_train fine-tune` from .venv-train (made by scripts/train-env.sh, which this \
                command runs once when the environment is missing; ZRANK_TRAIN_PYTHON names another interpreter). \
                Exit 0: --out written; 2: bad input, with the reason on stderr. Loss: click head on the query/item \
                cosine with a learned temperature, bias and training-only position term, a listwise loss over each \
                impression list, in-batch negatives, and an engagement head on log(1 + dwell). See train/README.md.
                """)

        @Option(name: .long, help: "The base model's Hugging Face folder (make model leaves models/all-MiniLM-L6-v2/).")
        var base: String

        @Option(name: .long, help: "The catalog the log's items come from (JSON lines with id and title).")
        var catalog: String

        @Option(name: .long, help: "The impression log (the train-heads format).")
        var log: String

        @Option(name: .long, help: "The folder to write (must not exist or be empty).")
        var out: String

        @Option(name: .long, help: "Share of queries held out for validation and early stopping.")
        var validation: Double?

        @Option(name: .long, help: "Passes over the training sessions.")
        var epochs: Int?

        @Option(name: .long, help: "Sessions (impression lists) per step.")
        var batch: Int?

        @Option(name: .long, help: "Learning rate of the encoder (AdamW).")
        var lr: Double?

        @Option(name: .long, help: "Freeze the embeddings and the bottom N encoder layers.")
        var freezeLayers: Int?

        @Option(name: .long, help: "Random seed (deterministic for a seed on one machine).")
        var seed: Int?

        @Option(name: .long, help: "Stop cleanly after this many minutes with the best checkpoint so far.")
        var maxMinutes: Double?

        @Option(name: .long, help: "Write the report (validation NDCG@10 and AUC vs the base model, examples, epochs, seconds, options) here.")
        var json: String?

        @Option(name: .long, help: "Graded truth ({\"query\",\"item\",\"grade\"} lines, zrank simulate-log --graded --truth): also report truth NDCG@10.")
        var truth: String?

        /// The arguments for `python -m zrank_train fine-tune`, each as --name=value.
        var trainingArguments: [String] {
            let options: [(String, String?)] = [
                ("base", base), ("catalog", catalog), ("log", log), ("out", out), ("validation", validation.map { "\($0)" }),
                ("epochs", epochs.map { "\($0)" }), ("batch", batch.map { "\($0)" }), ("lr", lr.map { "\($0)" }),
                ("freeze-layers", freezeLayers.map { "\($0)" }), ("seed", seed.map { "\($0)" }),
                ("max-minutes", maxMinutes.map { "\($0)" }), ("json", json), ("truth", truth),
            ]
            return childOptions(options)
        }

        func run() throws {
            let python = try trainingPython()
            let argv = [python, "-m", "zrank_train", "fine-tune"] + trainingArguments
            // Replace this process: the exit status, signals and the terminal (progress bar) are the trainer's.
            var cArgs = argv.map { strdup($0) }
            cArgs.append(nil)
            execv(python, cArgs)
            throw CLIFailure("zrank fine-tune: cannot run \(python): \(String(cString: strerror(errno)))")
        }
    }
}

/// The interpreter of the training environment: ZRANK_TRAIN_PYTHON, else `.venv-train` of the package the binary
/// was built in, made by `scripts/train-env.sh` when missing.
func trainingPython() throws -> String {
    if let explicit = ProcessInfo.processInfo.environment["ZRANK_TRAIN_PYTHON"], !explicit.isEmpty { return explicit }
    // .build/<config>/zrank → the package root.
    var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    var root: URL?
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("scripts/train-env.sh").path) { root = dir; break }
        dir = dir.deletingLastPathComponent()
    }
    guard let root else {
        throw CLIFailure("zrank fine-tune: no training environment: set ZRANK_TRAIN_PYTHON to a python with zrank_train installed (pip install ./train)")
    }
    let script = root.appendingPathComponent("scripts/train-env.sh").path
    // The script is idempotent (a no-op when the environment is current) and prints the interpreter's path.
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [script]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard p.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
        throw CLIFailure("zrank fine-tune: \(script) failed (exit \(p.terminationStatus)); its messages are above")
    }
    return path
}
