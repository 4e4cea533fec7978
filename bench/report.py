"""Writes a harness run's results: results.json (the schema the CI gate reads), results.csv,
results.md (tables, the seed's figures beside ours) and PNG charts drawn by gnuplot (Debian
gnuplot-nox, pngcairo terminal; bench/README.md, "Charts", says why not matplotlib)."""
import csv
import json
import math
import os
import shutil
import subprocess

# The seed's figures (seed/battle-blog-post.md, full report): Requests/sec and wrk's timeouts,
# 4-core VM server, client and MongoDB on other machines, 30 s runs. Big doc has no 5000 run.
SEED_RPS = {
    ("small", 200): {"Play": 3492.87, "Node": 2919.74, "Tornado": 2891.78, "gunicorn+gevent": 2678.43,
                     "uwsgi+gevent": 1541.34, "uwsgi threaded": 823.69},
    ("small", 1000): {"Play": 5098.15, "Node": 2810.50, "Tornado": 2586.83, "gunicorn+gevent": 2468.73,
                      "uwsgi+gevent": 1545.13, "uwsgi threaded": 784.29},
    ("small", 5000): {"Play": 5914.00, "Node": 2365.01, "Tornado": 2061.52, "gunicorn+gevent": 2144.11,
                      "uwsgi+gevent": 1563.52, "uwsgi threaded": 851.37},
    ("big", 200): {"Play": 1034.84, "Node": 1429.96, "Tornado": 842.10, "gunicorn+gevent": 636.93,
                   "uwsgi+gevent": 627.02, "uwsgi threaded": 273.56},
    ("big", 1000): {"Play": 1115.38, "Node": 1345.88, "Tornado": 857.27, "gunicorn+gevent": 645.02,
                    "uwsgi+gevent": 632.26, "uwsgi threaded": 228.43},
}
SEED_TIMEOUTS = {
    ("small", 200): {"uwsgi threaded": 45},
    ("small", 1000): {"uwsgi threaded": 2693, "uwsgi+gevent": 193, "gunicorn+gevent": 345},
    ("small", 5000): {"Play": 9831, "Node": 12651, "Tornado": 15260, "gunicorn+gevent": 38478,
                      "uwsgi+gevent": 29852, "uwsgi threaded": 43560},
    ("big", 200): {"uwsgi threaded": 329, "uwsgi+gevent": 447},
    ("big", 1000): {"Play": 387, "Node": 197, "Tornado": 191, "gunicorn+gevent": 860, "uwsgi+gevent": 8766,
                    "uwsgi threaded": 9851},
}
SEED_COLUMNS = ["Play", "Node", "Tornado", "gunicorn+gevent", "uwsgi+gevent", "uwsgi threaded"]
PLAY_NOTE = ("Play 2.2 + ReactiveMongo is not run: neither Debian nor npm has it (it needs sbt, Scala 2.10 "
             "and Play's own repositories), so the seed's Play figures are printed as a reference only.")

# Contenders whose userland is not the host's Debian 12: named so in every table.
USERLAND = {cid: "Debian 13" for cid in ("drogon", "drogon-json", "coroserve-d13", "coroserve-d13-json")}
USERLAND_NOTE = ("Rows marked (Debian 13): drogon 1.9 is packaged in Debian 13 only, so bench/run builds and "
                 "runs it in a Debian 13 chroot (tools/ci/trixie-chroot.sh): same kernel, cores, CPU placement "
                 "and stand-in (shared network namespace); only the userland (glibc, g++ 14, libmongoc 1.30) "
                 "differs. coroserve-d13 is this tree's coroserve built and run in that chroot the same way "
                 "(libmongoc 1.30 instead of Debian 12's 1.23).")


def _name(cid):
    return f"{cid} ({USERLAND[cid]})" if cid in USERLAND else cid


CSV_FIELDS = ["contender", "endpoint", "doc", "connections", "rps_ok", "rps", "p50_ms", "p90_ms", "p99_ms",
              "max_ms", "err_connect", "err_read", "err_write", "err_timeout", "non2xx", "rss_peak_kb", "cpu_s",
              "server_cpu_us_per_req", "db_cpu_us_per_req", "ctx_switches_per_req"]


def csv_rows(results):
    for r in results["runs"]:
        lat, err = r["latency_ms"], r["errors"]
        yield {"contender": r["contender"], "endpoint": r["endpoint"], "doc": r["doc"],
               "connections": r["connections"], "rps_ok": _round(r["rps_ok"]), "rps": _round(r["rps"]),
               "p50_ms": lat["p50"], "p90_ms": lat["p90"], "p99_ms": lat["p99"], "max_ms": lat["max"],
               "err_connect": err["connect"], "err_read": err["read"], "err_write": err["write"],
               "err_timeout": err["timeout"], "non2xx": r["non2xx"], "rss_peak_kb": r.get("rss_peak_kb"),
               "cpu_s": r.get("cpu_s"), "server_cpu_us_per_req": _round(cost(r)["server_cpu_us"]),
               "db_cpu_us_per_req": _round(cost(r)["db_cpu_us"]),
               "ctx_switches_per_req": _round(cost(r)["ctx_switches"], 3)}


def _round(x, nd=1):
    return None if x is None else round(x, nd)


def write_json(path, results):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def write_csv(path, results):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for row in csv_rows(results):
            w.writerow(row)


def _fmt_num(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, float) and nd == 0:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}" if isinstance(x, float) else f"{x:,}"


def _failures(r):
    e = r["errors"]
    return e["connect"] + e["read"] + e["write"] + e["timeout"] + r["non2xx"]


def _per_cpu(r):
    """Median over the reps of successful requests per CPU second of the server tree."""
    vals = sorted((x["requests"] - x["non2xx"]) / x["cpu_s"] for x in r.get("reps", [])
                  if x.get("cpu_s") and "requests" in x)
    return vals[len(vals) // 2] if vals else None


def cost(r):
    """Cost per answered request of a matrix point, median over its reps: server CPU-us, stand-in
    CPU-us, server context switches (every thread of the process tree). None where not sampled."""
    def med(vals):
        vals = sorted(v for v in vals if v is not None)
        return vals[len(vals) // 2] if vals else None

    def per(key, scale):
        return med([x[key] * scale / x["requests"] if x.get(key) is not None and x.get("requests") else None
                    for x in r.get("reps", [])])
    return {"server_cpu_us": per("cpu_s", 1e6), "db_cpu_us": per("standin_cpu_s", 1e6),
            "ctx_switches": per("ctx_switches", 1), "db_ctx_switches": per("standin_ctx_switches", 1)}


def _cost_md(results):
    runs = results.get("runs", [])
    if not runs:
        return []
    conns = sorted({r["connections"] for r in runs})
    idx = {(r["contender"], r["doc"], r["connections"]): r for r in runs}
    out = ["## Cost per request", "",
           "Each cell: server CPU-us per request / database (stand-in) CPU-us per request / server context "
           "switches per request (voluntary + involuntary, summed over every thread of the server's process "
           "tree from /proc/<pid>/task/*/status), median of the reps. Requests = every answer wrk counted. "
           "Rows without a database (nginx, /json) show '-' for it.", "",
           "| contender | doc | " + " | ".join(f"c={c}" for c in conns) + " |",
           "|---|---|" + "---|" * len(conns)]
    for doc in ("small", "big"):
        for cid in dict.fromkeys(r["contender"] for r in runs):
            if not any((cid, doc, c) in idx for c in conns):
                continue
            cells = []
            for c in conns:
                r = idx.get((cid, doc, c))
                if r is None:
                    cells.append("-")
                    continue
                k = cost(r)
                cells.append(f"{_fmt_num(k['server_cpu_us'], 1)} / {_fmt_num(k['db_cpu_us'], 1)} / "
                             f"{_fmt_num(k['ctx_switches'], 2)}")
            out.append(f"| {cid} | {doc} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def _cell(r):
    """'rps_ok (failures)'; wrk does not count requests that never got an answer, so a run
    with no answer at all would read '0 (0)': say it."""
    if not r["rps_ok"] and not r["rps"] and not _failures(r):
        return "0 (no answer in the run)"
    return f"{_fmt_num(r['rps_ok'])} ({_fmt_num(_failures(r))})"


def markdown(results):
    """The whole report as Markdown text."""
    m = results["meta"]
    out = [f"# bench/run results {m.get('timestamp', '')}", ""]
    out += _status_md(results)
    mach = m.get("machine", {})
    out.append(f"git {m.get('git_rev')}; {mach.get('cpus')} CPUs ({mach.get('cpu_model')}), "
               f"kernel {mach.get('kernel')}; {m.get('database')}; wrk -t1 --latency --timeout "
               f"{m.get('wrk_timeout_s')}s, {m.get('duration_s')} s x {m.get('reps')} reps (median), "
               f"warm-up {m.get('warmup_s')} s; {_order_md(m)}; pinning {m.get('pinning')}; "
               f"fd limit {mach.get('fd_limit')}, "
               f"listen backlog {mach.get('backlog')}.")
    out.append("")
    rate = results.get("standin_driver_find_rate")
    out.append(f"Stand-in driver-only find rate (mongo-driver-load, same run): "
               f"{_fmt_num(rate) + ' ops/s' if rate is not None else 'not measured'}.")
    out.append("")
    runs = results.get("runs", [])
    if runs:
        docs = [d for d in ("small", "big") if any(r["doc"] == d for r in runs)]
        conns = sorted({r["connections"] for r in runs})
        cids = list(dict.fromkeys(r["contender"] for r in runs))
        idx = {(r["contender"], r["doc"], r["connections"]): r for r in runs}
        for doc in docs:
            out.append(f"## {doc} document: successful requests/s (median), failures in brackets")
            out.append("")
            out.append("failures = socket errors (connect+read+write+timeout) + non-2xx, median of the reps. "
                       "uwsgi's read errors are its closing every connection after the answer (no keep-alive).")
            out.append("")
            out.append("| contender | " + " | ".join(f"c={c}" for c in conns) + " |")
            out.append("|---|" + "---|" * len(conns))
            for cid in cids:
                cells = []
                for c in conns:
                    r = idx.get((cid, doc, c))
                    cells.append("-" if r is None else _cell(r))
                out.append(f"| {_name(cid)} | " + " | ".join(cells) + " |")
            for col in SEED_COLUMNS:
                cells = []
                for c in conns:
                    v = SEED_RPS.get((doc, c), {}).get(col)
                    t = SEED_TIMEOUTS.get((doc, c), {}).get(col)
                    cells.append("-" if v is None else f"{v:,.0f}" + (f" ({t:,} timeouts)" if t else ""))
                out.append(f"| seed: {col} (4 cores, 2014) | " + " | ".join(cells) + " |")
            out.append("")
        out.append("## Latency (ms, median of reps) and server resources")
        out.append("")
        out.append("CPU s is the server tree's CPU time per run; ok/CPU-s (successful requests per CPU second of "
                   "the server, DB excluded) holds better than req/s on a shared machine.")
        out.append("")
        out.append("| contender | doc | conns | p50 | p90 | p99 | max | connect/read/write/timeout | non-2xx | "
                   "peak RSS MiB | CPU s | ok/CPU-s |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in runs:
            lat, e = r["latency_ms"], r["errors"]
            rss = r.get("rss_peak_kb")
            out.append(f"| {_name(r['contender'])} | {r['doc']} | {r['connections']} | {_fmt_num(lat['p50'], 2)} | "
                       f"{_fmt_num(lat['p90'], 2)} | {_fmt_num(lat['p99'], 2)} | {_fmt_num(lat['max'], 2)} | "
                       f"{_fmt_num(e['connect'])}/{_fmt_num(e['read'])}/{_fmt_num(e['write'])}/"
                       f"{_fmt_num(e['timeout'])} | {_fmt_num(r['non2xx'])} | "
                       f"{'-' if rss is None else f'{rss / 1024:.1f}'} | {_fmt_num(r.get('cpu_s'), 1)} | "
                       f"{_fmt_num(_per_cpu(r))} |")
        out.append("")
        out.append(PLAY_NOTE)
        out.append("")
        if any(cid in USERLAND for cid in cids):
            out += [USERLAND_NOTE, ""]
        out += _cost_md(results)
    out += _decompose_md(results)
    if results.get("sweep"):
        out.append("## DB latency sweep (stand-in --latency-ms), small doc")
        out.append("")
        out.append("| config | DB latency ms | conns | ok req/s | pool bound T/latency | p50 ms | p99 ms | "
                   "timeouts | non-2xx |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in results["sweep"]:
            out.append(f"| {r['config']} | {r['latency_ms_db']} | {r['connections']} | {_fmt_num(r['rps_ok'])} | "
                       f"{_fmt_num(r.get('pool_bound_rps'))} | {_fmt_num(r['latency_ms']['p50'], 2)} | "
                       f"{_fmt_num(r['latency_ms']['p99'], 2)} | {r['errors']['timeout']} | {r['non2xx']} |")
        out.append("")
    if results.get("sleep"):
        out.append("## /sleep demonstration (1 s sleep per request)")
        out.append("")
        out.append("| case | conns | requests | ok req/s | p50 ms | max ms | errors (c/r/w/t) | non-2xx |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in results["sleep"]:
            e = r["errors"]
            out.append(f"| {r['case']} | {r['connections']} | {r['requests']} | {r['rps_ok']:.2f} | "
                       f"{_fmt_num(r['latency_ms']['p50'], 1)} | {_fmt_num(r['latency_ms']['max'], 1)} | "
                       f"{e['connect']}/{e['read']}/{e['write']}/{e['timeout']} | {r['non2xx']} |")
        out.append("")
    if results.get("idle"):
        out.append("## Memory per idle keep-alive connection")
        out.append("")
        out.append("| contender | open at sample | alive at end | RSS before MiB | RSS after MiB | bytes/connection |")
        out.append("|---|---|---|---|---|---|")
        for r in results["idle"]:
            out.append(f"| {_name(r['contender'])} | {_fmt_num(r['connections_open_at_sample'])} | "
                       f"{_fmt_num(r['connections_alive_at_end'])} | {r['rss_before_kb'] / 1024:.1f} | "
                       f"{r['rss_after_kb'] / 1024:.1f} | {_fmt_num(r['bytes_per_connection'])} |")
        out.append("")
    if results.get("openloop"):
        out.append("## Open-loop latency at a fixed offered rate (latency from the scheduled send time)")
        out.append("")
        out.append("| contender | offered req/s | achieved | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | "
                   "non-2xx |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in results["openloop"]:
            lat = r.get("latency_ms", {})
            out.append(f"| {_name(r['contender'])} | {r['offered_rps']} | {_fmt_num(r.get('achieved_rps'))} | "
                       f"{_fmt_num(lat.get('p50'), 2)} | {_fmt_num(lat.get('p90'), 2)} | {_fmt_num(lat.get('p99'), 2)} | "
                       f"{_fmt_num(lat.get('p999'), 2)} | {_fmt_num(lat.get('max'), 2)} | {r.get('errors')} | "
                       f"{r.get('non2xx')} |")
        out.append("")
    out += _targets_md(results)
    return "\n".join(out)


def _decompose_md(results):
    rows = results.get("decompose") or []
    if not rows:
        return []
    out = ["## Decomposition: HTTP only, driver only, composite (small doc)", "",
           "(a) the same server on its constant-JSON route; (b) find_one loops in the same language and driver "
           "with the same pool and finds in flight, pinned where the server runs, no HTTP; (c) the composite "
           "/mongo. predicted = 1/(1/a + 1/b). CPU-us per request of the server (or loop) processes; "
           "cs = context switches per request of the server tree in (c).", "",
           "| contender | processes | conns | (a) HTTP req/s | (a) CPU-us | (b) finds/s | (b) CPU-us | "
           "(c) /mongo req/s | (c) CPU-us | (c) DB CPU-us | (c) cs | predicted | c / predicted |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        h, d, c = r.get("http") or {}, r.get("driver") or {}, r.get("composite") or {}
        ratio = r.get("composite_vs_predicted")
        out.append(f"| {r['contender']} | {r.get('processes')} | {r.get('connections')} | "
                   f"{_fmt_num(h.get('rps_ok'))} | {_fmt_num(h.get('cpu_us'), 1)} | {_fmt_num(d.get('rps_ok'))} | "
                   f"{_fmt_num(d.get('cpu_us'), 1)} | {_fmt_num(c.get('rps_ok'))} | {_fmt_num(c.get('cpu_us'), 1)} | "
                   f"{_fmt_num(c.get('db_cpu_us'), 1)} | {_fmt_num(c.get('ctx_switches'), 2)} | "
                   f"{_fmt_num(r.get('predicted_rps'))} | {'-' if ratio is None else f'{ratio:.0%}'} |"
                   + (f" error: {r['error']}" if r.get("error") else ""))
    out.append("")
    for r in rows:
        for prof in r.get("profiles", []):
            top = [t for t in prof["top"] if t["function"] != "(idle)"][:10]
            if not top or prof["top"][0]["function"] == "(idle)" and prof["top"][0]["self_pct"] > 90:
                continue  # the cluster primary: idle
            out.append(f"Profile of {r['contender']} ({r.get('processes')} processes), (c), `{prof['file']}`, "
                       "top self time: " + ", ".join(f"{t['function']} ({t['url'] or 'native'}) {t['self_pct']}%"
                                                   for t in top) + ".")
            out.append("")
    return out


def _order_md(meta):
    """How the matrix's runs were ordered (results before --order existed ran grouped)."""
    if meta.get("order", "grouped") == "grouped":
        return "order grouped (each contender's points and reps back to back, warm-up once per point)"
    return ("order interleaved (rep by rep, each connection count, every contender in turn, backward on odd "
            "reps; a fresh server and a warm-up before every run)")


def _status_md(results):
    """The first lines of results.md: what was skipped and why, a busy machine, an aborted run."""
    m = results["meta"]
    out = []
    if m.get("error"):
        out += [f"**The run stopped early: {m['error']}**", ""]
    if m.get("busy"):
        out += [f"**Measured on a busy machine (--allow-busy): 1-min load average "
                f"{m.get('loadavg_before_first_point')} before the first point, above the limit of "
                f"{m.get('max_load', 1.5)}. Do not publish these figures.**", ""]
    skipped = results.get("skipped", [])
    if skipped:
        out += [f"**Skipped ({len(skipped)}){' with --allow-skip' if m.get('allow_skip') else ''}:**", ""]
        out += [f"- {s['contender']}: {s['reason']}" for s in skipped]
        out.append("")
    else:
        out += ["Nothing skipped: every requested contender ran at every point.", ""]
    return out


def _point(results, cid, doc, conns):
    return next((r for r in results.get("runs", []) if r["contender"] == cid and r["doc"] == doc
                 and r["connections"] == conns), None)


def targets(results):
    """Issue 4's targets, checked on this run: [{target, measured, met}] (met None = not measured)."""
    out = []

    def ratio(a, b, doc, conns, at_least, label):
        ra, rb = _point(results, a, doc, conns), _point(results, b, doc, conns)
        if ra is None or rb is None:
            out.append({"target": label, "measured": None, "met": None})
            return
        if not rb["rps_ok"]:
            out.append({"target": label, "measured": f"undefined: {b} had no successful request", "met": None})
            return
        x = ra["rps_ok"] / rb["rps_ok"]
        out.append({"target": label, "measured": f"{x:.2f}x ({ra['rps_ok']:,.0f} vs {rb['rps_ok']:,.0f} req/s)",
                    "met": x >= at_least})

    ratio("coroserve", "node-express", "small", 1000, 3, "coroserve /mongo >= 3x node-express, small, 1000 conns")
    ratio("coroserve", "flask-gunicorn-gevent", "small", 1000, 10,
          "coroserve /mongo >= 10x flask-gunicorn-gevent, small, 1000 conns")
    ratio("coroserve", "nginx", "small", 200, 0.5, "coroserve /mongo >= 50% of nginx, small, 200 conns")
    ratio("coroserve-json", "nginx", "small", 200, 0.9, "coroserve /json >= 90% of nginx, small, 200 conns")
    runs = results.get("runs", [])
    # Issue 17: against drogon, at every point where drogon ran.
    for a, b, at_least, path in (("coroserve-json", "drogon-json", 1.0, "/json"), ("coroserve", "drogon", 1.2, "/mongo")):
        for doc, n in [(r["doc"], r["connections"]) for r in runs if r["contender"] == b]:
            ratio(a, b, doc, n, at_least, f"coroserve {path} >= {at_least:g}x drogon {path}, {doc}, {n} conns")
    ours = [r for r in runs if r["contender"] == "coroserve"]
    if ours:
        behind = []
        for r in ours:
            for other in runs:
                if (other["doc"], other["connections"]) == (r["doc"], r["connections"]) and other["endpoint"] == "/mongo" \
                        and other["contender"] not in ("coroserve", "nginx") and other["rps_ok"] > r["rps_ok"]:
                    behind.append(f"{other['contender']} {r['doc']} c={r['connections']}")
        out.append({"target": "coroserve ahead of every DB-backed contender at every point",
                    "measured": "ahead everywhere" if not behind else "behind: " + ", ".join(behind),
                    "met": not behind})
        bad = [f"{r['doc']} c={r['connections']}: {_failures(r)}" for r in ours if _failures(r)]
        out.append({"target": "coroserve: zero socket errors, timeouts and non-2xx at every point",
                    "measured": "none" if not bad else "; ".join(bad), "met": not bad})
    idle = [r for r in results.get("idle", []) if r["contender"] == "coroserve"]
    if idle and idle[0].get("bytes_per_connection") is not None:
        b = idle[0]["bytes_per_connection"]
        out.append({"target": "coroserve RSS growth per idle keep-alive connection <= 8 KiB",
                    "measured": f"{b / 1024:.1f} KiB", "met": b <= 8192})
    return out


def _targets_md(results):
    rows = targets(results)
    if not rows:
        return []
    out = ["## Issue 4's targets, on this run", "", "| target | measured | met |", "|---|---|---|"]
    for t in rows:
        met = {True: "yes", False: "**no**", None: "not measured" if t["measured"] is None else "undefined"}[t["met"]]
        out.append(f"| {t['target']} | {t['measured'] or '-'} | {met} |")
    out.append("")
    return out


def write_md(path, results):
    with open(path, "w") as f:
        f.write(markdown(results))


def save(out_dir, results, charts=False):
    results["targets"] = targets(results)
    write_json(os.path.join(out_dir, "results.json"), results)
    write_csv(os.path.join(out_dir, "results.csv"), results)
    write_md(os.path.join(out_dir, "results.md"), results)
    if charts:
        return write_charts(out_dir, results)
    return []


# ---------------------------------------------------------------------------------------------
# Charts: each one is a data file (tab-separated) plus a gnuplot script written beside the PNG
# (charts/<name>.dat, charts/<name>.gp), so a reader can re-draw or restyle it by hand.

GNUPLOT_TERMINAL = "pngcairo noenhanced font 'DejaVu Sans,9'"
# One colour per contender, in report order: the ten of a common qualitative palette (tab10),
# then six more that differ from all of them (the matrix has 12 contenders: with ten colours
# the eleventh, drogon, was drawn in coroserve's blue).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#000000", "#e6ab02", "#6a3d9a", "#b15928", "#a6cee3", "#fb9a99"]


class ChartError(RuntimeError):
    """gnuplot is missing or failed: charts are part of the run, so this is an error."""


def _q(text):
    """A gnuplot double-quoted string literal."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _v(x):
    """A data-file cell: numbers as they are, missing (None, NaN) as '?' (set datafile missing)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "?"
    return repr(float(x)) if isinstance(x, float) else str(x)


def _plot(out_dir, name, size, data, script):
    """Writes charts/<name>.dat and .gp and runs gnuplot; returns the PNG's path."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        raise ChartError("gnuplot is not installed (Debian gnuplot-nox; tools/install-deps.sh bench)")
    chart_dir = os.path.join(out_dir, "charts")
    os.makedirs(chart_dir, exist_ok=True)
    dat = os.path.join(chart_dir, f"{name}.dat")
    gp = os.path.join(chart_dir, f"{name}.gp")
    png = os.path.join(out_dir, f"{name}.png")
    with open(dat, "w") as f:
        f.write(data)
    head = [f"set terminal {GNUPLOT_TERMINAL} size {size[0]},{size[1]}", f"set output {_q(png)}",
            f"data = {_q(dat)}", "set datafile separator '\\t'", "set datafile missing '?'",
            "set key noenhanced", "set key autotitle columnhead", "set grid ytics lc rgb '#dddddd'",
            "set border lc rgb '#555555'"]
    with open(gp, "w") as f:
        f.write("\n".join(head + script + ["unset output", ""]))
    r = subprocess.run([gnuplot, gp], capture_output=True, text=True, timeout=60)
    if r.returncode or not os.path.exists(png) or os.path.getsize(png) == 0:
        raise ChartError(f"gnuplot failed on {gp}: {r.stderr.strip()[-500:]}")
    return png


def _tsv(header, rows):
    """Tab-separated text: a header line, then rows whose first cell is a label."""
    lines = ["\t".join(header)]
    lines += ["\t".join([str(r[0])] + [_v(x) for x in r[1:]]) for r in rows]
    return "\n".join(lines) + "\n"


def _colour(i):
    return PALETTE[i % len(PALETTE)]


def _histogram(title, ylabel, ncols, colours, log=False):
    """Lines of a clustered-bar plot of columns 2..ncols+1 of `data`, x labels from column 1."""
    lines = [f"set title {_q(title)}", f"set ylabel {_q(ylabel)}", "set style data histograms",
             "set style histogram clustered gap 1", "set style fill solid 0.9 border -1", "set boxwidth 0.9",
             "set key outside top center horizontal font ',8'", "set xtics nomirror", "set ytics nomirror"]
    lines += ["set logscale y", "set yrange [0.8:*]"] if log else ["unset logscale y", "set yrange [0:*]"]
    plots = [f"data using {i + 2}:xtic(1) title columnheader({i + 2}) lc rgb {_q(colours[i])}" for i in range(ncols)]
    return lines + ["plot " + ", \\\n     ".join(plots)]


def write_charts(out_dir, results):
    """matrix_<doc>.png (successful req/s and failures per contender at each connection count),
    latency.png, and one chart per further section present (sweep, idle, openloop, decompose,
    cost). Raises ChartError when gnuplot is missing or fails."""
    written = []
    runs = results.get("runs", [])
    cids = list(dict.fromkeys(r["contender"] for r in runs))
    conns = sorted({r["connections"] for r in runs})
    colours = {cid: _colour(i) for i, cid in enumerate(cids)}
    idx = {(r["contender"], r["doc"], r["connections"]): r for r in runs}
    docs = [d for d in ("small", "big") if any(r["doc"] == d for r in runs)]

    for doc in docs:
        rows = []
        for c in conns:
            row = [f"{c} conns"]
            row += [idx[(cid, doc, c)]["rps_ok"] if (cid, doc, c) in idx else None for cid in cids]
            # failures + 1 on a log axis: a run without failures still shows a (flat) bar
            row += [_failures(idx[(cid, doc, c)]) + 1 if (cid, doc, c) in idx else None for cid in cids]
            rows.append(row)
        header = ["conns"] + cids + [f"{cid} failures" for cid in cids]
        n = len(cids)
        script = ["set multiplot layout 2,1"]
        script += _histogram(f"{doc} document: successful requests/s (median of reps)", "successful req/s", n,
                             [colours[c] for c in cids])
        script += [f"set title {_q(f'{doc} document: failed requests per run, + 1 (median; log scale)')}",
                   f"set ylabel {_q('failures + 1')}", "set logscale y", "set yrange [0.8:*]", "set key off"]
        script += ["plot " + ", \\\n     ".join(
            f"data using {n + i + 2}:xtic(1) notitle lc rgb {_q(colours[cid])}" for i, cid in enumerate(cids))]
        script += ["unset multiplot"]
        written.append(_plot(out_dir, f"matrix_{doc}", (900, 720), _tsv(header, rows), script))

    if runs:
        # One block per (doc, contender): conns, p50, p99; blocks separated by two blank lines.
        blocks, plots = [], []
        for d, doc in enumerate(docs):
            for cid in cids:
                pts = [(c, idx[(cid, doc, c)]["latency_ms"]) for c in conns if (cid, doc, c) in idx]
                pts = [(c, lat) for c, lat in pts if lat.get("p99") is not None and lat.get("p50") is not None]
                if not pts:
                    continue
                blocks.append((doc, cid, pts))
        data = ""
        for b, (doc, cid, pts) in enumerate(blocks):
            data += "conns\tp50\tp99\n"
            data += "".join(f"{c}\t{_v(lat['p50'])}\t{_v(lat['p99'])}\n" for c, lat in pts) + "\n\n"
        script = [f"set multiplot layout 1,{max(len(docs), 1)}", "set logscale xy",
                  "set xtics (" + ", ".join(f"{_q(c)} {c}" for c in conns) + ")",
                  f"set xlabel {_q('connections')}", f"set ylabel {_q('latency ms (solid p50, dashed p99)')}",
                  "set key top left font ',7'", f"set xrange [{conns[0] * 0.8}:{conns[-1] * 1.25}]"]
        for doc in docs:
            script.append(f"set title {_q(f'{doc} document: wrk latency (closed loop)')}")
            plots = []
            for b, (bdoc, cid, _) in enumerate(blocks):
                if bdoc != doc:
                    continue
                plots.append(f"data index {b} using 1:2 with linespoints pt 7 ps 0.7 lw 1.5 lc rgb {_q(colours[cid])} "
                             f"title {_q(cid)}")
                plots.append(f"data index {b} using 1:3 with linespoints pt 2 dt 2 lw 1.5 lc rgb {_q(colours[cid])} "
                             "notitle")
            script.append("plot " + ", \\\n     ".join(plots) if plots else "plot 1/0 notitle")
        script.append("unset multiplot")
        written.append(_plot(out_dir, "latency", (600 * max(len(docs), 1), 450), data, script))

    if results.get("sweep"):
        sweep = results["sweep"]
        lats = sorted({r["latency_ms_db"] for r in sweep})
        configs = list(dict.fromkeys(r["config"] for r in sweep))
        get = {(r["config"], r["latency_ms_db"]): r["rps_ok"] for r in sweep}
        rows = [[f"{lat} ms"] + [get.get((cfg, lat)) for cfg in configs] for lat in lats]
        script = ["set title 'DB latency sweep (small doc): successful req/s per stand-in latency'",
                  "set xlabel 'stand-in latency per find'", "set ylabel 'successful req/s (log)'",
                  "set logscale y", "set key outside right font ',8'", "set offsets 0.3, 0.3, 0, 0"]
        script.append("plot " + ", \\\n     ".join(
            f"data using 0:{i + 2}:xtic(1) with linespoints pt 7 lw 1.5 lc rgb {_q(_colour(i))} title {_q(cfg)}"
            for i, cfg in enumerate(configs)))
        written.append(_plot(out_dir, "sweep", (800, 450), _tsv(["latency"] + configs, rows), script))

    dec = [r for r in results.get("decompose", []) if r.get("composite")]
    if dec:
        rows = [[f"{r['contender']} x{r.get('processes')}", (r.get("http") or {}).get("rps_ok"),
                 (r.get("driver") or {}).get("rps_ok"), r["composite"]["rps_ok"], r.get("predicted_rps")]
                for r in dec]
        script = ["set xtics rotate by -30 font ',8'"]
        script += _histogram("Decomposition (small doc): HTTP only, driver only, composite /mongo, 1/(1/a+1/b)",
                             "requests (finds) per second", 4, ["#1f77b4", "#2ca02c", "#d62728", "#7f7f7f"])
        written.append(_plot(out_dir, "decompose", (1000, 500),
                             _tsv(["case", "(a) HTTP only", "(b) driver only", "(c) composite /mongo",
                                   "predicted 1/(1/a+1/b)"], rows), script))

    idle = [r for r in results.get("idle", []) if r.get("bytes_per_connection") is not None]
    if idle:
        rows = [[r["contender"], r["bytes_per_connection"] / 1024] for r in idle]
        script = ["set title 'Memory per idle keep-alive connection'",
                  "set ylabel 'RSS growth per idle connection (KiB)'", "set style fill solid 0.9 border -1",
                  "set boxwidth 0.7", "set yrange [0:*]", "set xtics rotate by -30 font ',8'", "set key off",
                  "plot data using 0:2:xtic(1) with boxes lc rgb '#1f77b4'"]
        written.append(_plot(out_dir, "idle", (800, 400), _tsv(["contender", "KiB"], rows), script))

    if results.get("openloop"):
        ol = results["openloop"]
        rows = [[f"{r['contender']} {r['offered_rps']}/s"]
                + [r.get("latency_ms", {}).get(k) for k in ("p50", "p99", "p999")] for r in ol]
        script = ["set title 'Open-loop latency at a fixed offered rate'",
                  "set ylabel 'latency ms from the scheduled send (log)'", "set logscale y",
                  "set xtics rotate by -35 font ',7'", "set offsets 0.5, 0.5, 0, 0", "set key top left",
                  "plot data using 0:2:xtic(1) with points pt 7 ps 1.2 title 'p50', "
                  "data using 0:3 with points pt 2 ps 1.4 title 'p99', "
                  "data using 0:4 with points pt 9 ps 1.2 title 'p99.9'"]
        written.append(_plot(out_dir, "openloop", (900, 450), _tsv(["case", "p50", "p99", "p999"], rows), script))
    return written
