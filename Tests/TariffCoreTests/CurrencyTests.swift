import Testing
import TariffCore

@Suite struct CurrencyTests {
    @Test func minorUnits() {
        #expect(Currency(code: "USD")?.minorUnitDigits == 2)
        #expect(Currency(code: "EUR")?.minorUnitDigits == 2)
        #expect(Currency(code: "JPY")?.minorUnitDigits == 0)
        #expect(Currency(code: "KRW")?.minorUnitDigits == 0)
        #expect(Currency(code: "KWD")?.minorUnitDigits == 3)
        #expect(Currency(code: "BHD")?.minorUnitDigits == 3)
        #expect(Currency(code: "CLF")?.minorUnitDigits == 4)
        #expect(Currency(code: "UYW")?.minorUnitDigits == 4)
    }

    @Test func unknownOrMisspelledCodesAreRejected() {
        #expect(Currency(code: "XYZ") == nil)
        #expect(Currency(code: "usd") == nil)
        #expect(Currency(code: "Usd") == nil)
        #expect(Currency(code: "") == nil)
        #expect(Currency(code: "USD ") == nil)
        #expect(Currency(code: "XAU") == nil)   // no decimal minor unit
        #expect(Currency(code: "HRK") == nil)   // withdrawn
    }

    @Test func description() {
        #expect(Currency(code: "USD")?.description == "USD")
        #expect(Currency(code: "USD") == Currency(code: "USD"))
    }

    @Test func tableShape() {
        let codes = Currency.allCodes
        #expect(codes.count >= 155)
        #expect(codes == codes.sorted())
        #expect(Set(codes).count == codes.count)
        for code in codes {
            #expect(code.utf8.count == 3 && code.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }, "\(code)")
            let currency = Currency(code: code)
            #expect(currency?.code == code)
            #expect(currency.map { (0...4).contains($0.minorUnitDigits) } == true, "\(code)")
        }
    }
}
