import Foundation
import Tariff

/// Parses one trace line into an event, or says why it is rejected. Never traps.
struct TraceParser {
    /// The catalog's meter names as bytes, by index.
    let meterNameBytes: [[UInt8]]
    /// The date part (`YYYY-MM-DD`, packed) of the last timestamp parsed in full, and its
    /// midnight: a trace's timestamps share a few dates, so most are read from the time of day on.
    private var cachedDate: (low: UInt64, high: UInt16) = (0, 0)
    private var cachedMidnight: Timestamp?

    /// usage.md: every event lies within this many nanoseconds either way of the first accepted
    /// event in file order (`--max-span`, default 400 days); one farther is rejected with its line.
    let maxSpanNanoseconds: Int64
    /// The first accepted event's time and line (file order).
    private(set) var firstEvent: (time: Timestamp, line: Int)?
    /// False when re-reading lines already accepted (the runs of the reorder stage): the span was
    /// checked when the line was first read, in file order.
    var checksSpan = true

    /// 400 days, usage.md's default for `--max-span`.
    static let defaultMaxSpanNanoseconds: Int64 = 400 * 86_400 * 1_000_000_000

    init(meterNames: [String], maxSpanNanoseconds: Int64 = TraceParser.defaultMaxSpanNanoseconds) {
        meterNameBytes = meterNames.map { Array($0.utf8) }
        self.maxSpanNanoseconds = max(0, maxSpanNanoseconds)
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
        /// The event was appended to the caller's array (not returned: an event is some 270
        /// bytes, and each copy of it showed in the reader's time).
        case event
        case rejected(String)
        case blank
    }

    /// Parses a line keeping ids as names (`TraceEvent.consumer` and `subject` stay -1).
    mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, line: Int, appendingTo events: inout [TraceEvent]) -> Outcome {
        var unused = TraceEntities()
        return parse(bytes, line: line, entities: &unused, intern: false, events: &events)
    }

    /// Parses a line interning agents into `entities` straight from the line's bytes, and
    /// hashing execution ids: executions carry the agent's index, the id's hashes, the consumer's
    /// id as words for the processor to intern (`TraceEvent.consumerKey`), and no name but the
    /// execution id (a String per name was a good part of the reader's time).
    mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, line: Int, interning entities: inout TraceEntities,
                        appendingTo events: inout [TraceEvent]) -> Outcome {
        parse(bytes, line: line, entities: &entities, intern: true, events: &events)
    }

    private mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, line: Int, entities: inout TraceEntities, intern: Bool,
                                events: inout [TraceEvent]) -> Outcome {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        if scanner.atEnd { return .blank }
        var fields = Fields()
        let meterNames = meterNameBytes
        do throws(JSONScanner.Failure) {
            guard scanner.peek == UInt8(ascii: "{") else { return .rejected("not a JSON object") }
            try scanner.object { key, scanner throws(JSONScanner.Failure) in
                try Self.read(key, &scanner, into: &fields, meterNames: meterNames)
            }
            try scanner.finish()
        } catch {
            switch error {
            case .syntax(let message): return .rejected("invalid JSON: \(message)")
            case .tooDeep: return .rejected("invalid JSON: nested too deeply")
            }
        }
        if let problem = fields.problem { return .rejected(problem) }
        let outcome = build(fields, line: line, entities: &entities, intern: intern, events: &events)
        guard case .event = outcome, let time = events.last?.time, checksSpan else { return outcome }
        if let reason = checkSpan(time: time, line: line) {
            events.removeLast()
            return .rejected(reason)
        }
        return outcome
    }

    /// `--max-span`: one line cannot make a run bill centuries of periods (a typo in a year). The
    /// first event checked is the reference; nil when `time` is within the span of it, else why
    /// the line is rejected. Called in file order: by `parse`, or by the thread that takes the
    /// events of parallel workers in order (their parsers do not check the span).
    mutating func checkSpan(time: Timestamp, line: Int) -> String? {
        guard let first = firstEvent else {
            firstEvent = (time, line)
            return nil
        }
        let distance = Int128(time.nanosecondsSinceEpoch) - Int128(first.time.nanosecondsSinceEpoch)
        guard distance.magnitude > UInt128(maxSpanNanoseconds) else { return nil }
        return "its time \(time) is more than \(Self.spanText(maxSpanNanoseconds)) \(distance < 0 ? "before" : "after") "
            + "the first event (line \(first.line), \(first.time)); --max-span changes this bound"
    }

    /// `400d`, `36h`, `15m`, `90s` (the largest whole unit), or nanoseconds.
    static func spanText(_ nanoseconds: Int64) -> String {
        let second: Int64 = 1_000_000_000
        for (unit, size) in [("d", 86_400 * second), ("h", 3_600 * second), ("m", 60 * second), ("s", second)] where nanoseconds % size == 0 && nanoseconds > 0 {
            return "\(nanoseconds / size)\(unit)"
        }
        return "\(nanoseconds)ns"
    }

    // The field readers are static, handed the meter names: closures of a mutating `parse` that
    // called methods copied the whole parser for every key.
    private static func read(_ key: JSONScanner.Key, _ scanner: inout JSONScanner, into fields: inout Fields,
                             meterNames: [[UInt8]]) throws(JSONScanner.Failure) {
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
        // Keys are matched as bytes (no String is made for a key): by length and first byte, then
        // one comparison, rather than a comparison with every known key in turn.
        switch Self.field(key) {
        case .type: fields.type = try value()
        case .id: fields.id = try value()
        case .consumer: fields.consumer = try value()
        case .agent: fields.agent = try value()
        case .startedAt: fields.startedAt = try value()
        case .endedAt: fields.endedAt = try value()
        case .status: fields.status = try value()
        case .meters: try readMeters(&scanner, into: &fields, meterNames: meterNames)
        case .at: fields.at = try value()
        case .plan: fields.plan = try value()
        case .amount:
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
        case nil:
            // Unknown extra fields are ignored (usage.md), but must still be valid JSON.
            try scanner.skipValue()
        }
    }

    /// The fields of an event.
    private enum Field { case type, id, consumer, agent, startedAt, endedAt, status, meters, at, plan, amount }

    /// Which field a key names, if any.
    private static func field(_ key: JSONScanner.Key) -> Field? {
        key.withBytes { bytes -> Field? in
            guard let first = bytes.first else { return nil }
            let candidate: (Field, StaticString)
            switch (bytes.count, first) {
            case (4, UInt8(ascii: "t")): candidate = (.type, "type")
            case (2, UInt8(ascii: "i")): candidate = (.id, "id")
            case (8, UInt8(ascii: "c")): candidate = (.consumer, "consumer")
            case (5, UInt8(ascii: "a")): candidate = (.agent, "agent")
            case (10, UInt8(ascii: "s")): candidate = (.startedAt, "started_at")
            case (8, UInt8(ascii: "e")): candidate = (.endedAt, "ended_at")
            case (6, UInt8(ascii: "s")): candidate = (.status, "status")
            case (6, UInt8(ascii: "m")): candidate = (.meters, "meters")
            case (2, UInt8(ascii: "a")): candidate = (.at, "at")
            case (4, UInt8(ascii: "p")): candidate = (.plan, "plan")
            case (6, UInt8(ascii: "a")): candidate = (.amount, "amount")
            default: return nil
            }
            let name = candidate.1.utf8Start
            for offset in 1..<bytes.count where bytes[offset] != name[offset] { return nil }
            return candidate.0
        }
    }

    private static func readMeters(_ scanner: inout JSONScanner, into fields: inout Fields, meterNames: [[UInt8]]) throws(JSONScanner.Failure) {
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
                let meterIndex: Int? = key.withBytes { Self.meterIndex(of: $0, in: meterNames) }
                let number = try scanner.numberBytes()
                switch JSONNumber.scaled(number, fractionalDigits: MeterValue.fractionalDigits, maximum: Int128(MeterValue.maximumWholeUnits) * 1_000_000) {
                case .failure(.negative): fields.problem = fields.problem ?? "meter '\(key.string)' is negative"
                case .failure(.tooPrecise): fields.problem = fields.problem ?? "meter '\(SafeText.escaping(key.string))' has more than 6 fractional digits"
                case .failure(.outOfRange): fields.problem = fields.problem ?? "meter '\(SafeText.escaping(key.string))' is above 10^12"
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
    private static func meterIndex(of name: UnsafeBufferPointer<UInt8>, in meterNames: [[UInt8]]) -> Int? {
        for (index, candidate) in meterNames.enumerated() where candidate.count == name.count {
            if candidate.withUnsafeBufferPointer({ name.count == 0 || memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }) { return index }
        }
        return nil
    }

    /// An RFC 3339 timestamp from the line's bytes. `YYYY-MM-DDTHH:MM:SS[.fraction]Z` on the last
    /// date seen is read here from the time of day on, by the same rules as `Timestamp`; anything
    /// else (another date, an offset) is parsed in full, and a new date is remembered.
    private mutating func parseTimestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        guard bytes.count >= 20, let base = bytes.baseAddress else { return Timestamp(rfc3339Bytes: bytes) }
        let raw = UnsafeRawPointer(base)
        let dateLow = raw.loadUnaligned(as: UInt64.self)
        let dateHigh = raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
        if let midnight = cachedMidnight, dateLow == cachedDate.low, dateHigh == cachedDate.high,
           let nanoseconds = Self.timeOfDayUTC(UnsafeBufferPointer(rebasing: bytes[10...])) {
            return midnight.adding(nanoseconds: nanoseconds)
        }
        guard let value = Timestamp(rfc3339Bytes: bytes) else { return nil }
        // Remember a new date (its midnight must be representable: near the ends of the range it is not).
        if cachedMidnight == nil || dateLow != cachedDate.low || dateHigh != cachedDate.high,
           let midnight = Timestamp(date: Substring(decoding: UnsafeBufferPointer(rebasing: bytes[0..<10]), as: UTF8.self)) {
            cachedDate = (dateLow, dateHigh)
            cachedMidnight = midnight
        }
        return value
    }

    /// `THH:MM:SS[.fraction]Z` (or `t`, `z`) as nanoseconds of the day; nil for anything else
    /// (the caller then parses the whole timestamp). Fraction digits past the ninth are dropped.
    private static func timeOfDayUTC(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count >= 10 else { return nil }
        func digit(_ index: Int) -> Int64? {
            let byte = bytes[index] &- UInt8(ascii: "0")
            return byte < 10 ? Int64(byte) : nil
        }
        guard bytes[0] == UInt8(ascii: "T") || bytes[0] == UInt8(ascii: "t"), bytes[3] == UInt8(ascii: ":"), bytes[6] == UInt8(ascii: ":"),
              let h1 = digit(1), let h2 = digit(2), let m1 = digit(4), let m2 = digit(5), let s1 = digit(7), let s2 = digit(8)
        else { return nil }
        let hour = h1 * 10 + h2, minute = m1 * 10 + m2, second = s1 * 10 + s2
        guard hour <= 23, minute <= 59, second <= 59 else { return nil }
        var index = 9
        var fraction: Int64 = 0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, let value = digit(index) {
                if digits < 9 { fraction = fraction * 10 + value }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9)..<9 { fraction *= 10 }
        }
        guard index == bytes.count - 1, bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") else { return nil }
        return (hour * 3_600 + minute * 60 + second) * 1_000_000_000 + fraction
    }

    private mutating func build(_ fields: Fields, line: Int, entities: inout TraceEntities, intern: Bool,
                                events: inout [TraceEvent]) -> Outcome {
        guard let typeField = fields.type else { return .rejected("missing field 'type'") }
        func timestamp(_ field: FieldValue?, _ name: String) -> (Timestamp?, String?) {
            guard let field else { return (nil, "missing field '\(name)'") }
            let parsed: Timestamp?
            if case .raw(let bytes) = field { parsed = parseTimestamp(bytes) } else { parsed = field.timestamp }
            guard let value = parsed else {
                let text = SafeText.escaping(String(field.string.prefix(40)))
                if Timestamp.isWellFormedRFC3339(field.string) {
                    return (nil, "field '\(name)' is outside the representable range (\(Timestamp.representableRangeText)): '\(text)'")
                }
                return (nil, "field '\(name)' is not an RFC 3339 timestamp: '\(text)'")
            }
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
            var event = TraceEvent(line: line, time: endedAt, kind: .execution, consumer: -1, subject: -1)
            event.startedAt = startedAt
            event.failed = failed
            event.meters = fields.meters
            event.meterMask = fields.meterMask
            // Plain short ids ride in the event; anything else goes to its box of texts, made
            // only for such events (none for the executions of a usual trace).
            var names = TraceEventNames()
            var hasNames = !fields.unknownMeters.isEmpty
            names.unknownMeters = fields.unknownMeters
            if !event.idKey.set(executionID) {
                names.executionID = executionID.string
                hasNames = true
            }
            if intern {
                if !event.consumerKey.set(consumer) {
                    names.consumerName = consumer.string
                    hasNames = true
                }
                event.subject = agent.intern(into: &entities.agents)
                (event.idHashHigh, event.idHashLow) = executionID.withBytes(FieldHash.pair(bytes:))
            } else {
                names.consumerName = consumer.string
                names.subjectName = agent.string
                hasNames = true
            }
            if hasNames { event.setNames(names) }
            events.append(event)
            return .event
        case "subscribe", "cancel":
            let (consumer, consumerProblem) = id(fields.consumer, "consumer")
            let (plan, planProblem) = id(fields.plan, "plan")
            let (at, atProblem) = timestamp(fields.at, "at")
            if let problem = consumerProblem ?? planProblem ?? atProblem { return .rejected(problem) }
            guard let consumer, let plan, let at else { return .rejected("missing field") }
            var event = TraceEvent(line: line, time: at, kind: type == "subscribe" ? .subscribe : .cancel, consumer: -1, subject: -1)
            event.setNames(TraceEventNames(subjectName: plan.string, consumerName: consumer.string))
            if intern { _ = event.consumerKey.set(consumer) }
            events.append(event)
            return .event
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
            if let id = fields.id, id.isEmpty { return .rejected("field 'id' is empty") }
            var event = TraceEvent(line: line, time: at, kind: .purchase, consumer: -1, subject: -1)
            var names = TraceEventNames()
            if !intern || !event.consumerKey.set(consumer) { names.consumerName = consumer.string }
            event.amount = Money(micros: Int64(micros))
            // usage.md: the ledger key is `trace:` + id, else `trace:CONSUMER:AT_NS:AMOUNT_MICROS` from
            // the parsed values, never the line: a trace replayed again, with lines added, removed or
            // moved, credits nothing twice. Kept in `executionID` (a purchase has no execution id).
            let consumerText = consumer.string
            names.executionID = fields.id.map { "trace:" + $0.string } ?? "trace:\(consumerText):\(at.nanosecondsSinceEpoch):\(micros)"
            (event.idHashHigh, event.idHashLow) = FieldHash.pair(names.executionID)
            event.setNames(names)
            var hash = FieldHash()
            hash.add(consumerText)
            hash.addWord(UInt64(bitPattern: at.nanosecondsSinceEpoch))
            hash.addWord(UInt64(bitPattern: Int64(micros)))
            event.fingerprint = hash.value
            events.append(event)
            return .event
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
        var text = text
        return text.withUTF8(pair(bytes:))
    }

    /// The same over the id's bytes (equal to `pair` of the decoded text for plain ASCII ids).
    static func pair(bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
        var first = FieldHash()
        var second = FieldHash(value: 0x8422_2325_CBF2_9CE4)
        for byte in bytes {
            first.addByte(byte)
            second.addByte(byte ^ 0x5A)
        }
        var z = second.value ^ UInt64(bytes.count)
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

    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        switch self {
        case .raw(let bytes): return body(bytes)
        case .decoded(var text): return text.withUTF8(body)
        }
    }

    func intern(into table: inout InternTable) -> Int32 {
        switch self {
        case .raw(let bytes): table.intern(bytes: bytes)
        case .decoded(let text): table.intern(text)
        }
    }
}
