#!/usr/bin/python3
"""Performance regression gate for the perf job: compares ratios, not rates.

A shared CI runner's absolute request rate moves by tens of percent from one run to the
next (other tenants, CPU model, turbo). Two contenders measured in the same job on the same
machine move together, so their ratio is what we compare against bench/baseline.json:

  coroserve/nginx          coroserve /mongo rps_ok over the nginx static-file ceiling
  coroserve/coroserve-json coroserve /mongo rps_ok over coroserve's own /json (no database)

one per document ("small", "big") and connection count present in both runs. rps_ok is
bench/run's median over repetitions of the successful request rate.

Exit status: 0 no ratio dropped more than the tolerance, 1 at least one did, 2 bad input.

  perf-gate.py --results perf/head/results.json [--baseline bench/baseline.json]
               [--tolerance 0.15] [--base-results perf/base/results.json] [--gate-base]
               [--summary "$GITHUB_STEP_SUMMARY"]
  perf-gate.py --results r1.json [r2.json ...] --write-baseline bench/baseline.json [--note TEXT]
"""

import argparse
import datetime
import json
import os
import sys

# Defaults; another repository reusing the gate names its own with --subject, --endpoint
# and --references (bench/CI.md).
SUBJECT = "coroserve"
SUBJECT_ENDPOINT = "/mongo"
REFERENCES = ("nginx", "coroserve-json")
DEFAULT_TOLERANCE = 0.15
UPDATE_HINT = (
    "If the change is intended, update the baseline on purpose from this run's results "
    "(the perf-results artifact holds results.json):\n"
    "  /usr/bin/python3 tools/ci/perf-gate.py --results results.json "
    "--write-baseline bench/baseline.json --note 'why'\n"
    "and commit bench/baseline.json with the reason in the commit message."
)


class InputError(Exception):
    pass


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}")
    except json.JSONDecodeError as e:
        raise InputError(f"{what} is not valid JSON: {path}: {e}")


def ratio_key(reference, doc, connections, subject=SUBJECT):
    return f"{subject}/{reference} {doc} c{connections}"


def _rate(run):
    try:
        rate = float(run.get("rps_ok"))
    except (TypeError, ValueError):
        return None
    return rate if rate > 0 else None


def compute_ratios(results, subject=SUBJECT, endpoint=SUBJECT_ENDPOINT, references=REFERENCES):
    """Maps ratio_key(...) to subject rps_ok / reference rps_ok for every comparable point.

    A point is comparable when both contenders ran at the same document and connection
    count with a positive rps_ok. Returns (ratios, notes) where notes explain skipped points.
    """
    runs = results.get("runs")
    if not isinstance(runs, list):
        raise InputError("results.json has no 'runs' list")
    by_point = {}
    for run in runs:
        if not isinstance(run, dict):
            continue
        contender, doc, conns = run.get("contender"), run.get("doc"), run.get("connections")
        if contender is None or doc is None or conns is None:
            continue
        if contender == subject and run.get("endpoint", endpoint) != endpoint:
            continue
        # Keep the first run per point; bench/run writes one per contender, doc and count.
        by_point.setdefault((contender, str(doc), int(conns)), run)

    ratios, notes = {}, []
    subject_points = sorted((d, c) for (name, d, c) in by_point if name == subject)
    for doc, conns in subject_points:
        subject_rate = _rate(by_point[(subject, doc, conns)])
        for reference in references:
            ref_run = by_point.get((reference, doc, conns))
            if ref_run is None:
                continue
            key = ratio_key(reference, doc, conns, subject)
            ref_rate = _rate(ref_run)
            if subject_rate is None or ref_rate is None:
                notes.append(f"{key}: no successful requests measured, ratio skipped")
                continue
            ratios[key] = subject_rate / ref_rate
    return ratios, notes


def compare(measured, baseline, tolerance):
    """Rows of (key, baseline, measured, change, status); status is ok, REGRESSION,
    faster, missing (in the baseline, not measured) or new (measured, not in baseline)."""
    rows = []
    for key in sorted(set(baseline) | set(measured)):
        base, got = baseline.get(key), measured.get(key)
        if base is None:
            rows.append((key, None, got, None, "new"))
        elif got is None:
            rows.append((key, base, None, None, "missing"))
        else:
            change = (got - base) / base
            if change < -tolerance:
                status = "REGRESSION"
            elif change > tolerance:
                status = "faster"
            else:
                status = "ok"
            rows.append((key, base, got, change, status))
    return rows


def fmt_ratio(x):
    return "-" if x is None else f"{x:.3f}"


def fmt_change(x):
    return "-" if x is None else f"{x * 100:+.1f}%"


def markdown_report(rows, tolerance, base_rows, notes, failed, baseline_path):
    lines = ["## Performance gate", ""]
    lines.append(
        f"Ratios of the subject's successful req/s over a reference measured in the same "
        f"job, against `{baseline_path}` (tolerance {tolerance * 100:.0f}%)."
    )
    lines += ["", "| ratio | baseline | measured | change | status |", "|---|---|---|---|---|"]
    for key, base, got, change, status in rows:
        shown = f"**{status}**" if status == "REGRESSION" else status
        lines.append(f"| {key} | {fmt_ratio(base)} | {fmt_ratio(got)} | {fmt_change(change)} | {shown} |")
    if base_rows is not None:
        lines += ["", "### This pull request against its base branch (same job)", ""]
        lines += ["| ratio | base | head | change |", "|---|---|---|---|"]
        for key, base, got, change, _ in base_rows:
            lines.append(f"| {key} | {fmt_ratio(base)} | {fmt_ratio(got)} | {fmt_change(change)} |")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    lines.append("")
    lines.append("**Result: regression.**" if failed else "**Result: pass.**")
    if failed:
        lines += ["", "```", UPDATE_HINT, "```"]
    return "\n".join(lines) + "\n"


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def merge_runs(per_run):
    """Median of each ratio over several bench runs (a ratio missing from a run is left out)."""
    keys = set().union(*(ratios for ratios in per_run))
    return {k: median([r[k] for r in per_run if k in r]) for k in keys}


def write_baseline(path, ratios, runs, tolerance, note):
    """runs: [(results_path, results, ratios_of_that_run)]; ratios: their per-key median."""
    previous = {}
    if os.path.exists(path):
        previous = load_json(path, "baseline")
    baseline = {
        "description": previous.get(
            "description",
            "Ratios guarded by tools/ci/perf-gate.py: coroserve /mongo successful req/s over a "
            "reference contender measured in the same bench run. See bench/CI.md.",
        ),
        "tolerance": tolerance if tolerance is not None else previous.get("tolerance", DEFAULT_TOLERANCE),
        "source": {
            "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "note": note or "",
            "method": f"median over {len(runs)} bench run(s) of each ratio",
            "runs": [
                {
                    "results": results_path,
                    "meta": results.get("meta") if isinstance(results.get("meta"), dict) else {},
                    "ratios": {k: round(v, 4) for k, v in sorted(run_ratios.items())},
                }
                for results_path, results, run_ratios in runs
            ],
        },
        "ratios": {k: round(v, 4) for k, v in sorted(ratios.items())},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(baseline, f, indent=2, sort_keys=False)
        f.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, nargs="+", metavar="RESULTS",
                        help="results.json of this run (bench/run --out DIR); with several, "
                             "each ratio is their median (e.g. to write a baseline from 3 runs)")
    parser.add_argument("--baseline", default="bench/baseline.json")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="allowed relative drop of a ratio (default: the baseline's, else 0.15)")
    parser.add_argument("--base-results", help="results.json of the base branch, measured in the same job")
    parser.add_argument("--gate-base", action="store_true",
                        help="also fail when a ratio dropped more than the tolerance against the base branch")
    parser.add_argument("--require-all", action="store_true",
                        help="fail when a baseline ratio was not measured")
    parser.add_argument("--summary", help="append the markdown report to this file (e.g. $GITHUB_STEP_SUMMARY)")
    parser.add_argument("--write-baseline", metavar="PATH", help="write the measured ratios as a new baseline and exit")
    parser.add_argument("--note", help="with --write-baseline: where the numbers came from")
    parser.add_argument("--subject", default=SUBJECT, help="contender under test (default %(default)s)")
    parser.add_argument("--endpoint", default=SUBJECT_ENDPOINT, help="its endpoint (default %(default)s)")
    parser.add_argument("--references", default=",".join(REFERENCES),
                        help="contenders it is divided by, comma separated (default %(default)s)")
    args = parser.parse_args(argv)
    ratio_args = dict(subject=args.subject, endpoint=args.endpoint,
                      references=tuple(r for r in args.references.split(",") if r))

    if args.tolerance is not None and not 0 <= args.tolerance < 1:
        print(f"perf-gate: --tolerance must be in [0, 1), got {args.tolerance}", file=sys.stderr)
        return 2
    try:
        runs, notes = [], []
        for path in args.results:
            results = load_json(path, "results")
            run_ratios, run_notes = compute_ratios(results, **ratio_args)
            runs.append((path, results, run_ratios))
            notes += [f"{path}: {n}" if len(args.results) > 1 else n for n in run_notes]
        measured = merge_runs([r for _, _, r in runs])
        if args.write_baseline:
            if not measured:
                raise InputError(f"no comparable ratio in {' '.join(args.results)}: nothing to write")
            write_baseline(args.write_baseline, measured, runs, args.tolerance, args.note)
            print(f"perf-gate: wrote {len(measured)} ratios to {args.write_baseline}")
            for key, value in sorted(measured.items()):
                print(f"  {key} = {value:.4f}")
            return 0

        baseline_doc = load_json(args.baseline, "baseline")
        baseline = baseline_doc.get("ratios")
        if not isinstance(baseline, dict):
            raise InputError(f"baseline has no 'ratios' object: {args.baseline}")
        tolerance = args.tolerance
        if tolerance is None:
            tolerance = float(baseline_doc.get("tolerance", DEFAULT_TOLERANCE))

        base_rows = None
        if args.base_results:
            if os.path.exists(args.base_results):
                base_ratios, base_notes = compute_ratios(load_json(args.base_results, "base results"), **ratio_args)
                base_rows = [r for r in compare(measured, base_ratios, tolerance) if r[3] is not None]
                notes += [f"base: {n}" for n in base_notes]
            else:
                notes.append(f"base branch results not found ({args.base_results}): no comparison with the base")
    except InputError as e:
        print(f"perf-gate: {e}", file=sys.stderr)
        return 2

    rows = compare(measured, baseline, tolerance)
    compared = [r for r in rows if r[3] is not None]
    failures = []
    for key, base, got, change, status in rows:
        if status == "REGRESSION":
            failures.append(
                f"ratio {key} dropped {-change * 100:.1f}%: measured {got:.3f}, baseline {base:.3f}, "
                f"tolerance {tolerance * 100:.0f}% (lowest accepted {base * (1 - tolerance):.3f})"
            )
        elif status == "missing":
            notes.append(f"{key}: in the baseline but not measured in this run")
            if args.require_all:
                failures.append(f"ratio {key} is in the baseline but was not measured (--require-all)")
        elif status == "new":
            notes.append(f"{key}: measured ({got:.3f}) but not in the baseline: not gated")
        elif status == "faster":
            notes.append(f"{key}: {change * 100:+.1f}% over the baseline; consider updating the baseline")
    if base_rows is not None and args.gate_base:
        for key, base, got, change, _ in base_rows:
            if change < -tolerance:
                failures.append(
                    f"ratio {key} dropped {-change * 100:.1f}% against the base branch: head {got:.3f}, "
                    f"base {base:.3f}, tolerance {tolerance * 100:.0f}%"
                )
    if not compared:
        failures.append(
            "no ratio could be compared with the baseline (did the bench run coroserve together with "
            "nginx or coroserve-json, at the baseline's documents and connection counts?)"
        )

    for key, base, got, change, status in rows:
        print(f"{status:>10}  {key:<34} baseline {fmt_ratio(base):>6}  measured {fmt_ratio(got):>6}  {fmt_change(change)}")
    if base_rows is not None:
        print("against the base branch (same job):")
        for key, base, got, change, _ in base_rows:
            print(f"{'':>10}  {key:<34} base {fmt_ratio(base):>6}  head {fmt_ratio(got):>6}  {fmt_change(change)}")
    for note in notes:
        print(f"note: {note}")

    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as f:
            f.write(markdown_report(rows, tolerance, base_rows, notes, bool(failures), args.baseline))

    if failures:
        for failure in failures:
            print(f"perf-gate: FAIL: {failure}", file=sys.stderr)
        print(UPDATE_HINT, file=sys.stderr)
        return 1
    print(f"perf-gate: pass ({len(compared)} ratios within {tolerance * 100:.0f}% of {args.baseline})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
