import TariffCore

/// How a field's text is read: money, compute units, a percent, an id, a date, one of a set of words.
///
/// Plugins read their options through these, so every plugin reports wrong values with the same
/// codes and messages as the core (`invalid-number`, `too-many-digits`, `invalid-percent`, ...).
public struct ValueType<Value: Sendable>: Sendable {
    /// How the expected value is named in messages ("an amount of money such as 49.00").
    public var expectation: String
    public var read: @Sendable (_ node: YAMLNode, _ diagnostics: DiagnosticSink) -> Value?
    /// How `tariff schema` and the options reference describe a value of this type. Carried by the
    /// type, so an option declared with `.money` is read as money and documented as money from the
    /// one word (`PluginOption`).
    public var optionType: OptionType

    /// `optionType` defaults to any value (`{}` in the schema): say what a new type accepts, so
    /// editors can check it.
    public init(expectation: String, optionType: OptionType = .schema([:]), read: @escaping @Sendable (YAMLNode, DiagnosticSink) -> Value?) {
        self.expectation = expectation
        self.optionType = optionType
        self.read = read
    }

    /// A type read from a scalar's text with a throwing parser.
    public static func scalar(_ expectation: String, optionType: OptionType = .schema([:]),
                              _ parse: @escaping @Sendable (Substring, SourceLocation, DiagnosticSink) -> Value?) -> ValueType {
        ValueType(expectation: expectation, optionType: optionType) { node, diagnostics in
            guard let text = node.scalarText else {
                diagnostics.error("wrong-type", at: node.location, "expected \(expectation), found \(node.kindName)")
                return nil
            }
            return parse(Substring(text), node.location, diagnostics)
        }
    }
}

extension DecimalText.Failure {
    /// The stable diagnostic code of each way a number can be wrong.
    public var diagnosticCode: DiagnosticCode {
        switch self {
        case .exponentNotation: "exponent-number"
        case .negative: "negative-amount"
        case .tooManyFractionalDigits: "too-many-digits"
        case .outOfRange: "out-of-range"
        case .empty, .notANumber: "invalid-number"
        }
    }
}

private func reportNumber(_ failure: DecimalText.Failure, _ text: Substring, _ what: String, _ location: SourceLocation, _ diagnostics: DiagnosticSink) {
    var message = "'\(text)' is not a valid \(what): \(failure)"
    var fix: String?
    if failure == .notANumber, text.hasSuffix("%") {
        message = "'\(text)' is a percent, but \(what) is expected here"
        fix = "write a plain decimal such as 0.50"
    } else if failure == .exponentNotation {
        fix = "write the number out in plain digits, e.g. 1000 instead of 1e3"
    }
    diagnostics.error(failure.diagnosticCode, at: location, message, fix: fix)
}

extension ValueType where Value == PlanMoney {
    /// A non-negative amount with at most 12 fractional digits (`49`, `49.00`, `"0.0000125"`).
    public static var money: ValueType<PlanMoney> {
        .scalar("an amount of money such as 49.00", optionType: .money) { text, location, diagnostics in
            do throws(DecimalText.Failure) { return try PlanMoney(parsing: text) } catch {
                reportNumber(error, text, "amount of money (at most 12 fractional digits)", location, diagnostics)
                return nil
            }
        }
    }
}

extension ValueType where Value == ComputeUnits {
    /// Compute units with at most 3 fractional digits.
    public static var computeUnits: ValueType<ComputeUnits> {
        .scalar("a number of compute units such as 10000", optionType: .computeUnits) { text, location, diagnostics in
            do throws(DecimalText.Failure) { return try ComputeUnits(parsing: text) } catch {
                reportNumber(error, text, "number of compute units (at most 3 fractional digits)", location, diagnostics)
                return nil
            }
        }
    }
}

extension ValueType where Value == MeterWeight {
    public static var meterWeight: ValueType<MeterWeight> {
        .scalar("a weight such as 0.001", optionType: .weight) { text, location, diagnostics in
            do throws(DecimalText.Failure) { return try MeterWeight(parsing: text) } catch {
                reportNumber(error, text, "weight (at most 9 fractional digits)", location, diagnostics)
                return nil
            }
        }
    }
}

extension ValueType where Value == MeterValue {
    public static var meterValue: ValueType<MeterValue> {
        .scalar("a meter reading such as 1200", optionType: .meterValue) { text, location, diagnostics in
            do throws(DecimalText.Failure) { return try MeterValue(parsing: text) } catch {
                reportNumber(error, text, "meter reading (at most 6 fractional digits)", location, diagnostics)
                return nil
            }
        }
    }
}

extension ValueType where Value == Percent {
    /// `15%`, `12.5%`: 0% to 100%, at most 4 fractional digits.
    public static var percent: ValueType<Percent> {
        .scalar("a percent such as 15%", optionType: .percent) { text, location, diagnostics in
            do throws(Percent.Failure) { return try Percent(parsing: text) } catch {
                switch error {
                case .missingPercentSign:
                    var fix = "write it as \(text)%"
                    // A fraction such as 0.10 is more likely a share written as a decimal than 0.1%.
                    if let fraction = try? DecimalText.parse(text, fractionalDigits: 6), fraction > 0, fraction < 1_000_000 {
                        fix = "write \(DecimalText.formatTrimmed(fraction * 100, fractionalDigits: 6))% for the share \(text), or \(text)% if you mean that many percent"
                    }
                    diagnostics.error("invalid-percent", at: location, "'\(text)' is not a percent: a percent ends with '%'", fix: fix)
                case .aboveHundred:
                    diagnostics.error("percent-range", at: location, "'\(text)' is outside 0% to 100%")
                case .number(.negative):
                    diagnostics.error("percent-range", at: location, "'\(text)' is outside 0% to 100%")
                case .number(let failure):
                    let code: DiagnosticCode = switch failure {
                    case .tooManyFractionalDigits: "too-many-digits"
                    case .exponentNotation: "exponent-number"
                    default: "invalid-percent"
                    }
                    diagnostics.error(code, at: location, "'\(text)' is not a valid percent: \(error)")
                }
                return nil
            }
        }
    }
}

extension ValueType where Value == Int {
    /// A whole number in `range`.
    public static func integer(in range: ClosedRange<Int>) -> ValueType<Int> {
        .scalar("a whole number from \(range.lowerBound) to \(range.upperBound)", optionType: .integer(range)) { text, location, diagnostics in
            guard let units = try? DecimalText.parse(text, fractionalDigits: 0, allowNegative: true),
                  let value = Int(exactly: units), range.contains(value) else {
                diagnostics.error("invalid-integer", at: location, "'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
                return nil
            }
            return value
        }
    }
}

extension ValueType where Value == Bool {
    /// `true` or `false` only: YAML 1.1's `yes`, `on`, `no` are refused, they surprise people.
    public static var boolean: ValueType<Bool> {
        .scalar("true or false", optionType: .boolean) { text, location, diagnostics in
            switch text {
            case "true": return true
            case "false": return false
            default:
                diagnostics.error("invalid-value", at: location, "'\(text)' is not a boolean: write true or false")
                return nil
            }
        }
    }
}

extension ValueType where Value == String {
    /// An id: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 128 characters.
    public static var id: ValueType<String> {
        .scalar("an id such as research-pro", optionType: .id) { text, location, diagnostics in
            guard Identifier.isValid(text) else {
                diagnostics.error("invalid-id", at: location, "'\(text)' is not a valid id: use letters, digits, '.', '_' and '-', starting with a letter or digit (at most \(Identifier.maximumLength) characters)")
                return nil
            }
            return String(text)
        }
    }

    /// One word of a fixed set, with a did-you-mean.
    public static func oneOf(_ choices: [String]) -> ValueType<String> {
        .scalar("one of \(choices.joined(separator: ", "))", optionType: .oneOf(choices)) { text, location, diagnostics in
            if choices.contains(String(text)) { return String(text) }
            var message = "'\(text)' is not one of \(choices.joined(separator: ", "))"
            if let suggestion = Suggestion.closest(to: String(text), among: choices) { message += "; did you mean '\(suggestion)'?" }
            diagnostics.error("invalid-value", at: location, message)
            return nil
        }
    }

    /// Any text.
    public static var text: ValueType<String> {
        .scalar("a text", optionType: .text) { text, _, _ in String(text) }
    }
}

extension ValueType where Value == Currency {
    public static var currency: ValueType<Currency> {
        .scalar("an ISO 4217 currency code such as USD", optionType: .currency) { text, location, diagnostics in
            if let currency = Currency(code: String(text)) { return currency }
            var message = "'\(text)' is not an ISO 4217 currency code"
            if let suggestion = Suggestion.closest(to: text.uppercased(), among: Currency.allCodes) { message += "; did you mean '\(suggestion)'?" }
            diagnostics.error("unknown-currency", at: location, message)
            return nil
        }
    }
}

extension ValueType where Value == Timestamp {
    /// A date (`2026-11-01`, midnight UTC) or an RFC 3339 timestamp.
    public static var dateOrTimestamp: ValueType<Timestamp> {
        .scalar("a date such as 2026-11-01", optionType: .dateOrTimestamp) { text, location, diagnostics in
            if let timestamp = Timestamp(dateOrTimestamp: String(text)) { return timestamp }
            diagnostics.error("invalid-date", at: location, "'\(text)' is not a date (2026-11-01) or an RFC 3339 timestamp (2026-11-02T10:00:00Z)")
            return nil
        }
    }
}

/// The id syntax shared by plans, agents, creators, meters and rule names.
public enum Identifier {
    public static let maximumLength = 128

    public static func isValid(_ text: some StringProtocol) -> Bool {
        let bytes = text.utf8
        guard let first = bytes.first, bytes.count <= maximumLength, isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
    }
}
