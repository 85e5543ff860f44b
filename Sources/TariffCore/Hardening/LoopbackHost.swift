/// Whether a host name or address names this machine only (the loopback interface), so that a
/// plain-text connection to it never crosses a network: `localhost` (any case, an optional
/// trailing dot), an IPv4 literal in 127.0.0.0/8 (four decimal octets), `::1` (bracketed or not,
/// or spelled out in full) and the IPv4-mapped `::ffff:127.x.y.z`.
///
/// Written out rather than matched by prefix: `127.attacker.example` and `localhost.attacker.example`
/// are names anyone can point anywhere, and they are not loopback.
public enum LoopbackHost {
    public static func contains(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("[") && name.hasSuffix("]") { name = name.dropFirst().dropLast() }
        if name.hasSuffix(".") { name = name.dropLast() }
        let lowered = name.lowercased()
        if lowered == "localhost" { return true }
        if let octets = ipv4(Substring(lowered)) { return octets[0] == 127 }
        if lowered.hasPrefix("::ffff:"), let octets = ipv4(lowered.dropFirst("::ffff:".count)) { return octets[0] == 127 }
        return lowered == "::1" || lowered == "0:0:0:0:0:0:0:1"
    }

    /// Four decimal octets 0...255, no leading `+`, no empty part.
    private static func ipv4(_ text: Substring) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(part), value <= 255 else { return nil }
            octets.append(value)
        }
        return octets
    }
}
