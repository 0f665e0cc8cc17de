import Foundation

/// Character classes and canonical decompositions exactly as Hugging Face `tokenizers` uses them.
///
/// Hugging Face takes the general categories of the BERT normaliser and pre-tokeniser (control/format,
/// non-spacing mark, punctuation) from the `unicode_categories` 0.1.1 crate, whose tables are Unicode 8.0 and whose
/// "unassigned" (`Cn`) table is empty. This type reproduces that from the scalar's current category restricted to
/// scalars assigned by Unicode 8.0, so that e.g. newer emoji are kept (and become `[UNK]`) instead of deleted.
///
/// Scalars below ``tableLimit`` (Latin, Greek, Cyrillic, general punctuation, symbols, kana) are classified and
/// decomposed once per process into immutable tables, so the hot path does not call into Foundation.
struct ScalarClasses: Sendable {
    /// Classes of one scalar.
    struct Flags: OptionSet, Sendable {
        var rawValue: UInt8

        /// Deleted by clean-text: `Cc`, `Cf` (Unicode 8.0) or `Co`; `\t`, `\n`, `\r` are handled by the caller.
        static let control = Flags(rawValue: 1 << 0)
        /// `White_Space` (Rust's `char::is_whitespace`).
        static let whitespace = Flags(rawValue: 1 << 1)
        /// Unicode `P*` (Unicode 8.0); ASCII punctuation is handled by the caller.
        static let punctuation = Flags(rawValue: 1 << 2)
        /// `Mn` (Unicode 8.0): dropped after NFD when stripping accents.
        static let droppedMark = Flags(rawValue: 1 << 3)
        /// The full lowercase mapping differs from the scalar.
        static let changesWhenLowercased = Flags(rawValue: 1 << 4)
        /// A combining mark (canonical combining class > 0) that is not dropped, so canonical reordering matters.
        static let keptCombiningMark = Flags(rawValue: 1 << 5)
    }

    /// The canonical (NFD) decomposition of one scalar.
    enum Decomposition {
        /// The scalar is its own decomposition.
        case none
        /// The decomposition is `decompositions[range]`.
        case table(Range<Int>)
        /// A Hangul syllable: leading consonant, vowel and optional trailing consonant jamo.
        case hangul(Unicode.Scalar, Unicode.Scalar, Unicode.Scalar?)
        /// Not precomputed: the caller must use a full NFD.
        case unknown
    }

    /// The tables shared by every tokenizer in the process (immutable once built).
    static let shared = ScalarClasses()

    /// Scalars below this value are precomputed.
    static let tableLimit: UInt32 = 0x3100

    /// Per scalar below ``tableLimit``: flags (bits 0–7), decomposition length (bits 8–10), offset (bits 11–31).
    private let info: [UInt32]
    /// Concatenated decompositions of the scalars below ``tableLimit`` that have one.
    let decompositions: [Unicode.Scalar]

    private init() {
        let limit = Int(Self.tableLimit)
        var info = [UInt32](repeating: 0, count: limit)
        var view = String.UnicodeScalarView()
        for value in 0..<Self.tableLimit {
            guard let scalar = Unicode.Scalar(value) else {
                continue
            }
            info[Int(value)] = UInt32(Self.computeFlags(scalar).rawValue)
            if value >= 0xC0 {
                view.append(scalar)
                view.append("\n")
            }
        }
        // One NFD call for the whole range: the separators are starters, so each segment is one decomposition.
        var decompositions: [Unicode.Scalar] = []
        let decomposed = String(view).decomposedStringWithCanonicalMapping
        var value: UInt32 = 0xC0
        var segment: [Unicode.Scalar] = []
        for scalar in decomposed.unicodeScalars {
            guard scalar != "\n" else {
                if segment.count != 1 || segment[0].value != value {
                    precondition(segment.count <= 7, "canonical decomposition longer than the table allows")
                    let offset = UInt32(decompositions.count)
                    decompositions.append(contentsOf: segment)
                    info[Int(value)] |= UInt32(segment.count) << 8 | offset << 11
                }
                segment.removeAll(keepingCapacity: true)
                value += 1
                continue
            }
            segment.append(scalar)
        }
        self.info = info
        self.decompositions = decompositions
    }

    /// The classes of a scalar.
    @inline(__always)
    func flags(of scalar: Unicode.Scalar) -> Flags {
        let value = scalar.value
        if value < Self.tableLimit {
            return Flags(rawValue: UInt8(truncatingIfNeeded: self.info[Int(value)]))
        }
        if Self.isChineseCharacter(value) || (0xAC00...0xD7A3).contains(value) {
            // Ideographs and Hangul syllables are `Lo`: no class applies.
            return []
        }
        return Self.computeFlags(scalar)
    }

    /// The canonical decomposition of a scalar (for scalars from U+0080 on).
    @inline(__always)
    func decomposition(of scalar: Unicode.Scalar) -> Decomposition {
        let value = scalar.value
        if value < Self.tableLimit {
            let entry = self.info[Int(value)]
            let length = Int((entry >> 8) & 0x7)
            if length == 0 {
                return .none
            }
            let offset = Int(entry >> 11)
            return .table(offset..<(offset + length))
        }
        if value >= 0xAC00 && value <= 0xD7A3 {
            let index = value - 0xAC00
            let trailing = index % 28
            return .hangul(
                Unicode.Scalar(0x1100 + index / 588)!,
                Unicode.Scalar(0x1161 + (index % 588) / 28)!,
                trailing == 0 ? nil : Unicode.Scalar(0x11A7 + trailing)!
            )
        }
        // Every other canonical decomposition lies in these ranges (checked against Foundation for all scalars).
        if (0xF900...0xFB4F).contains(value) || (0x10000..<0x1F000).contains(value)
            || (0x2F800...0x2FA1F).contains(value)
        {
            return .unknown
        }
        return .none
    }

    /// The CJK ranges of Hugging Face's `is_chinese_char` (note: Extension E starts at U+2B920 there).
    @inline(__always)
    static func isChineseCharacter(_ value: UInt32) -> Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Whether the scalar was assigned in Unicode 8.0 or earlier (the version of `unicode_categories` 0.1.1).
    private static func isAssignedByUnicode8(_ properties: Unicode.Scalar.Properties) -> Bool {
        guard let age = properties.age else {
            return false
        }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// Classifies a scalar from its Unicode properties.
    static func computeFlags(_ scalar: Unicode.Scalar) -> Flags {
        let properties = scalar.properties
        var flags: Flags = []
        switch properties.generalCategory {
        case .control, .format:
            if self.isAssignedByUnicode8(properties) {
                flags.insert(.control)
            }
        case .privateUse:
            flags.insert(.control)
        case .nonspacingMark:
            if self.isAssignedByUnicode8(properties) {
                flags.insert(.droppedMark)
            }
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            if self.isAssignedByUnicode8(properties) {
                flags.insert(.punctuation)
            }
        default:
            break
        }
        if properties.isWhitespace {
            flags.insert(.whitespace)
        }
        if properties.changesWhenLowercased {
            flags.insert(.changesWhenLowercased)
        }
        if properties.canonicalCombiningClass != .notReordered && !flags.contains(.droppedMark) {
            flags.insert(.keptCombiningMark)
        }
        return flags
    }
}
