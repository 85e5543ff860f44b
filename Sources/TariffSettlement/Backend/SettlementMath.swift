import Tariff

/// The money rules of settlement as pure functions, shared by every backend (a backend that
/// cannot run `LedgerSteps`, such as one step per SQL statement, still calls these).
public enum SettlementMath {
    /// What a line collects from `coverable` credits (a settle: `held + available`; a period line:
    /// `available`).
    ///
    /// A positive line collects `min(billed, coverable)`; the rest is uncollected. When only part is
    /// collected, the collected amount is split again with the plan's rule (plans.md's exact
    /// allocation: truncation toward zero, left-over micro-units by largest remainder), so the
    /// three shares always add up to what was collected and creators earn only on collected money.
    /// A zero or negative line (an SLA credit) is applied in full with its own shares.
    public static func collect(billed: Money, split: SplitShares, rule: SplitRule, coverable: Money) -> (charged: Money, uncollected: Money, split: SplitShares) {
        guard billed.micros > 0 else { return (billed, .zero, split) }
        let available = max(coverable.micros, 0)
        guard available < billed.micros else { return (billed, .zero, split) }
        let charged = Money(micros: available)
        // billed > available >= 0, so the difference is positive and fits.
        return (charged, Money(micros: billed.micros - available), rule.allocate(charged))
    }

    /// The entries that move a line's shares between a consumer's `available` and the parties:
    /// a positive share from the consumer to the party, a negative one (a credit) back.
    public static func shareEntries(consumer: String, creator: String, split: SplitShares, operation: String, at: Timestamp) -> [Entry] {
        var entries: [Entry] = []
        entries.reserveCapacity(3)
        let parties: [(Money, Account)] = [
            (split.creator, Account(.earnings, creator)), (split.platform, Account(.platform)), (split.processing, Account(.processing)),
        ]
        let source = Account(.available, consumer)
        for (share, party) in parties where share.micros != 0 {
            if share.micros > 0 {
                entries.append(Entry(operation: operation, debit: source, credit: party, amount: share, at: at))
            } else {
                // -share cannot overflow: a share's magnitude is at most its line's, and lines are > Int64.min.
                entries.append(Entry(operation: operation, debit: party, credit: source, amount: Money(micros: -share.micros), at: at))
            }
        }
        return entries
    }

    /// Checked sum as a settlement error.
    static func add(_ a: Money, _ b: Money, _ what: @autoclosure () -> String) throws -> Money {
        guard let sum = a.adding(b) else { throw SettlementError(.outOfRange, "\(what()) would exceed the ledger's 64-bit range") }
        return sum
    }

    /// Checked difference as a settlement error.
    static func subtract(_ a: Money, _ b: Money, _ what: @autoclosure () -> String) throws -> Money {
        guard let difference = a.subtracting(b) else { throw SettlementError(.outOfRange, "\(what()) would exceed the ledger's 64-bit range") }
        return difference
    }
}
