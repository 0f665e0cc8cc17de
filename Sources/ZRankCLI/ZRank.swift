import ArgumentParser
import CLISupport
import Kernels

/// The `zrank` command: engine tools now, serving commands as they land.
@main
struct ZRank: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zrank",
        abstract: "Int8 transformer ranking pool: serve, query, index, convert, embed.",
        version: zrankVersionString(),
        subcommands: [
            Serve.self, Query.self, Index.self, RegistryCommand.self, RouterCommand.self, WorkerCommand.self, CoordinatorCommand.self, TrainHeads.self, FineTune.self, SimulateLog.self, Convert.self, BenchRank.self,
            Inspect.self, Keygen.self, Health.self,
            Tokenize.self, Embed.self, BenchEncoder.self,
        ]
    )
}

/// "zrank 0.1.0 (kernels: avx2, libzmq 4.3.4)".
func zrankVersionString() -> String {
    ZRankRelease.versionString("zrank", extra: ["kernels: \(KernelSet.best.isa)"])
}
