/// How serious a diagnostic is: errors stop a catalog from compiling, warnings do not.
public enum Severity: String, Sendable, Hashable, Comparable {
    case error
    case warning

    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs == .error && rhs == .warning }
}

/// A stable, documented identifier of a kind of mistake (`unknown-key`, `split-sum`).
///
/// Codes never change meaning once released: tools and tests match on them, never on the text.
public struct DiagnosticCode: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public var description: String { rawValue }
    public static func < (lhs: DiagnosticCode, rhs: DiagnosticCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One finding of the compiler: where, how serious, which code, what is wrong and how to fix it.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var severity: Severity
    public var code: DiagnosticCode
    public var location: SourceLocation
    /// What is wrong, in the plan author's terms, including a did-you-mean where one is close.
    public var message: String
    /// How to fix it, when the message alone does not say.
    public var fix: String?

    public init(_ severity: Severity, _ code: DiagnosticCode, at location: SourceLocation, _ message: String, fix: String? = nil) {
        self.severity = severity
        self.code = code
        self.location = location
        self.message = message
        self.fix = fix
    }

    /// `plans/pro.yaml:12:5: error[unknown-key]: unknown key 'alowance'; did you mean 'allowance'?`
    /// (The fix is shown apart, on its own line, by the renderers.)
    public var description: String { "\(location): \(severity.rawValue)[\(code)]: \(message)" }

    /// Diagnostics in the order people read them: by file, line, column, then code.
    public static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.sorted { ($0.location, $0.code.rawValue, $0.message) < ($1.location, $1.code.rawValue, $1.message) }
    }
}

/// Did-you-mean: the candidate closest to a misspelt word, when it is close enough to be a typo.
public enum Suggestion {
    /// The closest candidate by edit distance, if within a third of the word's length (at least 1, at most 3).
    public static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
        let limit = max(1, min(3, word.count / 3 + 1))
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            guard distance <= limit else { continue }
            if let current = best, current.1 <= distance { continue }
            best = (candidate, distance)
        }
        return best?.0
    }

    /// Damerau-Levenshtein (optimal string alignment): a swapped pair of letters counts as one edit.
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previousPrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previousPrevious[j - 2] + 1)
                }
            }
            (previousPrevious, previous, current) = (previous, current, previousPrevious)
        }
        return previous[b.count]
    }
}
