#!/usr/bin/env python3
"""Writes docs/openapi.json and Sources/TariffServer/OpenAPIDocument.swift (the served copy) from
one description, so the two never differ (a test checks the routes and statuses against the router)."""
import json, os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
amount = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{6}$", "description": "A decimal amount, 6 fractional digits"}
amount_in = {"type": "string", "pattern": r"^\+?[0-9]+(\.[0-9]+)?$", "description": "A decimal amount: \"100\" or \"100.00\""}
ident = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\u0000-\\u001f\\u007f]+$"}
timestamp = {"type": "string", "format": "date-time", "description": "RFC 3339"}
meters = {"type": "object", "additionalProperties": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}]}, "maxProperties": 256}
split = {"type": "object", "required": ["creator", "platform", "processing"], "additionalProperties": False,
         "properties": {"creator": amount, "platform": amount, "processing": amount}}
line = {"type": "object", "required": ["rule", "amount", "source"], "properties": {"rule": {"type": "string"}, "amount": amount, "source": {"type": "string"}}}
nullable_string = {"type": ["string", "null"]}

def obj(props, required=(), closed=True):
    o = {"type": "object", "properties": props}
    if required: o["required"] = list(required)
    if closed: o["additionalProperties"] = False
    return o

schemas = {
    "Problem": obj({"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "code": {"type": "string"},
                    "detail": {"type": "string"}, "diagnostics": {"type": "array", "items": {"type": "object"}}},
                   ["type", "title", "status", "code", "detail"]),
    "Balance": obj({"consumer": {"type": "string"}, "currency": {"type": "string"}, "available": amount, "reserved": amount},
                   ["consumer", "currency", "available", "reserved"]),
    "PurchaseRequest": obj({"consumer": ident, "amount": amount_in, "payment_method": ident}, ["amount"]),
    "PurchaseAnswer": obj({"purchase": obj({"consumer": {"type": "string"}, "amount": amount, "key": {"type": "string"},
                                            "status": {"enum": ["succeeded", "pending", "failed"]}, "payment_intent": {"type": "string"},
                                            "client_secret": {"type": "string", "description": "Stripe's client_secret of a pending payment, for the consumer to finish it"}},
                                           ["consumer", "amount", "key", "status"]),
                           "balance": {"$ref": "#/components/schemas/Balance"}}, ["purchase", "balance"]),
    "RefundRequest": obj({"purchase": ident, "amount": amount_in, "consumer": ident}, ["purchase", "amount"]),
    "RefundAnswer": obj({"refund": obj({"key": {"type": "string"}, "purchase": {"type": "string"}, "consumer": {"type": "string"}, "amount": amount,
                                        "status": {"enum": ["succeeded", "pending", "failed"]}, "reference": nullable_string},
                                       ["key", "purchase", "consumer", "amount", "status", "reference"]),
                         "balance": {"$ref": "#/components/schemas/Balance"}}, ["refund", "balance"]),
    "ConsumerSettingsRequest": obj({"stripe_customer": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}, "low_balance": {"oneOf": [amount_in, {"type": "null"}]}}),
    "ConsumerSettings": obj({"consumer": {"type": "string"}, "stripe_customer": nullable_string, "low_balance": {"oneOf": [amount, {"type": "null"}]}},
                            ["consumer", "stripe_customer", "low_balance"]),
    "AutoTopUpRequest": obj({"below": amount_in, "amount": amount_in}, ["below", "amount"]),
    "AutoTopUp": obj({"consumer": {"type": "string"}, "below": amount, "amount": amount,
                      "state": {"enum": ["armed", "in_flight", "spent", "failed"]}, "crossings": {"type": "integer", "minimum": 0},
                      "failure": nullable_string}, ["consumer", "below", "amount", "state", "crossings", "failure"]),
    "Usage": obj({"data": {"type": "array", "items": {"type": "object", "required": ["compute_units", "cost", "executions"],
                                                       "properties": {"compute_units": {"type": "string"}, "cost": amount, "executions": {"type": "integer"}}}}},
                 ["data"]),
    "QuoteRequest": obj({"plan": ident, "version": {"type": "integer", "minimum": 1, "maximum": 1000000}, "agent": ident, "consumer": ident,
                         "at": timestamp, "meters": meters, "status": {"enum": ["succeeded", "failed"]}}),
    "Quote": obj({"plan": {"type": "string"}, "version": {"type": "integer"}, "currency": {"type": "string"}, "model": {"type": "string"},
                  "compute_units": {"type": "string"}, "charge": amount, "split": split, "lines": {"type": "array", "items": line},
                  "refused": nullable_string, "priority": nullable_string, "support": nullable_string, "exact": {"type": "boolean"},
                  "reservation": amount, "warnings": {"type": "array", "items": {"type": "string"}}},
                 ["plan", "version", "currency", "model", "compute_units", "charge", "split", "lines", "refused", "priority", "support"]),
    "Plans": obj({"plans": {"type": "array", "items": obj({"id": {"type": "string"}, "version": {"type": "integer"}, "agent": {"type": "string"},
                                                           "model": {"type": "string"}, "currency": {"type": "string"}, "effective": nullable_string,
                                                           "default": {"type": "boolean"}},
                                                          ["id", "version", "agent", "model", "currency", "effective", "default"])}}, ["plans"]),
    "ReserveRequest": obj({"execution": ident, "consumer": ident, "plan": ident, "version": {"type": "integer", "minimum": 1, "maximum": 1000000},
                           "agent": ident, "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 86400}}, ["execution", "consumer"]),
    "Hold": obj({"execution": {"type": "string"}, "consumer": {"type": "string"}, "plan": {"type": "string"}, "version": {"type": "integer"},
                 "held": amount, "expires_at": timestamp}, ["execution", "consumer", "plan", "version", "held", "expires_at"]),
    "MeterRequest": obj({"at": timestamp, "meters": meters}),
    "MeterAnswer": obj({"held": amount, "cost": amount, "exhausted": {"type": "boolean"}, "warnings": {"type": "array", "items": {"type": "string"}}},
                       ["held", "cost", "exhausted"]),
    "SettleRequest": obj({"ended_at": timestamp, "status": {"enum": ["succeeded", "failed"]}, "meters": meters}, ["ended_at"]),
    "SettleAnswer": obj({"execution": {"type": "string"}, "charged": amount, "uncollected": amount, "released": amount,
                         "compute_units": {"type": "string"}, "split": split, "lines": {"type": "array", "items": line}, "refused": nullable_string,
                         "warnings": {"type": "array", "items": {"type": "string"}}},
                        ["execution", "charged", "uncollected", "released", "compute_units", "split", "lines", "refused"]),
    "ReleaseAnswer": obj({"execution": {"type": "string"}, "consumer": {"type": "string"}, "released": amount}, ["execution", "consumer", "released"]),
    "Execution": obj({"execution": {"type": "string"}, "consumer": {"type": "string"}, "plan": {"type": "string"}, "version": {"type": "integer"},
                      "state": {"enum": ["held", "settled", "released", "expired", "refused"]}, "held": amount, "estimate": amount,
                      "expires_at": timestamp, "charged": amount, "uncollected": amount, "released": amount,
                      "compute_units": {"type": "string"}, "refused": nullable_string},
                     ["execution", "consumer", "plan", "version", "state", "held", "estimate", "expires_at"]),
    "Payouts": obj({"week_start": {"type": "string"}, "executed": {"type": "boolean"}, "currency": {"type": "string"},
                    "payouts": {"type": "array", "items": obj({"creator": {"type": "string"}, "week_start": {"type": "string"},
                                                               "pay_date": {"type": "string"}, "earnings": amount, "amount": amount,
                                                               "carried": amount, "status": {"enum": ["carried", "due", "recorded", "paid"]},
                                                               "key": {"type": "string"}},
                                                              ["creator", "week_start", "pay_date", "earnings", "amount", "carried", "status", "key"])}},
                   ["week_start", "executed", "currency", "payouts"]),
    "Verification": obj({"ok": {"type": "boolean"}, "entries": {"type": "integer"}, "charges": {"type": "integer"},
                         "invariants": {"type": "array", "items": obj({"number": {"type": "integer"}, "name": {"type": "string"}, "ok": {"type": "boolean"},
                                                                       "failures": {"type": "array", "items": {"type": "string"}}},
                                                                      ["number", "name", "ok", "failures"])}},
                        ["ok", "invariants"]),
    "Reloaded": obj({"plans": {"type": "integer"}}, ["plans"]),
    "WebhookAnswer": obj({"received": {"type": "boolean"}, "applied": {"type": "boolean"}}, ["received", "applied"]),
    "Health": obj({"status": {"type": "string"}, "plans": {"type": "integer"}}, ["status"]),
    "ClockRequest": obj({"now": timestamp}, ["now"]),
    "Clock": obj({"now": timestamp, "expired_holds": {"type": "integer"}, "fees": {"type": "integer"}, "closed_periods": {"type": "integer"}},
                 ["now", "expired_holds", "fees", "closed_periods"]),
    "SubscriptionRequest": obj({"consumer": ident, "plan": ident}, ["plan"]),
    "Subscription": obj({"id": {"type": "string"}, "consumer": {"type": "string"}, "plan": {"type": "string"}, "agent": {"type": "string"},
                         "period": {"enum": ["week", "month", "year"]}, "start": timestamp, "status": {"enum": ["active", "canceled", "ended"]},
                         "ends_at": {"type": ["string", "null"], "format": "date-time"}, "ending": {"enum": ["canceled", "replaced", None]},
                         "periods_charged": {"type": "integer", "minimum": 0}, "next_fee_at": {"type": ["string", "null"], "format": "date-time"},
                         "replaced": {"type": ["string", "null"], "description": "The subscription to another plan of the agent this one replaced"}},
                        ["id", "consumer", "plan", "agent", "period", "start", "status", "ends_at", "ending", "periods_charged", "next_fee_at", "replaced"]),
    "Subscriptions": obj({"subscriptions": {"type": "array", "items": {"$ref": "#/components/schemas/Subscription"}}}, ["subscriptions"]),
    "WebhookEndpointRequest": obj({"url": {"type": "string", "minLength": 8, "maxLength": 2048, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
                                   "events": {"type": "array", "minItems": 1, "maxItems": 10, "uniqueItems": True,
                                              "items": {"enum": ["balance.low", "credits.depleted", "balance.recovered", "execution.refused",
                                                                 "subscription.renewed", "period.closed", "payout.paid", "payout.failed",
                                                                 "purchase.succeeded", "auto_top_up.failed"]}}},
                                  ["url", "events"]),
    "WebhookEndpoint": obj({"id": {"type": "string"}, "url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}},
                            "secret": {"type": "string", "description": "whsec_...: the HMAC-SHA256 key of Tariff-Signature, shown this once"},
                            "created": timestamp}, ["id", "url", "events", "secret", "created"]),
    "PortalLinkRequest": obj({"consumer": ident, "creator": ident}),
    "PortalLink": obj({"id": {"type": "string", "pattern": "^pl_[0-9a-f]{24}$"}, "consumer": {"type": "string"}, "creator": {"type": "string"},
                       "url": {"type": "string", "description": "The page's URL holding the signed token (a secret: hand it only to the consumer or creator)"},
                       "created_at": timestamp, "expires_at": timestamp, "revoked_at": {"type": ["string", "null"], "format": "date-time"}},
                      ["id", "created_at", "expires_at", "revoked_at"]),
    "Empty": obj({}),
}

problem_text = {
    400: "Invalid input (invalid_input, invalid_amount, invalid_key, out_of_range, wrong_currency)",
    401: "No valid key (unauthorized); WWW-Authenticate: Bearer", 402: "insufficient_credits or payment_declined",
    403: "The key's role may not use this endpoint (forbidden)", 404: "not_found, unknown_consumer, unknown_reservation or unknown_plan",
    405: "Another method is allowed (Allow)",
    409: "idempotency_conflict, reservation_expired, request_in_progress or not_due", 413: "body_too_large (over 1 MiB)",
    415: "unsupported_media_type (send application/json)", 422: "no_plan, spend_cap or catalog_errors",
    502: "rail_rejected or rail_authentication", 503: "storage or rail_unavailable (Retry-After)",
}
responses = {str(code): {"description": text, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
             for code, text in problem_text.items()}
responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}

def answer(status, schema, description="OK", headers=None):
    r = {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    return status, r

def op(op_id, summary, ok, errors, body=None, params=(), auth=True):
    o = {"operationId": op_id, "summary": summary, "responses": {}}
    for status, r in ok:
        o["responses"][str(status)] = r
    for code in errors:
        o["responses"][str(code)] = {"$ref": f"#/components/responses/{code}"}
    if body:
        o["requestBody"] = {"required": body[1], "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body[0]}"}}}}
    if params:
        o["parameters"] = list(params)
    if not auth:
        o["security"] = []
    return o

def html_page(description):
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}},
            "headers": {"Referrer-Policy": {"schema": {"const": "no-referrer"}}}}

def q(name, schema, required=False):
    return {"name": name, "in": "query", "required": required, "schema": schema}

def p(name, schema=ident):
    return {"name": name, "in": "path", "required": True, "schema": schema}

body_errors = [400, 401, 413, 415, 503]
paths = {
    "/v1/balance": {"get": op("getBalance", "A consumer's available and reserved credits", [answer(200, "Balance")],
                              [400, 401, 404, 503], params=[q("consumer", ident)])},
    "/v1/purchases": {"post": op("createPurchase", "Buy prepaid credits through the server's rail (Idempotency-Key required)",
                                 [answer(201, "PurchaseAnswer", "Paid and credited"), answer(202, "PurchaseAnswer", "Pending (credited by the webhook)")],
                                 [400, 401, 402, 403, 404, 409, 413, 415, 502, 503], body=("PurchaseRequest", True),
                                 params=[{"name": "Idempotency-Key", "in": "header", "required": True,
                                          "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}}])},
    "/v1/consumers/{id}": {"put": op("putConsumer", "A consumer's Stripe customer and low-balance threshold", [answer(200, "ConsumerSettings")],
                                     [400, 401, 403, 413, 415, 503], body=("ConsumerSettingsRequest", False), params=[p("id")])},
    "/v1/consumers/{id}/auto-top-up": {"put": op("putAutoTopUp", "A consumer's auto top-up: below `below`, one off-session purchase of `amount` (the consumer itself or an admin)",
                                                 [answer(200, "AutoTopUp")], [400, 401, 403, 404, 413, 415, 503], body=("AutoTopUpRequest", True),
                                                 params=[p("id")])},
    "/v1/usage": {"get": op("getUsage", "Usage grouped over a period", [answer(200, "Usage")], [400, 401, 404, 503],
                            params=[q("period", {"type": "string", "pattern": "^[0-9]+[dh]$"}),
                                    q("group_by", {"enum": ["agent", "consumer", "plan", "day"]}), q("consumer", ident)])},
    "/v1/quotes": {"post": op("createQuote", "Price one execution (with a consumer: against its period state)", [answer(200, "Quote")],
                              [400, 401, 404, 413, 415, 422, 503], body=("QuoteRequest", False))},
    "/v1/plans": {"get": op("listPlans", "The catalog's plans and versions", [answer(200, "Plans")], [401, 503])},
    "/v1/executions": {"post": op("reserve", "Hold credits before a run (keyed by the execution id)", [answer(201, "Hold", "Held")],
                                  [400, 401, 402, 403, 404, 409, 413, 415, 422, 503], body=("ReserveRequest", True))},
    "/v1/executions/{id}": {"get": op("getExecution", "An execution's state and amounts", [answer(200, "Execution")], [400, 401, 404, 503],
                                      params=[p("id")])},
    "/v1/executions/{id}/meter": {"post": op("meter", "Report meters while the run goes on", [answer(200, "MeterAnswer")],
                                             [400, 401, 403, 404, 409, 413, 415, 503], body=("MeterRequest", False), params=[p("id")])},
    "/v1/executions/{id}/settle": {"post": op("settle", "Price and charge the finished run", [answer(200, "SettleAnswer")],
                                              [400, 401, 403, 404, 409, 413, 415, 503], body=("SettleRequest", True), params=[p("id")])},
    "/v1/executions/{id}/release": {"post": op("release", "Give the hold back in full", [answer(200, "ReleaseAnswer")],
                                               [400, 401, 403, 404, 409, 413, 415, 503], body=("Empty", False), params=[p("id")])},
    "/v1/payouts": {"get": op("listPayouts", "Each creator's payout rows for a week", [answer(200, "Payouts")], [400, 401, 403, 503],
                              params=[q("week", {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}, True)])},
    "/v1/payouts/{week}/execute": {"post": op("executePayouts", "Record and send a week's payouts through the rail", [answer(200, "Payouts")],
                                              [400, 401, 403, 409, 413, 415, 502, 503], body=("Empty", False),
                                              params=[p("week", {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})])},
    "/v1/refunds": {"post": op("createRefund", "Give credits back to the card a purchase came from (admin; Idempotency-Key required): at most what is left of the purchase and what is available",
                               [answer(201, "RefundAnswer", "Refunded")], [400, 401, 402, 403, 404, 409, 413, 415, 502, 503], body=("RefundRequest", True),
                               params=[{"name": "Idempotency-Key", "in": "header", "required": True,
                                        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}}])},
    "/v1/ledger/verify": {"get": op("verifyLedger", "Check every ledger invariant", [answer(200, "Verification")], [401, 403, 503])},
    "/v1/catalog/reload": {"post": op("reloadCatalog", "Recompile the catalog (the old one stays on errors)", [answer(200, "Reloaded")],
                                      [400, 401, 403, 413, 415, 422, 503], body=("Empty", False))},
    "/v1/webhooks": {"post": op("addWebhook", "Add an endpoint for events out (admin): each event is POSTed with Tariff-Signature: t=UNIX_SECONDS,v1=HEX "
                                "(HMAC-SHA256 under the secret of UNIX_SECONDS.BODY); the signing secret is shown this once",
                                [answer(201, "WebhookEndpoint", "Added")], [400, 401, 403, 413, 415, 503], body=("WebhookEndpointRequest", True))},
    "/v1/webhooks/stripe": {"post": op("stripeWebhook", "Stripe's signed events (Stripe-Signature, no key)", [answer(200, "WebhookAnswer")],
                                       [400, 413, 503], body=("Empty", False), auth=False,
                                       params=[{"name": "Stripe-Signature", "in": "header", "required": False, "schema": {"type": "string"}}])},
    "/v1/subscriptions": {
        "post": op("subscribe", "Subscribe a consumer to a subscription or enterprise plan (a consumer key: itself); its first fee is charged at once; "
                   "a subscription to another plan of the agent is replaced", [answer(201, "Subscription", "Subscribed"),
                   answer(200, "Subscription", "Already subscribed to this plan: the existing subscription")],
                   [400, 401, 404, 413, 415, 503], body=("SubscriptionRequest", True)),
        "get": op("listSubscriptions", "Subscriptions (a consumer key: its own)", [answer(200, "Subscriptions")], [400, 401, 404, 503],
                  params=[q("consumer", ident)])},
    "/v1/subscriptions/{id}": {"delete": op("cancelSubscription", "Cancel at the end of the current period (a consumer key: its own)",
                                            [answer(200, "Subscription")], [400, 401, 404, 503], params=[p("id")])},
    "/v1/portal/links": {"post": op("createPortalLink", "A read-only link to a consumer's page (admin, runtime) or a creator's page (admin), valid for 24 h",
                                    [answer(201, "PortalLink", "Made: its url holds the token")], [400, 401, 403, 413, 415, 503],
                                    body=("PortalLinkRequest", True))},
    "/v1/portal/links/{id}": {"delete": op("revokePortalLink", "Revoke a portal link: it opens nothing from now on (a runtime key: consumers' links only)",
                                           [answer(200, "PortalLink")], [401, 403, 404, 503], params=[p("id")])},
    "/portal/{token}": {"get": op("portalPage", "The page a portal link opens (self-contained HTML and SVG; Referrer-Policy: no-referrer); no key: the signed token is the authorization",
                                  [(200, html_page("The consumer's or creator's page")),
                                   (404, html_page("The same page for a malformed, altered, unknown, expired or revoked token")),
                                   (503, html_page("The ledger cannot be read; Retry-After"))],
                                  [], auth=False, params=[p("token", {"type": "string", "maxLength": 128})])},
    "/v1/clock": {"post": op("moveClock", "Move the test clock forward (only with --test-clock; 404 otherwise) and run every sweep that became due: expiries, period fees and closes", [answer(200, "Clock")],
                             [400, 401, 403, 404, 413, 415, 503], body=("ClockRequest", True))},
    "/healthz": {"get": op("healthz", "Alive", [answer(200, "Health")], [], auth=False)},
    "/readyz": {"get": op("readyz", "Ready: the ledger answers and the catalog compiled", [answer(200, "Health")], [503], auth=False)},
    "/metrics": {"get": op("metrics", "Prometheus text (loopback clients only unless --public-metrics)",
                           [(200, {"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}})],
                           [404], auth=False)},
    "/openapi.json": {"get": op("openapi", "This document", [(200, {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}})],
                                [], auth=False)},
}
# The webhook's body is Stripe's event, not the Empty object.
paths["/v1/webhooks/stripe"]["post"]["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}

document = {
    "openapi": "3.1.0",
    "info": {"title": "Tariff", "version": "1.0.0",
             "description": "The billing layer as an HTTP service (service.md): balances, purchases, quotes, the reserve -> meter -> settle lifecycle, payouts. Amounts are decimal strings; errors are RFC 9457 problem+json."},
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "security": [{"bearer": []}],
    "paths": paths,
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "tk_... from tariff keys create"}},
                   "schemas": schemas, "responses": responses},
}
text = json.dumps(document, indent=1, sort_keys=False)
with open(os.path.join(ROOT, "docs", "openapi.json"), "w") as f:
    f.write(text + "\n")
with open(os.path.join(ROOT, "Sources", "TariffServer", "OpenAPIDocument.swift"), "w") as f:
    f.write("// Generated by tools/openapi.py from the same description as docs/openapi.json; edit the script, not this file.\n")
    f.write("/// The OpenAPI 3.1 document of the API, served at `/openapi.json`.\nenum OpenAPIDocument {\n    static let text = #\"\"\"\n")
    f.write(text + "\n")
    f.write("\"\"\"#\n}\n")
