import Logging
import Tariff
import TariffSettlement
import TariffStripe

/// How one `tariff serve` is set up: the ledger and its service store, the catalog's folders,
/// the rail, the keys, the clock. The CLI builds it from flags; tests build it directly.
public struct ServiceConfiguration: Sendable {
    public var backend: any SettlementBackend
    public var store: any ServiceStore
    public var plansDirectory: String
    public var rulesDirectory: String
    public var plugins: PluginRegistry
    /// Purchases and payouts: the log rail or Stripe.
    public var rail: ServiceRail
    /// The key of `--admin-key-file` (never logged or echoed).
    public var adminKey: String?
    /// `/metrics` answers any client, not only loopback ones.
    public var publicMetrics: Bool
    /// `--test-clock`: the clock starts there and only moves by `POST /v1/clock`.
    public var testClockStart: Timestamp?
    /// `STRIPE_WEBHOOK_SECRET`: without it the webhook endpoint refuses every delivery.
    public var webhookSecret: String?
    /// The platform's Stripe account (`STRIPE_ACCOUNT_ID`): events naming another account are ignored.
    public var stripeAccount: String?
    /// Whether live-mode events are the ones to handle (a `sk_live_` key); the others are ignored.
    public var livemode: Bool
    /// Where one line per request goes (never a key, a token, or payment details).
    public var logger: Logger
    /// How long a found key is trusted before it is looked up again (revocations take effect within it).
    public var keyCacheMilliseconds: UInt64

    public init(backend: any SettlementBackend, store: any ServiceStore, plansDirectory: String = "plans", rulesDirectory: String = "rules",
                plugins: PluginRegistry = ShippedPlugins.registry, rail: ServiceRail = .log(LogRail()), adminKey: String? = nil,
                publicMetrics: Bool = false, testClockStart: Timestamp? = nil, webhookSecret: String? = nil, stripeAccount: String? = nil,
                livemode: Bool = false, logger: Logger = Logger(label: "tariff.serve"), keyCacheMilliseconds: UInt64 = 1_000) {
        self.backend = backend
        self.store = store
        self.plansDirectory = plansDirectory
        self.rulesDirectory = rulesDirectory
        self.plugins = plugins
        self.rail = rail
        self.adminKey = adminKey
        self.publicMetrics = publicMetrics
        self.testClockStart = testClockStart
        self.webhookSecret = webhookSecret
        self.stripeAccount = stripeAccount
        self.livemode = livemode
        self.logger = logger
        self.keyCacheMilliseconds = keyCacheMilliseconds
    }
}

/// The payment rail of the server's purchases and payouts.
public enum ServiceRail: Sendable {
    case log(LogRail)
    case stripe(StripeRail)

    var isStripe: Bool { if case .stripe = self { true } else { false } }

    func refund(purchase: String, amount: Money, key: String, on settlement: Settlement) async throws -> ReversalRecord {
        switch self {
        case .log(let rail): try await settlement.refund(purchase: purchase, amount: amount, idempotencyKey: key, through: rail)
        case .stripe(let rail): try await settlement.refund(purchase: purchase, amount: amount, idempotencyKey: key, through: rail)
        }
    }

    func charge(_ purchase: CreditPurchase, on settlement: Settlement) async throws -> RailPurchaseReceipt {
        switch self {
        case .log(let rail): try await settlement.purchase(purchase, through: rail)
        case .stripe(let rail): try await settlement.purchase(purchase, through: rail)
        }
    }

    func executePayouts(week: CivilDate, on settlement: Settlement) async throws -> [PayoutLine] {
        switch self {
        case .log(let rail): try await settlement.executePayouts(week: week, rail: rail)
        case .stripe(let rail): try await settlement.executePayouts(week: week, rail: rail)
        }
    }
}
