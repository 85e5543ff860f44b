import TariffCore
import Yams

/// Stage 1 of the compiler: YAML text -> positioned `YAMLNode`s, through Yams (libyaml).
public enum YAMLLoader {
    /// Files larger than this are refused before parsing: a plan is a page, not a data set.
    public static let maximumFileBytes = 1 << 20

    /// Parses one YAML document. Syntax errors, duplicate keys, anchors/aliases and non-scalar keys
    /// become diagnostics; nil is returned when nothing usable could be read.
    public static func load(_ text: String, file: String, diagnostics: DiagnosticSink) -> YAMLNode? {
        let start = SourceLocation(file: file, line: 1, column: 1)
        guard text.utf8.count <= maximumFileBytes else {
            diagnostics.error("file-too-large", at: start, "the file is larger than \(maximumFileBytes) bytes", fix: "split it into one plan per file")
            return nil
        }
        // Yams composes nodes recursively: a flow collection nested a hundred thousand levels deep
        // would exhaust the stack before any depth check on the result, so it is refused here.
        if let location = excessiveFlowNesting(text, file: file) {
            diagnostics.error("yaml-too-deep", at: location, "the YAML is nested more than \(maximumDepth) levels deep")
            return nil
        }
        let root: Node?
        let parser: Parser
        do {
            parser = try Parser(yaml: text, resolver: .basic, constructor: .default, encoding: .utf8)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            report(error, file: file, diagnostics: diagnostics)
            return nil
        } catch {
            diagnostics.error("yaml-syntax", at: start, "the file is not valid YAML: \(error)")
            return nil
        }
        guard let root else {
            return YAMLNode(kind: .null, location: start)
        }
        // Yams resolves an alias to the anchored node itself, so an anchor is what shows that one was
        // used. Nodes hold their anchor weakly and the parser keeps it alive: keep the parser alive.
        return withExtendedLifetime(parser) { convert(root, file: file, diagnostics: diagnostics, depth: 0) }
    }

    /// Nesting deeper than this is refused: no plan needs it, and it bounds recursion.
    static let maximumDepth = 32

    /// The position where flow brackets (`[`, `{`) first nest deeper than `maximumDepth`, outside quotes and comments.
    static func excessiveFlowNesting(_ text: String, file: String) -> SourceLocation? {
        var depth = 0, line = 1, column = 0
        var quote: UInt8? = nil
        var comment = false
        var previous: UInt8 = UInt8(ascii: " ")
        for byte in text.utf8 {
            column += 1
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 0
                comment = false
                previous = byte
                continue
            }
            defer { previous = byte }
            if comment { continue }
            if let open = quote {
                if byte == open { quote = nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
            case UInt8(ascii: "#") where previous == UInt8(ascii: " ") || previous == UInt8(ascii: "\t") || column == 1: comment = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth { return SourceLocation(file: file, line: line, column: column) }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
        }
        return nil
    }

    private static func location(_ mark: Mark?, file: String) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private static func convert(_ node: Node, file: String, diagnostics: DiagnosticSink, depth: Int) -> YAMLNode? {
        let here = location(node.mark, file: file)
        guard depth < maximumDepth else {
            diagnostics.error("yaml-too-deep", at: here, "the YAML is nested more than \(maximumDepth) levels deep")
            return nil
        }
        if node.anchor != nil {
            diagnostics.error("yaml-alias", at: here, "anchors and aliases (&name, *name) are not supported in a catalog", fix: "write the value out where it is used")
            return nil
        }
        switch node {
        case .scalar(let scalar):
            let plain = scalar.style == .plain || scalar.style == .any
            if plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                return YAMLNode(kind: .null, location: here)
            }
            return YAMLNode(kind: .scalar(scalar.string, plain: plain), location: here)
        case .sequence(let sequence):
            var elements: [YAMLNode] = []
            for element in sequence {
                guard let converted = convert(element, file: file, diagnostics: diagnostics, depth: depth + 1) else { return nil }
                elements.append(converted)
            }
            return YAMLNode(kind: .sequence(elements), location: here)
        case .mapping(let mapping):
            var pairs: [YAMLPair] = []
            for (key, value) in mapping {
                let keyLocation = location(key.mark, file: file)
                guard case .scalar(let keyScalar) = key else {
                    diagnostics.error("wrong-type", at: keyLocation, "a key must be a plain name, not \(key.mapping != nil ? "a mapping" : "a list")")
                    return nil
                }
                guard let converted = convert(value, file: file, diagnostics: diagnostics, depth: depth + 1) else { return nil }
                pairs.append(YAMLPair(key: keyScalar.string, keyLocation: keyLocation, value: converted))
            }
            return YAMLNode(kind: .mapping(pairs), location: here)
        case .alias:
            diagnostics.error("yaml-alias", at: here, "anchors and aliases (&name, *name) are not supported in a catalog", fix: "write the value out where it is used")
            return nil
        }
    }

    private static func report(_ error: YamlError, file: String, diagnostics: DiagnosticSink) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            if problem == "found undefined alias" {
                diagnostics.error("yaml-alias", at: location(mark, file: file), "aliases (*name) are not supported in a catalog", fix: "write the value out where it is used")
                return
            }
            if problem.hasPrefix("Maximum nesting level") {
                // libyaml's own bound (1000 levels), hit before the compiler's.
                diagnostics.error("yaml-too-deep", at: location(mark, file: file), "the YAML is nested more than \(maximumDepth) levels deep")
                return
            }
            var message = "YAML syntax: \(problem)"
            var at = location(mark, file: file)
            if let context {
                // A quote, a flow [ ] or { }, or a key that is never finished is noticed lines later
                // (often at the end of the file): point at where it starts, and say where it was noticed.
                let unfinished = ["while scanning a quoted scalar", "while scanning a simple key", "while parsing a flow"]
                if unfinished.contains(where: { context.text.hasPrefix($0) }) {
                    at = location(context.mark, file: file)
                    message += " (\(context.text) started here; noticed at \(mark.line):\(mark.column))"
                } else {
                    message += " (\(context.text) at \(context.mark.line):\(context.mark.column))"
                }
            }
            diagnostics.error("yaml-syntax", at: at, message)
        case .duplicatedKeysInMapping(let duplicates, let context):
            diagnostics.error("duplicate-key", at: location(context.mark, file: file),
                              "the key '\(duplicates.joined(separator: "', '"))' is written twice in one mapping", fix: "keep one of them")
        case .reader(let problem, _, _, _):
            diagnostics.error("yaml-syntax", at: SourceLocation(file: file, line: 1, column: 1), "the file cannot be read as UTF-8 YAML: \(problem)")
        default:
            diagnostics.error("yaml-syntax", at: SourceLocation(file: file, line: 1, column: 1), "the file is not valid YAML: \(error)")
        }
    }
}
