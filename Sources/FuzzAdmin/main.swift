// libFuzzer entry: see FuzzAdmin.swift (the target) and fuzz/README.md.
import FuzzSupport

runFuzzer { data, size in fuzz(data, size) }
