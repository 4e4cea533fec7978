#!/usr/bin/python3
"""Performance regression gate of the perf job: user-space instructions per request, per route.

Reads the results.json of `bench/run cost` (instructions per request of the coroserve process
under cachegrind, per route, median of the repetitions) and compares every route with

  - bench/baseline.json (written by this script from a cost run, see --write-baseline), and
  - on pull requests, the base branch measured in the same job (--base-results).

A route fails when it costs more than its tolerance above either (default 3 %, per route in
the baseline's "tolerances"). Improvements beyond the tolerance are reported with the command
that updates the baseline. Wall-clock ratios of a bench/run matrix (--wall-results) are shown
beside, labelled informational, never gated: on a shared runner they move by tens of percent.

Exit status: 0 pass, 1 at least one route regressed (or was not measured), 2 bad input.

  perf-gate.py --results perf/cost-head/results.json [--baseline bench/baseline.json]
               [--base-results perf/cost-base/results.json] [--routes json,mongo]
               [--tolerance 0.03] [--summary "$GITHUB_STEP_SUMMARY"] [--comment FILE]
               [--benchmark-json FILE] [--wall-results perf/head/results.json]
               [--wall-base-results perf/base/results.json]
  perf-gate.py --results run/results.json --write-baseline bench/baseline.json [--note TEXT]
"""

import argparse
import datetime
import json
import math
import os
import sys

DEFAULT_TOLERANCE = 0.03
# The marker that lets tools/ci/perf-comment.py find (and update) its own PR comment.
COMMENT_MARKER = "<!-- coroserve-perf-gate -->"
BASELINE_COMMAND = "tools/ci/perf-baseline.sh"
UPDATE_HINT = (
    "If the change is intended, regenerate the baseline on purpose (on a Debian 12 machine or in "
    "the perf job's container, with the merged tree built):\n"
    f"  {BASELINE_COMMAND} --note 'why'\n"
    "or from this job's cost results (the perf-cost artifact):\n"
    "  /usr/bin/python3 tools/ci/perf-gate.py --results cost-head/results.json "
    "--write-baseline bench/baseline.json --note 'why'\n"
    "and commit bench/baseline.json with the reason in the commit message."
)
# Wall-clock ratios (informational): coroserve /mongo over a reference in the same bench run.
SUBJECT, SUBJECT_ENDPOINT, REFERENCES = "coroserve", "/mongo", ("nginx", "coroserve-json")


class InputError(Exception):
    pass


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}")
    except IsADirectoryError:
        raise InputError(f"{what} is a directory, not a results.json: {path}")
    except json.JSONDecodeError as e:
        raise InputError(f"{what} is not valid JSON: {path}: {e}")


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def cost_routes(results, what):
    """{route: {"ir": median instructions/request, "spread": %, "label", "native"}} of a
    `bench/run cost` results.json; routes it skipped come back in a second dict {route: why}."""
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list):
        raise InputError(f"{what} has no 'runs' list: is it the results.json of `bench/run cost`?")
    meta = results.get("meta") if isinstance(results.get("meta"), dict) else {}
    if meta.get("kind") != "cost":
        raise InputError(f"{what} is not a cost run (meta.kind is {meta.get('kind')!r}, expected 'cost'); "
                         "the gate reads `bench/run cost` results")
    routes = {}
    for i, run in enumerate(results["runs"]):
        if not isinstance(run, dict) or not isinstance(run.get("route"), str):
            raise InputError(f"{what}: runs[{i}] has no route name")
        ir = run.get("ir_per_request")
        median = ir.get("median") if isinstance(ir, dict) else None
        if not _positive(median):
            raise InputError(f"{what}: route {run['route']}: ir_per_request.median must be a positive "
                             f"number, got {median!r}")
        spread = ir.get("spread_pct")
        routes[run["route"]] = {
            "ir": float(median),
            "spread": float(spread) if isinstance(spread, (int, float)) else None,
            "label": run.get("label", run["route"]),
            "native": run.get("native") if isinstance(run.get("native"), dict) else {},
        }
    skipped = {}
    for s in results.get("skipped") or []:
        if isinstance(s, dict) and isinstance(s.get("route"), str):
            skipped[s["route"]] = str(s.get("reason", "skipped"))
    return routes, skipped


def baseline_routes(doc, path):
    if not isinstance(doc, dict) or not isinstance(doc.get("routes"), dict):
        raise InputError(f"baseline has no 'routes' object: {path} (write one with --write-baseline)")
    routes = {}
    for name, entry in doc["routes"].items():
        value = entry.get("ir_per_request") if isinstance(entry, dict) else None
        if not _positive(value):
            raise InputError(f"baseline {path}: route {name}: ir_per_request must be a positive number, "
                             f"got {value!r}")
        routes[name] = float(value)
    return routes


def tolerance_for(route, default, per_route):
    return float(per_route.get(route, default))


def compare(head, reference, tolerance, per_route, selected=None):
    """Rows (route, reference, head, change, tolerance, status); status is ok, REGRESSION,
    improved, missing (in the reference, not measured) or new (measured, not in reference)."""
    rows = []
    names = sorted(set(reference) | set(head))
    if selected is not None:
        names = [n for n in names if n in selected]
    for name in names:
        ref, got = reference.get(name), head.get(name)
        tol = tolerance_for(name, tolerance, per_route)
        if ref is None:
            rows.append((name, None, got, None, tol, "new"))
        elif got is None:
            rows.append((name, ref, None, None, tol, "missing"))
        else:
            change = (got - ref) / ref
            status = "REGRESSION" if change > tol else "improved" if change < -tol else "ok"
            rows.append((name, ref, got, change, tol, status))
    return rows


def fmt_ir(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_change(x):
    return "-" if x is None else f"{x * 100:+.2f}%"


def fmt_spread(x):
    return "-" if x is None else f"{x:.2f}%"


# ---------------------------------------------------------------- wall clock (informational)


def wall_ratios(results):
    """coroserve /mongo rps_ok over each reference, per document and connection count."""
    runs = results.get("runs") if isinstance(results, dict) else None
    if not isinstance(runs, list):
        raise InputError("wall-clock results.json has no 'runs' list")
    by_point = {}
    for run in runs:
        if not isinstance(run, dict):
            continue
        contender, doc, conns = run.get("contender"), run.get("doc"), run.get("connections")
        if contender is None or doc is None or conns is None:
            continue
        if contender == SUBJECT and run.get("endpoint", SUBJECT_ENDPOINT) != SUBJECT_ENDPOINT:
            continue
        rate = run.get("rps_ok")
        by_point.setdefault((contender, str(doc), int(conns)), rate if _positive(rate) else None)
    ratios = {}
    for (name, doc, conns), rate in sorted(by_point.items()):
        if name != SUBJECT or rate is None:
            continue
        for ref in REFERENCES:
            ref_rate = by_point.get((ref, doc, conns))
            if ref_rate:
                ratios[f"{SUBJECT}/{ref} {doc} c{conns}"] = rate / ref_rate
    return ratios


def wall_section(head, base):
    lines = ["", "### Wall-clock ratios (informational, not gated)", "",
             "Successful req/s of coroserve `/mongo` over a reference served in the same run. On a "
             "shared runner these move by tens of percent between runs: read them as a hint only.", ""]
    if base is None:
        lines += ["| ratio | head |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in sorted(head.items())]
    else:
        lines += ["| ratio | base | head | change |", "|---|---:|---:|---:|"]
        for k in sorted(set(head) | set(base)):
            h, b = head.get(k), base.get(k)
            change = (h - b) / b if h is not None and b else None
            lines.append(f"| {k} | {'-' if b is None else f'{b:.3f}'} | {'-' if h is None else f'{h:.3f}'} | "
                         f"{fmt_change(change)} |")
    return lines


# ---------------------------------------------------------------- report


def markdown_report(head, baseline_rows, base_rows, notes, failures, baseline_path, wall_lines):
    lines = [COMMENT_MARKER, "## Performance gate: instructions per request", ""]
    lines.append("User-space instructions per request of the coroserve process under cachegrind "
                 "(`bench/run cost`: median of the repetitions; spread = (max - min) / median). "
                 "A route fails when it grows by more than its tolerance.")
    lines += ["", f"**Against `{baseline_path}`**", "",
              "| route | baseline | head | Δ % | tolerance | spread | status |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for name, ref, got, change, tol, status in baseline_rows:
        spread = head.get(name, {}).get("spread")
        shown = f"**{status}**" if status in ("REGRESSION", "missing") else status
        lines.append(f"| {name} | {fmt_ir(ref)} | {fmt_ir(got)} | {fmt_change(change)} | {tol * 100:.1f}% | "
                     f"{fmt_spread(spread)} | {shown} |")
    if base_rows is not None:
        lines += ["", "**Against the base branch (built and measured in this job)**", "",
                  "| route | base | head | Δ % | tolerance | spread (base / head) | status |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for name, ref, got, change, tol, status, spreads in base_rows:
            shown = f"**{status}**" if status in ("REGRESSION", "missing") else status
            lines.append(f"| {name} | {fmt_ir(ref)} | {fmt_ir(got)} | {fmt_change(change)} | {tol * 100:.1f}% | "
                         f"{fmt_spread(spreads[0])} / {fmt_spread(spreads[1])} | {shown} |")
    native = [(n, r["native"]) for n, r in sorted(head.items()) if r.get("native")]
    if native:
        lines += ["", "### Per request, natively (informational, not gated)", "",
                  "| route | voluntary cs | involuntary cs | CPU-µs | wall-µs |", "|---|---:|---:|---:|---:|"]
        for name, nat in native:
            lines.append(f"| {name} | {nat.get('voluntary_ctx_switches', '-')} | "
                         f"{nat.get('involuntary_ctx_switches', '-')} | {nat.get('cpu_us', '-')} | "
                         f"{nat.get('wall_us', '-')} |")
    lines += wall_lines
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    lines.append("")
    if failures:
        lines.append("**Result: FAIL.**")
        lines += [""] + [f"- {f}" for f in failures]
    else:
        lines.append("**Result: pass.**")
    if failures or any(r[5] == "improved" for r in baseline_rows):
        lines += ["", "```", UPDATE_HINT, "```"]
    return "\n".join(lines) + "\n"


def benchmark_json(head):
    """github-action-benchmark's customSmallerIsBetter format: one entry per route."""
    return [
        {
            "name": f"{name}: {r['label']}",
            "unit": "instructions/request",
            "value": round(r["ir"], 1),
            "range": f"spread {fmt_spread(r['spread'])}",
            "extra": "; ".join(f"{k}={v}" for k, v in sorted(r["native"].items())),
        }
        for name, r in sorted(head.items())
    ]


# ---------------------------------------------------------------- baseline


def write_baseline(path, results, routes, note, tolerance):
    previous = {}
    if os.path.exists(path):
        try:
            previous = load_json(path, "baseline")
        except InputError:
            previous = {}
        if not isinstance(previous, dict) or not isinstance(previous.get("routes"), dict):
            previous = {}  # not a cost baseline (e.g. the former wall-clock ratios): keep nothing
    meta = results.get("meta") or {}
    keep_tolerances = previous.get("tolerances") if isinstance(previous.get("tolerances"), dict) else {}
    baseline = {
        "description": "Instructions per request per route of the coroserve process (user space, "
                       "cachegrind), guarded by tools/ci/perf-gate.py. Written by "
                       f"`{BASELINE_COMMAND}`; see bench/CI.md.",
        "metric": "ir_per_request: median over the repetitions of (Ir(W+N) - Ir(W)) / N",
        "tolerance": tolerance if tolerance is not None else previous.get("tolerance", DEFAULT_TOLERANCE),
        "tolerances": keep_tolerances,
        "source": {
            "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "note": note or "",
            "git_rev": meta.get("git_rev"),
            "method": meta.get("method"),
            "reps": meta.get("reps"),
            "database": meta.get("database"),
            # What the counts depend on: the same versions give the same counts.
            "versions": meta.get("versions") or {},
        },
        "routes": {
            name: {"label": r["label"], "ir_per_request": round(r["ir"], 1),
                   "spread_pct": r["spread"]}
            for name, r in sorted(routes.items())
        },
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(baseline, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------- main


def parse_tolerance(text, what):
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what} must be a number like 0.03, got {text!r}")
    if not 0 <= value < 1:
        raise InputError(f"{what} must be in [0, 1) (0.03 = 3 %), got {value}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="results.json of `bench/run cost` for this revision")
    parser.add_argument("--baseline", default="bench/baseline.json")
    parser.add_argument("--base-results", help="results.json of `bench/run cost` for the base branch, same job")
    parser.add_argument("--routes", help="only these routes (comma list); default: every route of the baseline")
    parser.add_argument("--tolerance", help="allowed growth for every route without its own (default: "
                                            "the baseline's, else 0.03)")
    parser.add_argument("--summary", help="append the Markdown report to this file ($GITHUB_STEP_SUMMARY)")
    parser.add_argument("--comment", help="write the Markdown report to this file (the PR comment's body)")
    parser.add_argument("--benchmark-json", help="write github-action-benchmark customSmallerIsBetter JSON")
    parser.add_argument("--wall-results", help="a bench/run matrix results.json: wall-clock ratios, informational")
    parser.add_argument("--wall-base-results", help="the base branch's bench/run matrix results.json")
    parser.add_argument("--write-baseline", metavar="PATH", help="write --results as the new baseline and exit")
    parser.add_argument("--note", help="with --write-baseline: where the numbers come from, and why")
    args = parser.parse_args(argv)

    try:
        tolerance_arg = parse_tolerance(args.tolerance, "--tolerance") if args.tolerance else None
        head, head_skipped = cost_routes(load_json(args.results, "results"), args.results)
        if args.write_baseline:
            if head_skipped:
                raise InputError(f"{args.results} skipped route(s) {', '.join(sorted(head_skipped))}: "
                                 "a baseline needs every route measured")
            if not head:
                raise InputError(f"{args.results} measured no route: nothing to write")
            write_baseline(args.write_baseline, load_json(args.results, "results"), head, args.note,
                           tolerance_arg)
            print(f"perf-gate: wrote {len(head)} routes to {args.write_baseline}")
            for name, r in sorted(head.items()):
                print(f"  {name:<12} {r['ir']:>12,.1f} instructions/request (spread {fmt_spread(r['spread'])})")
            return 0

        baseline_doc = load_json(args.baseline, "baseline")
        baseline = baseline_routes(baseline_doc, args.baseline)
        per_route = baseline_doc.get("tolerances") or {}
        if not isinstance(per_route, dict):
            raise InputError(f"baseline {args.baseline}: 'tolerances' must be an object {{route: 0.05}}")
        per_route = {k: parse_tolerance(str(v), f"baseline tolerance of {k}") for k, v in per_route.items()}
        tolerance = tolerance_arg
        if tolerance is None:
            tolerance = parse_tolerance(str(baseline_doc.get("tolerance", DEFAULT_TOLERANCE)), "baseline tolerance")
        if tolerance_arg is not None:
            per_route = {}  # an explicit --tolerance applies to every route
        selected = None
        if args.routes:
            selected = {r for r in args.routes.split(",") if r}
            unknown = selected - set(baseline) - set(head)
            if unknown:
                raise InputError(f"--routes names route(s) neither measured nor in the baseline: "
                                 f"{', '.join(sorted(unknown))}")

        base = base_skipped = None
        notes = []
        if args.base_results:
            if os.path.exists(args.base_results):
                base, base_skipped = cost_routes(load_json(args.base_results, "base results"), args.base_results)
            else:
                notes.append(f"base branch results not found ({args.base_results}): no comparison with the base")
        wall_lines = []
        if args.wall_results:
            if os.path.exists(args.wall_results):
                wall_base = None
                if args.wall_base_results and os.path.exists(args.wall_base_results):
                    wall_base = wall_ratios(load_json(args.wall_base_results, "base wall-clock results"))
                wall_lines = wall_section(wall_ratios(load_json(args.wall_results, "wall-clock results")), wall_base)
            else:
                notes.append(f"wall-clock results not found ({args.wall_results}): no wall-clock ratios")
    except InputError as e:
        print(f"perf-gate: error: {e}", file=sys.stderr)
        return 2

    head_ir = {n: r["ir"] for n, r in head.items()}
    failures = []
    baseline_rows = compare(head_ir, baseline, tolerance, per_route, selected)
    for name, ref, got, change, tol, status in baseline_rows:
        if status == "REGRESSION":
            failures.append(f"route {name}: {got:,.0f} instructions/request, baseline {ref:,.0f}: "
                            f"{change * 100:+.2f}% (tolerance {tol * 100:.1f}%)")
        elif status == "missing":
            why = head_skipped.get(name, "not in this run's results")
            failures.append(f"route {name} is in the baseline ({ref:,.0f}) but was not measured: {why}")
        elif status == "new":
            notes.append(f"route {name}: {got:,.0f} instructions/request, not in the baseline: not gated")
        elif status == "improved":
            notes.append(f"route {name}: {change * 100:+.2f}% against the baseline ({ref:,.0f} -> {got:,.0f}): "
                         f"an improvement; update the baseline on purpose ({BASELINE_COMMAND})")

    base_rows = None
    if base is not None:
        base_rows = []
        base_ir = {n: r["ir"] for n, r in base.items()}
        for row in compare(head_ir, base_ir, tolerance, per_route, selected):
            name, ref, got, change, tol, status = row
            spreads = (base.get(name, {}).get("spread"), head.get(name, {}).get("spread"))
            if status == "REGRESSION":
                failures.append(f"route {name}: {got:,.0f} instructions/request, base branch {ref:,.0f}: "
                                f"{change * 100:+.2f}% (tolerance {tol * 100:.1f}%)")
            elif status == "missing":
                # The base measured it, the head did not: a route this change broke or removed.
                why = head_skipped.get(name, "not in this run's results")
                failures.append(f"route {name} was measured on the base branch ({ref:,.0f}) but not on "
                                f"this revision: {why}")
            elif status == "new":
                why = base_skipped.get(name)
                notes.append(f"route {name}: not measured on the base branch" + (f" ({why})" if why else ""))
            base_rows.append((name, ref, got, change, tol, status, spreads))

    for name, r in sorted(head.items()):
        tol = tolerance_for(name, tolerance, per_route)
        if r["spread"] is not None and r["spread"] > tol * 100 / 2:
            notes.append(f"route {name}: spread {r['spread']:.2f}% between repetitions is more than half "
                         f"the tolerance: this measurement is noisy")

    print(f"{'status':>10}  {'route':<12} {'baseline':>10} {'head':>10} {'change':>8}  spread")
    for name, ref, got, change, tol, status in baseline_rows:
        print(f"{status:>10}  {name:<12} {fmt_ir(ref):>10} {fmt_ir(got):>10} {fmt_change(change):>8}  "
              f"{fmt_spread(head.get(name, {}).get('spread'))}")
    if base_rows is not None:
        print("against the base branch (same job):")
        for name, ref, got, change, tol, status, _ in base_rows:
            print(f"{status:>10}  {name:<12} {fmt_ir(ref):>10} {fmt_ir(got):>10} {fmt_change(change):>8}")
    for note in notes:
        print(f"note: {note}")

    report = markdown_report(head, baseline_rows, base_rows, notes, failures, args.baseline, wall_lines)
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as f:
            f.write(report)
    if args.comment:
        with open(args.comment, "w", encoding="utf-8") as f:
            f.write(report)
    if args.benchmark_json:
        with open(args.benchmark_json, "w", encoding="utf-8") as f:
            json.dump(benchmark_json(head), f, indent=2)
            f.write("\n")

    if failures:
        for failure in failures:
            print(f"perf-gate: FAIL: {failure}", file=sys.stderr)
        print(UPDATE_HINT, file=sys.stderr)
        return 1
    print(f"perf-gate: pass ({len([r for r in baseline_rows if r[3] is not None])} routes within "
          f"tolerance of {args.baseline}" + (", and of the base branch" if base_rows else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
