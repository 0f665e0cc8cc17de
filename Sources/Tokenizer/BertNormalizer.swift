import Foundation

/// Settings of the BERT normaliser, mirroring Hugging Face `tokenizers`' `BertNormalizer`.
public struct BertNormalizerOptions: Sendable, Equatable, Codable {
    /// Delete control and format characters and map every whitespace character to a plain space.
    public var cleanText: Bool
    /// Surround CJK ideographs with spaces so that each becomes its own word.
    public var handleChineseChars: Bool
    /// Lowercase every code point (full lowercase mapping, no context-sensitive rules).
    public var lowercase: Bool
    /// Strip accents (NFD, then drop non-spacing marks); `nil` follows ``lowercase`` as in Hugging Face.
    public var stripAccents: Bool?

    /// Creates normaliser settings; the defaults are those of uncased BERT models.
    public init(
        cleanText: Bool = true,
        handleChineseChars: Bool = true,
        lowercase: Bool = true,
        stripAccents: Bool? = nil
    ) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.lowercase = lowercase
        self.stripAccents = stripAccents
    }

    /// Whether accents are stripped once `nil` has been resolved.
    public var effectiveStripAccents: Bool {
        self.stripAccents ?? self.lowercase
    }

    private enum CodingKeys: String, CodingKey {
        case cleanText
        case handleChineseChars
        case lowercase
        case stripAccents
    }

    /// Decodes the settings; missing keys take their default values.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.cleanText = try container.decodeIfPresent(Bool.self, forKey: .cleanText) ?? true
        self.handleChineseChars = try container.decodeIfPresent(Bool.self, forKey: .handleChineseChars) ?? true
        self.lowercase = try container.decodeIfPresent(Bool.self, forKey: .lowercase) ?? true
        self.stripAccents = try container.decodeIfPresent(Bool.self, forKey: .stripAccents)
    }

    /// Encodes the settings; `stripAccents` is omitted when `nil`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.cleanText, forKey: .cleanText)
        try container.encode(self.handleChineseChars, forKey: .handleChineseChars)
        try container.encode(self.lowercase, forKey: .lowercase)
        try container.encodeIfPresent(self.stripAccents, forKey: .stripAccents)
    }
}


/// The BERT normaliser of Hugging Face `tokenizers`, working on arrays of Unicode scalars.
///
/// Steps, in order: clean text, pad CJK ideographs with spaces, strip accents (NFD then drop `Mn`), lowercase.
/// Character classes come from ``ScalarClasses``, which reproduces the Unicode 8.0 tables Hugging Face uses.
struct BertNormalizer: Sendable {
    /// The settings in use.
    let options: BertNormalizerOptions
    private let stripAccents: Bool
    private let classes: ScalarClasses

    /// Creates a normaliser with the given settings.
    init(options: BertNormalizerOptions) {
        self.options = options
        self.stripAccents = options.effectiveStripAccents
        self.classes = ScalarClasses.shared
    }

    /// Normalises `input` and appends the result to `output`.
    ///
    /// - Parameters:
    ///   - input: Raw text as Unicode scalars (one piece between added tokens).
    ///   - output: Receives the normalised scalars.
    func normalize(_ input: ArraySlice<Unicode.Scalar>, into output: inout [Unicode.Scalar]) {
        let cleanText = self.options.cleanText
        let handleChineseChars = self.options.handleChineseChars
        // Stage 1: clean text and CJK padding.
        var stage: [Unicode.Scalar] = []
        stage.reserveCapacity(input.count + 8)
        var allASCII = true
        for scalar in input {
            let value = scalar.value
            if value < 0x80 {
                if cleanText && (value < 0x20 || value == 0x7F) {
                    // \t \n \r are whitespace; every other C0 control (NUL included) is deleted.
                    if value == 0x09 || value == 0x0A || value == 0x0D {
                        stage.append(" ")
                    }
                    continue
                }
                stage.append(scalar)
                continue
            }
            allASCII = false
            if cleanText {
                let flags = self.classes.flags(of: scalar)
                if value == 0xFFFD || flags.contains(.control) {
                    continue
                }
                if flags.contains(.whitespace) {
                    stage.append(" ")
                    continue
                }
            }
            if handleChineseChars && ScalarClasses.isChineseCharacter(value) {
                stage.append(" ")
                stage.append(scalar)
                stage.append(" ")
                continue
            }
            stage.append(scalar)
        }

        // Stage 2: strip accents and lowercase.
        output.reserveCapacity(output.count + stage.count)
        if allASCII {
            if self.options.lowercase {
                for scalar in stage {
                    let value = scalar.value
                    if value >= 0x41 && value <= 0x5A {
                        output.append(Unicode.Scalar(UInt8(truncatingIfNeeded: value | 0x20)))
                    } else {
                        output.append(scalar)
                    }
                }
            } else {
                output.append(contentsOf: stage)
            }
        } else if !self.stripAccents {
            for scalar in stage {
                self.appendLowercased(scalar, flags: self.classes.flags(of: scalar), to: &output)
            }
        } else {
            let rollback = output.count
            if !self.appendStrippingAccents(stage, to: &output) {
                // A decomposition outside the precomputed tables, or a kept combining mark that canonical
                // reordering could move: let Foundation do the full NFD.
                output.removeSubrange(rollback...)
                var view = String.UnicodeScalarView()
                view.append(contentsOf: stage)
                let decomposed = String(view).decomposedStringWithCanonicalMapping
                for scalar in decomposed.unicodeScalars {
                    let flags = self.classes.flags(of: scalar)
                    if !flags.contains(.droppedMark) {
                        self.appendLowercased(scalar, flags: flags, to: &output)
                    }
                }
            }
        }
    }

    /// NFD with the precomputed decompositions, dropping non-spacing marks and lowercasing.
    ///
    /// - Returns: `false` when the result may differ from a full NFD and the caller must fall back to Foundation.
    private func appendStrippingAccents(_ stage: [Unicode.Scalar], to output: inout [Unicode.Scalar]) -> Bool {
        for scalar in stage {
            let value = scalar.value
            if value < 0x80 {
                self.appendLowercasedASCII(scalar, to: &output)
                continue
            }
            switch self.classes.decomposition(of: scalar) {
            case .none:
                if !self.appendStrippedScalar(scalar, to: &output) {
                    return false
                }
            case .table(let range):
                for index in range {
                    if !self.appendStrippedScalar(self.classes.decompositions[index], to: &output) {
                        return false
                    }
                }
            case .hangul(let leading, let vowel, let trailing):
                // Conjoining jamo: letters without case, marks or decompositions.
                output.append(leading)
                output.append(vowel)
                if let trailing {
                    output.append(trailing)
                }
            case .unknown:
                return false
            }
        }
        return true
    }

    /// Appends one fully decomposed scalar unless it is a dropped mark; fails on a kept combining mark.
    @inline(__always)
    private func appendStrippedScalar(_ scalar: Unicode.Scalar, to output: inout [Unicode.Scalar]) -> Bool {
        let flags = self.classes.flags(of: scalar)
        if flags.contains(.droppedMark) {
            return true
        }
        if flags.contains(.keptCombiningMark) {
            return false
        }
        self.appendLowercased(scalar, flags: flags, to: &output)
        return true
    }

    @inline(__always)
    private func appendLowercasedASCII(_ scalar: Unicode.Scalar, to output: inout [Unicode.Scalar]) {
        let value = scalar.value
        if self.options.lowercase && value >= 0x41 && value <= 0x5A {
            output.append(Unicode.Scalar(UInt8(truncatingIfNeeded: value | 0x20)))
        } else {
            output.append(scalar)
        }
    }

    @inline(__always)
    private func appendLowercased(
        _ scalar: Unicode.Scalar,
        flags: ScalarClasses.Flags,
        to output: inout [Unicode.Scalar]
    ) {
        if scalar.value < 0x80 {
            self.appendLowercasedASCII(scalar, to: &output)
        } else if self.options.lowercase && flags.contains(.changesWhenLowercased) {
            output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        } else {
            output.append(scalar)
        }
    }
}

/// The BERT pre-tokeniser: splits on whitespace (dropped) and isolates every punctuation character.
struct BertPreTokenizer: Sendable {
    private let classes = ScalarClasses.shared

    /// Calls `body` with the index range of each word of `text`, in order. Words are never empty.
    @inline(__always)
    func forEachWord(in text: UnsafeBufferPointer<Unicode.Scalar>, _ body: (Range<Int>) -> Void) {
        var wordStart = -1
        var index = 0
        let count = text.count
        while index < count {
            let scalar = text[index]
            let value = scalar.value
            let isWhitespace: Bool
            let isPunctuation: Bool
            if value < 0x80 {
                isWhitespace = value == 0x20 || (value >= 0x09 && value <= 0x0D)
                isPunctuation = (value >= 33 && value <= 47) || (value >= 58 && value <= 64)
                    || (value >= 91 && value <= 96) || (value >= 123 && value <= 126)
            } else {
                let flags = self.classes.flags(of: scalar)
                isWhitespace = flags.contains(.whitespace)
                isPunctuation = flags.contains(.punctuation)
            }
            if isWhitespace {
                if wordStart >= 0 {
                    body(wordStart..<index)
                    wordStart = -1
                }
            } else if isPunctuation {
                if wordStart >= 0 {
                    body(wordStart..<index)
                    wordStart = -1
                }
                body(index..<(index + 1))
            } else if wordStart < 0 {
                wordStart = index
            }
            index += 1
        }
        if wordStart >= 0 {
            body(wordStart..<count)
        }
    }
}
