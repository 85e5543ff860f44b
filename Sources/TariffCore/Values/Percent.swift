/// A percentage from 0% to 100%, written `15%` or `12.5%` (at most 4 fractional digits).
///
/// Stored as parts per million of the whole (`12.5%` = 125,000 ppm), so the 4 fractional digits of
/// the percent are exact and a product with money stays an integer at a known scale.
public struct Percent: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let partsPerWhole: Int64 = 1_000_000
    public static let zero = Percent(partsPerMillion: 0)
    public static let hundred = Percent(partsPerMillion: partsPerWhole)

    public var partsPerMillion: Int64

    @inlinable public init(partsPerMillion: Int64) { self.partsPerMillion = partsPerMillion }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case missingPercentSign
        case number(DecimalText.Failure)
        case aboveHundred
        public var description: String {
            switch self {
            case .missingPercentSign: "a percent is written with a '%' sign, e.g. 15%"
            case .number(.tooManyFractionalDigits): "a percent has at most 4 fractional digits"
            case .number(let failure): failure.description
            case .aboveHundred: "a percent must be between 0% and 100%"
            }
        }
    }

    public init(parsing text: Substring) throws(Percent.Failure) {
        let trimmed = text.drop(while: { $0 == " " })
        guard trimmed.hasSuffix("%") else { throw .missingPercentSign }
        let number = trimmed.dropLast().reversed().drop(while: { $0 == " " }).reversed()
        let ten_thousandths: Int128
        do { ten_thousandths = try DecimalText.parse(Substring(String(number)), fractionalDigits: 4) }
        catch { throw .number(error) }
        guard ten_thousandths <= 100 * 10_000 else { throw .aboveHundred }
        // A percent read in 1/10,000ths of a percent is exactly the fraction in parts per million.
        partsPerMillion = Int64(ten_thousandths)
    }

    /// "12.5%"
    public var description: String {
        DecimalText.formatTrimmed(Int128(partsPerMillion), fractionalDigits: 4) + "%"
    }

    public static func < (lhs: Percent, rhs: Percent) -> Bool { lhs.partsPerMillion < rhs.partsPerMillion }
}
