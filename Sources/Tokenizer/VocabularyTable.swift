/// An immutable open-addressing hash set of tokens keyed by their Unicode scalars.
///
/// Lookups take a slice of a scalar buffer and its precomputed ``VocabularyTable/Hasher`` state, so the greedy
/// WordPiece search can hash every prefix of the remaining word in one pass and probe without allocating.
struct VocabularyTable: Sendable {
    /// Incremental 64-bit FNV-1a over scalar values; ``finalized`` mixes the state for slot selection.
    struct Hasher {
        /// The running state.
        var state: UInt64 = 0xCBF2_9CE4_8422_2325

        /// Feeds one scalar.
        @inline(__always)
        mutating func combine(_ value: UInt32) {
            self.state = (self.state ^ UInt64(value)) &* 0x0000_0100_0000_01B3
        }

        /// The avalanche-mixed hash of the scalars fed so far.
        @inline(__always)
        static func finalize(_ state: UInt64) -> UInt64 {
            var hash = state
            hash ^= hash >> 32
            hash &*= 0xBF58_476D_1CE4_E5B9
            hash ^= hash >> 29
            return hash
        }
    }

    private var scalars: [UInt32] = []
    private var starts: [Int32] = [0]
    private var ids: [Int32] = []
    private var hashes: [UInt64] = []
    private var slots: [Int32]
    private let mask: Int
    /// The length, in scalars, of the longest token.
    private(set) var maxTokenLength: Int = 0

    /// Creates an empty table able to hold `capacity` tokens.
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 {
            size <<= 1
        }
        self.slots = Array(repeating: -1, count: size)
        self.mask = size - 1
    }

    /// The number of tokens in the table.
    var count: Int {
        self.ids.count
    }

    /// Inserts a token; when it is already present its id is replaced (the last occurrence wins).
    mutating func insert<Scalars: Collection>(_ token: Scalars, id: Int32) where Scalars.Element == Unicode.Scalar {
        var hasher = Hasher()
        for scalar in token {
            hasher.combine(scalar.value)
        }
        let hash = Hasher.finalize(hasher.state)
        var slot = Int(truncatingIfNeeded: hash) & self.mask
        while true {
            let entry = Int(self.slots[slot])
            if entry < 0 {
                break
            }
            if self.hashes[entry] == hash && self.entryEquals(entry, token) {
                self.ids[entry] = id
                return
            }
            slot = (slot + 1) & self.mask
        }
        let entry = self.ids.count
        self.slots[slot] = Int32(entry)
        self.ids.append(id)
        self.hashes.append(hash)
        var length = 0
        for scalar in token {
            self.scalars.append(scalar.value)
            length += 1
        }
        self.starts.append(Int32(self.scalars.count))
        self.maxTokenLength = max(self.maxTokenLength, length)
    }

    private func entryEquals<Scalars: Collection>(_ entry: Int, _ token: Scalars) -> Bool
    where Scalars.Element == Unicode.Scalar {
        let start = Int(self.starts[entry])
        let end = Int(self.starts[entry + 1])
        var index = start
        for scalar in token {
            if index == end || self.scalars[index] != scalar.value {
                return false
            }
            index += 1
        }
        return index == end
    }

    /// The id of the token spelled by `word[range]`, whose un-finalised ``Hasher`` state is `state`.
    @inline(__always)
    func lookup(_ word: UnsafeBufferPointer<Unicode.Scalar>, _ range: Range<Int>, state: UInt64) -> Int32? {
        let hash = Hasher.finalize(state)
        var slot = Int(truncatingIfNeeded: hash) & self.mask
        return self.slots.withUnsafeBufferPointer { slots in
            while true {
                let entry = Int(slots[slot])
                if entry < 0 {
                    return nil
                }
                if self.hashes[entry] == hash {
                    let start = Int(self.starts[entry])
                    let end = Int(self.starts[entry + 1])
                    if end - start == range.count {
                        var matches = true
                        var offset = 0
                        while offset < range.count {
                            if self.scalars[start + offset] != word[range.lowerBound + offset].value {
                                matches = false
                                break
                            }
                            offset += 1
                        }
                        if matches {
                            return self.ids[entry]
                        }
                    }
                }
                slot = (slot + 1) & self.mask
            }
        }
    }
}
