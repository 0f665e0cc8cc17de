import _TestSupport

/// The kernel tests' seeded generator is the shared test one.
typealias SeededGenerator = SplitMix
