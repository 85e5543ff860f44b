import Tariff

/// Parses one trace line into an event, or says why it is rejected. Never traps.
struct TraceParser {
    /// Catalog meter name -> index.
    let meterIndexes: [String: Int]

    init(meterNames: [String]) {
        var indexes: [String: Int] = [:]
        for (index, name) in meterNames.enumerated() { indexes[name] = index }
        meterIndexes = indexes
    }

    /// Fields of any event, as read (before checking which are required).
    private struct Fields {
        var type: String?
        var id: String?
        var consumer: String?
        var agent: String?
        var plan: String?
        var at: String?
        var startedAt: String?
        var endedAt: String?
        var status: String?
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

    func parse(_ bytes: UnsafeBufferPointer<UInt8>, line: Int, entities: inout TraceEntities) -> Outcome {
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
        return build(fields, line: line, entities: &entities)
    }

    private func read(_ key: String, _ scanner: inout JSONScanner, into fields: inout Fields) throws(JSONScanner.Failure) {
        func text() throws(JSONScanner.Failure) -> String? {
            guard scanner.peek == UInt8(ascii: "\"") else {
                try scanner.skipValue()
                fields.problem = fields.problem ?? "field '\(key)' must be a string"
                return nil
            }
            return try scanner.string()
        }
        switch key {
        case "type": fields.type = try text()
        case "id": fields.id = try text()
        case "consumer": fields.consumer = try text()
        case "agent": fields.agent = try text()
        case "plan": fields.plan = try text()
        case "at": fields.at = try text()
        case "started_at": fields.startedAt = try text()
        case "ended_at": fields.endedAt = try text()
        case "status": fields.status = try text()
        case "amount":
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
        case "meters":
            fields.metersSeen = true
            guard scanner.peek == UInt8(ascii: "{") else {
                try scanner.skipValue()
                fields.problem = fields.problem ?? "field 'meters' must be an object of meter names to numbers"
                return
            }
            try scanner.object(depth: 1) { name, scanner throws(JSONScanner.Failure) in
                guard let byte = scanner.peek, byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39) else {
                    try scanner.skipValue()
                    fields.problem = fields.problem ?? "meter '\(name)' must be a number"
                    return
                }
                let numberText = try scanner.numberText()
                switch JSONNumber.scaled(numberText, fractionalDigits: MeterValue.fractionalDigits, maximum: Int128(MeterValue.maximumWholeUnits) * 1_000_000) {
                case .failure(.negative): fields.problem = fields.problem ?? "meter '\(name)' is negative"
                case .failure(.tooPrecise): fields.problem = fields.problem ?? "meter '\(name)' has more than 6 fractional digits"
                case .failure(.outOfRange): fields.problem = fields.problem ?? "meter '\(name)' is above 10^12"
                case .success(let micros):
                    if let index = meterIndexes[name] {
                        fields.meters[MeterIndex(rawValue: index)] = MeterValue(micros: Int64(micros))
                        fields.meterMask |= 1 << UInt16(index)
                    } else {
                        fields.unknownMeters.append(name)
                    }
                }
            }
        default:
            // Unknown extra fields are ignored (usage.md), but must still be valid JSON.
            try scanner.skipValue()
        }
    }

    private func build(_ fields: Fields, line: Int, entities: inout TraceEntities) -> Outcome {
        guard let type = fields.type else { return .rejected("missing field 'type'") }
        func timestamp(_ text: String?, _ name: String) -> (Timestamp?, String?) {
            guard let text else { return (nil, "missing field '\(name)'") }
            guard let value = Timestamp(rfc3339: text) else { return (nil, "field '\(name)' is not an RFC 3339 timestamp: '\(text.prefix(40))'") }
            return (value, nil)
        }
        func id(_ value: String?, _ name: String) -> (String?, String?) {
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
            guard status == "succeeded" || status == "failed" else { return .rejected("field 'status' must be succeeded or failed, not '\(status.prefix(40))'") }
            guard fields.metersSeen else { return .rejected("missing field 'meters'") }
            guard startedAt <= endedAt else { return .rejected("started_at is after ended_at") }
            var event = TraceEvent(line: line, time: endedAt, kind: .execution, consumer: entities.consumers.intern(consumer),
                                   subject: entities.agents.intern(agent))
            event.executionID = executionID
            event.failed = status == "failed"
            event.meters = fields.meters
            event.meterMask = fields.meterMask
            event.unknownMeters = fields.unknownMeters
            var hasher = Hasher()
            hasher.combine(consumer)
            hasher.combine(agent)
            hasher.combine(startedAt.nanosecondsSinceEpoch)
            hasher.combine(endedAt.nanosecondsSinceEpoch)
            hasher.combine(event.failed)
            hasher.combine(event.meterMask)
            for index in 0..<MeterReadings.capacity where event.meterMask & (1 << UInt16(index)) != 0 {
                hasher.combine(event.meters[MeterIndex(rawValue: index)].micros)
            }
            hasher.combine(event.unknownMeters.sorted())
            event.fingerprint = hasher.finalize()
            return .event(event)
        case "subscribe", "cancel":
            let (consumer, consumerProblem) = id(fields.consumer, "consumer")
            let (plan, planProblem) = id(fields.plan, "plan")
            let (at, atProblem) = timestamp(fields.at, "at")
            if let problem = consumerProblem ?? planProblem ?? atProblem { return .rejected(problem) }
            guard let consumer, let plan, let at else { return .rejected("missing field") }
            return .event(TraceEvent(line: line, time: at, kind: type == "subscribe" ? .subscribe : .cancel,
                                     consumer: entities.consumers.intern(consumer), subject: entities.plans.intern(plan)))
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
            var event = TraceEvent(line: line, time: at, kind: .purchase, consumer: entities.consumers.intern(consumer), subject: -1)
            event.amount = Money(micros: Int64(micros))
            return .event(event)
        default:
            return .rejected("unknown event type '\(type.prefix(40))'")
        }
    }
}

