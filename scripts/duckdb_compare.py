#!/usr/bin/env python3
"""Tariff against DuckDB on the same delivery-order trace (performance.md, `simulate` row).

Writes a catalog of per-call and monthly subscription plans (20 agents: a per-call default plan
each, every other agent also a subscription plan with an allowance of 50 compute units that most
subscribers exceed, so that overage and the split's left-over micro-units are exercised), generates a trace in delivery order with
`tariff generate --delivery-delay 3`, then in the same run:

- `tariff simulate --format json` over it, timed;
- DuckDB SQL over the same file, timed (both threads allowed): per-call fees, subscription fees at
  period starts, allowance and overage through window functions, each charge line split 80/15/5
  exactly as plans.md says (shares truncated to micro-units, the micro-units left over to the
  largest truncated fractions);

and checks that the totals (charged, creator, platform, processing, fees, usage) are equal to the
micro-unit. Exit 0 when they are, 1 otherwise (with `--require-faster`, 1 as well when tariff's wall
time is not below DuckDB's).

    python3 -m venv .venv && .venv/bin/pip install duckdb
    swift build -c release --product tariff
    .venv/bin/python scripts/duckdb_compare.py --tariff .build/release/tariff --events 1000000

Every amount is an integer of micro-units in the SQL (no floating point): compute units in
thousandths, the per-call fee and the overage price in micro-units.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

AGENTS = 20
SUBSCRIPTION_FEE_MICROS = 49_000_000
ALLOWANCE_MILLI_CU = 50 * 1_000
OVERAGE_MICROS_PER_MILLI_CU = 5  # 0.005 per CU = 5 micro-units per thousandth of a CU


def write_catalog(directory):
    plans = os.path.join(directory, "plans")
    rules = os.path.join(directory, "rules")
    os.makedirs(plans)
    os.makedirs(rules)
    with open(os.path.join(rules, "metering.yaml"), "w") as f:
        f.write("metering:\n  standard:\n    weights: { cpu_ms: 0.001, memory_mb_s: 0.0001, network_kb: 0.0005, inference_calls: 0.5 }\n"
                "    precision: 0.001\n")
    with open(os.path.join(rules, "splits.yaml"), "w") as f:
        f.write("splits:\n  standard: { creator: 80%, platform: 15%, processing: 5% }\n")
    for agent in range(AGENTS):
        header = f"agent: agt_{agent}\ncreator: acct_creator_{agent % 40}\ncurrency: USD\n"
        with open(os.path.join(plans, f"payg-{agent}.yaml"), "w") as f:
            f.write(f"plan: payg-{agent}\n{header}model: per_call\nper_call:\n  fee: 0.0{agent % 9 + 1}\n")
        if agent % 2 == 0:
            with open(os.path.join(plans, f"pro-{agent}.yaml"), "w") as f:
                f.write(f"plan: pro-{agent}\n{header}model: subscription\n"
                        "subscription: { period: month, fee: 49.00, allowance: 50, overage: 0.005 }\n")
    return plans, rules


# The per-call fee of agent N is 0.0(N % 9 + 1): (N % 9 + 1) * 10,000 micro-units.
SQL = """
WITH raw AS (
    SELECT row_number() OVER () AS line, *
    FROM read_json(?, format = 'newline_delimited', columns = {
        'type': 'VARCHAR', 'id': 'VARCHAR', 'consumer': 'VARCHAR', 'agent': 'VARCHAR', 'plan': 'VARCHAR',
        'at': 'VARCHAR', 'ended_at': 'VARCHAR', 'status': 'VARCHAR',
        'meters': 'STRUCT(cpu_ms BIGINT, memory_mb_s BIGINT, network_kb BIGINT, inference_calls BIGINT)'})
),
events AS (
    SELECT line, type, id, consumer, agent, plan, status, meters,
           CAST(replace(coalesce(ended_at, "at"), 'Z', '') AS TIMESTAMP) AS t
    FROM raw
),
bounds AS (SELECT max(t) AS last_t FROM events),
subscriptions AS (
    SELECT consumer, plan, 'agt_' || substr(plan, 5) AS agent, t AS anchor
    FROM events WHERE type = 'subscribe'
),
-- usage.md: a repeated execution id is priced once, at its first occurrence in (time, line) order.
executions AS (
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY id ORDER BY t, line) AS occurrence
        FROM events WHERE type = 'execution'
    ) WHERE occurrence = 1
),
-- plans.md: cu = ceil_to(0.001, sum(weight * meter)); in 1/10,000 CU the weights are 10, 1, 5, 5000.
measured AS (
    SELECT e.*, s.anchor,
           (coalesce(e.meters.cpu_ms, 0) * 10 + coalesce(e.meters.memory_mb_s, 0) + coalesce(e.meters.network_kb, 0) * 5
            + coalesce(e.meters.inference_calls, 0) * 5000 + 9) // 10 AS milli_cu
    FROM executions e
    LEFT JOIN subscriptions s ON s.consumer = e.consumer AND s.agent = e.agent AND s.anchor <= e.t
),
-- The period an execution falls in: the last anchor + k months (clamped) at or before it.
periods AS (
    SELECT *, CASE WHEN anchor IS NULL THEN NULL
                   WHEN anchor + to_months(date_diff('month', anchor, t)) <= t THEN date_diff('month', anchor, t)
                   ELSE date_diff('month', anchor, t) - 1 END AS period
    FROM measured
),
-- Allowance then overage, in (time, line) order within each subscription period (a window).
charged AS (
    SELECT *,
        CASE
            WHEN status = 'failed' THEN 0
            WHEN anchor IS NULL THEN (CAST(substr(agent, 5) AS INTEGER) % 9 + 1) * 10000
            ELSE (milli_cu - least(milli_cu, greatest(0, {allowance} - coalesce(
                      sum(CASE WHEN status = 'failed' THEN 0 ELSE milli_cu END) OVER (
                          PARTITION BY consumer, agent, period ORDER BY t, line ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))))
                 * {overage}
        END AS amount
    FROM periods
),
-- Fees at every period start up to the last event.
fees AS (
    SELECT consumer, plan, period FROM (
        SELECT s.consumer, s.plan, s.anchor, unnest(range(0, date_diff('month', s.anchor, b.last_t) + 2)) AS period
        FROM subscriptions s, bounds b
    ), bounds b WHERE anchor + to_months(period) <= b.last_t
),
lines AS (
    SELECT amount, 'usage' AS kind FROM charged
    UNION ALL
    SELECT {fee} AS amount, 'fee' AS kind FROM fees
),
-- plans.md: each share truncated to micro-units; what is left goes one micro-unit at a time to
-- the largest truncated-away fractions, ties creator, platform, processing.
shares AS (
    SELECT amount, kind,
           amount * 80 // 100 AS c, amount * 15 // 100 AS p, amount * 5 // 100 AS q,
           amount * 80 % 100 AS fc, amount * 15 % 100 AS fp, amount * 5 % 100 AS fq
    FROM lines
),
ranked AS (
    SELECT *, amount - c - p - q AS leftover,
           1 + (fp > fc)::INT + (fq > fc)::INT AS rc,
           1 + (fc >= fp)::INT + (fq > fp)::INT AS rp,
           1 + (fc >= fq)::INT + (fp >= fq)::INT AS rq
    FROM shares
)
SELECT sum(amount) AS charged,
       sum(c + (rc <= leftover)::INT) AS creator,
       sum(p + (rp <= leftover)::INT) AS platform,
       sum(q + (rq <= leftover)::INT) AS processing,
       sum(CASE WHEN kind = 'fee' THEN amount ELSE 0 END) AS fees,
       sum(CASE WHEN kind = 'usage' THEN amount ELSE 0 END) AS usage
FROM ranked
""".replace("{allowance}", str(ALLOWANCE_MILLI_CU)).replace("{overage}", str(OVERAGE_MICROS_PER_MILLI_CU)).replace("{fee}", str(SUBSCRIPTION_FEE_MICROS))


def micros(text):
    """A decimal string with six fractional digits, as an integer of micro-units."""
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    value = int(whole) * 1_000_000 + int((fraction + "000000")[:6])
    return -value if negative else value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tariff", default=".build/release/tariff")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--consumers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--require-faster", action="store_true",
                        help="also exit 1 when tariff simulate's wall time is not below DuckDB's (performance.md; a release build)")
    arguments = parser.parse_args()
    import duckdb  # PyPI `duckdb`

    with tempfile.TemporaryDirectory(prefix="tariff-duckdb-") as directory:
        plans, rules = write_catalog(directory)
        trace = os.path.join(directory, "trace.jsonl")
        subprocess.run([arguments.tariff, "generate", "--plans", plans, "--rules", rules, "--events", str(arguments.events),
                        "--consumers", str(arguments.consumers), "--days", str(arguments.days), "--seed", str(arguments.seed), "--delivery-delay", "3",
                        "--output", trace], check=True)

        start = time.perf_counter()
        run = subprocess.run([arguments.tariff, "simulate", "--plans", plans, "--rules", rules, "--usage", trace, "--format", "json"],
                             check=True, capture_output=True, text=True)
        tariff_seconds = time.perf_counter() - start
        report = json.loads(run.stdout)
        totals = report["totals"]
        tariff = {
            "charged": micros(totals["charged"]), "creator": micros(totals["creator"]),
            "platform": micros(totals["platform"]), "processing": micros(totals["processing"]),
            "fees": sum(micros(row["fees"]) for row in report["plans"]),
            "usage": sum(micros(row["usage"]) for row in report["plans"]),
        }

        connection = duckdb.connect()
        connection.execute(f"SET threads = {arguments.threads}")
        start = time.perf_counter()
        row = connection.execute(SQL, [trace]).fetchone()
        duckdb_seconds = time.perf_counter() - start
        names = ["charged", "creator", "platform", "processing", "fees", "usage"]
        sql = dict(zip(names, (int(value) for value in row)))

    same = True
    for name in names:
        mark = "==" if tariff[name] == sql[name] else "!="
        same = same and mark == "=="
        print(f"{name:>10}: tariff {tariff[name] / 1e6:>18.6f} {mark} duckdb {sql[name] / 1e6:>18.6f}")
    print(f"tariff simulate: {tariff_seconds:.2f} s ({arguments.events / tariff_seconds:,.0f} events/s); "
          f"DuckDB {duckdb.__version__} ({arguments.threads} threads): {duckdb_seconds:.2f} s "
          f"({arguments.events / duckdb_seconds:,.0f} events/s); ratio {duckdb_seconds / tariff_seconds:.2f}")
    print("totals equal to the micro-unit" if same else "TOTALS DIFFER")
    faster = tariff_seconds < duckdb_seconds
    if arguments.require_faster and not faster:
        print(f"tariff simulate is NOT faster than DuckDB ({tariff_seconds:.2f} s against {duckdb_seconds:.2f} s)")
    return 0 if same and (faster or not arguments.require_faster) else 1


if __name__ == "__main__":
    sys.exit(main())
