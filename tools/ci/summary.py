#!/usr/bin/python3
"""Appends a bench run's results table to a GitHub job summary (or any markdown file).

  summary.py --results-dir perf/head [--title TEXT] [--out "$GITHUB_STEP_SUMMARY"]

Uses DIR/results.md as bench/run wrote it; when that is missing, builds a table from
DIR/results.json. Without --out (and without $GITHUB_STEP_SUMMARY) it prints to stdout, so
the same command shows the table locally. A job summary cannot show the run's PNG charts
(they are files, not URLs): the text points to the artifact instead.
"""

import argparse
import json
import os
import re
import sys

# GitHub refuses a step summary over 1 MiB; stay well below it.
MAX_BYTES = 900 * 1024
HEADING = re.compile(r"^#{1,4} ")


def table_from_json(results):
    lines = [
        "| contender | endpoint | doc | connections | req/s ok | p50 ms | p99 ms | errors | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results.get("runs", []):
        lat = run.get("latency_ms") or {}
        errors = run.get("errors") or {}
        n_errors = sum(v for v in errors.values() if isinstance(v, (int, float)))
        rps = run.get("rps_ok")
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                run.get("contender", "?"), run.get("endpoint", ""), run.get("doc", ""),
                run.get("connections", ""), "-" if rps is None else f"{rps:,.0f}",
                lat.get("p50", "-"), lat.get("p99", "-"), n_errors, run.get("non2xx", 0),
            )
        )
    skipped = results.get("skipped") or []
    if skipped:
        lines.append("")
        lines.append("Skipped: " + ", ".join(str(s if not isinstance(s, dict) else s.get("contender", s)) for s in skipped))
    return "\n".join(lines) + "\n"


def render(results_dir, title, artifact):
    md_path = os.path.join(results_dir, "results.md")
    json_path = os.path.join(results_dir, "results.json")
    parts = [f"## {title}\n"]
    if os.path.exists(md_path):
        with open(md_path, encoding="utf-8") as f:
            body = f.read()
    elif os.path.exists(json_path):
        with open(json_path, encoding="utf-8") as f:
            body = table_from_json(json.load(f))
    else:
        body = f"No results in `{results_dir}`: the bench did not finish (see the step log).\n"
    # Demote bench/run's headings so that they sit under our "## title".
    lines = body.splitlines()
    shift = "##" if any(line.startswith("# ") for line in lines) else "#"
    body = "\n".join((shift + line) if HEADING.match(line) else line for line in lines)
    parts.append(body.rstrip("\n") + "\n")
    if artifact:
        parts.append(f"\nCharts (PNG), CSV and JSON: artifact `{artifact}` of this run.\n")
    text = "\n".join(parts)
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        text = encoded[:MAX_BYTES].decode("utf-8", "ignore") + "\n\n(truncated; the full table is in the artifact)\n"
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--title", default="Benchmark results")
    parser.add_argument("--artifact", default="", help="name of the uploaded artifact, to point readers to it")
    parser.add_argument("--out", default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
                        help="file to append to (default: $GITHUB_STEP_SUMMARY, else stdout)")
    args = parser.parse_args(argv)
    try:
        text = render(args.results_dir, args.title, args.artifact)
    except (OSError, ValueError) as e:
        print(f"summary: cannot read {args.results_dir}: {e}", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
