import Foundation
import Tariff

/// Parses one trace line into an event, or says why it is rejected. Never traps.
struct TraceParser {
    /// The catalog's meter names as bytes, by index.
    let meterNameBytes: [[UInt8]]

    init(meterNames: [String]) {
        meterNameBytes = meterNames.map { Array($0.utf8) }
    }

    /// Fields of any event, as read (before checking which are required).
    private struct Fields {
        var type: FieldValue?
        var id: FieldValue?
        var consumer: FieldValue?
        var agent: FieldValue?
        var plan: FieldValue?
        var at: FieldValue?
        var startedAt: FieldValue?
        var endedAt: FieldValue?
        var status: FieldValue?
        var amountText: Substring?
        var meters = MeterReadings()
        var meterMask: UInt16 = 0
        var unknownMeters: [String] = []
        var metersSeen = false
        var amountIsNumber = false
        /// The first type problem met while reading fields (the line is rejected with it).
        var problem: String?
    }

    enum Outcome {
        case event(TraceEvent)
        case rejected(String)
        case blank
    }

    func parse(_ bytes: UnsafeBufferPointer<UInt8>, line: Int) -> Outcome {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        if scanner.atEnd { return .blank }
        var fields = Fields()
        do throws(JSONScanner.Failure) {
            guard scanner.peek == UInt8(ascii: "{") else { return .rejected("not a JSON object") }
            try scanner.object { key, scanner throws(JSONScanner.Failure) in
                try read(key, &scanner, into: &fields)
            }
            try scanner.finish()
        } catch {
            switch error {
            case .syntax(let message): return .rejected("invalid JSON: \(message)")
            case .tooDeep: return .rejected("invalid JSON: nested too deeply")
            }
        }
        if let problem = fields.problem { return .rejected(problem) }
        return build(fields, line: line)
    }

    private func read(_ key: JSONScanner.Key, _ scanner: inout JSONScanner, into fields: inout Fields) throws(JSONScanner.Failure) {
        func text() throws(JSONScanner.Failure) -> String? {
            guard scanner.peek == UInt8(ascii: "\"") else {
                try scanner.skipValue()
                fields.problem = fields.problem ?? "field '\(key.string)' must be a string"
                return nil
            }
            return try scanner.string()
        }
        /// Ids stay bytes in the line: interning them needs no String (only a new id makes one).
        func value() throws(JSONScanner.Failure) -> FieldValue? {
            guard scanner.peek == UInt8(ascii: "\"") else {
                try scanner.skipValue()
                fields.problem = fields.problem ?? "field '\(key.string)' must be a string"
                return nil
            }
            let (raw, hasEscape) = try scanner.rawString()
            if hasEscape { return .decoded(try JSONScanner.unescapeString(raw)) }
            for byte in raw where byte >= 0x80 { return .decoded(try JSONScanner.text(raw)) }
            return .raw(raw)
        }
        // Keys are matched as bytes, most frequent first: no String is made for a key.
        if key.is("type") { fields.type = try value() }
        else if key.is("id") { fields.id = try value() }
        else if key.is("consumer") { fields.consumer = try value() }
        else if key.is("agent") { fields.agent = try value() }
        else if key.is("started_at") { fields.startedAt = try value() }
        else if key.is("ended_at") { fields.endedAt = try value() }
        else if key.is("status") { fields.status = try value() }
        else if key.is("meters") { try readMeters(&scanner, into: &fields) }
        else if key.is("at") { fields.at = try value() }
        else if key.is("plan") { fields.plan = try value() }
        else if key.is("amount") {
            // A decimal string, or a JSON number read exactly from its text.
            if scanner.peek == UInt8(ascii: "\"") {
                fields.amountText = Substring(try scanner.string())
            } else if let byte = scanner.peek, byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39) {
                fields.amountText = try scanner.numberText()
                fields.amountIsNumber = true
            } else {
                try scanner.skipValue()
                fields.problem = fields.problem ?? "field 'amount' must be a decimal string or a number"
            }
        } else {
            // Unknown extra fields are ignored (usage.md), but must still be valid JSON.
            try scanner.skipValue()
        }
    }

    private func readMeters(_ scanner: inout JSONScanner, into fields: inout Fields) throws(JSONScanner.Failure) {
            fields.metersSeen = true
            guard scanner.peek == UInt8(ascii: "{") else {
                try scanner.skipValue()
                fields.problem = fields.problem ?? "field 'meters' must be an object of meter names to numbers"
                return
            }
            try scanner.object(depth: 1) { key, scanner throws(JSONScanner.Failure) in
                guard let byte = scanner.peek, byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39) else {
                    try scanner.skipValue()
                    fields.problem = fields.problem ?? "meter '\(key.string)' must be a number"
                    return
                }
                let meterIndex = key.withBytes(meterIndex(of:))
                let number = try scanner.numberBytes()
                switch JSONNumber.scaled(number, fractionalDigits: MeterValue.fractionalDigits, maximum: Int128(MeterValue.maximumWholeUnits) * 1_000_000) {
                case .failure(.negative): fields.problem = fields.problem ?? "meter '\(key.string)' is negative"
                case .failure(.tooPrecise): fields.problem = fields.problem ?? "meter '\(key.string)' has more than 6 fractional digits"
                case .failure(.outOfRange): fields.problem = fields.problem ?? "meter '\(key.string)' is above 10^12"
                case .success(let micros):
                    if let index = meterIndex {
                        fields.meters[MeterIndex(rawValue: index)] = MeterValue(micros: Int64(micros))
                        fields.meterMask |= 1 << UInt16(index)
                    } else {
                        fields.unknownMeters.append(key.string)
                    }
                }
            }
    }

    /// The catalog index of a meter name, compared as bytes.
    private func meterIndex(of name: UnsafeBufferPointer<UInt8>) -> Int? {
        for (index, candidate) in meterNameBytes.enumerated() where candidate.count == name.count {
            if candidate.withUnsafeBufferPointer({ name.count == 0 || memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }) { return index }
        }
        return nil
    }

    private func build(_ fields: Fields, line: Int) -> Outcome {
        guard let typeField = fields.type else { return .rejected("missing field 'type'") }
        func timestamp(_ field: FieldValue?, _ name: String) -> (Timestamp?, String?) {
            guard let field else { return (nil, "missing field '\(name)'") }
            guard let value = field.timestamp else { return (nil, "field '\(name)' is not an RFC 3339 timestamp: '\(field.string.prefix(40))'") }
            return (value, nil)
        }
        let type: String
        if typeField.equals("execution") { type = "execution" } else { type = typeField.string }
        func id(_ value: FieldValue?, _ name: String) -> (FieldValue?, String?) {
            guard let value else { return (nil, "missing field '\(name)'") }
            guard !value.isEmpty else { return (nil, "field '\(name)' is empty") }
            return (value, nil)
        }
        switch type {
        case "execution":
            let (executionID, idProblem) = id(fields.id, "id")
            let (consumer, consumerProblem) = id(fields.consumer, "consumer")
            let (agent, agentProblem) = id(fields.agent, "agent")
            let (startedAt, startProblem) = timestamp(fields.startedAt, "started_at")
            let (endedAt, endProblem) = timestamp(fields.endedAt, "ended_at")
            if let problem = idProblem ?? consumerProblem ?? agentProblem ?? startProblem ?? endProblem { return .rejected(problem) }
            guard let executionID, let consumer, let agent, let startedAt, let endedAt else { return .rejected("missing field") }
            guard let status = fields.status else { return .rejected("missing field 'status'") }
            let failed = status.equals("failed")
            guard failed || status.equals("succeeded") else { return .rejected("field 'status' must be succeeded or failed, not '\(status.string.prefix(40))'") }
            guard fields.metersSeen else { return .rejected("missing field 'meters'") }
            guard startedAt <= endedAt else { return .rejected("started_at is after ended_at") }
            // Ids travel as names; the pricing thread interns them (balancing the two threads' work).
            var event = TraceEvent(line: line, time: endedAt, kind: .execution, consumer: -1, subject: -1)
            event.consumerName = consumer.string
            event.subjectName = agent.string
            event.startedAt = startedAt
            event.executionID = executionID.string
            event.failed = failed
            event.meters = fields.meters
            event.meterMask = fields.meterMask
            event.unknownMeters = fields.unknownMeters
            // FNV-1a over the parsed fields: equal for equal fields, whatever their order in the line.

            return .event(event)
        case "subscribe", "cancel":
            let (consumer, consumerProblem) = id(fields.consumer, "consumer")
            let (plan, planProblem) = id(fields.plan, "plan")
            let (at, atProblem) = timestamp(fields.at, "at")
            if let problem = consumerProblem ?? planProblem ?? atProblem { return .rejected(problem) }
            guard let consumer, let plan, let at else { return .rejected("missing field") }
            var event = TraceEvent(line: line, time: at, kind: type == "subscribe" ? .subscribe : .cancel, consumer: -1, subject: -1)
            event.subjectName = plan.string
            event.consumerName = consumer.string
            return .event(event)
        case "purchase":
            let (consumer, consumerProblem) = id(fields.consumer, "consumer")
            let (at, atProblem) = timestamp(fields.at, "at")
            if let problem = consumerProblem ?? atProblem { return .rejected(problem) }
            guard let consumer, let at else { return .rejected("missing field") }
            guard let amountText = fields.amountText else { return .rejected("missing field 'amount'") }
            let micros: Int128
            let maximumCents: Int128 = 100_000_000_000_000   // one trillion currency units
            if fields.amountIsNumber {
                switch JSONNumber.scaled(amountText, fractionalDigits: 2, maximum: maximumCents) {
                case .success(let cents): micros = cents * 10_000
                case .failure(.tooPrecise): return .rejected("amount '\(amountText.prefix(40))' is not whole cents")
                case .failure(.negative): return .rejected("amount '\(amountText.prefix(40))' is negative")
                case .failure(.outOfRange): return .rejected("amount '\(amountText.prefix(40))' is not a valid amount")
                }
            } else {
                do throws(DecimalText.Failure) {
                    let cents = try DecimalText.parse(amountText, fractionalDigits: 2)
                    guard cents <= maximumCents else { return .rejected("amount '\(amountText.prefix(40))' is too large") }
                    micros = cents * 10_000
                } catch {
                    let reason = error == .tooManyFractionalDigits(allowed: 2) ? "is not whole cents" : "is not a valid amount: \(error)"
                    return .rejected("amount '\(amountText.prefix(40))' \(reason)")
                }
            }
            guard micros > 0 else { return .rejected("amount must be positive") }
            var event = TraceEvent(line: line, time: at, kind: .purchase, consumer: -1, subject: -1)
            event.consumerName = consumer.string
            event.amount = Money(micros: Int64(micros))
            return .event(event)
        default:
            return .rejected("unknown event type '\(type.prefix(40))'")
        }
    }
}


/// FNV-1a, 64-bit: cheap, deterministic hashing of parsed fields and ids.
struct FieldHash {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func addByte(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }

    /// A whole word at once (multiply and fold: cheaper than eight FNV steps, as well mixed).
    mutating func addWord(_ word: UInt64) {
        value = (value ^ word) &* 0x9E37_79B9_7F4A_7C15
        value ^= value >> 32
    }

    mutating func add(_ text: String) {
        for byte in text.utf8 { addByte(byte) }
        addByte(0xFF)   // a separator that never occurs in UTF-8
    }

    /// Two independent 64-bit hashes of a text (FNV-1a, and FNV-1a from another basis with a
    /// final avalanche): 128 bits, so two different ids collide with negligible probability.
    static func pair(_ text: String) -> (UInt64, UInt64) {
        var first = FieldHash()
        var second = FieldHash(value: 0x8422_2325_CBF2_9CE4)
        for byte in text.utf8 {
            first.addByte(byte)
            second.addByte(byte ^ 0x5A)
        }
        var z = second.value ^ UInt64(text.utf8.count)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (first.value, z ^ (z >> 31))
    }
}

/// A string field of the line: its bytes when plain ASCII (the common case), else decoded.
enum FieldValue {
    case raw(UnsafeBufferPointer<UInt8>)
    case decoded(String)

    var isEmpty: Bool {
        switch self {
        case .raw(let bytes): bytes.isEmpty
        case .decoded(let text): text.isEmpty
        }
    }

    var string: String {
        switch self {
        case .raw(let bytes): String(decoding: bytes, as: UTF8.self)
        case .decoded(let text): text
        }
    }

    func equals(_ word: StaticString) -> Bool {
        switch self {
        case .raw(let bytes):
            return bytes.count == word.utf8CodeUnitCount && (bytes.isEmpty || memcmp(bytes.baseAddress!, word.utf8Start, bytes.count) == 0)
        case .decoded(let text):
            return text == word.description
        }
    }

    var timestamp: Timestamp? {
        switch self {
        case .raw(let bytes): Timestamp(rfc3339Bytes: bytes)
        case .decoded(let text): Timestamp(rfc3339: text)
        }
    }

    func intern(into table: inout InternTable) -> Int32 {
        switch self {
        case .raw(let bytes): table.intern(bytes: bytes)
        case .decoded(let text): table.intern(text)
        }
    }
}
