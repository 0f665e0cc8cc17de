// swift-tools-version: 6.1
import Foundation
import PackageDescription

// MARK: - Shared settings

/// Every Swift target builds with bounds and overflow checks on (no `-Ounchecked`): the router, the worker, the
/// coordinator and the CLIs take untrusted input, where a wrapped number or an out-of-range index must trap, not
/// corrupt memory; and the hot loops showed no measurable gain from it (bench/results/ounchecked.md, AVX-512 VNNI
/// machine: checked at 0.993x and 1.008x the encoder's sequences/s, ranking p50 +1.1% and +1.9%, inside the run's noise). `ZRANK_UNCHECKED_HOT_LOOPS=1` builds Kernels,
/// Model and Ranking with `-Ounchecked` again, for that benchmark.
let swiftSettings: [SwiftSetting] = []

let hotLoopSettings: [SwiftSetting] =
    ProcessInfo.processInfo.environment["ZRANK_UNCHECKED_HOT_LOOPS"] == "1"
    ? [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))] : []

/// Kernels are compiled baseline (no global -march); ISA-specific code uses per-function target attributes.
let kernelCSettings: [CSetting] = [
    .headerSearchPath("."),
    .headerSearchPath("arch/x86"),
    .unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=off"]),
]

/// libFuzzer targets (fuzz/README.md), declared only when the manifest is evaluated with `ZRANK_FUZZ=1`, so that a
/// normal `swift build` / `swift test` never sees them: they link libFuzzer (`-sanitize=fuzzer`) and are built only by
/// `fuzz/run.sh` into `.build-fuzz`.
let fuzzTargets: [Target] =
    ProcessInfo.processInfo.environment["ZRANK_FUZZ"] == "1"
    ? [
        .target(name: "FuzzDriver"),
        .target(
            name: "FuzzSupport",
            dependencies: ["FuzzDriver", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzFrames",
            dependencies: ["FuzzSupport", "Protocol", "Router", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzRankRequest",
            dependencies: [
                "FuzzSupport", "Protocol", "Ranking", "Model", "Kernels", "Worker",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzAdmin",
            dependencies: [
                "FuzzSupport", "Protocol", "Router", "Coordinator", "Registry",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzModelFile",
            dependencies: ["FuzzSupport", "Model", "Ranking", "Kernels", "Tokenizer"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzHeads",
            dependencies: ["FuzzSupport", "Ranking", "Model", "Tokenizer", "Training", "Bench"],
            swiftSettings: swiftSettings
        ),
    ] : []

let package = Package(
    name: "zrank",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "zrank", targets: ["ZRankCLI"]),
        .executable(name: "zrank-bench", targets: ["ZRankBenchCLI"]),
        .executable(name: "zrankctl", targets: ["ZRankCtl"]),
        .executable(name: "zrank-router-bench", targets: ["RouterBench"]),
        .library(name: "Model", targets: ["Model"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // MARK: - System libraries

        .systemLibrary(
            name: "CZMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]
        ),

        // MARK: - Targets

        .target(
            name: "CKernels",
            cSettings: kernelCSettings
        ),
        .target(
            name: "Kernels",
            dependencies: ["CKernels"],
            swiftSettings: hotLoopSettings
        ),
        .target(
            name: "Tokenizer",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Model",
            dependencies: [
                "Kernels",
                "Tokenizer",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: hotLoopSettings
        ),
        .target(
            name: "Ranking",
            dependencies: [
                "Model",
                "Kernels",
                "Tokenizer",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: hotLoopSettings
        ),
        .target(
            name: "Protocol",
            dependencies: [
                "CZMQ",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CSystem"
        ),
        .target(
            name: "Registry",
            dependencies: [
                "Model",
                "Ranking",
                "Protocol",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Coordinator",
            dependencies: [
                "Registry",
                "Protocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CLISupport",
            dependencies: ["Protocol", "CZMQ", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Training",
            dependencies: ["Model", "Ranking", "Tokenizer"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Worker",
            dependencies: [
                "Model",
                "Protocol",
                "Ranking",
                "Registry",
                "CSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Router",
            dependencies: [
                "Protocol",
                "CSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ZRankCLI",
            dependencies: [
                "Model",
                "Tokenizer",
                "Kernels",
                "Ranking",
                "Protocol",
                "Worker",
                "Router",
                "Registry",
                "Coordinator",
                "Training",
                "Bench",
                "CLISupport",
                "CSystem",
                "CZMQ",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "Bench",
            dependencies: [
                "Protocol",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ZRankBenchCLI",
            dependencies: [
                "Bench",
                "CLISupport",
                "Protocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ZRankCtl",
            dependencies: [
                "Protocol",
                "CLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RouterBench",
            dependencies: [
                "Protocol",
                "Router",
                "CLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: - Test support (not API)

        .target(
            name: "_TestSupport",
            dependencies: ["Protocol"],
            swiftSettings: swiftSettings
        ),

        // MARK: - Tests

        .testTarget(
            name: "KernelsTests",
            dependencies: ["Kernels", "CKernels", "_TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TokenizerTests",
            dependencies: ["Tokenizer"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ModelTests",
            dependencies: ["Model", "Kernels", "Tokenizer", "_TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProtocolTests",
            dependencies: ["Protocol", "_TestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RouterTests",
            dependencies: ["Router", "Protocol", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CoordinatorTests",
            dependencies: ["Coordinator", "Registry", "Router", "Protocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", "Ranking", "Model", "_TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RankingTests",
            dependencies: ["Ranking", "Model", "_TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ZRankCLI", "ZRankBenchCLI", "ZRankCtl", "Protocol", "Ranking", "Model", "_TestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BenchTests",
            dependencies: ["Bench"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLISupportTests",
            dependencies: ["CLISupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["ZRankCLI", "Model", "Ranking", "_TestSupport"],
            swiftSettings: swiftSettings
        ),
    ] + fuzzTargets
)
