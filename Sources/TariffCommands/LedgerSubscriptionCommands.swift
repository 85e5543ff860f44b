import ArgumentParser
import Tariff
import TariffSettlement

/// `--at TIMESTAMP` of the subscription commands and `tick`, read as RFC 3339 or a date.
func optionalInstant(_ text: String?, _ flag: String = "--at") throws -> Timestamp? {
    guard let text else { return nil }
    guard let parsed = Timestamp(dateOrTimestamp: text) else {
        printError("error: invalid_input: \(flag) '\(SafeText.escaping(text))' is not an RFC 3339 timestamp or a date")
        throw ExitCode(2)
    }
    return parsed
}

/// Prints subscriptions as JSON (`{"subscriptions":[...]}`) or a table.
func printSubscriptions(_ records: [SubscriptionRecord], at now: Timestamp, format: OutputFormat) {
    switch format {
    case .json:
        print(JSON.object([("subscriptions", .array(records.map { $0.json(at: now) }))]).rendered)
    case .text:
        var rows = [["id", "consumer", "plan", "start", "status", "ends_at", "periods_charged", "next_fee_at"]]
        for record in records {
            rows.append([record.id, SafeText.escaping(record.consumer), SafeText.escaping(record.plan), record.start.rfc3339, record.status(at: now),
                         record.endsAt?.rfc3339 ?? "-", String(record.chargedPeriods), record.nextPeriodStart?.rfc3339 ?? "-"])
        }
        print(table(rows))
    }
}

/// `tariff ledger subscribe --consumer ID --plan ID [--at T]` (cli.md; service.md "Live subscriptions").
struct LedgerSubscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscribe",
        abstract: "Subscribe a consumer to a subscription or enterprise plan; its first fee is charged at once.",
        discussion: "A subscription to the plan the consumer already has is printed unchanged; one to another plan of the same agent replaces it (usage.md).")

    @OptionGroup var options: LedgerOptions
    @Option(help: "The consumer id.") var consumer: String
    @Option(help: "The plan id (a subscription or enterprise plan).") var plan: String
    @Option(help: ArgumentHelp("The subscription's start (RFC 3339 or a date; default: now).", valueName: "TIMESTAMP")) var at: String?

    func run() throws {
        let instant = try optionalInstant(at)
        let settlement = try ledgerStep { [options] in try await options.settlement(needsCatalog: true) }
        let (consumer, plan) = (consumer, plan)
        let receipt = try ledgerStep { try await settlement.subscribe(consumer: consumer, plan: plan, at: instant) }
        let now = instant ?? settlement.clock.now()
        switch options.format {
        case .json:
            print(JSON.object([("subscription", receipt.subscription.json(at: now)), ("created", .bool(receipt.created)),
                               ("replaced", receipt.replaced.map { $0.json(at: now) } ?? .null)]).rendered)
        case .text:
            printSubscriptions([receipt.replaced, receipt.subscription].compactMap { $0 }, at: now, format: .text)
            if !receipt.created { print("already subscribed: unchanged") }
        }
    }
}

/// `tariff ledger cancel --consumer ID --plan ID [--at T]`: ends at the end of the current period.
struct LedgerCancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a consumer's subscription to a plan at the end of the period that contains the cancel.")

    @OptionGroup var options: LedgerOptions
    @Option(help: "The consumer id.") var consumer: String
    @Option(help: "The plan id.") var plan: String
    @Option(help: ArgumentHelp("The cancel's instant (RFC 3339 or a date; default: now).", valueName: "TIMESTAMP")) var at: String?

    func run() throws {
        let instant = try optionalInstant(at)
        let settlement = try ledgerStep { [options] in try await options.settlement(needsCatalog: true) }
        let (consumer, plan) = (consumer, plan)
        let record = try ledgerStep { try await settlement.cancel(consumer: consumer, plan: plan, at: instant) }
        let now = instant ?? settlement.clock.now()
        switch options.format {
        case .json: print(JSON.object([("subscription", record.json(at: now))]).rendered)
        case .text: printSubscriptions([record], at: now, format: .text)
        }
    }
}

/// `tariff ledger subscriptions [--consumer ID]`.
struct LedgerSubscriptionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "subscriptions", abstract: "List subscriptions (of one consumer, or of all).")

    @OptionGroup var options: LedgerOptions
    @Option(help: "Only this consumer's.") var consumer: String?

    func run() throws {
        let settlement = try ledgerStep { [options] in try await options.settlement(readOnly: true) }
        let consumer = consumer
        let records = try ledgerStep { try await settlement.backend.subscriptions(consumer: consumer) }
        printSubscriptions(records, at: settlement.clock.now(), format: options.format)
    }
}

/// `tariff ledger tick [--at TIMESTAMP]`: the period clock once (cron): every fee and close due.
struct LedgerTickCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tick",
        abstract: "Charge every subscription fee and close every period due at that instant (default now).")

    @OptionGroup var options: LedgerOptions
    @Option(help: ArgumentHelp("Run the clock at this instant (RFC 3339 or a date; default: now).", valueName: "TIMESTAMP")) var at: String?

    func run() throws {
        let instant = try optionalInstant(at)
        let settlement = try ledgerStep { [options] in try await options.settlement(needsCatalog: true) }
        let run = try ledgerStep { try await settlement.runClock(at: instant) }
        switch options.format {
        case .json:
            print(JSON.object([("at", .string((instant ?? settlement.clock.now()).rfc3339)), ("fees", .integer(Int64(run.fees))),
                               ("closed", .array(run.closes.map { record in
                .object([("consumer", .string(record.consumer)), ("plan", .string(record.plan)), ("period_start", .string(record.start.rfc3339)),
                         ("period_end", .string(record.end.rfc3339)), ("shortfall", .string(record.shortfall.description)),
                         ("sla_credit", .string(record.slaCredit.description))])
            }))]).rendered)
        case .text:
            print("\(run.fees) fee\(run.fees == 1 ? "" : "s") charged, \(run.closes.count) period\(run.closes.count == 1 ? "" : "s") closed")
        }
    }
}
