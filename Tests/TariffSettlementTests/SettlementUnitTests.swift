import Foundation
import Tariff
import TariffSettlement
import TariffSettlementTesting
import Testing

@Suite("Settlement pieces")
struct SettlementUnitTests {
    static func money(_ text: String) -> Money { TestLedger.money(text) }

    @Test("a partly collected charge is split again on what was collected")
    func collect() throws {
        let rule = try #require(SplitRule(creator: Percent(partsPerMillion: 800_000), platform: Percent(partsPerMillion: 150_000),
                                          processing: Percent(partsPerMillion: 50_000)))
        let billed = Self.money("1.000001")
        // Covered in full: the line's own shares.
        let full = SettlementMath.collect(billed: billed, split: rule.allocate(billed), rule: rule, coverable: Self.money("5.00"))
        #expect(full.charged == billed && full.uncollected == .zero)
        // 0.333333 collected: 80% = 0.2666664 -> 0.266666, 15% = 0.04999995 -> 0.049999, 5% = 0.01666665 -> 0.016666;
        // truncated sum 0.333331, 2 micro-units left over go to the largest remainders: creator (0.4), platform (0.95 > 0.65 processing)
        // in that order of size: platform 0.95, processing 0.65 -> 0.050000 and 0.016667.
        let part = SettlementMath.collect(billed: billed, split: rule.allocate(billed), rule: rule, coverable: Self.money("0.333333"))
        #expect(part.charged == Self.money("0.333333") && part.uncollected == Self.money("0.666668"))
        #expect(part.split == SplitShares(creator: Self.money("0.266666"), platform: Self.money("0.050000"), processing: Self.money("0.016667")))
        // Nothing available: all uncollected, no shares.
        let none = SettlementMath.collect(billed: billed, split: rule.allocate(billed), rule: rule, coverable: .zero)
        #expect(none.charged == .zero && none.uncollected == billed && none.split == .zero)
        // A credit (negative line) is given back in full whatever the balance.
        let credit = Self.money("-15.00")
        #expect(SettlementMath.collect(billed: credit, split: rule.allocate(credit), rule: rule, coverable: .zero).charged == credit)
    }

    @Test("ids and keys: 1 to 255 UTF-8 bytes (usage.md: measured as bytes), no control characters")
    func keys() {
        // "é" is 2 bytes: 127 of them are 254 bytes, 128 are 256.
        #expect(throws: Never.self) { try Settlement.validate(String(repeating: "é", count: 127), "key") }
        #expect(throws: SettlementError.self) { try Settlement.validate(String(repeating: "é", count: 128), "key") }
        #expect(throws: Never.self) { try Settlement.validate(String(repeating: "k", count: 255), "key") }
        #expect(throws: SettlementError.self) { try Settlement.validate(String(repeating: "k", count: 256), "key") }
        #expect(throws: SettlementError.self) { try Settlement.validate("", "key") }
        #expect(throws: SettlementError.self) { try Settlement.validate("tab\there", "key") }
    }

    @Test("usage periods are whole days or hours")
    func usagePeriods() {
        #expect(Settlement.usagePeriod("30d") == .seconds(30 * 86_400))
        #expect(Settlement.usagePeriod("24h") == .seconds(86_400))
        for bad in ["", "d", "0d", "-1d", "1.5d", "30", "1w", "3651d"] { #expect(Settlement.usagePeriod(bad) == nil, "\(bad)") }
    }

    @Test("the log rail writes one JSON object per request, amounts in cents")
    func logRail() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rail-\(UUID().uuidString).log").path
        let rail = try LogRail(path: path)
        let usd = Currency(code: "USD")!
        let reference = try await rail.send(PayoutTransfer(idempotencyKey: "payout:acct_1:2026-11-02", destination: "acct_1", amount: Self.money("12.62"),
                                                           currency: usd, transferGroup: "2026-11-02"))
        _ = try await rail.send(PayoutTransfer(idempotencyKey: "payout:acct_\"2:2026-11-02", destination: "acct_\"2", amount: Self.money("10.00"),
                                               currency: usd, transferGroup: "2026-11-02"))
        #expect(reference == "log:payout:acct_1:2026-11-02")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        // 12.62 USD is 1262 cents.
        #expect(lines.first == #"{"method":"POST","path":"/v1/transfers","idempotency_key":"payout:acct_1:2026-11-02","body":{"amount":1262,"currency":"usd","destination":"acct_1","transfer_group":"2026-11-02"}}"#)
        for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil) }
        // A yen amount must be whole yen.
        let yen = PayoutTransfer(idempotencyKey: "k", destination: "d", amount: Self.money("10.50"), currency: Currency(code: "JPY")!, transferGroup: "w")
        #expect(throws: SettlementError.self) { try yen.minorUnits() }
    }
}

/// `late_usage_grace` of rules/ (settlement.md, "Periods close"): read, bounded, and what `close` waits for.
@Suite("late_usage_grace")
struct LateUsageGraceTests {
    static func compile(_ grace: String) -> (catalog: CompiledCatalog?, diagnostics: [Diagnostic]) {
        var sources = TestLedger.plans.map { CatalogSource(path: "plans/\($0.key)", text: $0.value, kind: .plan) }
        sources.append(CatalogSource(path: "rules/rules.yaml", text: TestLedger.rules, kind: .rules))
        sources.append(CatalogSource(path: "rules/close.yaml", text: "late_usage_grace: \(grace)\n", kind: .rules))
        let compilation = CatalogLoader.compile(sources: sources)
        return (compilation.catalog, compilation.diagnostics)
    }

    @Test("read from rules/ (default 1h); a period closes at its end plus it, not before")
    func grace() async throws {
        #expect(TestLedger.catalog.definition.lateUsageGraceNanoseconds == 3_600 * 1_000_000_000)
        let catalog = try #require(Self.compile("90m").catalog)
        #expect(catalog.definition.lateUsageGraceNanoseconds == 90 * 60 * 1_000_000_000)
        let start = Timestamp(rfc3339: "2026-11-01T00:00:00Z")!, end = Timestamp(rfc3339: "2026-12-01T00:00:00Z")!
        let settlement = Settlement(backend: InMemoryBackend(currency: TestLedger.usd), catalog: catalog, clock: ManualClock(start))
        try await settlement.chargePeriodStart(consumer: "cus_g", plan: catalog.plan(id: "ent", at: start)!, periodStart: start, periodEnd: end)
        #expect(try await settlement.closeDuePeriods(at: Timestamp(rfc3339: "2026-12-01T01:29:59.999999999Z")!).isEmpty)
        #expect(try await settlement.closeDuePeriods(at: Timestamp(rfc3339: "2026-12-01T01:30:00Z")!).map(\.isClosed) == [true])
        // 0s: a period closes at its end.
        #expect(Self.compile("0s").catalog?.definition.lateUsageGraceNanoseconds == 0)
    }

    @Test("a value that is not a whole number and a unit, or beyond 400 days, is an error at its line")
    func invalid() {
        for bad in ["1.5h", "-1h", "1w", "h", "401d", "99999999999999d", "\"\""] {
            let result = Self.compile(bad)
            #expect(result.catalog == nil, "\(bad)")
            #expect(result.diagnostics.contains { $0.code == "invalid-value" && $0.location.file == "rules/close.yaml" }, "\(bad): \(result.diagnostics)")
        }
    }
}
