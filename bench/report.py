"""Writes a harness run's results: results.json (the schema the CI gate reads), results.csv,
results.md (tables, the seed's figures beside ours) and PNG charts (matplotlib, Agg)."""
import csv
import json
import os

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
USERLAND = {"drogon": "Debian 13", "drogon-json": "Debian 13"}
USERLAND_NOTE = ("drogon rows (Debian 13): drogon 1.9 is packaged in Debian 13 only, so bench/run builds and "
                 "runs it in a Debian 13 chroot (tools/ci/trixie-chroot.sh): same kernel, cores, CPU placement "
                 "and stand-in (shared network namespace); only the userland (glibc, g++ 14, libmongoc 1.30) "
                 "differs.")


def _name(cid):
    return f"{cid} ({USERLAND[cid]})" if cid in USERLAND else cid


CSV_FIELDS = ["contender", "endpoint", "doc", "connections", "rps_ok", "rps", "p50_ms", "p90_ms", "p99_ms",
              "max_ms", "err_connect", "err_read", "err_write", "err_timeout", "non2xx", "rss_peak_kb", "cpu_s"]


def csv_rows(results):
    for r in results["runs"]:
        lat, err = r["latency_ms"], r["errors"]
        yield {"contender": r["contender"], "endpoint": r["endpoint"], "doc": r["doc"],
               "connections": r["connections"], "rps_ok": _round(r["rps_ok"]), "rps": _round(r["rps"]),
               "p50_ms": lat["p50"], "p90_ms": lat["p90"], "p99_ms": lat["p99"], "max_ms": lat["max"],
               "err_connect": err["connect"], "err_read": err["read"], "err_write": err["write"],
               "err_timeout": err["timeout"], "non2xx": r["non2xx"], "rss_peak_kb": r.get("rss_peak_kb"),
               "cpu_s": r.get("cpu_s")}


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
    mach = m.get("machine", {})
    out.append(f"git {m.get('git_rev')}; {mach.get('cpus')} CPUs ({mach.get('cpu_model')}), "
               f"kernel {mach.get('kernel')}; {m.get('database')}; wrk -t1 --latency --timeout "
               f"{m.get('wrk_timeout_s')}s, {m.get('duration_s')} s x {m.get('reps')} reps (median), "
               f"warm-up {m.get('warmup_s')} s; pinning {m.get('pinning')}; fd limit {mach.get('fd_limit')}, "
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
    if results.get("skipped"):
        out.append("## Skipped")
        out.append("")
        for s in results["skipped"]:
            out.append(f"- {s['contender']}: {s['reason']}")
        out.append("")
    return "\n".join(out)


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
        try:
            return write_charts(out_dir, results)
        except ImportError as e:
            print(f"charts skipped: {e}")
    return []


def write_charts(out_dir, results):
    """matrix_<doc>.png (successful req/s and failures per contender at each connection count),
    latency.png, and charts for the sweep, idle and open-loop sections when present."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    runs = results.get("runs", [])
    cids = list(dict.fromkeys(r["contender"] for r in runs))
    conns = sorted({r["connections"] for r in runs})
    colors = {cid: plt.cm.tab10(i % 10) for i, cid in enumerate(cids)}
    idx = {(r["contender"], r["doc"], r["connections"]): r for r in runs}
    width = 0.8 / max(len(cids), 1)

    def bars(ax, doc, value, ylabel, log=False):
        for i, cid in enumerate(cids):
            xs, ys = [], []
            for j, c in enumerate(conns):
                r = idx.get((cid, doc, c))
                if r is not None:
                    xs.append(j + (i - (len(cids) - 1) / 2) * width)
                    ys.append(value(r))
            ax.bar(xs, ys, width, label=cid, color=colors[cid])
        ax.set_xticks(range(len(conns)))
        ax.set_xticklabels([f"{c} conns" for c in conns])
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("symlog", linthresh=1)
        ax.grid(axis="y", alpha=0.3)

    for doc in ("small", "big"):
        if not any(r["doc"] == doc for r in runs):
            continue
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7), dpi=80)
        bars(ax1, doc, lambda r: r["rps_ok"], "successful req/s (median)")
        ax1.set_title(f"{doc} document: successful requests/s")
        ax1.legend(fontsize=7, ncol=3)
        bars(ax2, doc, _failures, "failures (socket errors + non-2xx)", log=True)
        ax2.set_title(f"{doc} document: failed requests per run (median)")
        fig.tight_layout()
        path = os.path.join(out_dir, f"matrix_{doc}.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)

    if runs:
        docs = [d for d in ("small", "big") if any(r["doc"] == d for r in runs)]
        fig, axes = plt.subplots(1, len(docs), figsize=(6 * len(docs), 4.5), dpi=80, squeeze=False)
        for ax, doc in zip(axes[0], docs):
            for cid in cids:
                pts = [(c, idx[(cid, doc, c)]["latency_ms"]) for c in conns if (cid, doc, c) in idx]
                pts = [(c, lat) for c, lat in pts if lat["p99"] is not None]
                if not pts:
                    continue
                ax.plot([c for c, _ in pts], [lat["p50"] for _, lat in pts], "o-", color=colors[cid], label=f"{cid}")
                ax.plot([c for c, _ in pts], [lat["p99"] for _, lat in pts], "x--", color=colors[cid])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(conns)
            ax.set_xticklabels([str(c) for c in conns])
            ax.set_xlabel("connections")
            ax.set_ylabel("latency ms (o- p50, x-- p99)")
            ax.set_title(f"{doc} document: wrk latency (closed loop)")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out_dir, "latency.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)

    if results.get("sweep"):
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=80)
        configs = list(dict.fromkeys(r["config"] for r in results["sweep"]))
        for cfg in configs:
            pts = sorted((r["latency_ms_db"], r["rps_ok"]) for r in results["sweep"] if r["config"] == cfg)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=cfg)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("stand-in latency per find (ms)")
        ax.set_ylabel("successful req/s")
        ax.set_title("DB latency sweep (small doc)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out_dir, "sweep.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)

    if results.get("idle"):
        rows = [r for r in results["idle"] if r.get("bytes_per_connection") is not None]
        if rows:
            fig, ax = plt.subplots(figsize=(8, 4), dpi=80)
            ax.bar([r["contender"] for r in rows], [r["bytes_per_connection"] / 1024 for r in rows])
            ax.set_ylabel("RSS growth per idle connection (KiB)")
            ax.set_title("Memory per idle keep-alive connection")
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
            fig.tight_layout()
            path = os.path.join(out_dir, "idle.png")
            fig.savefig(path)
            plt.close(fig)
            written.append(path)

    if results.get("openloop"):
        rows = results["openloop"]
        fig, ax = plt.subplots(figsize=(9, 4.5), dpi=80)
        labels = [f"{r['contender']}\n{r['offered_rps']}/s" for r in rows]
        for key, marker in (("p50", "o"), ("p99", "x"), ("p999", "^")):
            ax.plot(labels, [r.get("latency_ms", {}).get(key) for r in rows], marker, label=key)
        ax.set_yscale("log")
        ax.set_ylabel("latency ms from scheduled send")
        ax.set_title("Open-loop latency at a fixed offered rate")
        ax.tick_params(axis="x", labelsize=6)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(out_dir, "openloop.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
