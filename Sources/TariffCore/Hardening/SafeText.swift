/// Text from input (ids, keys, file names, URLs) made safe to print: control characters (C0, DEL,
/// C1, and the bidirectional overrides that reorder what a terminal shows) are written as `\u{..}`
/// escapes, so an id holding `ESC[2J` or a carriage return cannot clear or rewrite the terminal.
public enum SafeText {
    public static func escaping(_ text: String) -> String { escaping(text, keepingLines: false) }

    /// The same, keeping line feeds and tabs (a multi-line message or table printed to a terminal).
    public static func escaping(_ text: String, keepingLines: Bool) -> String {
        // Fast path: nothing below 0x20, no DEL, no C1 (UTF-8 C2 80...9F) and no bidi control (E2 80/81 ...).
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 || $0 == 0xE2 }) { return text }
        guard text.unicodeScalars.contains(where: { needsEscape($0) && !(keepingLines && ($0 == "\n" || $0 == "\t")) }) else { return text }
        var output = ""
        output.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) && !(keepingLines && (scalar == "\n" || scalar == "\t")) {
                output += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
    }
}

/// The one redaction of URL-like values (ledger URLs, `STRIPE_API_BASE`, anything a user passes
/// that may hold a password): every credential is replaced by `***` before the value reaches an
/// error message, a log line or the terminal.
///
/// It does not parse the URL (a value that fails to parse is exactly the one printed in an error):
/// it accepts any scheme, in any case (`Postgres://`, `postgress://`, `pg://`, `sqlite://`),
/// leading spaces, and no scheme at all. The rule: the user information, i.e. everything between
/// the start of the authority (after `scheme://`, or `scheme:` when no `//` follows, or the start of
/// the value) and the last `@` before the path, keeps its user name (after `//` only) and loses the
/// rest; query items
/// named like a secret (`password`, `pass`, `pwd`, `secret`, `token`, `key`, `sslpassword`, ...)
/// lose their values.
public enum Redaction {
    public static func url(_ value: String) -> String {
        var text = Substring(value)
        var prefix = ""
        // Leading white space is kept as it is (the caller shows what was given).
        let leading = text.prefix { $0 == " " || $0 == "\t" }
        prefix += leading
        text = text.dropFirst(leading.count)
        // The scheme: letters, digits, + - . up to the first ':' (any spelling).
        if let colon = text.firstIndex(of: ":"),
           text[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) {
            prefix += text[...colon]
            text = text[text.index(after: colon)...]
        }
        // Without `//` what looks like a scheme may be a user name (`u:SECRET@host`): the whole
        // user information is hidden then.
        let hasAuthorityMarker = text.hasPrefix("/")
        while text.hasPrefix("/") {
            prefix += "/"
            text = text.dropFirst()
        }
        // The authority ends at the first '/', '?' or '#'; its user information at its last '@'.
        let authorityEnd = text.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? text.endIndex
        var rest = text
        var userinfo = ""
        if let at = text[..<authorityEnd].lastIndex(of: "@") {
            let info = text[..<at]
            let user = info.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            userinfo = !hasAuthorityMarker ? "***@" : (info.contains(":") ? String(user) + ":***" : String(user)) + "@"
            rest = text[text.index(after: at)...]
        } else if !text[..<authorityEnd].isEmpty, text.contains("@") {
            // An '@' past the authority (a password holding '/', unencoded): hide everything to it.
            if let at = text.lastIndex(of: "@") {
                userinfo = "***@"
                rest = text[text.index(after: at)...]
            }
        }
        return SafeText.escaping(prefix + userinfo + redactingQuery(rest))
    }

    static let secretNames: Set<String> = ["password", "pass", "passwd", "pwd", "secret", "token", "key", "apikey", "api_key",
                                           "access_token", "sslpassword", "sslkey", "auth", "authorization", "credentials"]

    private static func redactingQuery(_ text: Substring) -> String {
        guard let question = text.firstIndex(of: "?") else { return String(text) }
        var output = String(text[...question])
        let query = text[text.index(after: question)...]
        var first = true
        for item in query.split(separator: "&", omittingEmptySubsequences: false) {
            if !first { output += "&" }
            first = false
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, secretNames.contains(parts[0].lowercased()) {
                output += parts[0] + "=***"
            } else {
                output += item
            }
        }
        return output
    }
}
