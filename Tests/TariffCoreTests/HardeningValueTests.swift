import PropertyBased
import TariffCore
import Testing

/// The value types of issue 12's rules: ids as bytes, money sums that never wrap, one redaction,
/// terminal-safe text. Expected values are worked out by hand.
@Suite("hardening values (issue 12)")
struct HardeningValueTests {
    @Test("ByteKey: precomposed and decomposed café are two keys, ordered by their bytes")
    func byteKeys() {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)                       // Swift's String equality: canonical equivalence
        #expect(ByteKey(composed) != ByteKey(decomposed))
        #expect(Set([ByteKey(composed), ByteKey(decomposed)]).count == 2)
        // "cafe\u{301}" is 63 61 66 65 cc 81; "caf\u{E9}" is 63 61 66 c3 a9: 0x65 < 0xc3.
        #expect(ByteKey(decomposed) < ByteKey(composed))
        #expect(decomposed.bytesPrecede(composed) && !composed.bytesPrecede(decomposed))
        // Byte order is not Swift's String order for these: "Z" (5a) < "a" (61) < "é" (c3 a9).
        #expect(["\u{E9}", "a", "Z"].sorted { $0.bytesPrecede($1) } == ["Z", "a", "\u{E9}"])
    }

    @Test("MoneySum: 20 x 10^12 is exact, and reading it as Money is an AmountOverflow, never a wrap")
    func moneySums() throws {
        var sum = MoneySum()
        for _ in 0..<20 { sum.add(Money(micros: 1_000_000_000_000 * 1_000_000)) }
        #expect(sum.description == "20000000000000.000000")
        #expect(sum.money == nil)
        #expect(throws: AmountOverflow.self) { try sum.money("totals.charged") }
        do { _ = try sum.money("totals.charged") } catch {
            #expect(error.description.contains("totals.charged would be 20000000000000.000000"))
        }
        var total = Money(micros: .max - 5)
        var overflow: AmountOverflow?
        MoneySum.add(Money(micros: 5), to: &total, overflow: &overflow, "a")
        #expect(total == Money(micros: .max) && overflow == nil)
        MoneySum.add(Money(micros: 1), to: &total, overflow: &overflow, "b")
        #expect(total == Money(micros: .max), "the total is left as it was")
        #expect(overflow?.what == "b" && overflow?.micros == Int128(Int64.max) + 1)
        MoneySum.add(Money(micros: 1), to: &total, overflow: &overflow, "c")
        #expect(overflow?.what == "b", "the first overflow is kept")
    }

    @Test("MoneySum equals the Int128 sum of any amounts")
    func moneySumProperty() async {
        await propertyCheck(count: 300, input: Gen.int64(), Gen.int64(), Gen.int64()) { a, b, c in
            var sum = MoneySum()
            for value in [a, b, c] { sum.add(Money(micros: value)) }
            let exact: Int128 = Int128(a) + Int128(b) + Int128(c)
            #expect(sum.micros == exact)
            let fits: Int64? = Int64(exactly: exact)
            #expect(sum.money?.micros == fits)
        }
    }

    @Test("Redaction.url hides the password of any URL-like spelling", arguments: [
        ("postgres://tariff:SECRET@db:5432/x", "postgres://tariff:***@db:5432/x"),
        ("Postgres://tariff:SECRET@db:5432/x", "Postgres://tariff:***@db:5432/x"),
        ("postgress://tariff:SECRET@db/x", "postgress://tariff:***@db/x"),
        ("pg://tariff:SECRET@db/x", "pg://tariff:***@db/x"),
        ("  postgres://tariff:SECRET@db/x", "  postgres://tariff:***@db/x"),
        ("sqlite://u:SECRET@x", "sqlite://u:***@x"),
        ("sqlite:u:SECRET@x", "sqlite:***@x"),
        ("//u:SECRET@x", "//u:***@x"),
        ("u:SECRET@host/db", "u:***@host/db"),
        ("postgres://u:pa/SECRET@db/x", "postgres://***@db/x"),
        ("postgres://db/x?password=SECRET&sslmode=require", "postgres://db/x?password=***&sslmode=require"),
        ("sqlite:tariff.sqlite", "sqlite:tariff.sqlite"),
        ("postgres://user@db/x", "postgres://user@db/x"),
    ])
    func redaction(_ pair: (String, String)) {
        #expect(Redaction.url(pair.0) == pair.1)
        #expect(!Redaction.url(pair.0).contains("SECRET"))
    }

    @Test("Redaction.url never prints a password, whatever the scheme and password")
    func redactionProperty() async {
        let letters = Gen<Character>.letterOrNumber
        await propertyCheck(count: 300, input: letters.string(of: 1...8), letters.string(of: 6...16), Gen.bool) { scheme, password, space in
            let url = (space ? " " : "") + scheme + "://user:" + password + "@host:5432/db"
            #expect(!Redaction.url(url).contains(password), "\(url)")
        }
    }

    @Test("SafeText escapes terminal controls and keeps the rest")
    func safeText() {
        #expect(SafeText.escaping("evil\u{1B}[2J\u{7}") == "evil\\u{1b}[2J\\u{7}")
        #expect(SafeText.escaping("caf\u{E9} \u{202E}txt.exe") == "caf\u{E9} \\u{202e}txt.exe")
        #expect(SafeText.escaping("a\nb\tc", keepingLines: true) == "a\nb\tc")
        #expect(SafeText.escaping("a\nb") == "a\\u{a}b")
        #expect(SafeText.escaping("plain-id_1") == "plain-id_1")
    }

    @Test("a well-formed timestamp outside the range is told apart from a malformed one")
    func timestampRange() {
        #expect(Timestamp.isWellFormedRFC3339("9999-01-01T00:00:00Z"))
        #expect(Timestamp.isWellFormedRFC3339("1600-02-29T00:00:00Z"))
        #expect(!Timestamp.isWellFormedRFC3339("2026-13-01T00:00:00Z"))
        #expect(!Timestamp.isWellFormedRFC3339("yesterday"))
        #expect(Timestamp.representableRangeText == "1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z")
    }
}
