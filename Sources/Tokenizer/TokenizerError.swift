/// An error thrown while building a ``WordPieceTokenizer``.
///
/// Modelled after swift-nio's error structs: a struct wrapping a private enum so that new cases can be added
/// without breaking source compatibility. Compare against the static members, e.g.
/// `error == TokenizerError.missingSpecialToken("[UNK]")`.
public struct TokenizerError: Error, Hashable, CustomStringConvertible {
    private enum Base: Hashable {
        case emptyVocabulary
        case missingSpecialToken(String)
        case invalidMaxInputCharsPerWord(Int)
    }

    private var base: Base

    private init(_ base: Base) {
        self.base = base
    }

    /// The vocabulary has no tokens.
    public static let emptyVocabulary = TokenizerError(.emptyVocabulary)

    /// A special token the tokenizer needs (`[UNK]`, `[CLS]` or `[SEP]`) is not in the vocabulary.
    ///
    /// - Parameter token: The missing token, e.g. `"[UNK]"`.
    public static func missingSpecialToken(_ token: String) -> TokenizerError {
        TokenizerError(.missingSpecialToken(token))
    }

    /// The maximum number of characters per word must be at least 1.
    ///
    /// - Parameter value: The rejected value.
    public static func invalidMaxInputCharsPerWord(_ value: Int) -> TokenizerError {
        TokenizerError(.invalidMaxInputCharsPerWord(value))
    }

    /// A human-readable description of the error.
    public var description: String {
        switch self.base {
        case .emptyVocabulary:
            return "TokenizerError: the vocabulary is empty"
        case .missingSpecialToken(let token):
            return "TokenizerError: the vocabulary has no special token \(token)"
        case .invalidMaxInputCharsPerWord(let value):
            return "TokenizerError: maxInputCharsPerWord must be at least 1, got \(value)"
        }
    }
}
