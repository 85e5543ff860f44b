import Tariff

/// The same trace priced by two catalogs (`--compare`): per consumer, agent and plan, the old
/// amount, the new amount and the difference, biggest changes first.
public struct Comparison: Sendable {
    public struct Row: Sendable, Equatable {
        public var key: String
        /// Plans only: the version (rows of different versions are different rows).
        public var version: Int?
        public var old: Money
        public var new: Money
        /// Exact (a `MoneySum`): two amounts' difference may lie beyond `Money`'s range.
        public var difference: MoneySum { MoneySum(new) - MoneySum(old) }
    }

    public var old: SimulationReport
    public var new: SimulationReport
    public var consumers: [Row]
    public var agents: [Row]
    public var plans: [Row]

    public init(old: SimulationReport, new: SimulationReport) {
        self.old = old
        self.new = new
        consumers = Self.rows(old.consumers.map { ($0.consumer, nil, $0.charged) }, new.consumers.map { ($0.consumer, nil, $0.charged) })
        agents = Self.rows(old.agents.map { ($0.agent, nil, $0.charged) }, new.agents.map { ($0.agent, nil, $0.charged) })
        plans = Self.rows(old.plans.map { ($0.plan, $0.version, $0.charged) }, new.plans.map { ($0.plan, $0.version, $0.charged) })
    }

    private static func rows(_ old: [(String, Int?, Money)], _ new: [(String, Int?, Money)]) -> [Row] {
        struct Key: Hashable { var key: ByteKey; var version: Int? }
        var merged: [Key: Row] = [:]
        for (key, version, amount) in old { merged[Key(key: ByteKey(key), version: version)] = Row(key: key, version: version, old: amount, new: .zero) }
        for (key, version, amount) in new {
            merged[Key(key: ByteKey(key), version: version), default: Row(key: key, version: version, old: .zero, new: .zero)].new = amount
        }
        // The size of the change decides the order; ties by id so the output is stable.
        return merged.values.sorted {
            let a = $0.difference.micros.magnitude, b = $1.difference.micros.magnitude
            if a != b { return a > b }
            return $0.key.bytesEqual($1.key) ? ($0.version ?? 0) < ($1.version ?? 0) : $0.key.bytesPrecede($1.key)
        }
    }

    public var json: JSON {
        func rows(_ rows: [Row], _ name: String) -> JSON {
            .array(rows.map { row in
                var fields: [(String, JSON)] = [(name, .string(row.key))]
                if let version = row.version { fields.append(("version", .integer(Int64(version)))) }
                fields += [("old", .string(row.old.description)), ("new", .string(row.new.description)), ("difference", .string(row.difference.description))]
                return .object(fields)
            })
        }
        return .object([
            ("totals", .object([
                ("charged", .string(new.totals.charged.description)), ("purchased", .string(new.totals.purchased.description)),
                ("creator", .string(new.totals.creator.description)), ("platform", .string(new.totals.platform.description)),
                ("processing", .string(new.totals.processing.description)),
            ])),
            ("difference", .string((MoneySum(new.totals.charged) - MoneySum(old.totals.charged)).description)),
            ("consumers", rows(consumers, "consumer")), ("agents", rows(agents, "agent")), ("plans", rows(plans, "plan")),
        ])
    }
}
