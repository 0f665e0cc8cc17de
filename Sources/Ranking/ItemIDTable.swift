#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels

/// The catalog's item id -> row lookup: an open-addressing table over the index's own id bytes.
///
/// A ranking request names up to thousands of candidates, and each is looked up once per request, so this lookup is
/// on the worker's hottest path. `[String: UInt32]` spent most of its time in SipHash (seeding, combining and
/// finalising a `Hasher` per id) and in cache misses on its 16-byte keys. This table keeps one `UInt64` per slot (a
/// 32-bit tag from the hash and the row), hashes the id's UTF-8 bytes eight at a time (each word folded in through a
/// 64 x 64 -> 128-bit multiply whose halves are xored, then the MurmurHash3 finaliser), and confirms a tag match
/// against the id bytes stored in the index itself; it holds no copy of the ids.
///
/// Ids match **byte for byte** (their UTF-8), like protobuf and JSON keys: "é" and "e\u{301}" are two ids, although
/// Swift's `String` would call them equal. `ExactID` gives sets of ids the same rule.
///
/// The seed is drawn per table, so which ids collide is not predictable from outside; linear probing at a load of
/// at most one half keeps probes short.
package struct ItemIDTable {
    /// What building the table found wrong with the id table.
    package enum BuildError: Error, Equatable {
        /// The same id is stored at two rows.
        case duplicate(String)
    }

    private var slots: [UInt64]
    private let mask: Int
    private let seed: UInt64
    private let hashMask: UInt64
    /// Byte offsets of row r's id: `offsets[r] ..< offsets[r + 1]` in `bytes` (little-endian).
    private let offsets: UnsafePointer<UInt32>
    private let bytes: UnsafePointer<UInt8>

    /// Builds the table for `count` ids stored as `offsets` into `bytes` (the index's id table, which must outlive
    /// the table; offsets already checked to lie within `bytes`).
    ///
    /// `hashMask` is for tests: `0` gives every id the same hash, so all share one probe chain and every tag
    /// matches, which exercises the byte comparison and the lookups that walk past other ids.
    package init(
        count: Int, offsets: UnsafePointer<UInt32>, bytes: UnsafePointer<UInt8>, hashMask: UInt64 = .max
    ) throws(BuildError) {
        var capacity = 16
        while capacity < 2 * count { capacity <<= 1 }
        self.slots = [UInt64](repeating: 0, count: capacity)
        self.mask = capacity - 1
        self.seed = UInt64.random(in: .min ... .max)
        self.hashMask = hashMask
        self.offsets = offsets
        self.bytes = bytes
        for r in 0..<count {
            let id = idBytes(ofRow: r)
            let h = hash(id)
            switch probe(id, hash: h) {
            case .found: throw .duplicate(String(decoding: id, as: UTF8.self))
            case .empty(let i): slots[i] = (h & 0xFFFF_FFFF_0000_0000) | UInt64(r + 1)
            }
        }
    }

    /// Where a probe for an id ends: at its row, or at the empty slot that shows it is absent (where it would go).
    private enum Probe {
        case found(row: Int)
        case empty(slot: Int)
    }

    /// Walks the id's probe chain from its hash's slot, confirming each tag match against the stored bytes.
    private func probe(_ utf8: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> Probe {
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != 0 {
            if slots[i] >> 32 == h >> 32 {
                let row = Int(UInt32(truncatingIfNeeded: slots[i])) - 1
                if equals(row: row, utf8) { return .found(row: row) }
            }
            i = (i + 1) & mask
        }
        return .empty(slot: i)
    }

    /// The row of `id`, or nil when the catalog does not hold it.
    package func row(of id: String) -> UInt32? {
        var id = id
        return id.withUTF8 { row(ofUTF8: $0) }
    }

    /// The row of the id spelled by `utf8`, or nil.
    package func row(ofUTF8 utf8: UnsafeBufferPointer<UInt8>) -> UInt32? {
        if case .found(let row) = probe(utf8, hash: hash(utf8)) { return UInt32(row) }
        return nil
    }

    /// The rows of many ids (nil: not in the catalog), the same as `row(of:)` for each, in passes over all of them:
    /// hash every id and prefetch its slot, then read the slots and prefetch each first tag match's id offsets,
    /// then prefetch the id bytes, then confirm. The ids of a request are in no catalog order, so each step is a
    /// cache miss; in passes the misses of different ids overlap instead of each id waiting on its own three in turn.
    package func rows(of ids: [String]) -> [UInt32?] {
        let n = ids.count
        // Per id: its hash, then (once its slots are read) the row whose tag matched first, + 1 (0: an empty slot
        // came first, so the id is not in the table).
        var work = [UInt64](repeating: 0, count: n)
        slots.withUnsafeBufferPointer { slots in
            for i in 0..<n {
                var id = ids[i]
                let h = id.withUTF8 { hash($0) }
                work[i] = h
                zrk_prefetch(slots.baseAddress! + (Int(truncatingIfNeeded: h) & mask))
            }
            for i in 0..<n {
                let h = work[i]
                work[i] = 0
                var j = Int(truncatingIfNeeded: h) & mask
                while slots[j] != 0 {
                    if slots[j] >> 32 == h >> 32 {
                        work[i] = slots[j] & 0xFFFF_FFFF
                        zrk_prefetch(offsets + Int(work[i]) - 1)
                        break
                    }
                    j = (j + 1) & mask
                }
            }
        }
        for i in 0..<n where work[i] != 0 {
            zrk_prefetch(idBytes(ofRow: Int(work[i]) - 1).baseAddress)
        }
        var rows = [UInt32?](repeating: nil, count: n)
        for i in 0..<n where work[i] != 0 {
            let tagged = Int(work[i]) - 1
            var id = ids[i]
            rows[i] = id.withUTF8 { utf8 in
                // A tag shared by another id (rare): the full probe decides.
                equals(row: tagged, utf8) ? UInt32(tagged) : row(ofUTF8: utf8)
            }
        }
        return rows
    }

    /// Row r's id as stored in the index.
    private func idBytes(ofRow r: Int) -> UnsafeBufferPointer<UInt8> {
        let a = Int(UInt32(littleEndian: offsets[r]))
        return UnsafeBufferPointer(start: bytes + a, count: Int(UInt32(littleEndian: offsets[r + 1])) - a)
    }

    private func equals(row r: Int, _ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let stored = idBytes(ofRow: r)
        guard stored.count == utf8.count else { return false }
        guard stored.count > 0 else { return true }
        return memcmp(stored.baseAddress!, utf8.baseAddress!, stored.count) == 0
    }

    /// A seeded 64-bit hash of `utf8`: eight bytes at a time, each word folded in by `mix`, the tail zero-padded,
    /// the length mixed in first, the MurmurHash3 finaliser last. The high 32 bits are the slot's tag, the low bits pick
    /// the slot, so both halves are mixed.
    private func hash(_ utf8: UnsafeBufferPointer<UInt8>) -> UInt64 {
        seededHash(utf8) & hashMask
    }

    private func seededHash(_ utf8: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let n = utf8.count
        var h = seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15)
        guard let p = utf8.baseAddress else { return Self.finish(h) }
        let raw = UnsafeRawPointer(p)
        var o = 0
        while o + 8 <= n {
            h = Self.mix(h ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
            o += 8
        }
        if o < n {
            var w: UInt64 = 0
            for k in 0..<(n - o) { w |= UInt64(p[o + k]) << (8 * UInt64(k)) }
            h = Self.mix(h ^ w)
        }
        return Self.finish(h)
    }

    /// x times a 64-bit odd constant as a 128-bit product, its high and low halves xored (the fold of wyhash).
    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        let m = x.multipliedFullWidth(by: 0xA076_1D64_78BD_642F)
        return m.high ^ m.low
    }

    /// The 64-bit finaliser of MurmurHash3: every input bit reaches every output bit.
    @inline(__always)
    private static func finish(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }
}

/// An item id that compares and hashes by its UTF-8 bytes, the rule the catalog index matches ids by (see
/// `ItemIDTable`); sets of ids outside the catalog and the catalog reader's duplicate check use it, so that every
/// place agrees on when two ids are the same.
struct ExactID: Hashable {
    var id: String

    static func == (a: ExactID, b: ExactID) -> Bool { a.id.utf8.elementsEqual(b.id.utf8) }

    func hash(into hasher: inout Hasher) {
        var id = id
        id.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
