#!/usr/bin/env python3
"""Mutation check: does the test suite catch plausible one-line bugs in the money paths?

Each mutant below is one small edit of the pricing, settlement, payout or verify code, of the
kind a tired author makes (an operator, a bound, a rounding rule, a forgotten check). The script
applies them one at a time to a scratch clone of the committed HEAD (never to this working tree),
rebuilds it, runs the tests that cover that code, and reports each mutant as

    killed    the tests failed: the bug would have been caught
    survived  the tests passed with the bug in: a hole in the suite
    invalid   the mutant no longer applies (its line changed) or does not compile: fix the list

Usage:  scripts/mutate.py [--only ID[,ID...]] [--list] [--report FILE] [--scratch DIR] [--keep-going]

Not run by CI (it rebuilds once per mutant). The scratch clone lives in .build-mutate/ (ignored by
git) and keeps its own .build, so runs after the first rebuild only what a mutant touches. Each
mutant runs a filter of the suite (the test targets that exercise its code), not the whole suite,
to keep a run under half an hour on a shared 2-core machine; the filters are listed with each mutant and
in the report. The unmutated HEAD must pass every filter first, or no result would mean anything.
Exit status: 0 when every mutant is killed, 1 otherwise. docs/testing.md has the last result.
"""

import argparse
import os
import subprocess
import sys
import time

# Filters (swift test --filter, a regular expression over Target.Suite/test).
SETTLEMENT = "TariffSettlementTests"
ENGINE = "TariffEngineTests"
PRICING = "TariffEngineTests|TariffSimulationTests"
PAYOUTS = "TariffEngineTests|TariffSettlementTests"

# (id, area, file, text to find, replacement, occurrence (1-based), filter, what the bug is)
MUTANTS = [
    # verify (the four the issue found surviving first, then the rest of its checks)
    ("verify-double-charge", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "for (execution, count) in executionLines where count > 1 {", "for (execution, count) in executionLines where count > 2 {", 1, SETTLEMENT,
     "verify no longer notices an execution charged twice"),
    ("verify-uncollected", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "if Int128(record.billed.micros) - Int128(record.charged.micros) != Int128(record.uncollected.micros) {", "if false {", 1, SETTLEMENT,
     "verify no longer checks billed - charged = uncollected on a line"),
    ("verify-paid-beyond-earnings", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "if paidBefore + Int128(payout.amount.micros) > earnedByWeekEnd {", "if paidBefore < 0 {", 1, SETTLEMENT,
     "verify no longer notices a creator paid beyond earnings"),
    ("verify-running-overdraft", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "entry.debit.kind == .reserved, debited < 0 {", "entry.debit.kind == .reserved, debited < -1_000_000_000 {", 1, SETTLEMENT,
     "verify tolerates a balance that went negative between entries"),
    ("verify-ignores-holds", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "for hold in ledger.holds where hold.state == .active { held[hold.consumer, default: 0] += Int128(hold.amount.micros) }",
     "for hold in ledger.holds where hold.state == .active { held[hold.consumer, default: 0] += Int128(hold.estimate.micros) }", 1, SETTLEMENT,
     "invariant 2 reads what a hold first held, not what it holds"),
    ("verify-shares", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "if shares != Int128(record.charged.micros) {", "if shares > Int128(record.charged.micros) + 1 {", 1, SETTLEMENT,
     "verify lets shares miss their line by a micro-unit"),
    ("verify-conservation", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "if totalCharged != creators + platform + processing {", "if false {", 1,
     SETTLEMENT, "verify no longer checks total charged = creators + platform + processing"),
    ("verify-period-key-twice", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "where results[key]?.map({ Int128($0) }) != sums {", "where results[key] == nil {", 1, SETTLEMENT,
     "verify no longer notices a period key's lines written twice"),
    ("verify-whole-cents", "verify", "Sources/TariffSettlement/Lifecycle/LedgerVerifier.swift",
     "payout.amount.micros % 10_000 != 0", "payout.amount.micros % 1 != 0", 1, SETTLEMENT,
     "verify accepts payouts in fractions of a cent"),
    # payouts
    ("payout-rounded", "payouts", "Sources/Tariff/Payouts.swift",
     "due.divided(by: 10_000, rounding: .down)", "due.divided(by: 10_000, rounding: .halfEven)", 1, PAYOUTS,
     "payouts rounded to cents instead of floored"),
    ("payout-minimum", "payouts", "Sources/Tariff/Payouts.swift",
     "floored >= minimum && floored > 0", "floored > 0", 1, PAYOUTS,
     "payouts below the minimum are paid"),
    ("payout-carry-lost", "payouts", "Sources/Tariff/Payouts.swift",
     "carried = due - amount", "carried = 0", 1, PAYOUTS,
     "what is not paid does not carry to the next week"),
    # settlement
    ("settle-overdraft", "settlement", "Sources/TariffSettlement/Backend/SettlementMath.swift",
     "guard available < billed.micros else { return (billed, .zero, split) }", "guard available < 0 else { return (billed, .zero, split) }", 1, SETTLEMENT,
     "a settle charges the whole line even beyond held + available"),
    ("settle-no-writeoff-entry", "settlement", "Sources/TariffSettlement/Backend/LedgerSteps.swift",
     "if collected.uncollected.micros > 0 {", "if collected.uncollected.micros > 1_000_000_000_000_000 {", 1, SETTLEMENT,
     "a settle records the uncollected rest on its line but writes no entry for it"),
    ("reserve-overdraft", "settlement", "Sources/TariffSettlement/Backend/LedgerSteps.swift",
     "guard consumer.available >= command.amount else {", "guard consumer.available.micros >= command.amount.micros / 2 else {", 1, SETTLEMENT,
     "a reserve holds more than is available"),
    ("purchase-idempotency", "settlement", "Sources/TariffSettlement/Backend/LedgerSteps.swift",
     "guard applied.fingerprint == command.fingerprint, applied.result.count == 2 else {", "guard applied.result.count == 2 else {", 1, SETTLEMENT,
     "a purchase key reused with another amount returns the first result instead of a conflict"),
    ("hold-live-at-expiry", "settlement", "Sources/TariffSettlement/Backend/LedgerSteps.swift",
     "guard now < hold.expiresAt else {", "guard now <= hold.expiresAt else {", 1, SETTLEMENT,
     "a hold can still be settled at its expiry instant"),
    # pricing
    ("allowance-off-by-one", "pricing", "Sources/TariffEngine/Evaluator.swift",
     "let covered = min(cuMillis, remaining)", "let covered = min(cuMillis, remaining + 1)", 1, PRICING,
     "one thousandth of a CU more is covered by the allowance"),
    ("spend-cap-at-cap", "pricing", "Sources/TariffEngine/Evaluator.swift",
     "if spentPicos >= picos {", "if spentPicos > picos {", 1, PRICING,
     "an execution is priced when the period's spend is exactly at the cap"),
    ("free-executions-n-plus-one", "pricing", "Sources/TariffEngine/Evaluator.swift",
     "if state.executions < count {", "if state.executions <= count {", 1, PRICING,
     "free_executions frees N + 1 executions"),
    ("round-half-up", "pricing", "Sources/TariffEngine/Evaluator.swift",
     "return small.divided(by: smallDivisor, rounding: .halfEven)", "return small.divided(by: smallDivisor, rounding: .up)", 1, PRICING,
     "charges rounded up instead of half-to-even"),
    ("cu-rounded-down", "pricing", "Sources/TariffEngine/Evaluator.swift",
     "steps = Int128(small.divided(by: divisor, rounding: .up))", "steps = Int128(small.divided(by: divisor, rounding: .down))", 1, PRICING,
     "compute units rounded down to the precision instead of up"),
    ("shortfall-ignores-usage", "pricing", "Sources/TariffEngine/PeriodLines.swift",
     "let billed = Int128(fees.micros) + Int128(state.usageCharges.micros)", "let billed = Int128(fees.micros)", 1, PRICING,
     "the commitment shortfall ignores the period's usage charges"),
    ("sla-band-not-strict", "pricing", "Sources/TariffEngine/PeriodLines.swift",
     "Int128(succeeded) * Int128(Percent.partsPerWhole) < Int128(band.below.partsPerMillion) * total",
     "Int128(succeeded) * Int128(Percent.partsPerWhole) <= Int128(band.below.partsPerMillion) * total", 1, PRICING,
     "an SLA credit is given when availability is exactly at a band's bound"),
    ("clock-offset-ignored", "pricing", "Sources/TariffEngine/CompiledPlan.swift",
     "let local = endedAt.adding(nanoseconds: offsetSeconds &* 1_000_000_000) ?? endedAt", "let local = endedAt", 1, PRICING,
     "weekdays and hours read in UTC instead of the rule's time zone"),
    ("hours-no-wrap", "pricing", "Sources/TariffEngine/CompiledPlan.swift",
     "} else if hour < fromHour && hour >= toHour {", "} else if hour < fromHour || hour >= toHour {", 1, PRICING,
     "an hours range past midnight (22 to 6) never holds"),
    ("per-call-period-rule-accepted", "pricing", "Sources/TariffCompiler/Stages/ReadPlansStage.swift",
     "if let lowering, lowering.period == nil, let model,", "if let lowering, lowering.period == nil && false, let model,", 1,
     "TariffCompilerTests|TariffEngineTests", "free_executions on a per_call plan compiles (every call free)"),
    ("split-tie-order", "pricing", "Sources/TariffCore/Values/Split.swift",
     "(fraction(a) == fraction(b) && a < b)", "(fraction(a) == fraction(b) && a > b)", 1, PRICING,
     "split ties go to processing first instead of creator"),
]


def run(command, cwd, log, timeout=None):
    """Runs a command, appending its output to log; returns its exit status (124 on a timeout)."""
    with open(log, "a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        try:
            return subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write("(timed out)\n")
            return 124


def main():
    parser = argparse.ArgumentParser(description="Apply plausible one-line bugs one at a time and run the tests against each.")
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--report", help="also write the report (markdown) to this file")
    parser.add_argument("--scratch", help="the scratch clone (default .build-mutate/tree)")
    parser.add_argument("--test-timeout", type=int, default=900, help="seconds per test run (a hang counts as killed)")
    args = parser.parse_args()

    mutants = MUTANTS
    if args.only:
        wanted = set(args.only.split(","))
        mutants = [m for m in MUTANTS if m[0] in wanted]
        unknown = wanted - {m[0] for m in MUTANTS}
        if unknown:
            sys.exit("unknown mutant(s): " + ", ".join(sorted(unknown)))
    if args.list:
        for m in mutants:
            print(f"{m[0]:30} {m[1]:11} {m[7]}  [{m[6]}]")
        return 0

    root = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    head = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=root, text=True).strip()
    if subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root).returncode != 0:
        print("note: the working tree has uncommitted changes; the mutants apply to the committed HEAD " + head[:10])
    scratch = os.path.abspath(args.scratch or os.path.join(root, ".build-mutate", "tree"))
    log = os.path.join(os.path.dirname(scratch), "mutate.log")
    os.makedirs(os.path.dirname(scratch), exist_ok=True)
    open(log, "w").close()

    # A clone of HEAD (its own repository: nothing is registered in this one), reused across runs.
    if not os.path.isdir(os.path.join(scratch, ".git")):
        subprocess.check_call(["git", "clone", "-q", "--no-checkout", root, scratch])
    subprocess.check_call(["git", "fetch", "-q", root, head], cwd=scratch)
    subprocess.check_call(["git", "checkout", "-q", "--detach", "-f", head], cwd=scratch)
    subprocess.check_call(["git", "reset", "-q", "--hard", head], cwd=scratch)

    started = time.time()
    print(f"scratch clone {scratch} at {head[:10]}; log {log}")
    if run(["swift", "build", "--build-tests"], scratch, log) != 0:
        sys.exit("the unmutated HEAD does not build: see " + log)
    for test_filter in sorted({m[6] for m in mutants}):
        if run(["swift", "test", "--skip-build", "--filter", test_filter], scratch, log, args.test_timeout) != 0:
            sys.exit(f"the unmutated HEAD fails --filter '{test_filter}': see {log}")
    print(f"baseline: builds, and passes every filter ({time.time() - started:.0f} s)")

    results = []
    for (ident, area, path, find, replace, occurrence, test_filter, what) in mutants:
        mutant_started = time.time()
        file = os.path.join(scratch, path)
        with open(file) as f:
            original = f.read()
        parts = original.split(find)
        if len(parts) <= occurrence:
            status = "invalid (no longer applies)"
        else:
            mutated = find.join(parts[:occurrence]) + replace + find.join(parts[occurrence:])
            try:
                with open(file, "w") as f:
                    f.write(mutated)
                if run(["swift", "build", "--build-tests"], scratch, log) != 0:
                    status = "invalid (does not compile)"
                else:
                    code = run(["swift", "test", "--skip-build", "--filter", test_filter], scratch, log, args.test_timeout)
                    status = "killed" if code != 0 else "survived"
            finally:
                # Never leave the scratch tree mutated, whatever happened.
                with open(file, "w") as f:
                    f.write(original)
        seconds = time.time() - mutant_started
        results.append((ident, area, what, test_filter, status, seconds))
        print(f"{status:28} {ident:30} {seconds:5.0f} s  {what}", flush=True)

    total = time.time() - started
    killed = sum(1 for r in results if r[4] == "killed")
    lines = [f"Mutation run of {head[:10]}: {killed} of {len(results)} mutants killed, {total / 60:.1f} minutes "
             f"(baseline build and filters included).", "",
             "| mutant | area | bug | tests run (--filter) | result | seconds |", "| --- | --- | --- | --- | --- | --- |"]
    # A | inside a table cell must be escaped, even inside backticks.
    lines += [f"| `{r[0]}` | {r[1]} | {r[2]} | `{r[3].replace('|', chr(92) + '|')}` | {r[4]} | {r[5]:.0f} |" for r in results]
    report = "\n".join(lines)
    print()
    print(report)
    if args.report:
        with open(args.report, "w") as f:
            f.write(report + "\n")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
