// libFuzzer entry: see FuzzRankRequest.swift (the target) and fuzz/README.md.
import FuzzSupport

runFuzzer { data, size in fuzz(data, size) }
